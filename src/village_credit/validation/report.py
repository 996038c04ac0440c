"""The third-party validation report: every figure as a dict, then HTML + JSON.

``validation_report`` is pure (arrays in, dict out) so that the CLI, the
promotion gates and the monitor can all reuse its numbers; only
``write_validation_report`` touches the disk. The calibrator needs nothing but
the model's outputs on their own labelled sample and the reference profile
stored with the model (see ``stability.reference_profile``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

import village_credit
from village_credit.fairness.observed import outcome_seen
from village_credit.reporting.displays import LIGHT_COLORS, grade_tick_labels
from village_credit.reporting.html import HtmlReport, to_jsonable, write_report
from village_credit.reporting.svg import PALETTE, SvgChart, nice_ticks, percent_labels
from village_credit.rules.grades import POLICY_GRADED, model_graded
from village_credit.validation._checks import ValidationInputError, as_binary, as_float
from village_credit.validation.backtest import grade_backtest
from village_credit.validation.calibration import (
    HL_DDOF_INDEPENDENT,
    HL_GROUPS,
    brier,
    calibration_in_the_large,
    expected_calibration_error,
    hosmer_lemeshow,
    reliability_table,
    spiegelhalter,
)
from village_credit.validation.discrimination import (
    auc_delong,
    cap_points,
    delong_paired,
    ks_statistic,
    rank_ordering,
    roc_points,
)
from village_credit.validation.stability import (
    alert_level,
    csi_from_profile,
    migration_matrix,
    migration_summary,
    psi_table_from_profile,
)

__all__ = [
    "ValidationConfig",
    "overall_verdict",
    "reliability_svg",
    "validation_report",
    "write_validation_report",
]


@dataclasses.dataclass(frozen=True)
class ValidationConfig:
    """Knobs of the validation report (defaults follow common IRB practice).

    ``score_higher_is_safer``: True for points (higher points = lower risk);
    discrimination is computed on the risk-oriented score. ``hl_ddof``: the
    toolkit's one Hosmer-Lemeshow convention (``calibration.HL_DDOF_INDEPENDENT``,
    dof = groups, for PDs judged on households they were not fitted on), the same
    in ``pipeline.evaluate``; 2 only for PDs fitted on the sample tested.

    >>> from village_credit.validation import ValidationConfig
    >>> cfg = ValidationConfig(hl_groups=5, psi_thresholds=(0.1, 0.2))
    >>> cfg.hl_groups, cfg.hl_ddof, cfg.score_higher_is_safer
    (5, 0, True)
    """

    alpha: float = 0.05
    score_higher_is_safer: bool = True
    score_name: str = "score"
    n_bins: int = 10
    ece_strategy: Literal["quantile", "uniform"] = "quantile"
    hl_groups: int = HL_GROUPS
    hl_ddof: int = HL_DDOF_INDEPENDENT
    green_p: float = 0.05
    red_p: float = 0.01
    alternative: Literal["greater", "two-sided", "less"] = "greater"
    light_test: Literal["jeffreys", "binomial", "min"] = "jeffreys"
    psi_thresholds: tuple[float, float] = (0.1, 0.25)
    psi_eps: float = 1e-4
    max_curve_points: int = 500


def _observed_rows(outcome_observed: Any, n: int) -> np.ndarray:
    """Rows whose outcome is observed (every row when no mask is given)."""
    if outcome_observed is None:
        return np.ones(n, dtype=bool)
    seen = np.asarray(outcome_observed)
    if seen.shape != (n,) or seen.dtype != bool:
        raise ValidationInputError(f"outcome_observed: needs one bool per household ({n}), got "
                                   f"shape {seen.shape}, dtype {seen.dtype}")
    if not seen.any():
        raise ValidationInputError("outcome_observed: no household has an observed outcome; "
                                   "nothing to test calibration or discrimination on")
    return seen


def _policy_row(y: np.ndarray, graded: np.ndarray, **extra: Any) -> pd.DataFrame:
    yv = y[~graded]
    return pd.DataFrame([{"grade": POLICY_GRADED, "n": int(yv.size), "defaults": int(yv.sum()),
                          **extra}])


def _discrimination(y: np.ndarray, risk: np.ndarray, grades: Any,
                    grade_order: Sequence[Any], cfg: ValidationConfig,
                    score_sign: float, policy_graded: Any = None) -> dict[str, Any]:
    auc, se, lo, hi = auc_delong(y, risk, cfg.alpha)
    ks, thr = ks_statistic(y, risk)
    roc = roc_points(y, risk, cfg.max_curve_points)
    cap = cap_points(y, risk, cfg.max_curve_points)
    for frame in (roc, cap):  # report thresholds on the caller's score scale
        frame["threshold"] = frame["threshold"] * score_sign
    # the same separation as the back-test: policy-set grades (vetoed -> E2) are not
    # the model's ranking and get a row of their own, outside the monotonicity check
    graded = model_graded(y.size, policy_graded)
    ro = (rank_ordering(np.asarray(grades, dtype=object)[graded], y[graded], grade_order)
          if graded.any() else pd.DataFrame({"grade": list(grade_order), "n": 0, "defaults": 0,
                                             "default_rate": np.nan, "monotone": True}))
    if not graded.all():
        yv = y[~graded]
        ro = pd.concat([ro, _policy_row(y, graded, default_rate=float(yv.mean()),
                                        monotone=True)], ignore_index=True)
    return {"auc": auc, "auc_se": se, "auc_ci": [lo, hi], "gini": 2 * auc - 1,
            "ks": ks, "ks_threshold": thr * score_sign, "roc": roc, "cap": cap,
            "rank_ordering": ro, "rank_ordering_monotone": bool(ro["monotone"].all())}


def _calibration(y: np.ndarray, p: np.ndarray, grades: Any, grade_order: Sequence[Any],
                 cfg: ValidationConfig, policy_graded: Any = None) -> dict[str, Any]:
    hl = hosmer_lemeshow(y, p, cfg.hl_groups, cfg.hl_ddof)
    z, sp = spiegelhalter(y, p)
    # Households whose grade the policy sets (vetoed: E2 whatever their PD) would make
    # their grade's back-test read red for a reason that is not the model's: test the
    # model's grades without them and report them on a row of their own, unlit.
    graded = model_graded(y.size, policy_graded)
    bt = grade_backtest(np.asarray(grades, dtype=object)[graded], y[graded], p[graded], grade_order,
                        cfg.green_p, cfg.red_p, cfg.alternative, cfg.light_test)
    gc = bt["grades"]  # the raw per-grade table: information, unadjusted
    if not graded.all():
        yv, pv = y[~graded], p[~graded]
        gc = pd.concat([gc, pd.DataFrame([{
            "grade": POLICY_GRADED, "n": int(yv.size), "defaults": int(yv.sum()),
            "predicted_pd": float(pv.mean()), "observed_rate": float(yv.mean()),
            "binomial_p": np.nan, "jeffreys_p": np.nan, "light": "n/a"}])], ignore_index=True)
    return {
        "brier": brier(y, p),
        "ece": expected_calibration_error(y, p, cfg.n_bins, cfg.ece_strategy),
        "reliability": reliability_table(y, p, cfg.n_bins, cfg.ece_strategy),
        "hosmer_lemeshow": {"stat": hl[0], "dof": hl[1], "p_value": hl[2],
                            "convention": f"{cfg.hl_groups} quantile groups of PD, dof = groups "
                                          f"- {cfg.hl_ddof}"},
        "in_the_large": calibration_in_the_large(y, p),
        "spiegelhalter": {"z": z, "p_value": sp},
        "grades": gc,
        # what the verdict reads: pooled thin grades, Holm across pools and across pairs
        "pools": bt["pools"], "rank_order": bt["rank_order"], "lights": bt["lights"],
        "backtest": {k: bt[k] for k in ("min_expected", "rank_order_broken", "reversals",
                                        "pool_summary", "not_testable")},
    }


def _identity(repro: Mapping[str, Any] | None) -> dict[str, Any]:
    """Who and what was validated: the block a validator signs under."""
    r = dict(repro or {})
    return {
        "model_name": r.get("model_name"), "model_version": r.get("model_version"),
        "model_uri": r.get("model_uri"), "model_run_id": r.get("model_run_id"),
        "model_artifact_sha256": r.get("model_artifact_sha256"),
        "validator": r.get("validator"),
        # each fingerprint labelled by the data it is of (the same strings as on the
        # model's run and the registry): training rows, and the sample judged here
        "training_data_fingerprint": r.get("training_data_fingerprint"),
        "validation_sample_fingerprint": (r.get("validation_sample_fingerprint")
                                          or r.get("sample_fingerprint") or r.get("data_fingerprint")),
        "override": r.get("override"),
        "date": r.get("validated_at")
        or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "toolkit_version": r.get("toolkit_version") or village_credit.__version__,
    }


def overall_verdict(result: Mapping[str, Any], cfg: ValidationConfig) -> dict[str, Any]:
    """One verdict (``pass`` / ``conditional`` / ``fail``) with the reasons behind it.

    Stated rules (the report prints them):

    * **fail** when a two-sided calibration test rejects at ``red_p`` (calibration
      in the large, Hosmer-Lemeshow, Spiegelhalter), a pool of grades is red in the
      back-test (``backtest.grade_backtest``: thin grades pooled to 5 expected defaults,
      Holm across the pools), discrimination is not shown (AUC CI reaching 0.5 or no CI)
      or score PSI is red;
    * **conditional** when any of those tests is below ``green_p``, a pool is amber, a
      worse pool's default rate is significantly below its better neighbour's (Holm
      across the pairs), the back-test is not testable (no row, one pool), or score PSI /
      a feature's CSI is amber or red;
    * **pass** otherwise. ``information`` lists what does not enter it: the pools
      formed, point-estimate reversals that are not significant.

    The overall two-sided tests are what stop over-prediction in every grade (each
    one-sided grade light green) from reading as a pass.
    """
    cal, disc = result["calibration"], result["discrimination"]
    fail: list[str] = []
    cond: list[str] = []
    tests = {
        "calibration in the large (defaults vs sum of PDs, two-sided)":
            cal["in_the_large"]["p_value"],
        "Hosmer-Lemeshow": cal["hosmer_lemeshow"]["p_value"],
        "Spiegelhalter (two-sided)": cal["spiegelhalter"]["p_value"],
    }
    itl = cal["in_the_large"]
    for name, pv in tests.items():
        extra = (f" (observed {itl['observed']:.0f} vs predicted {itl['expected']:.1f} defaults)"
                 if name.startswith("calibration in the large") else "")
        if pv is None or not np.isfinite(pv):
            cond.append(f"{name}: not computable")
        elif pv < cfg.red_p:
            fail.append(f"{name} p = {pv:.3g} < {cfg.red_p}{extra}")
        elif pv < cfg.green_p:
            cond.append(f"{name} p = {pv:.3g} < {cfg.green_p}{extra}")
    lights, bt, pools = cal["lights"], cal.get("backtest") or {}, cal.get("pools")
    info: list[str] = []
    if bt.get("not_testable"):
        cond.append(f"grade back-test {bt['not_testable']}")
    for level, bucket in (("red", fail), ("amber", cond)):
        if lights[level]:
            names = (pools.loc[pools["light"] == level, "grade"].astype(str).tolist()
                     if isinstance(pools, pd.DataFrame) else [])
            bucket.append(f"{lights[level]} pool(s) {level} in the grade back-test "
                          f"({', '.join(names)}; Holm-adjusted across the pools)")
    if bt.get("pool_summary"):
        info.append("grades pooled to >= {:g} expected defaults: {}".format(
            bt["min_expected"], "; ".join(f"{p['pool']} (n = {p['n']})" for p in bt["pool_summary"])))
    lo = disc["auc_ci"][0]
    if lo is None or not np.isfinite(lo):
        fail.append("AUC has no confidence interval (too few defaults or non-defaults)")
    elif lo <= 0.5:
        fail.append(f"AUC {disc['auc']:.3f}: its CI reaches 0.5 (lower bound {lo:.3f})")
    if bt.get("rank_order_broken"):
        cond.append("rank order broken: a worse pool's default rate is significantly below the "
                    f"better neighbour's ({', '.join(bt['rank_order_broken'])}; one-sided Fisher, "
                    "Holm across the adjacent pairs)")
    info += [f"rank order reversed on the point estimates, not significant: {r}"
             for r in bt.get("reversals", [])]
    stab = result.get("stability") or {}
    if stab.get("score_alert") == "red":
        fail.append(f"score PSI {stab.get('score_psi'):.3g} is red")
    elif stab.get("score_alert") == "amber":
        cond.append(f"score PSI {stab.get('score_psi'):.3g} is amber")
    csi = stab.get("csi")
    if isinstance(csi, pd.DataFrame) and len(csi):
        moved = csi.loc[csi["alert"].isin(["amber", "red"]), "column"].astype(str).tolist()
        if moved:
            cond.append(f"feature drift (CSI amber/red): {', '.join(moved[:8])}"
                        + (" ..." if len(moved) > 8 else ""))
    verdict = "fail" if fail else ("conditional" if cond else "pass")
    return {"verdict": verdict, "reasons": fail + cond, "failing": fail, "conditions": cond,
            "information": info,
            "rules": (f"fail: a two-sided calibration test p < {cfg.red_p}, a red pool of grades "
                      f"(Holm-adjusted p < {cfg.red_p}), AUC CI reaching 0.5, or red score PSI; "
                      f"conditional: a test p < {cfg.green_p}, an amber pool, a significant rank-order "
                      f"reversal between adjacent pools (Holm p < {cfg.green_p}), a back-test that is "
                      "not testable, or amber/red drift; else pass. Grades with fewer than "
                      f"{bt.get('min_expected', 5):g} expected defaults are pooled towards the middle "
                      "of the scale")}


def validation_report(
    y: Any,
    pd_pred: Any,
    score: Any,
    grades: Any,
    grade_order: Sequence[Any],
    features_df: pd.DataFrame | None = None,
    reference_profile: Mapping[str, Any] | None = None,
    prev_grades: Any = None,
    fairness_summary: Any = None,
    challenger: Mapping[str, Any] | None = None,
    repro: Mapping[str, Any] | None = None,
    config: ValidationConfig = ValidationConfig(),
    policy_graded: Any = None,
    outcome_observed: Any = None,
) -> dict[str, Any]:
    """Compute every figure of the validation report.

    ``score`` is the model's score (points by default, see
    ``ValidationConfig.score_higher_is_safer``); ``None`` uses the PD.
    ``reference_profile`` comes from ``stability.reference_profile`` at
    training time; its ``config.score_name`` entry gives the score PSI and its
    other entries the CSI of ``features_df``. ``challenger`` is a mapping with
    ``pd`` (required), optional ``name``, ``grades`` and ``score``; the two
    models are compared with DeLong's test on their PDs (the scale both share).
    ``fairness_summary`` (from the fairness module) and ``repro`` are passed
    through. ``policy_graded`` (bool per household, e.g. ``vetoed``) marks grades set
    by the policy rather than the PD; the per-grade back-test leaves them out and shows
    them on a row of their own. ``outcome_observed`` (bool per household): only these rows
    have an outcome a bank could see (lent to, or explored); discrimination, calibration and
    the back-tests are computed on them alone (``y`` of the other rows is ignored and may be
    NaN), while stability and migration, which need no outcome, use every row; ``sample``
    says how many rows had no outcome. Returns a dict of plain values and DataFrames.

    >>> import numpy as np
    >>> from village_credit.validation import validation_report
    >>> rng = np.random.default_rng(0)
    >>> pd_pred = rng.uniform(0.02, 0.4, 400)
    >>> y = (rng.random(400) < pd_pred).astype(int)
    >>> grades = np.where(pd_pred < 0.15, "A", np.where(pd_pred < 0.3, "B", "C"))
    >>> points = 600 - 100 * pd_pred  # higher points = safer
    >>> report = validation_report(y, pd_pred, points, grades, ["A", "B", "C"])
    >>> discrimination, calibration = report["discrimination"], report["calibration"]
    >>> report["sample"]["n"], round(discrimination["auc"], 3), round(calibration["brier"], 3)
    (400, 0.707, 0.156)
    >>> report["verdict"]["verdict"], report["verdict"]["failing"]
    ('pass', [])
    """
    n_rows = len(np.asarray(y))
    seen = _observed_rows(outcome_observed, n_rows)
    yb = as_binary(np.asarray(y)[seen] if outcome_observed is not None else y)
    p_all = as_float(pd_pred, n_rows, "pd", prob=True)
    if score is None:
        sc_all, sign = p_all, 1.0
    else:
        sc_all = as_float(score, n_rows, "score")
        sign = -1.0 if config.score_higher_is_safer else 1.0
    p, sc = p_all[seen], sc_all[seen]
    risk = sc * sign
    grades_all = grades
    grades = np.asarray(grades, dtype=object)[seen]
    graded_by_policy = None if policy_graded is None else np.asarray(policy_graded, dtype=bool)[seen]
    result: dict[str, Any] = {
        "identity": _identity(repro),
        "verdict": None,
        "sample": {"n": int(yb.size), "defaults": int(yb.sum()),
                   "default_rate": float(yb.mean()), "n_scored": n_rows,
                   "n_without_outcome": int(n_rows - yb.size)},
        "config": dataclasses.asdict(config),
        "discrimination": _discrimination(yb, risk, grades, grade_order, config, sign,
                                          graded_by_policy),
        "calibration": _calibration(yb, p, grades, grade_order, config, graded_by_policy),
        "stability": None,
        "migration": None,
        "fairness": fairness_summary,
        "challenger": None,
        "reproducibility": dict(repro) if repro is not None else None,
    }
    if reference_profile is not None:
        entries = reference_profile.get("columns", {})
        stab: dict[str, Any] = {"score_psi": None, "score_alert": "n/a", "score_bins": None,
                                "csi": None}
        if config.score_name in entries and score is not None:  # every row: no outcome needed
            tab = psi_table_from_profile(entries[config.score_name], sc_all, config.psi_eps)
            value = float(tab["psi"].sum())
            stab.update(score_psi=value, score_bins=tab,
                        score_alert=alert_level(value, config.psi_thresholds))
        if features_df is not None:
            cols = [c for c in entries if c != config.score_name and c in features_df.columns]
            stab["csi"] = csi_from_profile(reference_profile, features_df, cols,
                                           config.psi_thresholds, config.psi_eps)
            stab["columns_not_in_sample"] = [c for c in entries if c != config.score_name
                                             and c not in features_df.columns]
        result["stability"] = stab
    if prev_grades is not None:
        counts = migration_matrix(prev_grades, grades_all, grade_order)
        result["migration"] = {"counts": counts,
                               "shares": migration_matrix(prev_grades, grades_all, grade_order,
                                                          normalize=True),
                               "summary": migration_summary(counts)}
    if challenger is not None:
        if "pd" not in challenger:
            raise ValidationInputError("challenger: needs a 'pd' array")
        cp = as_float(challenger["pd"], n_rows, "challenger pd", prob=True)[seen]
        paired = delong_paired(yb, p, cp, config.alpha)
        cgrades = (np.asarray(challenger["grades"], dtype=object)[seen] if "grades" in challenger
                   else grades)
        result["challenger"] = {
            "name": str(challenger.get("name", "challenger")),
            "auc_champion": paired["auc_a"], "auc_challenger": paired["auc_b"],
            "auc_diff": paired["diff"], "z": paired["z"], "p_value": paired["p_value"],
            "auc_diff_ci": [paired["ci_low"], paired["ci_high"]], "auc_diff_se": paired["se"],
            "ks_champion": ks_statistic(yb, p)[0], "ks_challenger": ks_statistic(yb, cp)[0],
            "champion_ci": list(auc_delong(yb, p, config.alpha)[2:]),
            "challenger_ci": list(auc_delong(yb, cp, config.alpha)[2:]),
            "calibration": _calibration(yb, cp, cgrades, grade_order, config),
            "roc": roc_points(yb, cp, config.max_curve_points),
            "champion_roc_pd": roc_points(yb, p, config.max_curve_points),
        }
    result["verdict"] = overall_verdict(result, config)
    return result


# ---------------------------------------------------------------- charts
# Drawn as inline SVG from the report's own tables (``reporting.svg``): about 1 ms a chart
# where the five matplotlib PNGs took about 1 s of CPU, every mark holding its value. The
# notebooks' displays (``ReliabilityDisplay``, ``GradeBackTestDisplay``) draw the same two
# charts with matplotlib on axes a user hands them; both read the same tables
# (``calibration.reliability_table``, the back-test's ``pools``), computed once here.


def _unit_ticks(chart: SvgChart, percent: bool = False, lim: float = 1.0) -> None:
    """Ticks on both axes of a chart whose axes run from 0 to ``lim``."""
    ticks = nice_ticks(0.0, lim)
    labels = percent_labels(ticks) if percent else [f"{t:g}" for t in ticks]
    chart.ticks("x", ticks, labels)
    chart.ticks("y", ticks, labels, grid=True)


def _plot_roc(disc: Mapping[str, Any], challenger: Mapping[str, Any] | None) -> str:
    chart = SvgChart(440, 400, x=(0, 1), y=(0, 1), title="ROC", xlabel="false positive rate",
                     ylabel="true positive rate")
    _unit_ticks(chart)
    chart.line([0, 1], [0, 1], series="random", color="grey", width=0.8)
    roc = disc["roc"]
    chart.line(roc["fpr"], roc["tpr"], series="model", label=f"model (AUC {disc['auc']:.3f})")
    if challenger is not None:
        chart.line(challenger["roc"]["fpr"], challenger["roc"]["tpr"], series="challenger", color=PALETTE[1],
                   dash="5 3", label=f"{challenger['name']} PD (AUC {challenger['auc_challenger']:.3f})")
    chart.legend("lower right")
    return chart.render()


def _plot_cap(disc: Mapping[str, Any], default_rate: float, unit: str = "households") -> str:
    chart = SvgChart(440, 400, x=(0, 1), y=(0, 1), title="Cumulative accuracy profile",
                     xlabel=f"share of {unit} (riskiest first)", ylabel="share of defaults")
    _unit_ticks(chart)
    cap = disc["cap"]
    chart.line(cap["population_share"], cap["defaults_share"], series="model",
               label=f"model (AR {disc['gini']:.3f})")
    chart.line([0, default_rate, 1], [0, 1, 1], series="perfect", color="green", width=0.8, label="perfect")
    chart.line([0, 1], [0, 1], series="random", color="grey", width=0.8, label="random")
    chart.legend("lower right")
    return chart.render()


def reliability_svg(tabs: Sequence[tuple[str, pd.DataFrame]]) -> str:
    """Observed default rate against mean predicted PD per bin (one curve per table), the
    diagonal, and the mean true PD over the same bins where the table has it (synthetic data).

    The one reliability chart of the HTML reports (validation: model, champion vs
    challenger; recalibration: before vs after); notebooks draw theirs with
    ``reporting.displays.ReliabilityDisplay`` (matplotlib, on an analyst's axes)."""
    cols = ["mean_predicted", "observed_rate", "mean_true_pd"]
    lim = max(float(np.nanmax(t[[c for c in cols if c in t]].to_numpy(float))) for _, t in tabs)
    lim = lim * 1.05 if np.isfinite(lim) and lim > 0 else 1.0
    n_bins = len(tabs[0][1])
    title = "Reliability" + (f": {tabs[0][0]}" if len(tabs) == 1 else "")
    entries = 1 + sum(2 if "mean_true_pd" in t else 1 for _, t in tabs)  # the legend, under the axes
    legend_h = 15 * entries + 10
    chart = SvgChart(440, 400 + legend_h, x=(0, lim), y=(0, lim), title=title,
                     xlabel=f"mean predicted PD ({n_bins} bins)", ylabel="observed default rate",
                     margin=(58, 30, 16, 46 + legend_h))
    _unit_ticks(chart, percent=True, lim=lim)
    chart.line([0, lim], [0, lim], series="perfect", color="grey", width=0.8, label="perfect calibration")
    for i, (name, t) in enumerate(tabs):
        color = PALETTE[i % len(PALETTE)]
        names = [f"bin {b}, n = {n}" for b, n in zip(t["bin"], t["n"], strict=True)]
        if "mean_true_pd" in t:  # the truth, when known, is the curve; observed rates are dots
            chart.line(t["mean_predicted"], t["mean_true_pd"], series=f"{name}: mean true PD", color=color,
                       markers=True, label=f"{name}: mean true PD")
            chart.points(t["mean_predicted"], t["observed_rate"], series=f"{name}: observed", color="black",
                         radius=2.2, names=names, label=f"{name}: observed default rate")
        else:
            chart.line(t["mean_predicted"], t["observed_rate"], series=f"{name}: observed", color=color,
                       label=f"{name}: observed default rate")
            chart.points(t["mean_predicted"], t["observed_rate"], series=f"{name}: observed", color=color,
                         names=names)
    chart.legend("below")  # never over a curve
    return chart.render()


def _plot_grades(gc: pd.DataFrame, unit: str = "households", min_n: int = 30, test: str = "jeffreys") -> str:
    """Observed default rate per pool of grades (bar coloured by its light, hatched under
    ``min_n`` rows: weak evidence) against the mean predicted PD (a black dash); ``test``:
    the p-value the lights read (``ValidationConfig.light_test``)."""
    g = gc.reset_index(drop=True)
    obs = g["observed_rate"].to_numpy(float)
    pred = g["predicted_pd"].to_numpy(float)
    top = np.nanmax(np.concatenate([obs, pred, [0.01]]))
    lim = float(top) * 1.12
    x = np.arange(len(g), dtype=float)
    n = g["n"] if "n" in g else pd.Series([np.nan] * len(g))
    labels, long = grade_tick_labels(g)
    small = [bool(pd.notna(c) and 0 < c < min_n) for c in n]
    test_name = {"jeffreys": "Jeffreys test", "binomial": "binomial test"}.get(test, "stricter of Jeffreys and binomial")
    notes = [f"bar colour = traffic light ({test_name}, Holm across the pools); grey = not tested",
             *(["; ".join(long) + ": no traffic light"] if long else []),
             *([f"hatched: fewer than {min_n} {unit} (weak evidence)"] if any(small) else [])]
    width = int(max(520, 62 * len(g) + 120))
    chart = SvgChart(width, 400 + 14 * len(notes), x=(-0.6, len(g) - 0.4), y=(0, lim),
                     title="Predicted PD vs observed rate by pool of grades", ylabel="default rate",
                     margin=(58, 30, 16, 100 + 14 * len(notes)))
    ticks = nice_ticks(0.0, lim)
    chart.ticks("y", ticks, percent_labels(ticks), grid=True)
    chart.ticks("x", list(x), labels, size=9)
    colors = [LIGHT_COLORS.get(str(c), "#bdbdbd") for c in g["light"]]
    names = [str(k) for k in g["grade"]]
    chart.bars(x, np.nan_to_num(obs), series="observed", width=0.7, colors=colors, hatched=small, names=names,
               label="observed default rate")
    chart.points(x, pred, series="predicted", color="black", shape="dash", names=names, label="predicted PD")
    for note in notes:
        chart.note(note)
    chart.legend("below")
    return chart.render()


def _plot_psi(tab: pd.DataFrame, name: str, unit: str = "households") -> str:
    """Share of rows per score bin: the reference (training) beside the sample."""
    labels = [str(b) for b in tab["bin"]]
    exp, act = tab["expected_share"].to_numpy(float), tab["actual_share"].to_numpy(float)
    lim = float(np.nanmax(np.concatenate([exp, act, [0.01]]))) * 1.1
    x = np.arange(len(tab), dtype=float)
    longest = max((len(t) for t in labels), default=4)
    bottom = int(44 + 0.58 * 8 * longest * 0.65)  # labels turned 40 degrees
    chart = SvgChart(max(560, 48 * len(tab) + 200), 300 + bottom, x=(-0.6, len(tab) - 0.4), y=(0, lim),
                     title=f"{name} distribution", xlabel=f"{name.lower()} bin (edges from the reference)",
                     ylabel=f"share of {unit}", margin=(58, 30, 130, bottom))
    ticks = nice_ticks(0.0, lim)
    chart.ticks("y", ticks, percent_labels(ticks), grid=True)
    chart.ticks("x", list(x), labels, rotate=True, size=8)
    chart.bars(x - 0.2, exp, series="reference", width=0.4, colors=PALETTE[0], names=labels, label="reference")
    chart.bars(x + 0.2, act, series="sample", width=0.4, colors=PALETTE[1], names=labels, label="sample")
    chart.legend("right")  # beside the bars, never over them
    return chart.render()


def _fmt(v: Any) -> str:
    return "n/a" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))


