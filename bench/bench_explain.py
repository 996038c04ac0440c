"""Benchmark: reason codes for every household vs a plain prediction.

Prints, in one run, for a 300-tree ``additive_points``-type model (one feature per
tree, depth <= 3: the promoted type) and a depth-6 general model for contrast:

* plain ``booster.predict(raw_score=True)`` throughput (rows/s);
* full reason codes throughput: exact contributions (``AdditiveExplainer``) + top-k
  up/down (numeric) and, separately, + the compact ``code:points`` strings;
* ``pred_contrib`` (LightGBM TreeSHAP) throughput;
* the ratio reason codes / plain predict (target >= 0.20 for the promoted type).

All timings single-threaded (``num_threads=1``), best of ``--repeat``.

    .venv/bin/python bench/bench_explain.py --rows 200000
"""

from __future__ import annotations

import argparse
import platform
import time

import lightgbm as lgb
import numpy as np
from _timing import best_of

from village_credit.data.generator import GeneratorConfig, generate_households
from village_credit.models.additive import AdditiveExplainer
from village_credit.models.features import HouseholdFeatures
from village_credit.models.gbm import LGBMDefaultModel
from village_credit.models.reasons import compact_strings, top_reasons


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000, help="rows to explain")
    ap.add_argument("--train-rows", type=int, default=30_000)
    ap.add_argument("--trees", type=int, default=300)
    ap.add_argument("--top-k", type=int, default=3)
    ap.add_argument("--contrib-rows", type=int, default=20_000, help="rows for the slow pred_contrib runs")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()

    hh = generate_households(GeneratorConfig(n_households=a.train_rows, seed=a.seed))
    feats = HouseholdFeatures().fit(hh)
    X_train = feats.transform(hh)
    y = hh["default_12m"].to_numpy()
    score_hh = generate_households(GeneratorConfig(n_households=min(a.rows, 100_000), seed=a.seed + 1))
    Xs = feats.transform(score_hh).to_numpy(dtype=np.float64)
    X = np.resize(Xs, (a.rows, Xs.shape[1])) if a.rows > len(Xs) else Xs[: a.rows]
    X = np.ascontiguousarray(X)
    print(f"python {platform.python_version()}, lightgbm {lgb.__version__}, numpy {np.__version__}; "
          f"{X.shape[0]:,} rows x {X.shape[1]} features; {a.trees} trees; top-k {a.top_k}; 1 thread")

    models = {
        "additive_points (1 feature/tree, depth<=3)": LGBMDefaultModel(
            n_estimators=a.trees, num_leaves=8, max_depth=3, interaction_constraints="additive",
            monotone_constraints=feats.monotone_constraints(), random_state=a.seed),
        "general depth-6 (contrast)": LGBMDefaultModel(
            n_estimators=a.trees, num_leaves=63, max_depth=6, min_child_samples=20, random_state=a.seed),
    }
    codes = feats.feature_names_out + ["base"]
    for name, m in models.items():
        m.fit(X_train, y)
        b = m.booster_
        n = X.shape[0]
        t_pred = best_of(lambda: b.predict(X, raw_score=True, num_threads=1), a.repeat)
        nc = min(a.contrib_rows, n)
        t_contrib = best_of(lambda: b.predict(X[:nc], pred_contrib=True, num_threads=1), 1) * n / nc
        print(f"\n== {name}")
        print(f"  plain predict           {n / t_pred:>12,.0f} rows/s")
        print(f"  pred_contrib (TreeSHAP) {n / t_contrib:>12,.0f} rows/s   "
              f"ratio {t_pred / t_contrib:.3f}  (on {nc:,} rows)")
        try:
            t0 = time.perf_counter()
            ex = AdditiveExplainer.from_booster(b)
            t_build = time.perf_counter() - t0
        except Exception as exc:  # general trees: no table explainer
            print(f"  additive explainer      n/a ({exc})")
            continue
        c = ex.contributions(X)
        ref = b.predict(X[:nc], pred_contrib=True, num_threads=1)
        err = float(np.max(np.abs(c[:nc] - ref)))

        def reasons() -> object:
            contrib = ex.contributions(X)
            return top_reasons(contrib[:, :-1], a.top_k)

        def reasons_strings() -> object:
            t = reasons()
            return (compact_strings(t.down_idx, t.down_pts, codes),
                    compact_strings(t.up_idx, t.up_pts, codes))

        t_exp = best_of(lambda: ex.contributions(X), a.repeat)
        t_rc = best_of(reasons, a.repeat)
        t_rcs = best_of(reasons_strings, 1)
        print(f"  table build             {t_build * 1000:>12.1f} ms (once per model)")
        print(f"  exact contributions     {n / t_exp:>12,.0f} rows/s   ratio {t_pred / t_exp:.3f}  "
              f"(max |diff| vs pred_contrib {err:.1e})")
        print(f"  reason codes (top-k)    {n / t_rc:>12,.0f} rows/s   ratio {t_pred / t_rc:.3f}  <- target >= 0.20")
        print(f"  + compact strings       {n / t_rcs:>12,.0f} rows/s   ratio {t_pred / t_rcs:.3f}")


if __name__ == "__main__":
    main()
