"""Benchmark: is the demo's champion calibrated for every group it decides for (issue 25, item 4)?

Runs the main job's own stages (``pipeline.load_households``, ``split_by_village``,
``tune_params``, ``fit_models``, ``evaluate``) on the demo's configuration
(``experiments/default.yaml``: 20,000 households, seed 42, Optuna tuning as configured)
and prints, on the hold-out villages, for the promoted blend, the blend without any
remedy and the GBM alone:

* mean predicted PD / mean true PD (the generator's truth) per age band (18-40, 41-59,
  60-64, 65-69, 70+), per formerly-poor status and overall; target [0.9, 1.1];
* calibration in the large (observed vs predicted defaults, two-sided p) on the observed
  hold-out (``outcome_observed``) and on every hold-out household; target p >= 0.05;
* whether the observed default rate rises grade by grade (A1 best .. E2 worst, grades
  with at least 30 households); target monotone.

Each model twice: on every hold-out household, and on those without a policy veto (the
households whose line the model's PD decides; a vetoed household gets no line whatever
its PD, and no vetoed household ever has an observed outcome to learn from). The grade
back-test is shown on every household and, as the validation report tests it, on the
households with an observed outcome.

Before / after in one run: the experiment as configured ("after") and the same with
``split.exploration_weighting: false`` ("before": explored households unweighted), same
data, same seed, same tuning budget (``--no-before`` skips it).

The ratios are a ratio of two means measured in the same run, so they do not depend on
the machine. ``--n`` and ``--trials`` shrink the run for a quick look::

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_calibration_by_group.py            # demo size, before and after, ~4 min
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_calibration_by_group.py --n 6000 --trials 0
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy / lightgbm load OpenMP

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from village_credit.config import load_config  # noqa: E402
from village_credit.data.groups import AGE_BANDS  # noqa: E402
from village_credit.fairness.calibration import calibration_groups, group_calibration  # noqa: E402
from village_credit.models.splits import split_by_village  # noqa: E402
from village_credit.pipeline import evaluate, fit_models, load_households, tune_params  # noqa: E402
from village_credit.rules.grades import grade_order  # noqa: E402
from village_credit.validation.calibration import calibration_in_the_large  # noqa: E402
from village_credit.validation.discrimination import auc_delong  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = (0.9, 1.1)
MIN_GRADE_N = 30


def grades_monotone(grade: Any, y: Any, min_n: int = MIN_GRADE_N) -> tuple[bool, str]:
    """Observed default rate non-decreasing from the best grade to the worst (grades with >= min_n)."""
    frame = pd.DataFrame({"grade": pd.Categorical(np.asarray(grade), categories=grade_order()), "y": y})
    agg = frame.groupby("grade", observed=False)["y"].agg(["size", "mean"])
    agg = agg[agg["size"] >= min_n]
    rates = agg["mean"].to_numpy(float)
    ok = bool(np.all(np.diff(rates) >= 0))
    return ok, " ".join(f"{g}:{r:.1%}" for g, r in zip(agg.index, rates))


def measure(cfg: Any, label: str = "") -> list[dict[str, Any]]:
    """One row per model of the chain: per-group ratios, calibration in the large, grades."""
    v1, _ = load_households(cfg)
    s = cfg.split
    sp = split_by_village(v1, (1 - s.calibration_share - s.holdout_share, s.calibration_share,
                               s.holdout_share), seed=cfg.seed)
    train, calib, holdout = sp.frames(v1)
    tuned = tune_params(train, cfg, log_to_mlflow=False)
    models = fit_models(train, calib, cfg, tuned)
    ev = evaluate(models, holdout, cfg)
    y = holdout["default_12m"].to_numpy(int)
    obs = holdout["outcome_observed"].to_numpy(bool)
    rows = []
    for (name, dec), scope in [(x, s) for x in ev["decisions"].items() for s in ("all", "no veto")]:
        keep = np.ones(len(holdout), bool) if scope == "all" else ~dec["vetoed"].to_numpy(bool)
        p = dec["pd"].to_numpy(float)
        cal = group_calibration(calibration_groups(holdout.loc[keep]), p[keep], y[keep],
                                true_pd=holdout["true_pd"].to_numpy(float)[keep])
        row: dict[str, Any] = {"run": label, "model": name, "households": f"{scope} ({int(keep.sum())})",
                               "auc": ev["metrics"].get(f"{name}_auc", np.nan),
                               "auc observed": auc_delong(y[obs], p[obs])[0]}
        for r in cal.itertuples(index=False):
            row[r.group] = r.pred_true_ratio
        ok = [TARGET_RATIO[0] <= row[g] <= TARGET_RATIO[1] for g in cal["group"] if g != "all"]
        row["ratios in [0.9, 1.1]"] = f"{sum(ok)}/{len(ok)}"
        citl_o = calibration_in_the_large(y[obs & keep], p[obs & keep])
        citl_a = calibration_in_the_large(y[keep], p[keep])
        row["CITL p (observed)"] = citl_o["p_value"]
        row["O/E (observed)"] = f"{citl_o['observed']:.0f}/{citl_o['expected']:.1f}"
        row["CITL p (all)"] = citl_a["p_value"]
        row["O/E (all)"] = f"{citl_a['observed']:.0f}/{citl_a['expected']:.1f}"
        mono, rates = grades_monotone(dec["grade"][keep], y[keep])
        mono_o, rates_o = grades_monotone(dec["grade"][keep & obs], y[keep & obs])
        row["grades monotone (all)"] = "yes" if mono else "NO"
        row["grades monotone (observed)"] = "yes" if mono_o else "NO"
        row["_grades"] = f"all: {rates}\n      observed: {rates_o}"
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--experiment", default=str(ROOT / "experiments" / "default.yaml"))
    ap.add_argument("--n", type=int, default=None, help="households (default: the experiment's)")
    ap.add_argument("--trials", type=int, default=None, help="Optuna trials (default: the experiment's)")
    ap.add_argument("--no-before", action="store_true", help="skip the unweighted (before) run")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="extra config overrides (YAML values), e.g. fairness.group_recalibration=none")
    args = ap.parse_args()
    import yaml

    over: dict[str, Any] = {"data.second_vintage": False}
    if args.n:
        over["data.n_households"] = args.n
    if args.trials is not None:
        over["model.tuning.n_trials"] = args.trials
        if args.trials == 0:
            over["model.tuning.timeout_s"] = None
    for kv in args.set:
        k, v = kv.split("=", 1)
        over[k] = yaml.safe_load(v)
    cfg = load_config(args.experiment, over)
    t0 = time.perf_counter()
    rows = []
    if not args.no_before:
        rows += measure(load_config(args.experiment, {**over, "split.exploration_weighting": False}), "before")
    rows += measure(cfg, "after" if cfg.split.exploration_weighting else "as configured")
    print(f"\n### Mean predicted / true PD on the hold-out ({cfg.data.n_households:,} households, seed {cfg.seed}, "
          f"{cfg.model.tuning.n_trials} tuning trials; {time.perf_counter() - t0:.0f} s)\n")
    df = pd.DataFrame([{k: v for k, v in r.items() if not k.startswith("_")} for r in rows])
    print(df.to_markdown(index=False, floatfmt=".3f"))
    print("\nObserved default rate per grade (>= 30 households):")
    for r in rows:
        print(f"  {r['run']} {r['model']} ({r['households']}):\n      {r['_grades']}")
    print(f"\nage bands: {', '.join(AGE_BANDS)}")


if __name__ == "__main__":
    main()