def write_validation_report(result: Mapping[str, Any], out_dir: str | Path,
                            stem: str = "validation_report",
                            title: str = "Model validation report", unit: str = "households"
                            ) -> tuple[Path, Path]:
    """Write ``<stem>.html`` (charts embedded) and ``<stem>.json`` (every figure).

    ``unit``: what a row of the sample is, in the report's words and chart labels
    (``"rows"`` for a table of one's own: its report never says households).

    >>> import tempfile
    >>> import numpy as np
    >>> from village_credit.validation import validation_report, write_validation_report
    >>> rng = np.random.default_rng(0)
    >>> pd_pred = rng.uniform(0.02, 0.4, 300)
    >>> y = (rng.random(300) < pd_pred).astype(int)
    >>> grades = np.where(pd_pred < 0.2, "A", "B")
    >>> report = validation_report(y, pd_pred, None, grades, ["A", "B"])
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     html, js = write_validation_report(report, tmp)
    ...     print(html.name, js.name, html.stat().st_size > 0)
    validation_report.html validation_report.json True
    """
    disc, cal = result["discrimination"], result["calibration"]
    sample = result["sample"]
    rep = HtmlReport(title, subtitle=(f"{sample['n']} {unit}, {sample['defaults']} defaults "
                                      f"({sample['default_rate']:.2%})"))

    ident, verdict = result.get("identity") or {}, result.get("verdict")
    rep.add_section("Model identity and verdict")
    rep.add_key_values({
        "model": (f"{ident.get('model_name')} v{ident.get('model_version')}"
                  if ident.get("model_version") else (ident.get("model_uri") or "n/a")),
        "model run": ident.get("model_run_id") or "n/a",
        "model artifacts (sha256)": ident.get("model_artifact_sha256") or "n/a",
        "validator": ident.get("validator") or "n/a",
        "training data fingerprint": ident.get("training_data_fingerprint") or "n/a",
        "validation sample fingerprint": ident.get("validation_sample_fingerprint") or "n/a",
        **({"override": ident["override"]} if ident.get("override") else {}),
        "date": ident.get("date"), "toolkit version": ident.get("toolkit_version")})
    if verdict is not None:
        # the one verdict as a coloured banner, as fairness.html has it (a plain line was missed)
        reasons = verdict["reasons"] or []
        rep.add_verdict(verdict["verdict"], f" overall verdict: {len(reasons)} reason(s) below"
                        if reasons else " overall verdict: every check passed")
        rep.add_table(pd.DataFrame({"reason": verdict["reasons"] or ["every check passed"]}),
                      caption=f"Reasons. Rules: {verdict['rules']}")
        if verdict.get("information"):
            rep.add_table(pd.DataFrame({"information (not part of the verdict)": verdict["information"]}))

    if sample.get("n_without_outcome"):
        rep.add_text(f"Discrimination, calibration and back-tests: the {sample['n']} households with an "
                     f"observed outcome (lent to or explored); the {sample['n_without_outcome']} scored "
                     "households without one enter stability and migration only.")
    unobserved = result.get("unobserved")
    if isinstance(unobserved, pd.DataFrame) and len(unobserved):
        rep.add_table(unobserved, caption=(
            "Decisions resting on no observed outcome, against the generator's truth (synthetic data "
            "only; no bank sees these columns, and they are not part of the verdict)"))

    rep.add_section("Discrimination")
    lo, hi = disc["auc_ci"]
    rep.add_table(pd.DataFrame([
        {"figure": "AUC", "value": disc["auc"], "note": f"DeLong CI [{lo:.4f}, {hi:.4f}]"},
        {"figure": "AUC standard error (DeLong)", "value": disc["auc_se"], "note": ""},
        {"figure": "Gini / accuracy ratio", "value": disc["gini"], "note": ""},
        {"figure": "KS", "value": disc["ks"], "note": f"at score {disc['ks_threshold']:.6g}"},
    ]))
    rep.add_svg(_plot_roc(disc, result.get("challenger")), "ROC curve")
    rep.add_svg(_plot_cap(disc, sample["default_rate"], unit), "Cumulative accuracy profile")
    ro = disc["rank_ordering"]
    rep.add_table(ro, caption="Rank ordering by grade, point estimates (monotone: "
                  f"{'yes' if disc['rank_ordering_monotone'] else 'no'}; information: the verdict "
                  "reads the rank-order test between pools under Calibration)")

    rep.add_section("Calibration")
    hl, sp = cal["hosmer_lemeshow"], cal["spiegelhalter"]
    rep.add_table(pd.DataFrame([
        {"figure": "Brier score", "value": cal["brier"], "note": ""},
        {"figure": "Expected calibration error", "value": cal["ece"], "note": ""},
        {"figure": "Calibration in the large: observed / predicted defaults",
         "value": cal["in_the_large"]["ratio"],
         "note": (f"{cal['in_the_large']['observed']:.0f} vs {cal['in_the_large']['expected']:.1f}; "
                  f"two-sided p = {cal['in_the_large']['p_value']:.4g}")},
        {"figure": "Hosmer-Lemeshow chi2", "value": hl["stat"],
         "note": f"dof {hl['dof']} ({hl.get('convention', '')}), p = {hl['p_value']:.4g}"},
        {"figure": "Spiegelhalter z", "value": sp["z"], "note": f"p = {sp['p_value']:.4g}"},
    ]))
    rep.add_svg(reliability_svg([("model", cal["reliability"])]), "Reliability curve")
    cfg = result.get("config", {})
    bt = cal.get("backtest") or {}
    if bt.get("not_testable"):
        rep.add_text(f"Grade back-test {bt['not_testable']}.")
    if bt.get("pool_summary"):
        rep.add_text("Grades pooled (fewer than {:g} expected defaults each): {}.".format(
            bt.get("min_expected", 5), "; ".join(f"{p['pool']}: {p['n']} {unit}" for p in bt["pool_summary"])))
    if isinstance(cal.get("pools"), pd.DataFrame) and len(cal["pools"]):
        rep.add_table(cal["pools"], caption=(
            f"Grade back-test, the verdict's ({cfg.get('alternative', 'greater')}; grades with fewer "
            f"than {bt.get('min_expected', 5):g} expected defaults pooled towards the middle of the "
            f"scale; light from the {cfg.get('light_test', 'jeffreys')} p Holm-adjusted across the "
            f"pools: green >= {cfg.get('green_p')}, red < {cfg.get('red_p')})"))
        rep.add_svg(_plot_grades(cal["pools"], unit, test=str(cfg.get("light_test", "jeffreys"))),
                    "Predicted PD vs observed rate by pool of grades")
    if isinstance(cal.get("rank_order"), pd.DataFrame) and len(cal["rank_order"]):
        rep.add_table(cal["rank_order"], caption=(
            "Rank order between adjacent pools: one-sided Fisher exact test that the worse pool's "
            f"default rate is below the better one's, Holm across the pairs (amber < {cfg.get('green_p')})"))
    rep.add_table(cal["grades"], caption=(
        "Per grade, unadjusted (information: the verdict reads the pools above; a light here is "
        "one test among many, on grades however thin)"))

    stab = result.get("stability")
    if stab is not None:
        rep.add_section("Stability")
        rep.add_text(f"Score PSI: {_fmt(stab.get('score_psi'))} ({stab.get('score_alert')}); "
                     f"thresholds {cfg.get('psi_thresholds')}.")
        if stab.get("score_bins") is not None:
            rep.add_table(stab["score_bins"], caption="Score PSI by bin")
            rep.add_svg(_plot_psi(stab["score_bins"], "Score", unit), "Score: reference vs sample")
        if stab.get("csi") is not None:
            rep.add_table(stab["csi"], caption="Characteristic stability index per feature")
        if stab.get("columns_not_in_sample"):
            rep.add_text("Profiled columns absent from the sample: "
                         + ", ".join(map(str, stab["columns_not_in_sample"])))

    mig = result.get("migration")
    if mig is not None:
        rep.add_section("Grade migration")
        s = mig["summary"]
        rep.add_text(f"{s['n']} {unit} with a previous grade: stable {_fmt(s['stable'])}, "
                     f"upgraded {_fmt(s['upgrade'])}, downgraded {_fmt(s['downgrade'])}.")
        rep.add_table(mig["counts"], caption="Counts (rows: previous grade)", index=True)

    if result.get("fairness") is not None:
        rep.add_section("Fairness summary")
        fair = result["fairness"]
        if isinstance(fair, pd.DataFrame):
            rep.add_table(fair)
        elif isinstance(fair, Mapping):
            for key, value in fair.items():
                if isinstance(value, pd.DataFrame):
                    rep.add_table(value, caption=str(key))
                else:
                    rep.add_key_values({str(key): value})
        else:
            rep.add_text(str(fair))

    ch = result.get("challenger")
    if ch is not None:
        rep.add_section(f"Champion vs {ch['name']}")
        rep.add_table(pd.DataFrame([
            {"figure": "AUC champion (PD)", "value": ch["auc_champion"],
             "note": "CI [{:.4f}, {:.4f}]".format(*ch["champion_ci"])},
            {"figure": f"AUC {ch['name']} (PD)", "value": ch["auc_challenger"],
             "note": "CI [{:.4f}, {:.4f}]".format(*ch["challenger_ci"])},
            {"figure": "AUC difference (champion - challenger)", "value": ch["auc_diff"],
             "note": "paired DeLong on this one sample: CI [{:.4f}, {:.4f}], z = {:.3f}, p = {:.4g}"
             .format(*ch.get("auc_diff_ci", [float("nan")] * 2), ch["z"], ch["p_value"])},
        ]))
        cc = ch["calibration"]
        rep.add_table(pd.DataFrame({
            "figure": ["Brier", "ECE", "Hosmer-Lemeshow p", "Spiegelhalter p", "pools of grades red"],
            "champion": [cal["brier"], cal["ece"], cal["hosmer_lemeshow"]["p_value"],
                         cal["spiegelhalter"]["p_value"], cal["lights"]["red"]],
            ch["name"]: [cc["brier"], cc["ece"], cc["hosmer_lemeshow"]["p_value"],
                         cc["spiegelhalter"]["p_value"], cc["lights"]["red"]],
        }), caption="Calibration side by side")
        rep.add_svg(reliability_svg([("champion", cal["reliability"]),
                                          (ch["name"], cc["reliability"])]),
                       "Reliability: champion vs challenger")
        rep.add_table(cc["pools"], caption=f"{ch['name']}: grade back-test (pools, Holm)")

    if result.get("reproducibility") is not None:
        rep.add_section("Reproducibility")
        rep.add_key_values(result["reproducibility"])

    return write_report(rep, to_jsonable(result), out_dir, stem)


