"""k-anonymity and l-diversity: measure them, and generalise a table until k holds (globally).

The anonymiser now uses *local* recoding (recoding.py) over the declared threat
model's quasi-identifiers; the measurements here (class sizes, k, l) are shared, and
:func:`generalise_until_k` stays as the simple global alternative.

Why global recoding with Datafly-style greedy steps: the released table must stay
usable by the rules engine and the models, so every household of a column is
generalised the same way (one age-band scheme for the whole file, never one per
village), the ladder of each quasi-identifier is short and meaningful (age bands that
keep the policies' age cut-offs, amounts rounded to coarser steps), and the few
households still in classes smaller than ``k`` are suppressed and counted, not
hidden. All measurements are vectorised ``groupby`` passes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from village_credit.privacy.errors import KAnonymityError

AGE_POLICY_CUTS: tuple[int, ...] = (18, 61, 66)
"""Age edges every band scheme keeps: 18-60 (Jinxiang) and 18-65 (XX county) eligibility
stay exact after banding, so rule decisions do not move with the generalisation."""

AGE_BAND_LADDER: tuple[tuple[int, ...], ...] = (
    (18, 21, 26, 31, 36, 41, 46, 51, 56, 61, 66, 71, 76, 81, 101),  # ~5-year bands
    (18, 26, 36, 46, 56, 61, 66, 71, 81, 101),                     # ~10-year bands
    (18, 31, 46, 61, 66, 81, 101),                                 # ~15-year bands
    (18, 41, 61, 66, 101),                                         # broad bands
)
"""Band lower edges (last value = exclusive upper bound) per generalisation level."""


@dataclass(frozen=True)
class Hierarchy:
    """Generalisation ladder of one quasi-identifier; level 0 is the value as is.

    ``levels[i]`` maps a column to its level ``i + 1`` generalisation; the output keeps
    the column's type so the released table still fits the household schema.
    """

    column: str
    levels: tuple[Callable[[pd.Series], pd.Series], ...]
    descriptions: tuple[str, ...]

    @property
    def max_level(self) -> int:
        return len(self.levels)

    def apply(self, s: pd.Series, level: int) -> pd.Series:
        return s if level == 0 else self.levels[level - 1](s)

    def describe(self, level: int) -> str:
        return "exact" if level == 0 else self.descriptions[level - 1]


def band_midpoints(s: pd.Series, edges: Sequence[int]) -> pd.Series:
    """Replace each value by the integer midpoint of its band (``[lo, hi)``); outside -> as is."""
    arr = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
    e = np.asarray(edges, dtype=float)
    pos = np.searchsorted(e, arr, side="right") - 1
    inside = (pos >= 0) & (pos < len(e) - 1) & ~np.isnan(arr)
    lo = e[np.clip(pos, 0, len(e) - 2)]
    hi = e[np.clip(pos + 1, 1, len(e) - 1)] - 1
    mid = np.floor((lo + hi) / 2)
    out = np.where(inside, mid, arr)
    return pd.Series(out, index=s.index).astype(s.dtype if s.dtype.kind in "iuf" else "Int64")


def band_labels(s: pd.Series, edges: Sequence[int]) -> pd.Series:
    """Readable band labels ("36-45") for reports and fairness tables."""
    e = list(edges)
    labels = [f"{lo}-{hi - 1}" for lo, hi in zip(e[:-1], e[1:], strict=True)]
    return pd.cut(pd.to_numeric(s, errors="coerce"), bins=e, right=False, labels=labels).astype("string")


def age_hierarchy(column: str = "head_age",
                  ladder: Sequence[Sequence[int]] = AGE_BAND_LADDER) -> Hierarchy:
    """Age -> band midpoints, coarser at each level (edges in :data:`AGE_BAND_LADDER`)."""
    def make(edges: Sequence[int]) -> Callable[[pd.Series], pd.Series]:
        return lambda s: band_midpoints(s, edges)
    descr = tuple(
        "bands " + ", ".join(f"{lo}-{hi - 1}" for lo, hi in zip(e[:-1], e[1:], strict=True))
        + " (released as band midpoints)"
        for e in ladder
    )
    return Hierarchy(column, tuple(make(e) for e in ladder), descr)


def rounding_hierarchy(column: str, steps: Sequence[float] = (100, 1_000, 10_000, 100_000)) -> Hierarchy:
    """Amount -> rounded to coarser steps (yuan); keeps the column numeric."""
    def make(step: float) -> Callable[[pd.Series], pd.Series]:
        return lambda s: (pd.to_numeric(s, errors="coerce") / step).round() * step
    return Hierarchy(column, tuple(make(st) for st in steps),
                     tuple(f"rounded to {st:g}" for st in steps))


def identity_hierarchy(column: str) -> Hierarchy:
    """A quasi-identifier that is never generalised (e.g. village code, gender): only suppression."""
    return Hierarchy(column, (), ())


def default_hierarchies() -> dict[str, Hierarchy]:
    """Ladders for the household table's usual quasi-identifiers."""
    h: dict[str, Hierarchy] = {"head_age": age_hierarchy()}
    for col in ("assets_yuan", "private_debt_yuan", "balance_yuan", "credit_limit_yuan"):
        h[col] = rounding_hierarchy(col, (1_000, 10_000, 100_000))
    for src in ("farming", "livestock", "migrant", "business", "pension_subsidy"):
        h[f"income_{src}"] = rounding_hierarchy(f"income_{src}", (1_000, 10_000, 100_000))
    h["land_mu"] = rounding_hierarchy("land_mu", (1, 5, 25))
    return h


