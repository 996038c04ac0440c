"""Where the demo model's 70+ over-prediction sits: pred / true PD by column value, 70+ vs under-60.

Measurement only (``true_pd`` is the generator's truth; nothing is fitted). Loads the
demo run's saved model (``<output_dir>/model``, written by ``village-credit train``),
rebuilds the hold-out villages as the runner does, and prints mean predicted / true PD
of the households without a veto, split by a few columns, for the 70+ and the under-60s.
Seconds after a demo run::

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_elderly_pd_by_column.py [MODEL_DIR]   # default out/default/model
"""
import sys

import numpy as np, pandas as pd
from village_credit.config import load_config
from village_credit.explain import load_decision_model
from village_credit.models.splits import split_by_village
from village_credit.pipeline import load_households
from village_credit.data.groups import age_band
cfg = load_config("experiments/default.yaml", {})
v1, _ = load_households(cfg)
s = cfg.split
sp = split_by_village(v1, (1 - s.calibration_share - s.holdout_share, s.calibration_share, s.holdout_share), seed=cfg.seed)
_, _, h = sp.frames(v1)
m = load_decision_model(sys.argv[1] if len(sys.argv) > 1 else "out/default/model")
d = m.decide(h, top_k=1)
ok = ~d["vetoed"].to_numpy(bool)
h = h.loc[ok].reset_index(drop=True); p = d.loc[ok, "pd"].to_numpy(float); tp = h["true_pd"].to_numpy(float)
band = np.asarray(age_band(h["head_age"].to_numpy(float)), dtype=object)
grp = np.where(band == "70+", "70+", np.where(np.isin(band, ["18-40", "41-59"]), "<60", "60-69"))
facts = {"social_insurance": h["social_insurance"].astype(bool),
         "pension income > 0": h["income_pension_subsidy"] > 0,
         "has credit limit": h["credit_limit_yuan"] > 0,
         "granted_hist": h["granted_hist"].astype(bool),
         "fixed_income": h["fixed_income"].astype(bool),
         "outcome_observed": h["outcome_observed"].astype(bool),
         "household_size <= 2": h["household_size"] <= 2}
rows = []
for name, f in facts.items():
    f = np.asarray(f, bool)
    for val in (True, False):
        for g in ("<60", "70+"):
            sel = (grp == g) & (f == val)
            if sel.sum() >= 20:
                rows.append({"column": name, "value": val, "group": g, "n": int(sel.sum()),
                             "mean PD": round(p[sel].mean(), 4), "mean true PD": round(tp[sel].mean(), 4),
                             "pred/true": round(p[sel].mean() / tp[sel].mean(), 3)})
print(pd.DataFrame(rows).to_string(index=False))

# Which columns move the points between the pensioned 60-64 and the pensioned 70+ (the
# model is additive: each column's points are exact), beside the log-odds gap the
# generator's truth has between the two groups. Points: pdo points per doubling of odds.
contrib = m.contributions(h)  # h: the hold-out households without a veto, as above
age = h["head_age"].to_numpy(float)
pensioned = (h["social_insurance"].astype(bool) & (h["income_pension_subsidy"] > 0)).to_numpy()
young_old, old_old = pensioned & (age >= 60) & (age < 65), pensioned & (age >= 70)
logit = lambda x: np.log(x / (1 - x))  # noqa: E731
per_point = np.log(2) / m.scaling.pdo
print(f"\npensioned heads 60-64 (n={young_old.sum()}) vs 70+ (n={old_old.sum()}): log-odds gap "
      f"predicted {logit(p[old_old]).mean() - logit(p[young_old]).mean():.3f}, "
      f"true {logit(tp[old_old]).mean() - logit(tp[young_old]).mean():.3f}; "
      f"points per column, 70+ minus 60-64 (negative: the 70+ get fewer points; "
      f"{1 / per_point:.1f} points = 1 log-odds):")
gap = (contrib[old_old].mean() - contrib[young_old].mean()).sort_values()
print(gap[gap.abs() >= 0.25].round(2).to_string())
