"""What more exploration buys the demo, and what it costs (issue 25, item 4).

Runs the real main job (``run_experiment`` on ``experiments/default.yaml``: tuning, fit,
fairness audit, the signed hold-out validation, registration and the promotion gates)
per seed with the given ``--set`` overrides, output and MLflow store under ``--tmp``
(never the repo's ``out/`` or ``mlruns/``), and prints per seed:

* mean predicted / true PD per age band and formerly-poor status on the hold-out
  households without a veto (as ``bench_line_excess.py``), and of the pensioned heads
  per elderly band;
* the gated line and approval excess over the information ceiling, the observed
  hold-out AUC, calibration-in-the-large p, whether the grades rank-order, the verdict,
  whether the version was promoted and which gates failed;
* the cost of the exploration grant on the whole generated vintage: trial loans granted
  (refused by the old rules, no veto), of them to heads over 60, and their observed
  defaults; the observed pensioned heads aged 60+ and, with
  ``model.elderly_pension_interaction``, how often the blend's trees split on that flag.

The hold-out decisions are read by wrapping ``pipeline.evaluate`` (it only records what
the runner computes; nothing it returns is changed). ``--keep-neutral base`` (measurement only)
keeps the ``base`` item neutralised however many explored households show it (the
remedy's rule, ``models.support.constant_items``, applies it again once 300 observed
households differ from the norm or more than 10 % of those that differ are observed). ``true_pd`` is used only to measure.
About 2-3 min a seed on the shared box (SHAP off: no gate reads it)::

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_exploration.py --seeds 42 7 11 23 \\
        --set data.exploration_share_over_age=0.2
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from village_credit import pipeline  # noqa: E402
from village_credit.config import load_config  # noqa: E402
from village_credit.data.groups import age_band  # noqa: E402
from village_credit.fairness.ceiling import ceiling_pd, model_inputs  # noqa: E402
from village_credit.models.features import ELDERLY_PENSION_FEATURE  # noqa: E402
from village_credit.models.support import NEUTRALISED_KEY  # noqa: E402

GROUPS = ("18-40", "41-59", "60-64", "65-69", "70+", "formerly poor", "not formerly poor")


def _ratios(holdout: pd.DataFrame, dec: pd.DataFrame) -> dict[str, float]:
    p = dec["pd"].to_numpy(float)
    tp = holdout["true_pd"].to_numpy(float)
    nov = ~dec["vetoed"].to_numpy(bool)
    band = np.asarray(age_band(holdout["head_age"].to_numpy(float)), dtype=object)
    poor = holdout["formerly_poor"].to_numpy(bool)
    masks = {**{b: band == b for b in GROUPS[:5]}, "formerly poor": poor, "not formerly poor": ~poor}
    return {k: float(p[m & nov].mean() / tp[m & nov].mean()) for k, m in masks.items()}


def _pensioned_ratios(holdout: pd.DataFrame, dec: pd.DataFrame) -> dict[str, float]:
    """Mean predicted / true PD of the pensioned heads per elderly band (no veto): where a 60+ flag could help."""
    p = dec["pd"].to_numpy(float)
    tp = holdout["true_pd"].to_numpy(float)
    nov = ~dec["vetoed"].to_numpy(bool)
    band = np.asarray(age_band(holdout["head_age"].to_numpy(float)), dtype=object)
    pens = (holdout["social_insurance"].to_numpy(bool) & (holdout["income_pension_subsidy"].to_numpy(float) > 0))
    return {f"r {b} pensioned": float(p[m].mean() / tp[m].mean())
            for b in GROUPS[2:5] for m in [(band == b) & pens & nov]}


def _ceiling_ratios(holdout: pd.DataFrame, dec: pd.DataFrame, ceiling: Any, model: Any, reference: pd.DataFrame,
                    seed: int) -> dict[str, float]:
    """The information ceiling's mean predicted / true PD per group (no veto): what the best
    PD on the model's own columns reaches (``c``), and with the head's age added (``c+age``),
    so a group's miss splits into what no age-blind model can avoid and the model's own part."""
    nov = ~dec["vetoed"].to_numpy(bool)
    X_ref, X = model_inputs(model, reference), model_inputs(model, holdout)
    X_ref["head_age"], X["head_age"] = reference["head_age"].to_numpy(float), holdout["head_age"].to_numpy(float)
    with_age = ceiling_pd(X_ref, reference["true_pd"].to_numpy(float), seed=seed, X_new=X)
    out = {}
    for tag, p in (("c", np.asarray(ceiling.pd, float)), ("c+age", with_age)):
        out.update({f"{tag} {k}": v for k, v in _ratios(holdout, pd.DataFrame({"pd": p, "vetoed": ~nov})).items()})
    return out


def _cost(v1: pd.DataFrame, age_max: int) -> dict[str, int]:
    explored = v1["outcome_observed"].to_numpy(bool) & ~v1["granted_hist"].to_numpy(bool)
    over = v1["head_age"].to_numpy() > age_max
    bad = v1["default_12m"].to_numpy(bool)
    return {"trial_loans": int(explored.sum()), "trial_over_age": int((explored & over).sum()),
            "trial_defaults": int((explored & bad).sum()), "trial_defaults_over_age": int((explored & over & bad).sum()),
            "observed_over_age": int((v1["outcome_observed"].to_numpy(bool) & over).sum()),
            # what a pension x 60+ term is learned from (model.elderly_pension_interaction), whole vintage
            "observed_pensioned_60plus": int((v1["outcome_observed"].to_numpy(bool) & (v1["head_age"].to_numpy() >= 60)
                                              & v1["social_insurance"].to_numpy(bool)
                                              & (v1["income_pension_subsidy"].to_numpy(float) > 0)).sum())}


def _flag_splits(blend: Any) -> int | None:
    """Splits of the blend's trees on the pension x 60+ flag; None when the flag is off."""
    names = blend.booster.feature_name()
    if ELDERLY_PENSION_FEATURE not in names:
        return None
    return int(blend.booster.feature_importance("split")[names.index(ELDERLY_PENSION_FEATURE)])


