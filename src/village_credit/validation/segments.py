"""Monitoring by segment: which township, village or group moved between two vintages.

A population-wide PSI averages a local shock away (one township of eight going from a
4 % to a 14 % default rate barely moves the score distribution of the county). So
the monitor also compares each segment with itself:

* **realised default rate** reference vs current: Fisher's exact test (two-sided);
* with a model, **realised vs predicted**: the calibration-in-the-large test of the
  segment in the current vintage (``calibration_p``, shown), and whether the gap between
  realised and predicted defaults *moved* between the vintages (``calibration_change_p``,
  a two-sided z-test of the difference of the two gaps per household, each with
  variance ``sum p (1 - p)``). Only the change raises an alert: a model that misjudges a
  group by the same amount in both vintages is a validation finding, not drift, and
  would otherwise turn every random split of one population red;
* with a model, the segment's own **score PSI** with its sampling noise
  (:func:`~village_credit.validation.stability.psi_test_from_profile`): the segment's
  bins follow its reference quantiles, merged so that each expects at least
  ``min_expected`` households; the p-value is the chi-square approximation of PSI under
  no change, or a permutation p where bins expect few rows. A village of 100
  households shows a PSI near 0.18 between two random halves of one population: the
  cut-off alone would call that drift.

p-values are Holm-adjusted as one family: every test that can raise an alert, over every
segment of every dimension (a county has ~100 villages and four dimensions: without it,
some village would always look significant, and the false-alarm rate of the segment
alert is at most ``alpha``). A segment is
flagged when an adjusted p-value is below ``alpha``; for the score PSI, only when the
PSI is also material (at least the amber cut-off). Its ``alert``: ``red`` when the gap
between realised and predicted defaults moved (the model went wrong there) or the score
PSI is red,
``amber`` when only the default rate moved or the PSI is amber. Segments with fewer than
``min_count`` households in either vintage are reported as ``too small to judge`` and
never tested (NaN).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from village_credit.data.groups import FORMERLY_POOR, OTHER, age_band
from village_credit.fairness.observed import outcome_seen
from village_credit.validation._checks import ValidationInputError
from village_credit.validation.stability import (
    MIN_EXPECTED_PER_BIN,
    alert_level,
    holm,
    profile_column,
    psi_test_from_profile,
)

__all__ = ["SEGMENT_COLUMNS", "TOO_SMALL", "segment_drift", "segment_labels", "worst_alert"]

SEGMENT_COLUMNS = ("township_code", "village_code", "age_band", "formerly_poor")
TOO_SMALL = "too small to judge"
_RANK = {"green": 0, "amber": 1, "red": 2}


def worst_alert(alerts: Sequence[str]) -> str:
    """The worst of ``green`` / ``amber`` / ``red`` (other labels ignored; none: ``n/a``).

    >>> from village_credit.validation.segments import worst_alert
    >>> worst_alert(["green", "too small to judge", "amber"]), worst_alert([])
    ('amber', 'n/a')
    """
    known = [a for a in alerts if a in _RANK]
    return max(known, key=_RANK.__getitem__) if known else "n/a"


def segment_labels(df: pd.DataFrame, columns: Sequence[str] = SEGMENT_COLUMNS) -> pd.DataFrame:
    """One label column per segment dimension present in ``df``.

    ``age_band`` comes from ``head_age`` and ``formerly_poor`` is labelled, both with
    the fairness module's group definitions (one definition for every report).
    """
    out = {}
    for col in columns:
        if col == "age_band" and "head_age" in df.columns:
            age = pd.to_numeric(df["head_age"], errors="coerce").to_numpy(float)
            band = np.asarray(age_band(np.nan_to_num(age, nan=-1.0)), dtype=object)
            band[np.isnan(age)] = "missing"
            out[col] = band
        elif col == "formerly_poor" and col in df.columns:
            v = df[col]
            lab = np.where(v.astype("boolean").fillna(False).to_numpy(bool), FORMERLY_POOR, OTHER)
            lab = lab.astype(object)
            lab[v.isna().to_numpy()] = "missing"
            out[col] = lab
        elif col in df.columns:
            out[col] = df[col].astype(object).where(df[col].notna(), "missing").astype(str).to_numpy()
    return pd.DataFrame(out, index=df.index)


def _fisher(d1: int, n1: int, d2: int, n2: int) -> float:
    return float(stats.fisher_exact([[d1, n1 - d1], [d2, n2 - d2]])[1])


def _calibration_change(yr: np.ndarray, pr: np.ndarray, yc: np.ndarray, pc: np.ndarray) -> float:
    """Two-sided p of "the per-household gap realised - predicted is the same in both"."""
    var = float(np.sum(pr * (1 - pr))) / pr.size ** 2 + float(np.sum(pc * (1 - pc))) / pc.size ** 2
    if var <= 0:
        return float("nan")
    gap = (yc.sum() - pc.sum()) / pc.size - (yr.sum() - pr.sum()) / pr.size
    return float(2.0 * stats.norm.sf(abs(gap) / np.sqrt(var)))


def _in_the_large(y: np.ndarray, p: np.ndarray) -> float:
    var = float(np.sum(p * (1.0 - p)))
    if var <= 0:
        return float("nan")
    z = (float(y.sum()) - float(p.sum())) / np.sqrt(var)
    return float(2.0 * stats.norm.sf(abs(z)))


def segment_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    outcome: str | None = "default_12m",
    ref_score: Any = None,
    cur_score: Any = None,
    cur_pd: Any = None,
    ref_pd: Any = None,
    columns: Sequence[str] = SEGMENT_COLUMNS,
    alpha: float = 0.01,
    min_count: int = 30,
    psi_thresholds: Sequence[float] = (0.1, 0.25),
    bins: int = 10,
    min_expected: float = MIN_EXPECTED_PER_BIN,
    seed: int = 0,
) -> pd.DataFrame:
    """Per segment: sizes, default rates, tests, score PSI with its p-value, alert, flag.

    ``ref_score`` / ``cur_score`` / ``cur_pd`` / ``ref_pd``: arrays aligned with the rows
    of ``reference`` / ``current`` (the model's points and PD), or ``None``. ``why`` states
    each reason with its Holm p-value and the households it rests on.

    >>> import numpy as np, pandas as pd
    >>> from village_credit.validation.segments import segment_drift
    >>> rng = np.random.default_rng(0)
    >>> town = rng.choice(["T01", "T02"], 800)
    >>> ref = pd.DataFrame({"township_code": town, "default_12m": rng.random(800) < 0.05})
    >>> shocked = rng.random(800) < 0.05 + 0.20 * (town == "T02")  # T02: 5 % -> 25 %
    >>> cur = pd.DataFrame({"township_code": town, "default_12m": shocked})
    >>> seg = segment_drift(ref, cur, columns=["township_code"])
    >>> seg[["value", "alert", "flagged"]]
      value  alert  flagged
    0   T01  green    False
    1   T02  amber     True
    """
    if not 0 < alpha < 1:
        raise ValidationInputError(f"segment_drift: alpha must be in (0, 1), got {alpha}")
    lab_r, lab_c = segment_labels(reference, columns), segment_labels(current, columns)
    has_y = outcome is not None and outcome in reference.columns and outcome in current.columns
    yr = reference[outcome].to_numpy(float) if has_y else None
    yc = current[outcome].to_numpy(float) if has_y else None
    # outcomes count only where one was observed: labelled, and ``outcome_observed`` where
    # the table has it (a refused household's synthetic truth is no bank's evidence)
    kr = (~np.isnan(yr) & outcome_seen(reference)) if yr is not None else None
    kc = (~np.isnan(yc) & outcome_seen(current)) if yc is not None else None
    sr = None if ref_score is None else np.asarray(ref_score, dtype=float)
    sc = None if cur_score is None else np.asarray(cur_score, dtype=float)
    pc = None if cur_pd is None else np.asarray(cur_pd, dtype=float)
    pr = None if ref_pd is None else np.asarray(ref_pd, dtype=float)
    rows: list[dict[str, Any]] = []
    for dim in [c for c in columns if c in lab_r.columns and c in lab_c.columns]:
        r_lab, c_lab = lab_r[dim].to_numpy(), lab_c[dim].to_numpy()
        for value in sorted(set(r_lab) | set(c_lab), key=str):
            mr, mc = r_lab == value, c_lab == value
            nr, nc = int(mr.sum()), int(mc.sum())
            row: dict[str, Any] = {"segment": dim, "value": str(value), "n_reference": nr,
                                   "n_current": nc, "default_rate_reference": np.nan,
                                   "default_rate_current": np.nan, "rate_p": np.nan,
                                   "predicted_pd_reference": np.nan,
                                   "predicted_pd_current": np.nan, "calibration_p": np.nan,
                                   "calibration_change_p": np.nan,
                                   "score_psi": np.nan, "psi_bins": np.nan, "psi_p": np.nan,
                                   "psi_method": "", "testable": nr >= min_count and nc >= min_count}
            testable = row["testable"]
            yr_m = mr & kr if kr is not None else None
            yc_m = mc & kc if kc is not None else None
            ny_r = int(yr_m.sum()) if yr_m is not None else 0
            ny_c = int(yc_m.sum()) if yc_m is not None else 0
            y_testable = ny_r >= min_count and ny_c >= min_count
            row.update(n_outcomes_reference=ny_r, n_outcomes_current=ny_c)
            if has_y and ny_r and ny_c:
                dr, dc = int(yr[yr_m].sum()), int(yc[yc_m].sum())
                row["default_rate_reference"] = dr / ny_r
                row["default_rate_current"] = dc / ny_c
                if y_testable:
                    row["rate_p"] = _fisher(dr, ny_r, dc, ny_c)
            # predicted beside realised: over the same rows (those with an outcome) when any
            pc_m = yc_m if ny_c else mc
            pr_m = yr_m if ny_r else mr
            if pc is not None and nc:
                row["predicted_pd_current"] = float(pc[pc_m].mean())
                if has_y and ny_c >= min_count:
                    row["calibration_p"] = _in_the_large(yc[yc_m], pc[yc_m])
            if pr is not None and nr:
                row["predicted_pd_reference"] = float(pr[pr_m].mean())
                if pc is not None and has_y and y_testable:
                    row["calibration_change_p"] = _calibration_change(yr[yr_m], pr[yr_m], yc[yc_m],
                                                                      pc[yc_m])
            if sr is not None and sc is not None and testable:
                t = psi_test_from_profile(profile_column(sr[mr], bins, "numeric"), sc[mc],
                                          min_expected=min_expected, seed=seed + len(rows))
                row.update(score_psi=t["psi"], psi_bins=t["bins"], psi_p=t["p_value"],
                           psi_method=t["method"])
            rows.append(row)
    # one Holm family for every test that can raise an alert, over all dimensions (a
    # county has ~100 villages, and four dimensions): the segment alert's false-alarm
    # rate stays below alpha; the shown in-the-large test is adjusted on its own
    keys = ("rate_p", "calibration_change_p", "psi_p")
    adj = holm([r[k] for k in keys for r in rows]).reshape(len(keys), len(rows))
    for j, k in enumerate(keys):
        for r, a in zip(rows, adj[j], strict=True):
            r[k + "_holm"] = float(a)
    for r, a in zip(rows, holm([r["calibration_p"] for r in rows]), strict=True):
        r["calibration_p_holm"] = float(a)
    table = pd.DataFrame(rows, columns=[
        "segment", "value", "n_reference", "n_current", "testable", "n_outcomes_reference",
        "n_outcomes_current", "default_rate_reference",
        "default_rate_current", "rate_p", "rate_p_holm", "predicted_pd_reference",
        "predicted_pd_current", "calibration_p", "calibration_p_holm", "calibration_change_p",
        "calibration_change_p_holm", "score_psi", "psi_bins", "psi_method", "psi_p",
        "psi_p_holm"])
    if table.empty:
        return table.assign(alert=pd.Series(dtype=object), flagged=pd.Series(dtype=bool),
                            why=pd.Series(dtype=object))
    alerts, why = [], []
    for r in table.itertuples(index=False):
        alert, reasons = _judge(r, alpha, psi_thresholds, min_count)
        alerts.append(alert)
        why.append("; ".join(reasons))
    table["alert"] = alerts
    table["why"] = why
    table["flagged"] = table["alert"].isin(["amber", "red"])
    return table.drop(columns="testable")


def _judge(r: Any, alpha: float, psi_thresholds: Sequence[float], min_count: int
           ) -> tuple[str, list[str]]:
    """(alert, reasons) of one segment row: each reason with its Holm p and its rows."""
    if not r.testable:
        return TOO_SMALL, [(f"fewer than {min_count} households in a vintage "
                            f"({r.n_reference} -> {r.n_current})")]
    rows = f"{r.n_reference} -> {r.n_current} households"
    outcomes = f"{r.n_outcomes_reference} -> {r.n_outcomes_current} households with an outcome"
    alerts, reasons = ["green"], []
    if np.isfinite(r.rate_p_holm) and r.rate_p_holm < alpha:
        alerts.append("amber")
        reasons.append(f"default rate {r.default_rate_reference:.1%} -> "
                       f"{r.default_rate_current:.1%} (Fisher, Holm p {r.rate_p_holm:.2g}; {outcomes})")
    if np.isfinite(r.calibration_change_p_holm) and r.calibration_change_p_holm < alpha:
        alerts.append("red")
        reasons.append(f"realised vs predicted moved: {r.default_rate_reference:.1%} vs "
                       f"{r.predicted_pd_reference:.1%} -> {r.default_rate_current:.1%} vs "
                       f"{r.predicted_pd_current:.1%} (Holm p {r.calibration_change_p_holm:.2g}; "
                       f"{outcomes})")
    material = alert_level(r.score_psi, psi_thresholds)
    if material in ("amber", "red") and np.isfinite(r.psi_p_holm) and r.psi_p_holm < alpha:
        alerts.append(material)
        reasons.append(f"score PSI {r.score_psi:.3f} >= {material} cut-off "
                       f"{psi_thresholds[0 if material == 'amber' else 1]:g} ({r.psi_method} "
                       f"Holm p {r.psi_p_holm:.2g}; {int(r.psi_bins)} bins; {rows})")
    return worst_alert(alerts), reasons
