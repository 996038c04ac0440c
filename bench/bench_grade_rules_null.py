"""The grade back-test's error rates: size on a calibrated model, power on wrong truths.

Fits the demo experiment (as ``bench_calibration_by_group.py``), takes the blend's grades
and PDs on the observed hold-out without a veto (the rows the validation report
back-tests) and prints the real back-test under both rules. Then draws the outcomes ``R``
times on the same households and grades and counts how often each rule set flags them:

* **size**: y ~ Bernoulli(model PD), calibrated and rank-ordered by construction;
* **power**: y ~ Bernoulli(a deliberately wrong truth): every PD x0.6 and x1.6, one mid
  grade's truth x2.5 (B1), two adjacent large grades' truths swapped (A2 <-> B1: each
  row's PD scaled by the other grade's mean PD over its own).

Old rules: ``grade_calibration`` light per grade (one-sided Jeffreys, green p >= 0.05, red
< 0.01, no pooling, no multiplicity control) and ``rank_ordering`` (any point-estimate
reversal). New rules: ``backtest.grade_backtest`` (grades pooled to >= 5 expected
defaults, Holm across pools; rank order by one-sided Fisher, Holm across adjacent pairs).
``true_pd`` is not used. R draws per truth (argument, default 400; ~0.3 s a draw for both
rule sets on the shared 2-core box, ~13 min in all)::

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_grade_rules_null.py [R]
"""
import sys

import numpy as np
import pandas as pd

from village_credit.config import load_config
from village_credit.models.splits import split_by_village
from village_credit.pipeline import evaluate, fit_models, load_households, tune_params
from village_credit.rules.grades import grade_order
from village_credit.validation.backtest import grade_backtest
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
bt = grade_backtest(g, y, p, order)
print("\nnew rules on the observed outcomes:")
print(bt["pools"][["grade", "n", "defaults", "expected_defaults", "observed_rate", "jeffreys_p", "p_holm", "light"]].to_string(index=False))
print(bt["rank_order"].to_string(index=False))
print("not testable:", bt["not_testable"], "| reversals (information):", bt["reversals"])


def old_rules(ys: np.ndarray) -> tuple[bool, bool, bool]:
    """(some grade amber/red, some grade red, rank order broken) under the old rules."""
    light = grade_calibration(g, ys, p, order)["light"]
    return (bool(light.isin(["amber", "red"]).any()), bool((light == "red").any()),
            not rank_ordering(g, ys, order)["monotone"].all())


def new_rules(ys: np.ndarray) -> tuple[bool, bool, bool]:
    b = grade_backtest(g, ys, p, order)
    return (b["lights"]["amber"] + b["lights"]["red"] > 0, b["lights"]["red"] > 0,
            bool(b["rank_order_broken"]))


def swapped(a: str, b: str) -> np.ndarray:
    t = p.copy()
    ma, mb = p[g == a].mean(), p[g == b].mean()
    t[g == a] *= mb / ma
    t[g == b] *= ma / mb
    return t


def scaled(grade: str, k: float) -> np.ndarray:
    return np.where(g == grade, p * k, p)


truths = {"calibrated (size)": p, "every PD x0.6": p * 0.6, "every PD x1.6": p * 1.6,
          "B1 truth x2.5": scaled("B1", 2.5), "A2 <-> B1 swapped": swapped("A2", "B1")}
R = int(sys.argv[1]) if len(sys.argv) > 1 else 400
rows = []
for name, truth in truths.items():
    rng = np.random.default_rng(0)
    tally = {"old": np.zeros(4), "new": np.zeros(4)}
    for _ in range(R):
        ys = (rng.random(len(p)) < np.clip(truth, 0, 1)).astype(int)
        for rule, fn in (("old", old_rules), ("new", new_rules)):
            cal_any, red, broken = fn(ys)
            tally[rule] += (cal_any or broken, red, cal_any, broken)
    for rule, (cond, red, cal_any, broken) in tally.items():
        rows.append({"truth": name, "rules": rule, "P(>= CONDITIONAL)": cond / R, "P(FAIL)": red / R,
                     "P(grade/pool amber or red)": cal_any / R, "P(rank order flagged)": broken / R})
    print(pd.DataFrame(rows[-2:]).to_string(index=False), flush=True)
print(f"\n{R} draws per truth on the same {len(p)} observed households and grades:")
print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".3f"))
