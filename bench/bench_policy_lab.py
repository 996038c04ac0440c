"""Benchmark: the policy lab's search (issue 29) against the full decisions it replaces.

Target: 200 trials on 20,000 households in under 5 minutes on 2 cores. The baseline,
measured in the same run on the same households: one full decision the plain way --
``score_rules`` (the rule standard) and, with ``--blend``, ``DecisionModel.decide``
(validation, features, TreeSHAP contributions, rules, policy). The lab reuses the
features, the model's contributions and every rule condition a parameter cannot
change, so a trial costs a fraction of a full decision; the printed ratio is
(search time per trial) / (one full decision), MLflow logging included (a sqlite store
in a temporary folder).

    PYTHONPATH=$PWD/src .venv/bin/python bench/bench_policy_lab.py            # 20,000 x 200, rules and blend
    PYTHONPATH=$PWD/src .venv/bin/python bench/bench_policy_lab.py --n 5000 --trials 40
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from _timing import best_of

from village_credit.data import GeneratorConfig, generate_households
from village_credit.models.blend import fit_blend
from village_credit.models.splits import split_by_village
from village_credit.policy_lab import run_policy_lab
from village_credit.rules import load_policy, score_rules


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--population", type=int, default=20)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-blend", action="store_true", help="skip the blend (no model training)")
    ap.add_argument("--no-rules", action="store_true", help="skip the rule standard's search")
    args = ap.parse_args()
    print(f"cores visible: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} (1 min)")
    hh = generate_households(GeneratorConfig(n_households=args.n, seed=42))
    pol = load_policy("jinxiang_2022")
    systems = [] if args.no_rules else [("rules", None)]
    if not args.no_blend:
        train, calib, _ = split_by_village(hh, seed=0).frames(hh)
        model = fit_blend(train, train["default_12m"], calib, calib["default_12m"], policy=pol,
                          strategy="additive_points", gbm_params={"n_estimators": 300, "num_leaves": 8}, seed=0)
        systems.append(("blend", model))
    for name, model in systems:
        full = best_of((lambda: score_rules(hh, pol)) if model is None else (lambda m=model: m.decide(hh)), args.repeat)
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            res = run_policy_lab(hh, pol, model=model, n_trials=args.trials, population_size=args.population,
                                 n_jobs=args.jobs, seed=0, out_dir=f"{tmp}/lab", tracking_uri=f"sqlite:///{tmp}/m.db")
            total = time.perf_counter() - t
        per_trial = res.timings["search_s"] / len(res.trials)
        print(f"{name:5s}: {len(res.trials)} trials on {args.n:,} households in {total:.1f} s "
              f"(set-up {res.timings['setup_s']:.1f} s, search {res.timings['search_s']:.1f} s); "
              f"one full decision {full:.3f} s; per trial / full decision = {per_trial / full:.2f}; "
              f"{len(res.pareto)} Pareto policies; target < 300 s: {'met' if total < 300 else 'MISSED'}", flush=True)
        if model is None:  # the same search without MLflow: what the decisions alone cost
            bare = run_policy_lab(hh, pol, n_trials=args.trials, population_size=args.population,
                                  n_jobs=args.jobs, seed=0, log_to_mlflow=False)
            print(f"rules without MLflow: search {bare.timings['search_s']:.1f} s; per trial / full decision = "
                  f"{bare.timings['search_s'] / len(bare.trials) / full:.2f}", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} (1 min) at the end")


if __name__ == "__main__":
    main()