def unobserved_decisions(households: pd.DataFrame, decisions: pd.DataFrame) -> pd.DataFrame:
    """The hold-out decisions no observed outcome can check, against the synthetic truth.

    Why: the validation report tests calibration on the households with an observed outcome,
    the only ones a bank (or its calibrator) can test; the rest (vetoed: never lent, never
    explored; refused and not explored) are decided by PDs no outcome checks. On generated
    data the truth is known, so their mean predicted PD is shown beside the mean true PD,
    labelled, outside the verdict. Rows: every hold-out household, those with an observed
    outcome, those without (vetoed, and refused without a veto).

    >>> import pandas as pd
    >>> from village_credit.data import GeneratorConfig, generate_households
    >>> hh = generate_households(GeneratorConfig(n_households=400, seed=2, exploration_share=0.1))
    >>> dec = pd.DataFrame({"pd": hh["true_pd"], "vetoed": False})
    >>> from village_credit.validation.report import unobserved_decisions
    >>> t = unobserved_decisions(hh, dec)
    >>> list(t["households"])[:2], float(t["predicted / true PD"].iloc[0])
    (['every scored household', 'observed outcome (lent to or explored)'], 1.0)
    """
    seen = outcome_seen(households)
    vetoed = decisions["vetoed"].to_numpy(dtype=bool)
    p, tp = decisions["pd"].to_numpy(dtype=float), households["true_pd"].to_numpy(dtype=float)
    y = households["default_12m"].to_numpy(dtype=float)
    rows = []
    for name, m in (("every scored household", np.ones(len(seen), bool)),
                    ("observed outcome (lent to or explored)", seen),
                    ("no observed outcome: vetoed (no line whatever the PD)", ~seen & vetoed),
                    ("no observed outcome: no veto (refused, not explored)", ~seen & ~vetoed)):
        n = int(m.sum())
        mp, mt = (float(p[m].mean()), float(tp[m].mean())) if n else (np.nan, np.nan)
        rows.append({"households": name, "n": n, "mean predicted PD": mp, "mean true PD (synthetic)": mt,
                     "predicted / true PD": mp / mt if n and mt > 0 else np.nan,
                     "realised default rate (synthetic)": float(y[m].mean()) if n else np.nan})
    return pd.DataFrame(rows)
