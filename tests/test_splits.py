"""Village-grouped splits never share a village between sides."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from village_credit.errors import ConfigError
from village_credit.models.splits import out_of_time, split_by_village, village_group_kfold


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n_villages=st.integers(6, 40), n_splits=st.integers(2, 5))
def test_group_kfold_never_shares_villages(seed, n_villages, n_splits):
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, n_villages, 400).astype(str)
    y = (rng.random(400) < 0.2).astype(int)
    if len(np.unique(groups)) < n_splits:
        return
    folds = village_group_kfold(y, groups, n_splits=n_splits, seed=seed)
    assert len(folds) == n_splits
    seen = np.zeros(400, dtype=int)
    for tr, va in folds:
        assert not set(groups[tr]) & set(groups[va])
        seen[va] += 1
    assert (seen == 1).all()  # every row validated exactly once


def test_group_kfold_too_few_villages():
    with pytest.raises(ConfigError, match="village"):
        village_group_kfold([0, 1, 0], ["a", "a", "b"], n_splits=3)


def test_split_by_village_disjoint_and_sized():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"village_code": rng.integers(0, 200, 10_000).astype(str)})
    s = split_by_village(df, (0.6, 0.2, 0.2), seed=1)
    parts = [set(df.village_code.iloc[ix]) for ix in (s.train, s.calibration, s.holdout)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert len(s.train) + len(s.calibration) + len(s.holdout) == len(df)
    assert abs(len(s.train) / len(df) - 0.6) < 0.03 and abs(len(s.holdout) / len(df) - 0.2) < 0.03
    s2 = split_by_village(df, (0.6, 0.2, 0.2), seed=1)
    np.testing.assert_array_equal(s.train, s2.train)


def test_out_of_time():
    df = pd.DataFrame({"vintage": [1, 1, 2, 2, 2]})
    a, b = out_of_time(df)
    assert len(a) == 2 and len(b) == 3
    with pytest.raises(ConfigError):
        out_of_time(df, oot_vintage=3)
