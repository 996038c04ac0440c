"""How often the validation report's grade rules flag a perfectly calibrated model.

Fits the demo experiment (as ``bench_calibration_by_group.py``), takes the blend's grades
and PDs on the observed hold-out without a veto (the rows the validation report
back-tests), prints the real back-test, then draws the outcomes ``R`` times from the
model's own PD (y ~ Bernoulli(PD): calibrated by construction) and counts how often the
same functions (``grade_calibration``: one-sided Jeffreys light per grade, green p >=
0.05, red p < 0.01; ``rank_ordering``: any grade below a better one) flag it. ``true_pd``
is not used. ~3 min::

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_grade_rules_null.py
"""
import numpy as np

from village_credit.config import load_config
from village_credit.models.splits import split_by_village
from village_credit.pipeline import evaluate, fit_models, load_households, tune_params
from village_credit.rules.grades import grade_order
from village_credit.validation.calibration import grade_calibration
from village_credit.validation.discrimination import rank_ordering

cfg = load_config("experiments/default.yaml", {})
v1, _ = load_households(cfg)
s = cfg.split
sp = split_by_village(v1, (1 - s.calibration_share - s.holdout_share, s.calibration_share, s.holdout_share), seed=cfg.seed)
train, calib, holdout = sp.frames(v1)
models = fit_models(train, calib, cfg, tune_params(train, cfg, log_to_mlflow=False))
dec = evaluate(models, holdout, cfg)["decisions"]["blend"]
keep = holdout["outcome_observed"].to_numpy(bool) & ~dec["vetoed"].to_numpy(bool)
g = dec["grade"].to_numpy(object)[keep]
p = dec["pd"].to_numpy(float)[keep]
y = holdout["default_12m"].to_numpy(int)[keep]
order = grade_order()
real = grade_calibration(g, y, p, order)
print(real[["grade", "n", "defaults", "predicted_pd", "observed_rate", "jeffreys_p", "light"]].to_string(index=False))
print("rank order (observed):", rank_ordering(g, y, order)[["grade", "n", "default_rate", "monotone"]].to_string(index=False))
rng = np.random.default_rng(0)
R = 1000
amber = red = either = broken = cond = 0
per_grade = {k: 0 for k in order}
for _ in range(R):
    ys = (rng.random(len(p)) < p).astype(int)
    gc = grade_calibration(g, ys, p, order)
    a, r_ = (gc["light"] == "amber").any(), (gc["light"] == "red").any()
    for k in gc.loc[gc["light"].isin(["amber", "red"]), "grade"]:
        per_grade[k] += 1
    b = not rank_ordering(g, ys, order)["monotone"].all()
    amber += a
    red += r_
    either += a or r_
    broken += b
    cond += a or r_ or b
print(f"\n{R} draws y ~ Bernoulli(model PD) on the same {len(p)} observed households:")
print(f"  P(some grade amber or red) = {either / R:.3f}  (some amber {amber / R:.3f}; some red, a FAIL {red / R:.3f})")
print(f"  P(rank order broken) = {broken / R:.3f}")
print(f"  P(grade rules alone make the verdict at least CONDITIONAL) = {cond / R:.3f}")
print("  per grade P(amber or red):", {k: round(v / R, 3) for k, v in per_grade.items() if v})
