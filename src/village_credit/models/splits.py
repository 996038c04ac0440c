"""Village-grouped splits and the out-of-time split.

Why by village: households of one village share a review panel, a local economy and
shocks, so a model validated on households from villages it trained on looks better
than it is on a new village. Every split here keeps a village on one side only.
Out of time: the second vintage (a later review with drift) is the honest test of
a model fit on the first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from village_credit.errors import ConfigError, SchemaError


def village_group_kfold(
    y: Sequence[int] | np.ndarray, groups: Sequence[str] | np.ndarray, n_splits: int = 3, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified K-fold over villages: ``[(train_positions, valid_positions), ...]``.

    No village appears in both the train and validation side of a fold; default rates
    are kept close across folds (``StratifiedGroupKFold``, shuffled with ``seed``).
    """
    y = np.asarray(y)
    groups = np.asarray(groups)
    if len(y) != len(groups):
        raise SchemaError(f"village_group_kfold: y has {len(y)} rows, groups has {len(groups)}")
    n_groups = len(np.unique(groups))
    if n_groups < n_splits:
        raise ConfigError(f"village_group_kfold: {n_groups} village(s) cannot make {n_splits} folds")
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return [(tr, va) for tr, va in cv.split(np.zeros(len(y)), y, groups)]


@dataclass(frozen=True)
class VillageSplit:
    """Row positions of the train / calibration / hold-out parts; villages never straddle parts."""

    train: np.ndarray
    calibration: np.ndarray
    holdout: np.ndarray

    def frames(self, df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """The three parts of ``df`` (original index kept)."""
        return df.iloc[self.train], df.iloc[self.calibration], df.iloc[self.holdout]


def split_by_village(
    households: pd.DataFrame,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    seed: int = 0,
    group_col: str = "village_code",
) -> VillageSplit:
    """Train / calibration / hold-out split by whole villages, about ``fractions`` of households.

    Villages are shuffled with ``seed`` and assigned in order until each part's share
    of households is reached, so the shares are approximate (a village is indivisible).

    Examples
    --------
    >>> from village_credit.data import GeneratorConfig, generate_households
    >>> from village_credit.models import split_by_village
    >>> hh = generate_households(GeneratorConfig(n_households=300, seed=7))
    >>> train, calib, holdout = split_by_village(hh, seed=0).frames(hh)
    >>> len(train), len(calib), len(holdout)
    (182, 57, 61)
    >>> set(train["village_code"]) & set(holdout["village_code"])  # no village in two parts
    set()
    """
    if group_col not in households.columns:
        raise SchemaError(f"split_by_village: household table lacks column {group_col!r}")
    f = np.asarray(fractions, dtype=float)
    if f.shape != (3,) or np.any(f < 0) or not np.isclose(f.sum(), 1.0):
        raise ConfigError(f"split_by_village: fractions must be 3 non-negative shares summing to 1, got {fractions}")
    codes, uniques = pd.factorize(households[group_col], sort=True)
    if np.any(codes < 0):
        raise SchemaError(f"split_by_village: {group_col!r} has missing values")
    order = np.random.default_rng(seed).permutation(len(uniques))
    sizes = np.bincount(codes, minlength=len(uniques))[order]
    cum = np.cumsum(sizes) / sizes.sum()
    # village k goes to the part whose cumulative share its midpoint falls in
    mid = cum - sizes / sizes.sum() / 2
    part_of_ordered = np.searchsorted(np.cumsum(f)[:2], mid, side="right")
    part = np.empty(len(uniques), dtype=int)
    part[order] = part_of_ordered
    row_part = part[codes]
    return VillageSplit(*(np.flatnonzero(row_part == k) for k in range(3)))


def out_of_time(
    households: pd.DataFrame, oot_vintage: int | None = 2, vintage_col: str = "vintage"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(in_time, out_of_time)``: rows of earlier vintages and of ``oot_vintage`` (None = latest)."""
    if vintage_col not in households.columns:
        raise SchemaError(f"out_of_time: household table lacks column {vintage_col!r}")
    v = households[vintage_col].to_numpy()
    target = int(np.max(v)) if oot_vintage is None else oot_vintage
    oot = v == target
    if not oot.any():
        raise ConfigError(f"out_of_time: no rows with {vintage_col} == {target}")
    return households.loc[v < target], households.loc[oot]
