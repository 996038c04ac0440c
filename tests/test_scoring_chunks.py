"""The scoring loop's parts: chunk plan, out-of-order chunk reads, reader and writer threads."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from village_credit.data.io import iter_batches
from village_credit.scoring.batch import WriteBehind, iter_chunks_from, plan_chunks, prefetch, read_chunk
from village_credit.scoring.spark import task_chunk_rows


@settings(max_examples=40, deadline=None)
@given(total=st.integers(0, 5000), chunk=st.integers(1, 2000))
def test_plan_covers_every_row_once_in_order(total: int, chunk: int) -> None:
    plan = plan_chunks(total, chunk)
    assert [k for k, _, _ in plan] == list(range(len(plan)))
    assert sum(n for _, _, n in plan) == total
    assert all(first == k * chunk and 0 < n <= chunk for k, first, n in plan)


@settings(max_examples=25, deadline=None)
@given(total=st.integers(1, 10 ** 7), cores=st.integers(1, 64), per_core=st.integers(1, 4),
       cap=st.integers(1, 100_000))
def test_task_size_gives_enough_tasks_and_respects_the_cap(total: int, cores: int, per_core: int, cap: int) -> None:
    rows = task_chunk_rows(total, cores, per_core, cap)
    assert 1 <= rows <= cap
    assert len(plan_chunks(total, rows)) >= min(total, cores * per_core)


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    n = 1037
    df = pd.DataFrame({"household_id": [f"h{i}" for i in range(n)], "x": np.arange(n, dtype=np.int64),
                       "y": np.linspace(0, 1, n), "snapshot_date": pd.Timestamp("2025-06-30")})
    path = tmp_path_factory.mktemp("chunks") / "t.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=97)
    return path, df


@settings(max_examples=30, deadline=None)
@given(chunk=st.integers(1, 1100))
def test_read_chunk_equals_the_streamed_chunk(table: tuple[Path, pd.DataFrame], chunk: int) -> None:
    """A chunk read out of order (Spark task) is the chunk the local engine streams,
    and a run of chunks from any chunk on is the rest of the stream."""
    path, df = table
    streamed = list(iter_batches(path, batch_rows=chunk, columns=["household_id", "y", "snapshot_date"]))
    plan = plan_chunks(len(df), chunk)
    assert len(streamed) == len(plan)
    for (_, first, n), expected in zip(plan, streamed, strict=True):
        got = read_chunk(path, first, n, ["household_id", "y", "snapshot_date"], chunk)
        pd.testing.assert_frame_equal(got, expected)
    k = len(plan) // 2
    rest = list(iter_chunks_from(path, plan[k][1], chunk, ["household_id", "y", "snapshot_date"]))
    assert [(a, b) for a, b, _ in rest] == [(kk, f) for kk, f, _ in plan[k:]]
    for (_, _, got), expected in zip(rest, streamed[k:], strict=True):
        pd.testing.assert_frame_equal(got, expected)


def test_read_chunk_of_csv(tmp_path: Path, table: tuple[Path, pd.DataFrame]) -> None:
    _, df = table
    csv = tmp_path / "t.csv"
    df.head(300).to_csv(csv, index=False)
    streamed = list(iter_batches(csv, batch_rows=128))
    pd.testing.assert_frame_equal(read_chunk(csv, 256, 44, None, chunk_rows=128), streamed[2])


def test_prefetch_keeps_order_and_reraises_the_readers_error() -> None:
    assert list(prefetch(iter(range(50)), depth=2)) == list(range(50))
    assert list(prefetch(iter(range(5)), depth=0)) == list(range(5))

    def broken():
        yield 1
        raise OSError("disk gone")

    got = []
    with pytest.raises(OSError, match="disk gone"):
        for x in prefetch(broken(), depth=2):
            got.append(x)
    assert got == [1]


@pytest.mark.parametrize("enabled", [True, False])
def test_write_behind_finishes_writes_in_order_and_reraises(enabled: bool) -> None:
    order: list[int] = []

    def write(k: int) -> dict[str, int]:
        if k == 3:
            raise OSError("full")
        order.append(k)
        return {"chunk": k}

    w = WriteBehind(enabled)
    finished = []
    for k in range(3):
        finished += w.put(write, k)
    finished += w.drain()
    assert [c["chunk"] for c in finished] == [0, 1, 2] and order == [0, 1, 2]
    with pytest.raises(OSError, match="full"):
        w.put(write, 3)
        w.put(write, 4)
        w.drain()
    w.close()
    assert 4 not in order  # after a failed write no later chunk is written (its marker would lie)


def test_empty_parts_are_the_bytes_the_writer_gives(tmp_path: Path) -> None:
    """An empty part is encoded once and its bytes reused: they must be what
    ``pq.write_table`` writes for that frame, and another column set, dtype or
    metadata must not get a cached file of the wrong schema."""
    from village_credit.scoring.batch import _no_bad_rows
    from village_credit.scoring.outputs import atomic_write_frame, table_with_meta

    empty = _no_bad_rows(("household_id", "head_age", "snapshot_date"))
    for meta in ({"village_credit.model_version": "1"}, {"village_credit.model_version": "2"}):
        for k in range(2):  # the second write comes from the cache
            atomic_write_frame(empty, meta, tmp_path / f"p{k}.parquet")
            pq.write_table(table_with_meta(empty, meta), tmp_path / "ref.parquet", compression="zstd")
            assert (tmp_path / f"p{k}.parquet").read_bytes() == (tmp_path / "ref.parquet").read_bytes()
        assert pq.read_schema(tmp_path / "p1.parquet").metadata[b"village_credit.model_version"] == \
            meta["village_credit.model_version"].encode()
    other = pd.DataFrame({"household_id": pd.Series([], dtype=object), "head_age": pd.Series([], dtype="int64")})
    atomic_write_frame(other, {}, tmp_path / "other.parquet")
    assert pq.read_schema(tmp_path / "other.parquet").field("head_age").type == pa.int64()
    # a non-empty frame is written as it is, rows and all
    full = pd.DataFrame({"household_id": ["H1", "H2"], "head_age": [40, 50]})
    atomic_write_frame(full, {}, tmp_path / "full.parquet")
    assert pq.read_table(tmp_path / "full.parquet").to_pandas()["head_age"].tolist() == [40, 50]
    assert not list(tmp_path.glob("*.tmp"))


@functools.lru_cache(maxsize=1)
def _thirty_households() -> pd.DataFrame:
    from village_credit.data import GeneratorConfig, generate_households

    return generate_households(GeneratorConfig(n_households=30, seed=5))


@settings(max_examples=30, deadline=None)
@given(values=st.lists(st.sampled_from(["none", "primary", "junior", "senior", "tertiary", "doctorate", "",
                                        None]), min_size=1, max_size=30),
       dtype=st.sampled_from(["str", "object", "category"]))
def test_education_level_is_the_dict_lookup_it_replaced(values: list, dtype: str) -> None:
    """``education_level`` (an index look-up since issue 31) equals the dict ``map`` of
    before: the category's position, NaN for a missing or unknown value, any dtype."""
    from village_credit.models.features import EDUCATION, build_household_features

    hh = _thirty_households().head(len(values)).copy()
    hh["education"] = pd.Series(values, dtype=dtype)
    got = build_household_features(hh)["education_level"].to_numpy()
    want = hh["education"].astype("object").map({e: float(i) for i, e in enumerate(EDUCATION)}).to_numpy(
        dtype=np.float64, na_value=np.nan)
    np.testing.assert_array_equal(got, want)


def test_memory_pool_switch_is_shared_by_overlapping_runs() -> None:
    """Two runs overlapping in one process: the pool stays the system one until the last
    leaves, then the pool found before is back (not the system one the second run saw)."""
    import pyarrow as pa

    from village_credit.scoring.batch import _system_memory_pool

    before = pa.default_memory_pool().backend_name
    first, second = _system_memory_pool(), _system_memory_pool()
    first.__enter__()
    second.__enter__()
    assert pa.default_memory_pool().backend_name == "system"
    first.__exit__(None, None, None)  # the first run ends while the second still runs
    assert pa.default_memory_pool().backend_name == "system"
    second.__exit__(None, None, None)
    assert pa.default_memory_pool().backend_name == before
