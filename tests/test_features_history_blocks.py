"""The history features computed on blocks of rows are the whole-table ones, bit for bit.

``household_feature_arrays`` reduces the four monthly history matrices block by block
(cache-sized, issue 31); a row sum depends on the order the months are added in, which
depends on the matrix layout, so each block must have the layout of the whole table's
matrix. These tests compare with :func:`_history_stats` of the whole-table matrices
(pandas' ``to_numpy``), on values whose sums round differently in another order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from village_credit.data.schema import history_columns
from village_credit.models import features as F

_KINDS = ("due", "paid", "dpd", "utility_late")


def _frame(n: int, months: int, seed: int, holes: bool) -> pd.DataFrame:
    """History columns with many decimals (row sums sensitive to the order of addition)."""
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {}
    for k in _KINDS:
        for c in history_columns(k, months):
            if k == "dpd":
                v = rng.integers(0, 3, n) * rng.integers(0, 90, n)
                cols[c] = v.astype(np.int64)
            else:
                v = rng.random(n) * 10 ** rng.integers(0, 6, n) * (rng.random(n) > 0.3)
                if holes:
                    v[rng.random(n) < 0.05] = np.nan
                    v[rng.random(n) < 0.01] = np.inf
                cols[c] = v
    return pd.DataFrame(cols)


def _whole(df: pd.DataFrame, months: int) -> dict[str, np.ndarray]:
    mats = [F._history_matrix(df, history_columns(k, months)) for k in _KINDS]
    return F._history_stats(*mats, months)


@pytest.mark.parametrize("n", [0, 1, 2, 7, 8, 9, 15, 16, 17, 50])
@pytest.mark.parametrize("holes", [False, True])
def test_blocks_are_the_whole_table_bit_for_bit(monkeypatch: pytest.MonkeyPatch, n: int, holes: bool) -> None:
    monkeypatch.setattr(F, "_HISTORY_BLOCK_ROWS", 8)  # many blocks, a last block of one row
    months = 13
    df = _frame(n, months, seed=n, holes=holes)
    hist = {k: history_columns(k, months) for k in _KINDS}
    got, want = F._history_features(df, hist, months), _whole(df, months)
    assert list(got) == list(want)
    for k in want:
        assert got[k].dtype == want[k].dtype and got[k].shape == (n,), k
        assert got[k].tobytes() == want[k].tobytes(), k


def test_a_column_of_another_dtype_keeps_the_whole_table_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A nullable-integer month (missing cells as ``pd.NA``) reads as pandas reads it."""
    monkeypatch.setattr(F, "_HISTORY_BLOCK_ROWS", 8)
    months = 6
    df = _frame(30, months, seed=3, holes=False)
    df["dpd_m02"] = pd.array([None if i % 7 == 0 else i for i in range(30)], dtype="Int64")
    hist = {k: history_columns(k, months) for k in _KINDS}
    got, want = F._history_features(df, hist, months), _whole(df, months)
    for k in want:
        assert got[k].tobytes() == want[k].tobytes(), k
    assert np.isfinite(got["worst_dpd"]).all()  # the missing months count as 0
