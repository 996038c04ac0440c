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

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from village_credit.data.schema import history_columns, months_in
from village_credit.rules import list_policies, load_policy

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
    return [c for c in columns if c.startswith(("ded_", "veto_")) and c.endswith("_date")]


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




# --- the other record holders: no class smaller than k on what each one knows ---------

@functools.cache
def shipped_event_windows() -> dict[str, tuple[int, ...]]:
    """Windows (months) the shipped policies give each dated event, read from the policies.

    A household still unique to the register keeper has its events released at only these
    cuts, so every shipped policy's rule points stay exact; read from the policy files (not
    copied here) so a policy that changes a window changes the cuts with it.

    >>> from village_credit.privacy.precision import shipped_event_windows
    >>> shipped_event_windows()["veto_crime_date"], shipped_event_windows()["ded_pollution_date"]
    ((36,), (24,))
    """
    used: dict[str, set[int]] = {}
    for name in list_policies():
        data = load_policy(name).to_dict()
        for section in ("deductions", "vetoes"):
            for item in (data.get(section) or {}).values():
                if isinstance(item, dict) and "event" in item:
                    used.setdefault(item["event"], set()).add(12 * int(item["window_years"]))
    return {c: tuple(sorted(w)) for c, w in used.items()}


def _small(table: pd.DataFrame, cols: Sequence[str], k: int) -> np.ndarray:
    if not len(table):
        return np.zeros(0, dtype=bool)
    sizes = table.groupby(list(cols), dropna=False, observed=True, sort=False)[cols[0]].transform("size")
    return (sizes < k).to_numpy(bool)


def _weak(table: pd.DataFrame, cols: Sequence[str], k: int, outcome: np.ndarray | None) -> np.ndarray:
    """Rows in a class on ``cols`` below ``k`` rows, or (with ``outcome``) holding one outcome value."""
    weak = np.array(_small(table, cols, k), dtype=bool)
    if outcome is not None and len(table):
        y = pd.Series(np.asarray(outcome, dtype=float), index=table.index)
        n = y.groupby([table[c] for c in cols], dropna=False, observed=True, sort=False).transform("nunique")
        weak |= (n < 2).to_numpy(bool)
    return weak


def _outcome_certain(table: pd.DataFrame, cols: Sequence[str], outcome: np.ndarray) -> np.ndarray:
    """Rows whose class on ``cols`` holds only positive outcomes (``default_12m`` = 1 for all of
    them): the holder would learn that each of them defaulted (the homogeneity attack)."""
    if not len(table):
        return np.zeros(0, dtype=bool)
    y = pd.Series(np.asarray(outcome, dtype=float), index=table.index)
    least = y.groupby([table[c] for c in cols], dropna=False, observed=True, sort=False).transform("min")
    return (least > 0).to_numpy(bool)


def _events(table: pd.DataFrame) -> list[str]:
    return event_columns(list(table.columns))


def _merge_event_bands(table: pd.DataFrame, rows: np.ndarray, cols: Sequence[str] = (),
                       qis: Sequence[str] = ()) -> np.ndarray:
    """Events of ``rows`` at the shipped policies' windows only: an event inside an item's longest
    shipped window is released at the start of its band between those cuts, older ones empty.
    Every shipped policy's rule points are unchanged (test)."""
    snap = pd.to_datetime(table["snapshot_date"].iloc[rows]).reset_index(drop=True)
    for c in _events(table):
        windows = sorted(shipped_event_windows().get(c, EVENT_WINDOW_MONTHS))
        d = pd.to_datetime(table[c].iloc[rows]).reset_index(drop=True)
        cut = {w: snap - pd.DateOffset(months=w) for w in {0, *windows}}
        out = snap.where(d > cut[windows[-1]])  # inside the longest window: band start 0 ...
        for lo in windows[:-1]:  # ... or the start of a later band
            out = out.where(~(d <= cut[lo]), cut[lo])
        out = out.where(d.notna() & (d > cut[windows[-1]]))
        table.iloc[rows, table.columns.get_loc(c)] = out.astype(table[c].dtype).to_numpy()
    return np.ones(len(rows), dtype=bool)