def run(seed: int, sets: dict[str, Any], tmp: Path, keep: tuple[str, ...] = ()) -> dict[str, Any]:
    tag = ("_".join(f"{k.rsplit('.', 1)[-1]}{v}" for k, v in sets.items()) or "default") + "".join(f"_kn{k}" for k in keep)
    root = tmp / f"{tag}_s{seed}"
    shutil.rmtree(root, ignore_errors=True)  # a fresh registry: no champion of an earlier run to compare with
    root.mkdir(parents=True)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    cfg = load_config("experiments/default.yaml", {"seed": seed, "output_dir": str(root / "out"),
                                                   "stages.shap": False, **sets})
    seen: dict[str, Any] = {}
    evaluate = pipeline.evaluate

    def recording(models: Any, holdout: pd.DataFrame, c: Any) -> dict[str, Any]:
        ev = evaluate(models, holdout, c)
        seen.update(holdout=holdout, dec=ev["decisions"]["blend"],
                    neutralised=",".join(models["blend"].metadata.get(NEUTRALISED_KEY) or {}) or "-",
                    flag_splits=_flag_splits(models["blend"]))
        return ev

    neutral_items_for = pipeline.neutral_items_for

    ceiling_system = pipeline.ceiling_system

    def ceiling_recorded(model: Any, households: pd.DataFrame, **kw: Any) -> Any:
        system = ceiling_system(model, households, **kw)
        seen.update(ceiling=system, ceiling_model=model, ceiling_reference=kw.get("reference"))
        return system

    def neutral_kept(*args: Any, **kw: Any) -> Any:  # --keep-neutral ITEM: neutralised however often observed
        out = neutral_items_for(*args, **kw)
        forced = neutral_items_for(*args, **{**kw, "min_varied": 10**9, "max_observed_share": 1.0})
        return {**out, **{k: forced[k] for k in keep if k in forced}}

    pipeline.evaluate, pipeline.ceiling_system = recording, ceiling_recorded
    if keep:
        pipeline.neutral_items_for = neutral_kept
    try:
        res = pipeline.run_experiment(cfg, score_population=False)
    finally:
        pipeline.evaluate, pipeline.neutral_items_for = evaluate, neutral_items_for
        pipeline.ceiling_system = ceiling_system
    v1, _ = pipeline.load_households(cfg)
    val = json.loads((root / "out" / "validation" / "validation_report.json").read_text(encoding="utf-8"))
    gates = {g["name"]: g for g in res.gates["gates"]["gates"]}
    out: dict[str, Any] = {"seed": seed, **{f"r {k}": v for k, v in _ratios(seen["holdout"], seen["dec"]).items()},
                           **_pensioned_ratios(seen["holdout"], seen["dec"]),
                           **_ceiling_ratios(seen["holdout"], seen["dec"], seen["ceiling"], seen["ceiling_model"],
                                             seen["ceiling_reference"], seed)}
    out.update({
        "line_excess": gates["fairness_line_excess_max"]["value"],
        "approval_excess": gates["fairness_approval_excess_max"]["value"],
        "auc_observed": val["discrimination"]["auc"],
        "auc_all": res.metrics["blend_auc"],
        "citl_p_observed": val["calibration"]["in_the_large"]["p_value"],
        "grades_monotone": val["discrimination"]["rank_ordering_monotone"],
        # the verdict's test: pools of thin grades, reversals between neighbours (point
        # estimates) and those significant after Holm (``rank_order_broken``)
        "pool_reversals": sum(bool(p["reversed"]) for p in val["calibration"]["rank_order"]),
        "pool_reversals_significant": len(val["calibration"]["backtest"]["rank_order_broken"]),
        "verdict": val["verdict"]["verdict"],
        "promoted": res.promoted,
        "failed_gates": ",".join(res.gates["gates"]["failed"]) or "-",
        "neutralised": seen["neutralised"],
        "pension_60plus_splits": seen["flag_splits"],
        **_cost(v1, cfg.data.policy_age_max),
    })
    print(json.dumps(out, default=str), flush=True)
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[42])
    ap.add_argument("--set", nargs="*", default=[], dest="overrides")
    ap.add_argument("--tmp", type=Path, default=Path("/tmp/bench_exploration"))
    ap.add_argument("--keep-neutral", nargs="*", default=[], help=(
        "measurement only: these rule items (e.g. base) stay neutralised however many observed "
        "households differ from their norm"))
    ap.add_argument("--baseline", action="store_true", help="also run experiments/default.yaml as it is")
    a = ap.parse_args()
    sets = {k: yaml.safe_load(v) for k, v in (o.split("=", 1) for o in a.overrides)}
    rows = [{"variant": " ".join(a.overrides + [f"keep-neutral {k}" for k in a.keep_neutral]) or "default",
             **run(sd, sets, a.tmp, tuple(a.keep_neutral))} for sd in a.seeds]
    if a.baseline and (sets or a.keep_neutral):  # the default on the same seeds, in the same run
        rows += [{"variant": "default", **run(sd, {}, a.tmp)} for sd in a.seeds]
    df = pd.DataFrame(rows)
    print(df.round(3).to_markdown(index=False))