# --- measurement ---------------------------------------------------------------

def _check_columns(df: pd.DataFrame, cols: Sequence[str]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise KAnonymityError(f"quasi-identifier or sensitive column(s) not in the table: {missing}")


def class_sizes(df: pd.DataFrame, quasi_identifiers: Sequence[str]) -> pd.Series:
    """Size of each row's equivalence class (rows sharing all quasi-identifier values)."""
    qis = list(quasi_identifiers)
    _check_columns(df, qis)
    if not qis:
        return pd.Series(len(df), index=df.index, dtype="int64")
    return df.groupby(qis, dropna=False, observed=True, sort=False)[qis[0]].transform("size").astype("int64")


def k_anonymity(df: pd.DataFrame, quasi_identifiers: Sequence[str]) -> int:
    """The k the table achieves: its smallest equivalence class (0 for an empty table)."""
    if len(df) == 0:
        return 0
    return int(class_sizes(df, quasi_identifiers).min())


def diversity_table(df: pd.DataFrame, quasi_identifiers: Sequence[str], sensitive: str) -> pd.DataFrame:
    """One row per equivalence class: ``size`` and ``distinct`` sensitive values."""
    qis = list(quasi_identifiers)
    _check_columns(df, [*qis, sensitive])
    g = df.groupby(qis, dropna=False, observed=True, sort=False)[sensitive]
    return pd.DataFrame({"size": g.size(), "distinct": g.nunique(dropna=False)}).reset_index()


def l_diversity(df: pd.DataFrame, quasi_identifiers: Sequence[str], sensitive: str) -> int:
    """Distinct l-diversity: the fewest distinct sensitive values in any class (0 if empty)."""
    if len(df) == 0:
        return 0
    return int(diversity_table(df, quasi_identifiers, sensitive)["distinct"].min())


# --- generalisation ------------------------------------------------------------

@dataclass
class KAnonResult:
    """Outcome of :func:`generalise_until_k`.

    ``data``: released rows (generalised, suppressed rows removed, index kept);
    ``suppressed``: mask over the input index; ``levels``: chosen level per QI;
    ``n_generalised``: released rows with at least one QI value changed;
    ``trace``: (levels, rows in small classes) after each step, for the report.
    """

    data: pd.DataFrame
    suppressed: pd.Series
    levels: dict[str, int]
    descriptions: dict[str, str]
    k_required: int
    k_achieved: int
    n_generalised: int
    trace: list[tuple[dict[str, int], int]] = field(default_factory=list)

    @property
    def n_suppressed(self) -> int:
        return int(self.suppressed.sum())


def generalise_until_k(
    df: pd.DataFrame,
    quasi_identifiers: Sequence[str],
    k: int,
    hierarchies: Mapping[str, Hierarchy] | None = None,
    *,
    max_suppression: float = 0.05,
) -> KAnonResult:
    """Generalise quasi-identifiers (global recoding) until at most ``max_suppression`` of
    the rows sit in classes smaller than ``k``; then suppress those rows.

    Greedy (Datafly): each step coarsens the QI with the most distinct values among
    those with levels left (``hierarchies`` default: :func:`default_hierarchies`). QIs
    without a hierarchy are only ever suppressed on. The
    released table is k-anonymous on the QIs by construction (``k_achieved >= k``
    unless nothing is left).
    """
    if k < 1:
        raise KAnonymityError(f"k must be at least 1, got {k}")
    if not 0 <= max_suppression <= 1:
        raise KAnonymityError(f"max_suppression must be within 0..1, got {max_suppression}")
    qis = list(quasi_identifiers)
    _check_columns(df, qis)
    hierarchies = default_hierarchies() if hierarchies is None else hierarchies
    hier = {q: hierarchies.get(q) or identity_hierarchy(q) for q in qis}
    levels = {q: 0 for q in qis}
    current = df
    trace: list[tuple[dict[str, int], int]] = []
    n = len(df)
    budget = max_suppression * n
    while True:
        small = class_sizes(current, qis) < k if n else pd.Series(False, index=df.index)
        n_small = int(small.sum())
        trace.append((dict(levels), n_small))
        if n_small <= budget:
            break
        open_qis = [q for q in qis if levels[q] < hier[q].max_level]
        if not open_qis:
            break
        q = max(open_qis, key=lambda c: (current[c].nunique(dropna=False), -qis.index(c)))
        levels[q] += 1
        current = current.assign(**{q: hier[q].apply(df[q], levels[q])})
    released = current.loc[~small]
    changed = pd.Series(False, index=released.index)
    for q in qis:
        if levels[q]:
            a, b = released[q], df.loc[released.index, q]
            changed |= ~((a == b).fillna(False) | (a.isna() & b.isna())).to_numpy(dtype=bool)
    return KAnonResult(
        data=released,
        suppressed=small.astype(bool),
        levels=levels,
        descriptions={q: hier[q].describe(levels[q]) for q in qis},
        k_required=k,
        k_achieved=k_anonymity(released, qis),
        n_generalised=int(changed.sum()),
        trace=trace,
    )