def _blank_rarest_event(table: pd.DataFrame, rows: np.ndarray, cols: Sequence[str] = (),
                        qis: Sequence[str] = ()) -> np.ndarray:
    """For each row in ``rows``, withhold (empty) its rarest released event cell; rows changed."""
    events = _events(table)
    if not len(rows) or not events:
        return np.zeros(len(rows), dtype=bool)
    sub = table.iloc[rows][events]
    score = np.full((len(rows), len(events)), np.inf)
    for j, c in enumerate(events):
        v = sub[c]
        freq = table[c].value_counts(dropna=True)
        score[:, j] = np.where(v.notna(), v.map(freq).to_numpy(float, na_value=np.inf), np.inf)
    pick = np.argmin(score, axis=1)
    has = np.isfinite(score[np.arange(len(rows)), pick])
    for j, c in enumerate(events):
        m = has & (pick == j)
        if m.any():
            table.iloc[rows[m], table.columns.get_loc(c)] = pd.NaT
    return has


def _history(table: pd.DataFrame) -> tuple[list[str], list[str], list[str]] | None:
    months = months_in(list(table.columns))
    dc, pc, kc = (history_columns(k, months) for k in ("due", "paid", "dpd"))
    return (dc, pc, kc) if months and set(dc + pc + kc) <= set(table.columns) else None


def _write_history(table: pd.DataFrame, rows: np.ndarray, cols: tuple[list[str], ...],
                   arrays: tuple[np.ndarray, ...]) -> None:
    for names, arr in zip(cols, arrays, strict=True):
        for j, c in enumerate(names):
            table.iloc[rows, table.columns.get_loc(c)] = arr[:, j].astype(table[c].dtype)


def _coarse_bank_figures(table: pd.DataFrame, rows: np.ndarray, cols: Sequence[str] = (),
                         qis: Sequence[str] = ()) -> np.ndarray:
    """Credit line to 50,000 yuan; balance to the line times a utilisation band (0, 1/2, 1, more)."""
    if "credit_limit_yuan" in table.columns:
        lim = table["credit_limit_yuan"].to_numpy(float)[rows]
        lim2 = np.where(lim > 0, np.maximum(np.round(lim / 50_000) * 50_000, 50_000), 0.0)
        table.iloc[rows, table.columns.get_loc("credit_limit_yuan")] = lim2
        if "balance_yuan" in table.columns:
            bal = table["balance_yuan"].to_numpy(float)[rows]
            util = np.where(lim2 > 0, bal / np.where(lim2 > 0, lim2, 1), np.where(bal > 0, 2.0, 0.0))
            band = np.select([bal <= 0, util <= 0.5, util <= 1.0], [0.0, 0.5, 1.0], 1.5)
            base = np.where(lim2 > 0, lim2, 50_000)
            table.iloc[rows, table.columns.get_loc("balance_yuan")] = band * base
    return np.ones(len(rows), dtype=bool)


def _canonical_delinquency(table: pd.DataFrame, rows: np.ndarray, cols: Sequence[str] = (),
                           qis: Sequence[str] = ()) -> np.ndarray:
    """The history of ``rows`` fully canonical: delinquent months too move (to the most recent
    months, worst last), so only counts, sums and bands remain."""
    hist = _history(table)
    if hist is not None and len(rows):
        due, paid, dpd = (table[c].to_numpy(float)[rows] for c in hist)
        order = np.argsort(dpd * 1e6 + due * 1e3 + paid, axis=1, kind="stable")
        r = np.arange(len(rows))[:, None]
        _write_history(table, rows, hist, (due[r, order], paid[r, order], dpd[r, order]))
    return np.ones(len(rows), dtype=bool)


LOAN_MONTH_BANDS: tuple[int, ...] = (12, 24, 36)
DELINQUENT_MONTHS_CAP = 1


def _minimal_history(table: pd.DataFrame, rows: np.ndarray, cols: Sequence[str] = (),
                     qis: Sequence[str] = ()) -> np.ndarray:
    """The coarsest history short of none: a loan over the whole history, and for a household
    ever delinquent one last month at 30 days past due (paid 0); line and balance "has one"."""
    return _summary_history(table, rows, cols, qis, minimal=True)


