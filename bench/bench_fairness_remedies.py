"""Benchmark: outcome-support remedies for groups the old rules never lent to, against the truth.

Runs the main job's own stages (``pipeline.load_households``, ``split_by_village``,
``fit_models``, ``evaluate``, ``equal_risk_gaps``) on the demo's configuration
(``experiments/default.yaml``: 20,000 households, seed 42, Jinxiang 2022) WITHOUT
Optuna tuning (fixed LightGBM parameters of the file, so every variant sees the same
trees' settings), once per remedy variant:

* ``baseline``: no remedy (the issue's starting point);
* ``neutralise``: rule items that never varied among observed outcomes are not applied;
* ``explore 5%``: the exploration grant alone (5 % of refused households without a veto);
* ``explore 5% + neutralise(300)``: items with fewer than 300 observed deviations neutralised;
* ``... + group recal (observed|calibration)``: group-aware recalibration with shrunk
  offsets on the observed rows of training + calibration, or of the calibration split
  only (``experiments/default.yaml``);

then a frontier over the exploration share (0.05 .. 0.40) with the default remedies,
and the default variant over several seeds (the noise of a 5 % exploration).

Printed per variant (markdown): hold-out AUC and its cost against ``baseline``,
predicted / true mean PD per group (60-64, 65-69, 70+, formerly poor), the largest
equal-risk relative line gap (elderly vs others, formerly poor vs others; with its
sign; deciles with >= 50 households per group), expected loss of the hold-out book
(true PD x line x LGD 0.45, approved households) and of the exploration loans
(50,000 yuan each, every explored household), and whether the issue's targets hold.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_fairness_remedies.py            # ~3-5 min
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_fairness_remedies.py --quick    # 6,000 households
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy / lightgbm load OpenMP

import argparse  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from village_credit.config import load_config  # noqa: E402
from village_credit.fairness import equal_risk_gaps, sensitive_frame  # noqa: E402
from village_credit.fairness.support import (  # noqa: E402
    EXPLORATION_LINE,
    expected_loss,
    exploration_design,
    support_memberships,
)
from village_credit.models.splits import split_by_village  # noqa: E402
from village_credit.pipeline import decision_systems, evaluate, fit_models, load_households  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GROUPS = ("60-64", "65-69", "70+", "formerly_poor")
TARGET_RATIO = (0.9, 1.1)
TARGET_LINE_GAP = 0.10
TARGET_AUC_COST = 0.005


def _cfg(base: str, overrides: dict[str, Any]) -> Any:
    fixed = {"model.tuning.n_trials": 0, "model.tuning.timeout_s": 0, "data.second_vintage": False}
    return load_config(base, {**fixed, **overrides})


_DATA: dict[tuple, tuple] = {}


def _data(cfg: Any) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    d = cfg.data
    key = (cfg.seed, d.n_households, d.exploration_share, d.policy_age_max, d.over_age_grant_share)
    if key not in _DATA:
        v1, _ = load_households(cfg)
        s = cfg.split
        sp = split_by_village(v1, (1 - s.calibration_share - s.holdout_share, s.calibration_share,
                                   s.holdout_share), seed=cfg.seed)
        _DATA.clear()
        _DATA[key] = (v1, *sp.frames(v1))
    return _DATA[key]  # type: ignore[return-value]


def run_variant(name: str, cfg: Any) -> dict[str, Any]:
    t0 = time.perf_counter()
    pop, train, calib, holdout = _data(cfg)
    models = fit_models(train, calib, cfg, None)
    models.pop("blend_unremedied", None)  # the baseline row is its own variant here
    ev = evaluate(models, holdout, cfg)
    dec = ev["decisions"]["blend"]
    p = dec["pd"].to_numpy(float)
    tp = holdout["true_pd"].to_numpy(float)
    member = support_memberships(holdout)
    row: dict[str, Any] = {"variant": name, "auc": ev["metrics"]["blend_auc"],
                           "all pred/true": float(p.mean() / tp.mean())}
    for g in GROUPS:
        m = member[g].to_numpy(bool)
        row[f"{g} pred/true"] = float(p[m].mean() / tp[m].mean())
    sens = sensitive_frame(holdout, policy_age_max=cfg.data.policy_age_max)
    systems = [s for s in decision_systems(ev) if s.name == "blend"]
    gaps = equal_risk_gaps(systems, sens, tp, n_deciles=cfg.fairness.n_deciles, min_count=cfg.fairness.min_count)
    t = gaps.table[gaps.table.checked.astype(bool)]
    for comp in ("elderly", "formerly_poor"):
        c = t[t.comparison == comp]
        if len(c):
            i = c.gap_line.abs().idxmax()
            row[f"line gap {comp}"] = float(c.at[i, "gap_line"])
            row[f"line gap {comp} min"] = float(c.gap_line.min())
        else:
            row[f"line gap {comp}"] = row[f"line gap {comp} min"] = math.nan
    row["_deciles"] = t[["comparison", "decile", "n_protected", "n_others", "gap_approval", "gap_line"]]
    line = dec["credit_line"].to_numpy(float)
    row["lent (M yuan)"] = float(line.sum() / 1e6)
    row["EL book (k yuan)"] = expected_loss(tp, line, line > 0, cfg.fairness.lgd) / 1e3
    row["EL / lent"] = row["EL book (k yuan)"] / 1e3 / row["lent (M yuan)"]
    explored = pop["outcome_observed"].to_numpy(bool) & ~pop["granted_hist"].to_numpy(bool)
    refused = ~pop["granted_hist"].to_numpy(bool)
    row["explored"] = int(explored.sum())
    row["share of refused"] = float(explored.sum() / max(refused.sum(), 1))
    row["EL exploration (k yuan)"] = float(pop["true_pd"].to_numpy(float)[explored].sum()
                                           * EXPLORATION_LINE * cfg.fairness.lgd / 1e3)
    neutral = models["blend"].metadata.get("neutralised_items") or {}
    row["neutralised"] = ",".join(neutral) or "-"
    pd_pop = models["blend"].predict_pd(pop).to_numpy(float)
    row["_design"] = pd.concat([
        exploration_design(pop, pop["outcome_observed"].to_numpy(bool), pd_pop, precision=prec,
                           lgd=cfg.fairness.lgd).assign(precision=f"+/-{prec:.0%} of the rate")
        for prec in (0.5, 0.25)])
    row["seconds"] = time.perf_counter() - t0
    return row


def _print_deciles(rows: list[dict[str, Any]], names: list[str]) -> None:
    """Signed equal-risk gaps per true-PD decile (checked cells only), side by side."""
    parts = []
    for r in rows:
        if r["variant"] in names:
            d = r["_deciles"].set_index(["comparison", "decile"])[["gap_approval", "gap_line"]]
            parts.append(d.add_prefix(f"{names.index(r['variant'])}: "))
    if not parts:
        return
    out = pd.concat(parts, axis=1).reset_index()
    print("\n### Signed equal-risk gaps per true-PD decile (protected - others; "
          + "; ".join(f"{i}: {n}" for i, n in enumerate(names)) + ")\n")
    print(out.to_markdown(index=False, floatfmt="+.3f"))


def _targets(row: dict[str, Any], base_auc: float) -> str:
    ratio_ok = all(TARGET_RATIO[0] <= row[f"{g} pred/true"] <= TARGET_RATIO[1] for g in GROUPS)
    gaps = [row[f"line gap {c}"] for c in ("elderly", "formerly_poor")]
    gap_ok = None if any(math.isnan(g) for g in gaps) else all(abs(g) <= TARGET_LINE_GAP for g in gaps)
    auc_ok = base_auc - row["auc"] <= TARGET_AUC_COST
    word = {True: "ok", False: "NO", None: "n/a"}
    return " ".join(f"{k}:{word[v]}" for k, v in (("ratio", ratio_ok), ("gap", gap_ok), ("auc", auc_ok)))


def _print(rows: list[dict[str, Any]], title: str, base_auc: float) -> None:
    df = pd.DataFrame(rows).drop(columns=["_deciles", "_design"])
    df.insert(2, "AUC cost", base_auc - df["auc"])
    df["targets"] = [_targets(r, base_auc) for r in rows]
    fmt = {c: "{:.3f}" for c in df.columns if "pred/true" in c or c in ("auc", "share of refused")}
    fmt["lent (M yuan)"] = "{:.1f}"
    fmt.update({c: "{:+.3f}" for c in df.columns if c.startswith("line gap") or c == "AUC cost"})
    fmt.update({c: "{:,.0f}" for c in df.columns if c.startswith("EL ")})
    fmt["EL / lent"] = "{:.3%}"
    fmt["seconds"] = "{:.0f}"
    out = df.copy()
    for c, f in fmt.items():
        out[c] = [("n/a" if isinstance(v, float) and math.isnan(v) else f.format(v)) for v in df[c]]
    print(f"\n### {title}\n")
    print(out.to_markdown(index=False, disable_numparse=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--experiment", default=str(ROOT / "experiments" / "default.yaml"))
    ap.add_argument("--n", type=int, default=None, help="households (default: the experiment's)")
    ap.add_argument("--quick", action="store_true", help="6,000 households, no frontier over seeds")
    ap.add_argument("--seeds", type=int, nargs="*", default=[42, 7, 2024])
    ap.add_argument("--shares", type=float, nargs="*", default=[0.05, 0.10, 0.20, 0.40])
    args = ap.parse_args()
    n = args.n or (6000 if args.quick else None)
    base = {"data.n_households": n} if n else {}
    off = {"model.neutralise_constant_items": False, "fairness.group_recalibration": "none"}
    default_remedies = {"data.exploration_share": 0.05, "model.neutralise_constant_items": True,
                        "model.neutralise_min_varied": 300, "fairness.group_recalibration": "calibration"}
    variants = [
        ("baseline (no remedy)", {**off, "data.exploration_share": 0.0}),
        ("neutralise (never varied)", {**off, "data.exploration_share": 0.0, "model.neutralise_constant_items": True,
                                       "model.neutralise_min_varied": 1}),
        ("explore 5%", {**off, "data.exploration_share": 0.05}),
        ("explore 5% + neutralise(300)", {**default_remedies, "fairness.group_recalibration": "none"}),
        ("explore 5% + neutralise(300) + group recal (observed)",
         {**default_remedies, "fairness.group_recalibration": "observed"}),
        ("explore 5% + neutralise(300) + group recal (calibration) [default.yaml]", default_remedies),
        ("reference: trained on ALL outcomes (no selection; not a remedy)",
         {**off, "data.exploration_share": 0.0, "split.train_outcomes": "all"}),
    ]
    rows = []
    for name, ov in variants:
        cfg = _cfg(args.experiment, {**base, **ov})
        rows.append(run_variant(name, cfg))
        print(f"  {name}: {rows[-1]['seconds']:.0f} s", flush=True)
    base_auc = rows[0]["auc"]
    n_used = _cfg(args.experiment, base).data.n_households
    _print(rows, f"Remedies, {n_used:,} households, seed 42 (no tuning)", base_auc)
    _print_deciles(rows, [variants[0][0], variants[5][0], variants[6][0]])
    d = rows[0]["_design"]
    d = d[~d.group.str.contains("<60")]
    print("\n### Exploration design (whole population; PD estimate = the baseline blend's PD of the refused; "
          "95 % confidence; 50,000-yuan trial loans, LGD 0.45)\n")
    print(d[["precision", "group", "n_refused", "n_observed", "pd_estimate", "n_needed", "n_to_explore",
             "share_of_refused", "feasible", "expected_defaults", "expected_loss"]]
          .to_markdown(index=False, floatfmt=".3f"))

    front = []
    for share in args.shares:
        cfg = _cfg(args.experiment, {**base, **default_remedies, "data.exploration_share": share})
        r = run_variant(f"explore {share:.0%} + default remedies", cfg)
        front.append(r)
        print(f"  share {share}: {r['seconds']:.0f} s", flush=True)
    _print(front, "Frontier: exploration share vs calibration error vs expected loss (seed 42)", base_auc)
    if args.quick:
        return
    seeds = []
    for seed in args.seeds:
        b = run_variant(f"seed {seed} baseline", _cfg(args.experiment, {**base, **off, "seed": seed,
                                                                         "data.exploration_share": 0.0}))
        r = run_variant(f"seed {seed} default remedies", _cfg(args.experiment, {**base, **default_remedies,
                                                                                 "seed": seed}))
        r["variant"] += f" (AUC cost {b['auc'] - r['auc']:+.4f})"
        seeds += [b, r]
        print(f"  seed {seed}: {b['seconds'] + r['seconds']:.0f} s", flush=True)
    _print(seeds, "Default remedies across seeds (AUC cost column: against seed 42's baseline; "
                  "the row label has the same-seed cost)", base_auc)
    print("\nmax |pred/true - 1| over groups, default remedies across seeds: "
          + ", ".join(f"{max(abs(r[f'{g} pred/true'] - 1) for g in GROUPS):.3f}" for r in seeds[1::2]))
    np.set_printoptions(precision=3)


if __name__ == "__main__":
    main()
