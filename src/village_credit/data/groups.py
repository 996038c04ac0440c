"""Protected groups of households: the one definition every layer uses.

Why here, in ``data``: the groups are facts about two columns of the household table
(``head_age``, ``formerly_poor``), and the layers that need them sit at every height:
the ``age_band_60plus`` model feature (models), the anonymiser's bands that must never
cross a fairness band (privacy, beside data), the fairness audit, the SHAP group plots,
the validation kit and the runner. Each imports the cut-offs from here, so a change of
the elderly age or of a band edge reaches every table at once.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from village_credit.errors import FairnessInputError

__all__ = [
    "AGE_BANDS", "AGE_BAND_EDGES", "AGE_BAND_RANGES", "ELDERLY_AGE", "FORMERLY_POOR",
    "NOT_FORMERLY_POOR", "OTHER", "PROTECTED_ATTRIBUTES", "SUPPORT_AGE_BANDS", "SUPPORT_GROUPS",
    "age_band", "bool_column", "group_order", "require_column", "support_groups",
]

ELDERLY_AGE = 60
"""Head-of-household age from which a household counts as elderly (60+)."""

AGE_BAND_RANGES: tuple[tuple[str, int, int], ...] = (
    ("18-40", 0, 41), ("41-59", 41, ELDERLY_AGE), (f"{ELDERLY_AGE}-64", ELDERLY_AGE, 65),
    ("65-69", 65, 70), ("70+", 70, 200))
"""The one set of age bands (label, lower age inclusive, upper exclusive), youngest first.

Every table that splits households by the head's age uses these: the fairness audit,
calibration by group, outcome support, the validation kit's segments, the anonymiser's
cuts and the runner's summary (issue 25 chose them: the elderly bands are where the
eligibility rules cut, at 60, 65 and 70)."""

AGE_BANDS: tuple[str, ...] = tuple(b[0] for b in AGE_BAND_RANGES)
"""The age-band labels, youngest first: the order every report lists them in."""

AGE_BAND_EDGES: tuple[int, ...] = tuple(b[1] for b in AGE_BAND_RANGES[1:])
"""Ages at which a new band starts (41, 60, 65, 70); an anonymised age never crosses 60 and the
others only where a village's class would otherwise fall below k (privacy.recoding)."""

PROTECTED_ATTRIBUTES: tuple[str, ...] = ("head_age", "formerly_poor")
"""Household-table columns that define the protected groups."""

FORMERLY_POOR = "formerly_poor"
NOT_FORMERLY_POOR = "not formerly poor"
OTHER = "other"

SUPPORT_AGE_BANDS: tuple[tuple[str, int, int], ...] = tuple(b for b in AGE_BAND_RANGES if b[1] >= ELDERLY_AGE)
"""The elderly bands of :data:`AGE_BAND_RANGES`: outcome support and group recalibration."""

SUPPORT_GROUPS: tuple[str, ...] = tuple(b[0] for b in SUPPORT_AGE_BANDS) + (FORMERLY_POOR,)
"""The protected groups whose outcome support is checked (intersections are derived)."""


def age_band(age: np.ndarray | pd.Series) -> np.ndarray:
    """Age band labels :data:`AGE_BANDS` (vectorised); a missing age falls in the youngest band.

    >>> list(age_band([30, 45, 60, 64, 65, 72]))
    ['18-40', '41-59', '60-64', '60-64', '65-69', '70+']
    """
    a = np.asarray(age, dtype=float)
    return np.select([a < hi for _, _, hi in AGE_BAND_RANGES[:-1]], list(AGE_BANDS[:-1]),
                     default=AGE_BANDS[-1]).astype(object)


def group_order(label: object) -> tuple[int, float, str]:
    """Sort key of a group label: age groups by age, youngest first (``<60`` before
    ``60+``, ``18-40`` before ``70+``; also as the head of an ``a|b`` intersection), then
    every other label alphabetically.

    >>> sorted(["formerly_poor", "70+", "60+", "<60", "18-40|other", "60-64", "41-59"], key=group_order)
    ['<60', '18-40|other', '41-59', '60+', '60-64', '70+', 'formerly_poor']
    """
    text = str(label)
    m = _AGE_LABEL.fullmatch(text.split("|", 1)[0])
    if m is None:
        return (1, 0.0, text)
    younger = m.group(1) in ("<", "<=")  # "<60", "<=60": everyone below the cut
    return (0, 0.0 if younger else float(m.group(2)), text)


_AGE_LABEL = re.compile(r"(<=|<|>=|>)?(\d+)(\+|-\d+)?")


def require_column(households: pd.DataFrame, column: str) -> pd.Series:
    """The column, refusing a missing column or missing values (groups are never guessed)."""
    if column not in households.columns:
        raise FairnessInputError(f"sensitive column {column!r} is missing from the household table")
    col = households[column]
    n_missing = int(col.isna().sum())
    if n_missing:
        raise FairnessInputError(
            f"sensitive column {column!r} has {n_missing} missing value(s) of {len(col)}; "
            "fairness groups cannot be formed (refusing to drop households silently)"
        )
    return col


def bool_column(col: pd.Series, column: str) -> np.ndarray:
    """Formerly-poor flags may arrive as bool, 0/1, or 'true'/'false' strings (CSV)."""
    if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
        vals = col.to_numpy()
        if pd.api.types.is_numeric_dtype(col) and not np.isin(vals.astype(float), (0.0, 1.0)).all():
            raise FairnessInputError(f"sensitive column {column!r} must be boolean (0/1), got other numbers")
        return vals.astype(bool)
    s = col.astype(str).str.strip().str.lower()
    mapping = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    bad = ~s.isin(list(mapping))
    if bad.any():
        raise FairnessInputError(
            f"sensitive column {column!r} has {int(bad.sum())} value(s) that are not boolean, "
            f"e.g. {col[bad].iloc[0]!r}"
        )
    return s.map(mapping).to_numpy(dtype=bool)


def support_groups(households: pd.DataFrame) -> pd.DataFrame:
    """Boolean membership (one column per :data:`SUPPORT_GROUPS`), index aligned to the input.

    The groups overlap (a 70+ household may be formerly poor): the columns are
    indicators, not one label per household.
    """
    age = require_column(households, "head_age").to_numpy(dtype=float)
    poor = bool_column(require_column(households, "formerly_poor"), "formerly_poor")
    cols = {name: (age >= lo) & (age < hi) for name, lo, hi in SUPPORT_AGE_BANDS}
    cols[FORMERLY_POOR] = poor
    return pd.DataFrame(cols, index=households.index)
