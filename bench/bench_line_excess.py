"""Where the blend's equal-risk line excess over the information ceiling sits, and its spread.

Issue 25, item 3: the demo gates the model's own line excess (<= 0.05 both signs; the
demo at seed 42 reads 0.143). This bench runs the main job's stages (as
``bench_calibration_by_group.py``: ``load_households``, ``split_by_village``,
``tune_params``, ``fit_models``, ``evaluate``, then the ceiling system as
``pipeline.fairness_stage`` builds it) and prints, per seed:

* the excess per comparison and true-PD decile (``fairness.split_gaps``), with the
  households each cell rests on;
* the gated figure (per comparison, the protected-weighted mean excess over the checked
  deciles) and its sampling spread: ``B`` bootstrap resamples of the hold-out households
  (decisions and ceiling PD fixed, households redrawn with replacement);
* mean predicted / true PD per age band and formerly-poor status (every hold-out
  household, and those without a veto);
* the blend's hold-out AUC, and the trees' split count on ``pension_head_60plus`` when
  ``--set model.elderly_pension_interaction=true`` adds it.

``true_pd`` is used only to measure, never to fit. ~6 min a seed on the shared box::

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_line_excess.py --seeds 42 7 11 23 [--set KEY=VALUE ...]
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402

import yaml  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from village_credit.config import load_config  # noqa: E402
from village_credit.data.groups import age_band  # noqa: E402
from village_credit.fairness.ceiling import ceiling_system, split_gaps  # noqa: E402
from village_credit.fairness.equal_risk import equal_risk_gaps  # noqa: E402
from village_credit.fairness.groups import sensitive_frame  # noqa: E402
from village_credit.models.features import ELDERLY_PENSION_FEATURE  # noqa: E402
from village_credit.models.splits import split_by_village  # noqa: E402
from village_credit.pipeline import (  # noqa: E402
    _ceiling_reference,
    _outcome_mask,
    decision_systems,
    evaluate,
    fit_models,
    load_households,
    tune_params,
)
from village_credit.rules.grades import policy_age_ceiling  # noqa: E402
from village_credit.rules.policy import load_policy  # noqa: E402


def _gated(split: object, system: str = "blend") -> dict[str, float]:
    by = split.summary[system]["by_comparison"]  # type: ignore[attr-defined]
    return {k: v["mean_excess_line"] for k, v in by.items()}


def run(seed: int, overrides: list[str], n_boot: int) -> dict[str, object]:
    sets = {k: yaml.safe_load(v) for k, v in (o.split("=", 1) for o in overrides)}
    cfg = load_config("experiments/default.yaml", {"seed": seed, **sets})
    v1, _ = load_households(cfg)
    s = cfg.split
    sp = split_by_village(v1, (1 - s.calibration_share - s.holdout_share, s.calibration_share, s.holdout_share),
                          seed=cfg.seed)
    train, calib, holdout = sp.frames(v1)
    models = fit_models(train, calib, cfg, tune_params(train, cfg, log_to_mlflow=False))
    ev = evaluate(models, holdout, cfg)
    booster = models["blend"].booster
    names = booster.feature_name()
    flag_splits = (int(booster.feature_importance("split")[names.index(ELDERLY_PENSION_FEATURE)])
                   if ELDERLY_PENSION_FEATURE in names else None)  # model.elderly_pension_interaction
    # what the trees could learn a pension x 60+ term from: the pensioned 60+ with an observed outcome
    pens = ((train["head_age"] >= 60) & train["social_insurance"].astype(bool)
            & (train["income_pension_subsidy"] > 0) & _outcome_mask(train, cfg)).to_numpy(bool)
    pred_pens = models["blend"].predict_pd(train.loc[pens]).to_numpy(float)
    print(f"  training pensioned 60+ with an outcome: {int(pens.sum())} ({int(train.loc[pens, 'default_12m'].sum())}"
          f" defaults); mean predicted PD {pred_pens.mean():.4f}, observed {train.loc[pens, 'default_12m'].mean():.4f},"
          f" true {train.loc[pens, 'true_pd'].mean():.4f}")
    sens = sensitive_frame(holdout, policy_age_max=policy_age_ceiling(load_policy(cfg.policy)))
    ceiling = ceiling_system(models["blend"], holdout, reference=_ceiling_reference(holdout, train, v1),
                             eval_date=cfg.eval_date, seed=cfg.seed)
    systems = [*decision_systems(ev), ceiling]
    tp = holdout["true_pd"].to_numpy(float)
    f = cfg.fairness
    split = split_gaps(equal_risk_gaps(systems, sens, tp, n_deciles=f.n_deciles, min_count=f.min_count))
    cells = split.table[split.table.system == "blend"]
    print(f"\n=== seed {seed} {overrides or ''}: blend line excess per cell (checked cells enter the gate)")
    print(cells[["comparison", "decile", "n_protected", "checked", "gap_line", "ceiling_line",
                 "excess_line"]].round(3).to_string(index=False))
    gated = _gated(split)
    rng = np.random.default_rng(seed)
    boots: dict[str, list[float]] = {k: [] for k in gated}
    for _ in range(n_boot):
        i = rng.integers(0, len(tp), len(tp))
        sub = [dataclasses.replace(sy, **{k: v[i] for k, v in vars(sy).items() if isinstance(v, np.ndarray)})
               for sy in systems]
        b = split_gaps(equal_risk_gaps(sub, sens.iloc[i].reset_index(drop=True), tp[i],
                                       n_deciles=f.n_deciles, min_count=f.min_count))
        for k, v in _gated(b).items():
            boots[k].append(v)
    dec = ev["decisions"]["blend"]
    p = dec["pd"].to_numpy(float)
    nov = ~dec["vetoed"].to_numpy(bool)
    band = np.asarray(age_band(holdout["head_age"].to_numpy(float)), dtype=object)
    poor = holdout["formerly_poor"].to_numpy(bool)
    ratios = {}
    for name, m in [*((b, band == b) for b in ("18-40", "41-59", "60-64", "65-69", "70+")),
                    ("formerly poor", poor), ("not formerly poor", ~poor)]:
        ratios[name] = (p[m].mean() / tp[m].mean(), p[m & nov].mean() / tp[m & nov].mean())
    out: dict[str, object] = {"seed": seed, "auc": float(ev["metrics"]["blend_auc"]),
                              "pension_flag_splits": flag_splits}
    print(f"  hold-out AUC (blend) {out['auc']:.4f}")
    for k, v in gated.items():
        arr = np.array(boots[k])
        lo, hi = np.nanpercentile(arr, [2.5, 97.5])
        ck = cells[(cells.comparison == k) & cells.checked.astype(bool)]
        print(f"  {k}: gated line excess {v:+.3f} (bootstrap sd {np.nanstd(arr):.3f}, 95 % [{lo:+.3f}, {hi:+.3f}]),"
              f" {len(ck)} checked deciles, {int(ck.n_protected.sum())} protected households,"
              f" deciles with a negative excess {int((ck.excess_line < 0).sum())}/{len(ck)}")
        out[f"line_excess_{k}"] = v
        out[f"sd_{k}"] = float(np.nanstd(arr))
    print("  mean predicted / true PD (every household, no veto):",
          {k: (round(a, 3), round(b, 3)) for k, (a, b) in ratios.items()})
    out.update({f"ratio_{k}": b for k, (a, b) in ratios.items()})
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[42])
    ap.add_argument("--set", nargs="*", default=[], dest="overrides")
    ap.add_argument("--boot", type=int, default=200)
    a = ap.parse_args()
    rows = [run(sd, a.overrides, a.boot) for sd in a.seeds]
    print(pd.DataFrame(rows).round(3).to_markdown(index=False))
