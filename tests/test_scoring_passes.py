"""The fifth pass over batch scoring (issue 31): each cut gives what the code it replaced gave.

Per-chunk programme sums keyed by integer codes, both reason directions picked in one
pass, reason texts joined by one Arrow concatenation, the input's digest and duplicate
pass beside the model load, and the garbage collector's freeze around the chunks.
"""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from village_credit._lazy import frozen_gc
from village_credit.models.reasons import _top, _top_pair, join_present, reason_strings
from village_credit.rules import report
from village_credit.rules.report import village_sums
from village_credit.scoring.batch import StageClock, _PrePass
from village_credit.scoring.guards import duplicate_ids, input_digest

L = pa.large_string()


def _groupby_sums(households: pd.DataFrame, decisions: pd.DataFrame, outcome: object) -> pd.DataFrame:
    """``village_sums`` with the code path switched off: the text-keyed groupby it replaced."""
    fast = report._sums_by_codes
    report._sums_by_codes = lambda *args: None
    try:
        return village_sums(households, decisions, outcome, points_column="points")
    finally:
        report._sums_by_codes = fast


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 400), n_villages=st.integers(1, 30), seed=st.integers(0, 2 ** 31),
       missing=st.sampled_from([0.0, 0.05, 1.0]), with_outcome=st.booleans())
def test_village_sums_by_codes_equal_the_text_groupby(n: int, n_villages: int, seed: int, missing: float,
                                                       with_outcome: bool) -> None:
    rng = np.random.default_rng(seed)
    village = pd.array(rng.choice([f"V{i:02d}" for i in range(n_villages)] + ["Ü", "v"], n), dtype="str")
    village[rng.random(n) < missing] = None
    households = pd.DataFrame({"township_code": pd.array(rng.choice(["T2", "T1", "Tö"], n), dtype="str"),
                               "village_code": village})
    decisions = pd.DataFrame({
        "points": np.where(rng.random(n) < 0.1, np.nan, rng.normal(50, 10, n)),
        "eligible": rng.random(n) < 0.8,
        "grade": pd.array(rng.choice(["A1", "A2", "B1", None], n), dtype="str"),
        "approved": rng.random(n) < 0.7,
        "credit_line": rng.normal(3e4, 1e4, n),  # not whole numbers: the float sums must match bit for bit
    })
    outcome = np.where(rng.random(n) < 0.3, np.nan, rng.random(n) < 0.1) if with_outcome else None
    got = village_sums(households, decisions, outcome, points_column="points")
    want = _groupby_sums(households, decisions, outcome)
    assert got.equals(want)
    assert list(got.dtypes) == list(want.dtypes) and got.columns.equals(want.columns)
    assert got.index.equals(want.index)


def test_village_sums_take_the_code_path_for_text_keys() -> None:
    households = pd.DataFrame({"township_code": pd.array(["T1", "T1", "T2"], dtype="str"),
                               "village_code": pd.array(["V2", "V1", "V2"], dtype="str")})
    decisions = pd.DataFrame({"points": [1.0, 2.0, np.nan], "eligible": True, "grade": ["A1", "B1", None],
                              "approved": [True, False, False], "credit_line": [1.5, 2.5, 0.0]})
    results: list[object] = []
    fast = report._sums_by_codes
    report._sums_by_codes = lambda *args: results.append(fast(*args)) or results[-1]
    try:
        got = village_sums(households, decisions, points_column="points")
    finally:
        report._sums_by_codes = fast
    assert len(results) == 1 and results[0] is not None  # not the groupby's fallback
    assert got[["township_code", "village_code"]].values.tolist() == [["T1", "V1"], ["T1", "V2"], ["T2", "V2"]]
    assert got["credit_line_total"].tolist() == [0.0, 1.5, 0.0]


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 300), m=st.integers(0, 12), k=st.integers(0, 5), seed=st.integers(0, 2 ** 31),
       decimals=st.integers(0, 2))