def _summary_history(table: pd.DataFrame, rows: np.ndarray, cols: Sequence[str] = (),
                     qis: Sequence[str] = (), minimal: bool = False) -> np.ndarray:
    """The history of ``rows`` as a summary: loan months rounded up to 12 / 24 / 36, each an
    instalment of 1 paid in full except, for a household ever delinquent, the last month (at
    30 days past due, or 90 when it ever reached 90, paid 0); the line and balance as "has one"."""
    hist = _history(table)
    if hist is None or not len(rows):
        return np.ones(len(rows), dtype=bool)
    due, dpd = (table[c].to_numpy(float)[rows] for c in (hist[0], hist[2]))
    months = due.shape[1]
    n_loan = (due > 0).sum(axis=1)
    bands = np.asarray([b for b in LOAN_MONTH_BANDS if b <= months] or [months])
    if minimal:
        bands = bands[-1:]
    n_loan2 = np.where(n_loan > 0, bands[np.clip(np.searchsorted(bands, n_loan), 0, len(bands) - 1)], 0)
    n_del = np.minimum((dpd > 0).sum(axis=1), DELINQUENT_MONTHS_CAP)
    n_loan2 = np.maximum(n_loan2, n_del)
    worst = np.where(dpd.max(axis=1) >= 90, 90.0, np.where(dpd.max(axis=1) > 0, 30.0, 0.0))
    if minimal:
        worst = np.minimum(worst, 30.0)
    pos = np.arange(months)[None, :]
    loan = pos >= (months - n_loan2)[:, None]
    late = pos >= (months - n_del)[:, None]
    for c in ("credit_limit_yuan", "balance_yuan"):
        if c in table.columns:
            v = table[c].to_numpy(float)[rows]
            table.iloc[rows, table.columns.get_loc(c)] = np.where(v > 0, 50_000.0, 0.0)
    _write_history(table, rows, hist, (loan.astype(float), (loan & ~late).astype(float),
                                       np.where(late, worst[:, None], 0.0)))
    return np.ones(len(rows), dtype=bool)


def _withhold_history(table: pd.DataFrame, rows: np.ndarray, cols: Sequence[str] = (),
                      qis: Sequence[str] = ()) -> np.ndarray:
    """Last resort before suppression: the bank's columns of ``rows`` withheld (no instalments,
    payments, days past due, line or balance released), so the row reads as no credit file."""
    bank = [c for names in (_history(table) or ()) for c in names]
    for c in bank + [c for c in ("credit_limit_yuan", "balance_yuan") if c in table.columns]:
        table.iloc[rows, table.columns.get_loc(c)] = np.zeros(len(rows)).astype(table[c].dtype)
    return np.ones(len(rows), dtype=bool)


@dataclass(frozen=True)
class HolderStage:
    """One protection step: what it does to the rows still small on a holder's columns."""

    counter: str
    """The :class:`HolderProtection` count it adds to (rows, or cells for a repeated step)."""
    serves: str
    """``"events"``: holders knowing event dates; ``"bank"``: holders knowing the bank's columns."""
    apply: Callable[[pd.DataFrame, np.ndarray, Sequence[str], Sequence[str]], np.ndarray]
    """``(table, rows, the holder's columns, the recoded quasi-identifiers)``: changes ``table``
    in place for ``rows``; returns which rows it changed."""
    repeat: bool = False
    """Rows stay at this step (one change a round) until it no longer changes them."""
    min_class: int = 0
    """Rows stay at this step only in a class (on the holder's columns) of at least this many rows
    holding both outcome values; else they go on (a step that must not raise the holder's figures)."""


HOLDER_STAGES: tuple[HolderStage, ...] = (
    HolderStage("event_bands_merged", "events", _merge_event_bands),
    HolderStage("event_cells_withheld", "events", _blank_rarest_event, repeat=True),
    HolderStage("bank_figures_coarsened", "bank", _coarse_bank_figures),
    HolderStage("histories_fully_canonical", "bank", _canonical_delinquency),
    HolderStage("histories_summarised", "bank", _summary_history),
    HolderStage("histories_minimal", "bank", _minimal_history, min_class=5),
    HolderStage("histories_withheld", "bank", _withhold_history),
)
"""Gentlest first. For the register keeper: events at the shipped policies' windows only (no rule
point changes), then the rarest cell withheld. For the bank: line and balance coarsened, the
history fully canonical, summarised, minimal ("ever delinquent" kept, only where its class on the
bank's columns is at least 5 and holds both outcomes, so the bank's figures do not rise), withheld
(docs/privacy.md 2b). What is left small is suppressed. Other gentler bank steps measured no
better (docs/privacy.md 5b)."""


