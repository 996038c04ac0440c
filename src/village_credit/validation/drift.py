"""The drift report: which columns, zero-inflated counts and segments moved, beyond noise.

Why its own module: the monitor's alarm has to mean a real change. Every stability
figure here carries its sampling noise (``stability.psi_test_from_profile``,
``stability.zero_share_table``, ``segments.segment_drift``), and an alert is raised only
where the change is both material (the PSI cut-offs, or a non-zero share moving by half)
and significant after Holm. The overall alert is the worst of the column, zero-share and
segment alerts: a shock in one township raises it even when the county barely moves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from village_credit.reporting.html import HtmlReport, new_figure, to_jsonable, write_report
from village_credit.validation._checks import ValidationInputError
from village_credit.validation.segments import TOO_SMALL, worst_alert
from village_credit.validation.stability import (
    CHI2_MIN_EXPECTED,
    MIN_EXPECTED_PER_BIN,
    N_PERMUTATIONS,
    reference_profile,
    stability_table,
    zero_share_table,
)

__all__ = ["drift_report", "overall_alert", "write_drift_report"]

_RANK = ("green", "amber", "red")


def drift_report(reference: pd.DataFrame | Mapping[str, Any], current: pd.DataFrame,
                 columns: Sequence[str] | None = None, bins: int = 10,
                 thresholds: Sequence[float] = (0.1, 0.25), *, alpha: float = 0.01,
                 min_expected: float = MIN_EXPECTED_PER_BIN, seed: int = 0) -> dict[str, Any]:
    """PSI/CSI drift between a reference (table or stored profile) and a current table.

    ``reference`` may be a DataFrame (e.g. vintage 1) or a profile from
    ``stability.reference_profile`` (what a registered model carries). ``csi``: one row
    per column with its p-value and alert (``stability.stability_table``);
    ``zero_share``: the non-zero share of zero-inflated numeric columns
    (``stability.zero_share_table``). ``alert``: the worst of both.

    >>> import numpy as np, pandas as pd
    >>> from village_credit.validation.drift import drift_report
    >>> rng = np.random.default_rng(0)
    >>> ref = pd.DataFrame({"x": rng.normal(size=2000), "dpd": (rng.random(2000) < 0.02) * 30})
    >>> same = drift_report(ref, ref.sample(frac=1.0, random_state=1))
    >>> moved = drift_report(ref, ref.assign(dpd=(rng.random(2000) < 0.05) * 30))
    >>> same["alert"], moved["alert"], moved["zero_share"]["alert"].tolist()
    ('green', 'red', ['red'])
    """
    if not 0 < alpha < 1:
        raise ValidationInputError(f"drift_report: alpha must be in (0, 1), got {alpha}")
    ref_df = reference if isinstance(reference, pd.DataFrame) else None
    if ref_df is not None:
        cols = list(ref_df.columns if columns is None else columns)
        absent = [c for c in cols if c not in current.columns]
        if absent:
            raise ValidationInputError(f"drift_report: columns {absent} not in the current table")
        profile: Mapping[str, Any] = reference_profile(ref_df, cols, bins)
    else:
        profile = reference  # type: ignore[assignment]
        cols = [c for c in profile.get("columns", {}) if c in current.columns] \
            if columns is None else list(columns)
    table = stability_table(profile, current, cols, thresholds, alpha=alpha,
                            min_expected=min_expected, seed=seed)
    numeric = [c for c in cols if profile["columns"][c]["kind"] == "numeric"]
    zero = zero_share_table(ref_df, current, numeric, profile=profile, alpha=alpha)
    alerts = list(table["alert"]) + list(zero["alert"])
    return {"n_current": len(current), "thresholds": list(thresholds), "alpha": alpha,
            "min_expected_per_bin": float(min_expected), "alert": worst_alert(alerts),
            "counts": {k: int(sum(a == k for a in alerts)) for k in _RANK},
            "csi": table, "zero_share": zero}


def overall_alert(column_alert: str, segments: pd.DataFrame | None) -> str:
    """The worst of the column alert and the segment alerts (the monitor's one alarm).

    >>> import pandas as pd
    >>> from village_credit.validation.drift import overall_alert
    >>> overall_alert("green", pd.DataFrame({"alert": ["green", "amber"]}))
    'amber'
    """
    seg = [] if segments is None or "alert" not in segments else list(segments["alert"])
    return worst_alert([column_alert, *seg])


def _method_note(result: Mapping[str, Any]) -> str:
    return (f"A column or segment alerts only when its shift is material (PSI amber from "
            f"{result['thresholds'][0]:g}, red from {result['thresholds'][1]:g}; a non-zero share "
            "moving by a factor 1.5 amber, 2 red) and significant after Holm at alpha "
            f"{result.get('alpha', 0.01):g}. Bins follow the reference quantiles, merged so that "
            f"each expects at least {result.get('min_expected_per_bin', MIN_EXPECTED_PER_BIN):g} "
            "rows of the smaller sample; the p-value of a PSI is its chi-square approximation "
            "under no change, (1/n_ref + 1/n_cur) chi2(bins - 1) (Yurdakul and Naranjo, 2020), "
            f"or a permutation p ({N_PERMUTATIONS} draws) where bins expect fewer than "
            f"{CHI2_MIN_EXPECTED} rows (an empty bin makes the PSI's tail far heavier).")


def write_drift_report(result: Mapping[str, Any], out_dir: str | Path,
                       stem: str = "drift_report",
                       title: str = "Population drift report") -> tuple[Path, Path]:
    """Write the drift tables as HTML (with a bar chart) and JSON.

    Each flagged segment is listed with its reason: the test, its Holm p-value and the
    households it rests on.
    """
    table: pd.DataFrame = result["csi"]
    rep = HtmlReport(title, subtitle=(f"{result['n_current']} current rows; overall alert "
                                      f"{result['alert']}; thresholds {result['thresholds']}"))
    rep.add_section("Stability index per column")
    rep.add_text(_method_note(result))
    rep.add_table(table)
    if len(table):
        fig = new_figure(6.5, max(2.5, 0.3 * len(table) + 1))
        ax = fig.add_subplot()
        colours = {"green": "#4caf50", "amber": "#ffb300", "red": "#e53935"}
        ax.barh(table["column"].astype(str)[::-1], table["csi"][::-1],
                color=[colours.get(a, "#bdbdbd") for a in table["alert"][::-1]])
        for t in result["thresholds"]:
            ax.axvline(float(t), color="grey", linestyle="--", linewidth=0.8)
        ax.set(xlabel="PSI / CSI", title="Drift by column (colour: noise-aware alert)")
        rep.add_figure(fig, "CSI by column with alert thresholds")
    zero = result.get("zero_share")
    if isinstance(zero, pd.DataFrame) and len(zero):
        rep.add_section("Zero-inflated columns: share of non-zero values")
        rep.add_text("Counts that are mostly zero (days past due) have one quantile bin, so "
                     "their CSI cannot move; the share of non-zero values can. Two-proportion "
                     "z-test, Holm across these columns.")
        rep.add_table(zero)
    seg = result.get("segments")
    if isinstance(seg, pd.DataFrame) and len(seg):
        rep.add_section("By segment (township, village, age band, formerly poor)")
        flagged = seg[seg["flagged"]]
        small = int((seg["alert"] == TOO_SMALL).sum()) if "alert" in seg else 0
        rep.add_text(
            f"Segment alert: {result.get('segment_alert', 'n/a')}. Fisher's exact test of default "
            "rates, the two-sided test of realised vs predicted defaults and the segment's score "
            "PSI with its p-value, Holm-adjusted together over every segment and test. "
            f"{small} segment(s) with fewer than {result.get('segment_min_count', 30)} "
            f"households in a vintage: {TOO_SMALL}.")
        if len(flagged):
            reasons = pd.DataFrame({
                "segment": flagged["segment"] + "=" + flagged["value"], "alert": flagged["alert"],
                "households (reference -> current)": (flagged["n_reference"].astype(str) + " -> "
                                                      + flagged["n_current"].astype(str)),
                "reason (test, Holm p, rows)": flagged["why"]})
            rep.add_table(reasons, caption="Flagged segments and why")
        else:
            rep.add_text("No segment flagged.")
        rep.add_table(seg[seg["segment"] != "village_code"],
                      caption="Townships and groups (villages: see the JSON)")
    return write_report(rep, to_jsonable(result), out_dir, stem)
