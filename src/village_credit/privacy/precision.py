"""Dates and amounts released at the precision the models need, not more.

Why: the village insider is not the only one holding part of the picture. The keeper of
the deduction / veto registers knows each household's event dates, the lending bank its
repayment amounts and dates; released exactly, those single out nearly every household
that has any (docs/privacy.md, issue 28). What the toolkit reads from them is much less:

* **event dates**: the rules only ask "inside the item's observation window?"
  (``eval_date - n years < event <= eval_date``, n = 1, 2 or 3 in every shipped policy).
  An event is released as the start of its *window band* relative to the snapshot
  (``snapshot - 0 / 12 / 24 months``, in the same date column so the rules engine reads it
  unchanged); events older than the longest window, or after the snapshot, count in no
  window and are released empty. Rule points are identical by construction (tested).
* **repayment history**: the features read counts and ratios (instalment months, months
  paid in full, repaid / due, delinquent months and their days past due, recent and
  worst). Amounts are released as **ratios to the household's largest instalment**
  (2 decimals; "paid in full" kept exactly); days past due in the usual collection bands
  (1-29, 30-59, 60-89, 90+, released as the band's lower edge); and the months without
  delinquency are **re-ordered canonically** (no-loan months first, then by instalment and
  paid ratio), so the loan's start and end months - what the bank would match on - are
  gone, while every count, sum and the position of every delinquent month is kept.
* **bank balances and lines**: credit lines to 10,000 yuan, balances to 5,000 yuan.
* ``income_volatility``: to 0.05.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from village_credit.data.schema import history_columns, months_in

EVENT_WINDOW_MONTHS: tuple[int, ...] = (12, 24, 36)
"""Observation windows of every shipped policy's deductions and vetoes (1, 2 and 3 years).
A test checks each shipped policy's ``window_years`` is among them."""

DPD_BAND_EDGES: tuple[int, ...] = (1, 30, 60, 90)
"""Days-past-due bands (collection buckets); a band is released as its lower edge."""

AMOUNT_STEPS: dict[str, float] = {"credit_limit_yuan": 10_000.0, "balance_yuan": 5_000.0,
                                  "income_volatility": 0.05}
"""Rounding of the bank's own figures and of the income volatility ratio."""


def event_columns(columns: Sequence[str]) -> list[str]:
    """The dated deduction and veto event columns of a household table."""
    return [c for c in columns if (c.startswith("ded_") or c.startswith("veto_")) and c.endswith("_date")]


@dataclass
class PrecisionReport:
    """Counts of what the precision release changed (no values)."""

    event_window_months: list[int]
    events_in: int = 0
    events_released: int = 0
    events_blanked_outside_windows: int = 0
    history_households_reordered: int = 0
    dpd_band_edges: list[int] = field(default_factory=lambda: list(DPD_BAND_EDGES))
    rounded: dict[str, float] = field(default_factory=dict)


def release_event_dates(hh: pd.DataFrame, windows_months: Sequence[int] = EVENT_WINDOW_MONTHS,
                        report: PrecisionReport | None = None) -> pd.DataFrame:
    """Each event date -> ``snapshot_date - (lower edge of its window band)``, or empty.

    Band b holds events with ``snapshot - edge[b] months >= event > snapshot - edge[b+1]``
    (the rules' own comparison, calendar months), so "inside an n-year window" is the same
    before and after for every window length among ``windows_months``.
    """
    cols = event_columns(list(hh.columns))
    if not cols:
        return hh
    edges = sorted(int(e) for e in windows_months)
    lowers = [0, *edges[:-1]]
    snap = pd.to_datetime(hh["snapshot_date"]).to_numpy(dtype="datetime64[ns]")
    uniq, inv = np.unique(snap, return_inverse=True)
    cut = {e: (pd.DatetimeIndex(uniq) - pd.DateOffset(months=e)).to_numpy(dtype="datetime64[ns]")[inv]
           for e in [*lowers, *edges]}
    out = {}
    for c in cols:
        d = pd.to_datetime(hh[c]).to_numpy(dtype="datetime64[ns]")
        has = ~np.isnat(d)
        band = np.zeros(len(hh), dtype=np.int64)
        for e in edges:
            band += (d <= cut[e]).astype(np.int64)
        keep = has & (d <= snap) & (band < len(edges))
        rel = np.full(len(hh), np.datetime64("NaT"), dtype="datetime64[ns]")
        for b, lo in enumerate(lowers):
            m = keep & (band == b)
            rel[m] = cut[lo][m]
        out[c] = pd.Series(rel, index=hh.index).astype(hh[c].dtype if pd.api.types.is_datetime64_any_dtype(
            hh[c]) else "datetime64[ns]")
        if report is not None:
            report.events_in += int(has.sum())
            report.events_released += int(keep.sum())
            report.events_blanked_outside_windows += int((has & ~keep).sum())
    return hh.assign(**out)