def test_both_directions_in_one_pass_pick_what_two_passes_picked(n: int, m: int, k: int, seed: int,
                                                                  decimals: int) -> None:
    rng = np.random.default_rng(seed)
    c = np.round(rng.normal(0, 3, (n, m)), decimals)  # rounding makes ties
    for value, share in ((np.nan, 0.05), (-0.0, 0.05), (np.inf, 0.02), (-np.inf, 0.02), (0.0, 0.1)):
        c[rng.random((n, m)) < share] = value
    want = (*_top(-c, k), *_top(c, k))
    got = _top_pair(c, k)
    for w, g in zip(want, got, strict=True):
        assert w.shape == g.shape and w.dtype == g.dtype
        assert np.array_equal(w, g, equal_nan=True)


def _joined(*parts: list[str | None]) -> list[str]:
    """The reference: each row's non-empty texts joined with ';' (a missing text is empty)."""
    return [";".join(p for p in row if p) for row in zip(*parts, strict=True)]


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.lists(st.sampled_from(["", "a", "veto:x;veto:y", "m:+1.0", "长", None]),
                              min_size=4, max_size=4), max_size=60),
       n_parts=st.integers(1, 4))
def test_join_present_joins_the_non_empty_texts(rows: list[list[str | None]], n_parts: int) -> None:
    parts = [[r[j] for r in rows] for j in range(n_parts)]
    got = join_present(*[pa.array(p, type=L) for p in parts])
    assert got.type == L and got.null_count == 0
    assert got.to_pylist() == _joined(*parts)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 200), k=st.integers(1, 4), seed=st.integers(0, 2 ** 31), prefix=st.booleans())
def test_reason_strings_join_the_used_ranks(n: int, k: int, seed: int, prefix: bool) -> None:
    rng = np.random.default_rng(seed)
    codes = [f"c{i}" for i in range(9)]
    idx = rng.integers(-1, 9, (n, k))
    if prefix:  # as the top-k passes give them: a row's picks come first
        idx = np.where(np.arange(k) < rng.integers(0, k + 1, n)[:, None], np.abs(idx), -1)
    pts = np.round(rng.normal(0, 20, (n, k)), 2)
    got = reason_strings(idx, pts, codes).to_pylist()
    want = []
    for r in range(n):
        used = []
        for j in range(k):  # the longest run of ranks with a piece, from the first
            if idx[r, j] < 0:
                break
            used.append(f"{codes[idx[r, j]]}:{format(pts[r, j], '+.1f')}")
        want.append(";".join(used))
    assert got == want


def test_prepass_gives_the_plain_digest_and_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "ids.parquet"
    ids = [f"H{i % 7}" if i % 3 == 0 else f"H{i}" for i in range(500)]
    pd.DataFrame({"household_id": ids, "own_id": ids[::-1], "x": np.arange(500)}).to_parquet(path)
    clock = StageClock()
    with _PrePass(path, clock) as early:
        assert early.digest() == input_digest(path)
        assert early.duplicate_ids("household_id") == duplicate_ids(path, "household_id")
        assert early.duplicate_ids("own_id") == duplicate_ids(path, "own_id")  # another id column: after the load
    assert duplicate_ids(path, "household_id")  # the file has duplicates to find
    assert clock.seconds["duplicate_ids"] > 0


def test_gc_freeze_lasts_the_run_and_is_shared() -> None:
    assert gc.get_freeze_count() == 0
    # counts, not equalities: a frozen object freed by its reference count leaves the frozen set
    with frozen_gc():
        assert gc.get_freeze_count() > 0
        with frozen_gc():  # an overlapping run: nothing unfrozen under the first
            assert gc.get_freeze_count() > 0
        assert gc.get_freeze_count() > 0  # the inner run's end did not unfreeze the outer's
    assert gc.get_freeze_count() == 0


def test_gc_freeze_leaves_what_was_frozen_before_it() -> None:
    """The CLI program freezes its start-up (``freeze_after_imports``): a run inside it
    must not unfreeze that at its end."""
    assert gc.get_freeze_count() == 0
    gc.freeze()
    try:
        before = gc.get_freeze_count()
        with frozen_gc():
            pass
        assert gc.get_freeze_count() >= before > 0
    finally:
        gc.unfreeze()
