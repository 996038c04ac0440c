"""Input checks shared by the validation statistics (private)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from village_credit.errors import VillageCreditError


class ValidationInputError(VillageCreditError, ValueError):
    """Arrays handed to a validation statistic are unusable (names the argument).

    >>> from village_credit.validation import ValidationInputError, brier
    >>> try:
    ...     brier([0, 1], [0.5])
    ... except ValidationInputError as exc:
    ...     print(exc)
    p: length 1 does not match y length 2
    """


def as_binary(y: Any, name: str = "y") -> np.ndarray:
    """Outcome as an int8 array of 0/1; anything else is an error, not a guess."""
    arr = np.asarray(pd.Series(y).to_numpy(dtype=float, na_value=np.nan), dtype=float).ravel()
    if arr.size == 0:
        raise ValidationInputError(f"{name}: empty outcome array")
    if np.isnan(arr).any():
        raise ValidationInputError(f"{name}: {int(np.isnan(arr).sum())} missing outcomes")
    bad = ~np.isin(arr, (0.0, 1.0))
    if bad.any():
        raise ValidationInputError(
            f"{name}: outcomes must be 0/1, found {np.unique(arr[bad])[:5].tolist()}")
    return arr.astype(np.int8)


def as_float(x: Any, n: int, name: str, *, prob: bool = False) -> np.ndarray:
    """Scores or probabilities as finite floats of length ``n``."""
    arr = np.asarray(pd.Series(x).to_numpy(dtype=float, na_value=np.nan), dtype=float).ravel()
    if arr.shape[0] != n:
        raise ValidationInputError(f"{name}: length {arr.shape[0]} does not match y length {n}")
    if not np.isfinite(arr).all():
        raise ValidationInputError(f"{name}: {int((~np.isfinite(arr)).sum())} missing or "
                                   "infinite values")
    if prob and ((arr < 0) | (arr > 1)).any():
        raise ValidationInputError(f"{name}: probabilities must lie in [0, 1]")
    return arr


def both_classes(y: np.ndarray, name: str = "y") -> None:
    """Discrimination needs at least one default and one non-default."""
    n1 = int(y.sum())
    if n1 == 0 or n1 == y.size:
        raise ValidationInputError(
            f"{name}: needs both defaults and non-defaults (got {n1} of {y.size})")


def as_grades(grades: Any, n: int, grade_order: Sequence[Any], name: str = "grades") -> np.ndarray:
    """Grades as an object array; every grade must be listed in ``grade_order``."""
    arr = np.asarray(pd.Series(grades).astype(object).to_numpy(), dtype=object).ravel()
    if arr.shape[0] != n:
        raise ValidationInputError(f"{name}: length {arr.shape[0]} does not match y length {n}")
    order = list(grade_order)
    if len(set(order)) != len(order):
        raise ValidationInputError("grade_order: contains duplicates")
    unknown = pd.unique(pd.Series(arr)[~pd.Series(arr).isin(order)])
    if len(unknown):
        raise ValidationInputError(
            f"{name}: grades {list(unknown)[:5]} are not in grade_order {order}")
    return arr
