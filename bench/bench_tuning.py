"""Benchmark: Optuna tuning of the LightGBM default model on synthetic households.

Target (issue 4): a 30-trial budget on 100k households finishes within 10 minutes
on 2 cores. Prints elapsed seconds, trials per minute, and the ratio to a single
default-parameter fit measured in the same run (so machines can be compared).

    python bench/bench_tuning.py                       # 100k households, 30 trials, 2 threads
    python bench/bench_tuning.py --n 20000 --trials 6  # quick check
"""

from __future__ import annotations

import argparse
import json
import time

from sklearn.metrics import roc_auc_score

from village_credit.data.generator import GeneratorConfig, generate_households, generate_vintage
from village_credit.models.features import HouseholdFeatures
from village_credit.models.gbm import LGBMDefaultModel
from village_credit.models.tuning import tune


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="households")
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--n-jobs", type=int, default=2, help="LightGBM threads")
    ap.add_argument("--cv-folds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="write the numbers to this JSON file")
    args = ap.parse_args()

    t = time.perf_counter()
    cfg = GeneratorConfig(n_households=args.n, seed=args.seed)
    hh = generate_households(cfg)
    hh2 = generate_vintage(cfg, vintage=2)
    t_gen = time.perf_counter() - t

    t = time.perf_counter()
    feats = HouseholdFeatures()
    X = feats.fit_transform(hh)
    X2 = feats.transform(hh2)
    t_feat = time.perf_counter() - t
    y, y2, groups = hh["default_12m"].to_numpy(), hh2["default_12m"].to_numpy(), hh["village_code"].to_numpy()
    mono = feats.monotone_constraints()

    t, c = time.perf_counter(), time.process_time()
    default = LGBMDefaultModel(monotone_constraints=mono, n_jobs=args.n_jobs, random_state=args.seed).fit(X, y)
    t_fit, c_fit = time.perf_counter() - t, time.process_time() - c
    auc_default_oot = roc_auc_score(y2, default.decision_function(X2))

    t, c = time.perf_counter(), time.process_time()
    res = tune(X, y, groups, n_trials=args.trials, seed=args.seed, cv_folds=args.cv_folds, oot=(X2, y2),
               base_params={"monotone_constraints": mono}, n_jobs=args.n_jobs)
    t_tune, c_tune = time.perf_counter() - t, time.process_time() - c

    out = {
        "households": args.n, "features": X.shape[1], "trials": args.trials, "n_jobs": args.n_jobs,
        "cv_folds": args.cv_folds, "default_rate": float(y.mean()),
        "generate_s": round(t_gen, 2), "features_s": round(t_feat, 2),
        "default_fit_s": round(t_fit, 2), "tuning_s": round(t_tune, 1),
        "trials_per_min": round(args.trials / (t_tune / 60), 2),
        "tuning_over_default_fit": round(t_tune / t_fit, 1),
        # CPU seconds of this process: the fair measure on a shared machine (wall time includes waiting)
        "default_fit_cpu_s": round(c_fit, 2), "tuning_cpu_s": round(c_tune, 1),
        "tuning_over_default_fit_cpu": round(c_tune / c_fit, 1),
        "pruned": res.n_pruned, "best_cv_auc": round(res.best_value, 4),
        "oot_auc_tuned": round(res.oot_auc or float("nan"), 4), "oot_auc_default": round(auc_default_oot, 4),
        "oracle_oot_auc": round(roc_auc_score(y2, hh2["true_pd"].to_numpy()), 4),
        "best_params": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in res.best_params.items()
                        if k != "monotone_constraints"},
    }
    for k, v in out.items():
        print(f"{k:>26}: {v}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