def release_history(hh: pd.DataFrame, report: PrecisionReport | None = None) -> pd.DataFrame:
    """Monthly due / paid as ratios to the largest instalment, days past due banded, and the
    months without delinquency in a canonical order (see the module docstring)."""
    months = months_in(list(hh.columns))
    if months == 0:
        return hh
    dc, pc, kc = (history_columns(k, months) for k in ("due", "paid", "dpd"))
    if not set(dc + pc + kc) <= set(hh.columns):
        return hh
    due = np.nan_to_num(hh[dc].to_numpy(dtype=np.float64, na_value=0.0))
    paid = np.nan_to_num(hh[pc].to_numpy(dtype=np.float64, na_value=0.0))
    dpd = np.nan_to_num(hh[kc].to_numpy(dtype=np.float64, na_value=0.0)).astype(np.int64)
    scale = due.max(axis=1)
    scale = np.where(scale > 0, scale, np.maximum(paid.max(axis=1), 1.0))[:, None]
    due_r = np.round(due / scale, 2)
    paid_r = np.round(paid / scale, 2)
    has_due = due > 0
    due_r = np.where(has_due, np.maximum(due_r, 0.01), 0.0)  # an instalment never rounds to "no loan"
    full = has_due & (paid >= due)
    paid_r = np.where(full, np.maximum(paid_r, due_r), paid_r)
    short = has_due & (paid < due)
    paid_r = np.where(short, np.clip(np.minimum(paid_r, due_r - 0.01), 0.0, None), paid_r)
    paid_r = np.where(paid > 0, np.maximum(paid_r, 0.01), paid_r)  # a payment never rounds to none
    paid_r = np.where(short & (paid_r >= due_r), 0.0, paid_r)
    edges = np.asarray(DPD_BAND_EDGES)
    band = np.searchsorted(edges, dpd, side="right")
    dpd_r = np.where(band > 0, edges[np.clip(band - 1, 0, None)], 0)
    # canonical order of the months without delinquency: keys ascending into their positions
    delinquent = dpd > 0
    key = np.where(delinquent, np.inf, due_r * 1_000.0 + paid_r)
    src = np.argsort(key, axis=1, kind="stable")
    dst = np.argsort(delinquent, axis=1, kind="stable")
    rows = np.arange(len(hh))[:, None]
    new_due, new_paid = np.empty_like(due_r), np.empty_like(paid_r)
    new_due[rows, dst] = due_r[rows, src]
    new_paid[rows, dst] = paid_r[rows, src]
    if report is not None:
        report.history_households_reordered = int(((new_due != due_r) | (new_paid != paid_r)).any(axis=1).sum())
    frame = pd.DataFrame(np.hstack([new_due, new_paid]), columns=dc + pc, index=hh.index)
    frame[kc] = pd.DataFrame(dpd_r, columns=kc, index=hh.index).astype(hh[kc[0]].dtype)
    return hh.assign(**{c: frame[c] for c in dc + pc + kc})


def release_amounts(hh: pd.DataFrame, steps: dict[str, float] | None = None,
                    report: PrecisionReport | None = None) -> pd.DataFrame:
    """Round the bank's figures and the income volatility to coarse steps (``AMOUNT_STEPS``)."""
    steps = AMOUNT_STEPS if steps is None else steps
    out = {}
    for c, step in steps.items():
        if c in hh.columns:
            v = pd.to_numeric(hh[c], errors="coerce").astype(float)
            r = (v / step).round() * step
            if c == "balance_yuan":  # a balance never rounds to "no loan"
                r = r.where(~((v > 0) & (r == 0)), step)
            out[c] = r.round(6)
            if report is not None:
                report.rounded[c] = float(step)
    return hh.assign(**out)


def release_precision(hh: pd.DataFrame, windows_months: Sequence[int] = EVENT_WINDOW_MONTHS,
                      ) -> tuple[pd.DataFrame, PrecisionReport]:
    """Event dates, repayment history and bank figures at the models' precision.

    >>> import pandas as pd
    >>> hh = pd.DataFrame({"snapshot_date": pd.to_datetime(["2025-06-30"] * 3),
    ...                    "ded_hygiene_date": pd.to_datetime(["2025-03-02", "2024-01-15", "2021-05-01"])})
    >>> released, rep = release_precision(hh)
    >>> released["ded_hygiene_date"].dt.strftime("%Y-%m-%d").fillna("empty").tolist()  # window bands
    ['2025-06-30', '2024-06-30', 'empty']
    >>> rep.events_blanked_outside_windows
    1
    """
    rep = PrecisionReport(event_window_months=sorted(int(w) for w in windows_months))
    out = release_event_dates(hh, windows_months, rep)
    out = release_history(out, rep)
    out = release_amounts(out, None, rep)
    return out, rep


__all__ = ["AMOUNT_STEPS", "DPD_BAND_EDGES", "EVENT_WINDOW_MONTHS", "PrecisionReport", "event_columns",
           "release_amounts", "release_event_dates", "release_history", "release_precision"]
