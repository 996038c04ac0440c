"""Top-k reason codes from a contributions matrix."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from village_credit.models.reasons import compact_strings, reasons_long, top_reasons


def test_top_reasons_small_example() -> None:
    c = np.array([[-3.0, 1.0, 0.0, 5.0, -1.0],
                  [0.0, 0.0, 0.0, 0.0, 0.0],
                  [2.0, 2.0, -4.0, 1.0, 3.0]])
    t = top_reasons(c, 2)
    assert t.down_idx.tolist() == [[0, 4], [-1, -1], [2, -1]]
    assert t.up_idx.tolist() == [[3, 1], [-1, -1], [4, 0]]  # tie 2.0/2.0: lower column first
    np.testing.assert_array_equal(t.down_pts[0], [-3.0, -1.0])
    codes = ["a", "b", "c", "d", "e"]
    s = compact_strings(t.down_idx, t.down_pts, codes)
    assert s.tolist() == ["a:-3.0;e:-1.0", "", "c:-4.0"]
    long = reasons_long(["h1", "h2", "h3"], t, codes, {"a": {"en": "A", "zh": "甲"}})
    assert len(long) == 7
    row = long[(long.household_id == "h1") & (long.direction == "down") & (long["rank"] == 1)].iloc[0]
    assert (row.code, row.label_en, row.label_zh, row.points) == ("a", "A", "甲", -3.0)


def test_k_larger_than_columns() -> None:
    t = top_reasons(np.array([[1.0, -2.0]]), 5)
    assert t.up_idx.shape == (1, 5) and t.up_idx[0].tolist() == [0, -1, -1, -1, -1]


@settings(max_examples=80, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 20), st.integers(1, 12)),
                  elements=st.floats(-50, 50, allow_nan=False)),
       st.integers(1, 6))
def test_top_reasons_match_sorting(c: np.ndarray, k: int) -> None:
    t = top_reasons(c, k)
    for i in range(c.shape[0]):
        pos = sorted([(-v, j) for j, v in enumerate(c[i]) if v > 0])[:k]
        neg = sorted([(v, j) for j, v in enumerate(c[i]) if v < 0])[:k]
        assert [j for _, j in pos] == [j for j in t.up_idx[i] if j >= 0]
        assert [j for _, j in neg] == [j for j in t.down_idx[i] if j >= 0]
        np.testing.assert_array_equal(t.up_pts[i][t.up_idx[i] >= 0], c[i, [j for _, j in pos]])