def _serves(stage: HolderStage, cols: Sequence[str]) -> bool:
    if stage.serves == "events":
        return any(c in shipped_event_windows() or (c.endswith("_date") and c.startswith(("ded_", "veto_")))
                   for c in cols)
    return any(c.startswith(("due_m", "paid_m", "dpd_m")) or c in ("credit_limit_yuan", "balance_yuan")
               for c in cols)


@dataclass
class HolderProtection:
    """What protecting the release against the bank and the register keeper cost (counts)."""

    k: int
    event_bands_merged: int = 0
    event_cells_withheld: int = 0
    bank_figures_coarsened: int = 0
    histories_fully_canonical: int = 0
    histories_summarised: int = 0
    histories_minimal: int = 0
    histories_withheld: int = 0
    default_certain: int = 0
    """Rows sent a step further because their class on a holder's columns held only defaults
    (counted each round a row is found so, like the steps' counts)."""
    suppressed: int = 0
    rounds: int = 0


def protect_holders(released: pd.DataFrame, holders: dict[str, Sequence[str]], recoded_qis: Sequence[str],
                    k: int, holder_k: int = 2,
                    stages: Sequence[HolderStage] = HOLDER_STAGES,
                    outcome: np.ndarray | None = None,
                    ) -> tuple[pd.DataFrame, np.ndarray, HolderProtection]:
    """Make every class on each holder's released columns at least ``holder_k`` rows (2: no row
    unique), keeping the recoded quasi-identifiers' classes at least ``k``. With ``outcome``
    (``default_12m`` of the rows, 0/1), a class holding only defaults is treated like a small
    one, so no holder learns from the release that a household defaulted (issue 28 item 4).

    Each row still small (or default-certain) on a holder's columns goes one step further along
    that holder's ``stages`` (the ones serving what it knows, :data:`HOLDER_STAGES`) each round; rows past the
    last step are suppressed, and so are rows their suppression leaves in an insider class
    below ``k`` (repeated until nothing changes). Returns the table, the suppressed mask over
    its rows and the counts.
    """
    t = released.copy()
    rep = HolderProtection(k=holder_k)
    keep = np.ones(len(t), dtype=bool)
    plan = {name: [s for s in stages if _serves(s, cols)] for name, cols in holders.items()}
    step = {name: np.zeros(len(t), dtype=np.int64) for name in holders}
    for _ in range(256):
        rep.rounds += 1
        changed = False
        for name, cols in holders.items():
            cols = [c for c in cols if c in t.columns]
            if not cols:
                continue
            live = np.flatnonzero(keep)
            exposed = np.array(_small(t.iloc[live], cols, holder_k), dtype=bool)
            if outcome is not None:
                certain = _outcome_certain(t.iloc[live], cols, np.asarray(outcome)[live]) & ~exposed
                rep.default_certain += int(certain.sum())
                exposed |= certain
            for i, stage in enumerate(plan[name]):
                if stage.min_class:  # rows resting after this step: kept only in a large, mixed class
                    rest = step[name][live] == i + 1
                    if rest.any():
                        exposed |= rest & _weak(t.iloc[live], cols, stage.min_class,
                                                None if outcome is None else np.asarray(outcome)[live])
            small = live[exposed]
            if len(small):
                changed = True
            at = step[name]
            now = at[small].copy()
            keep[small[now >= len(plan[name])]] = False  # past the last step
            for i, stage in enumerate(plan[name]):
                rows = small[now == i]
                if not len(rows):
                    continue
                did = stage.apply(t, rows, cols, list(recoded_qis))
                setattr(rep, stage.counter, getattr(rep, stage.counter) + int(did.sum()))
                at[rows[~did] if stage.repeat else rows] += 1
        live = np.flatnonzero(keep)
        if recoded_qis:
            small_q = live[_small(t.iloc[live], list(recoded_qis), k)]
            if len(small_q):
                keep[small_q] = False
                changed = True
        if not changed:
            break
    rep.suppressed = int((~keep).sum())
    return t, ~keep, rep


__all__ = ["AMOUNT_STEPS", "DPD_BAND_EDGES", "EVENT_WINDOW_MONTHS", "HOLDER_STAGES",
           "HolderProtection", "HolderStage", "PrecisionReport", "event_columns", "protect_holders", "shipped_event_windows",
           "release_amounts", "release_event_dates", "release_history", "release_precision"]
