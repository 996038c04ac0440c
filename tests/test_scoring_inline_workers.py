"""Workers that fill the cores read, decide and write in one thread, and write the same bytes.

Why it matters: with one worker per core, a worker's own read-ahead and write-behind
threads (and Arrow's decoding pool) only compete with the other worker for the same
cores and hold chunks ahead that a fresh process must fault in (docs/benchmarks.md,
issue 31, eighth pass). Fewer workers than cores keep the threads: a core is free for
them. Either way every output file must be the bytes one process writes.
"""

from __future__ import annotations

import filecmp
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from village_credit.data.io import write_parquet
from village_credit.scoring import batch, score_file

pytestmark = pytest.mark.usefixtures("scoring_store")

CHUNK = 1_000


@pytest.fixture(scope="module")
def tiled(scoring_env: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scoring input (bad rows included) tiled by 3,500 more rows in row groups of 2,000
    (the second worker's run starts inside a row group), one id copied across workers."""
    base = scoring_env.households
    big = pd.concat([base, base.head(2_000), base.head(1_500)], ignore_index=True)
    tile = np.repeat(np.arange(3), len(base))[:len(big)]
    ids = (big["household_id"].astype(str) + "-" + pd.Series(tile).astype(str)).to_numpy(dtype=object)
    ids[5_200] = ids[10]  # chunk 0 (first worker) and chunk 5 (second worker)
    big["household_id"] = ids
    return write_parquet(big, tmp_path_factory.mktemp("inline") / "tiled.parquet", row_group_rows=2_000)


def _record_worker_threads(monkeypatch: pytest.MonkeyPatch, log: Path) -> None:
    """Patch the chunk path's three helpers so that each forked worker (which inherits the
    patched module) appends what it asked for: read-ahead depth, write-behind, decoding pool."""
    prefetch, write_behind, chunks_from = batch.prefetch, batch.WriteBehind, batch.iter_chunks_from

    def note(text: str) -> None:
        with log.open("a", encoding="utf-8") as f:
            f.write(f"{os.getpid()} {text}\n")

    def rec_prefetch(items: Any, depth: int) -> Any:
        note(f"read_ahead={depth}")
        return prefetch(items, depth)

    def rec_writer(enabled: bool) -> Any:
        note(f"write_behind={enabled}")
        return write_behind(enabled)

    def rec_chunks(*args: Any, use_threads: bool = True) -> Any:
        note(f"use_threads={use_threads}")
        return chunks_from(*args, use_threads=use_threads)

    monkeypatch.setattr(batch, "prefetch", rec_prefetch)
    monkeypatch.setattr(batch, "WriteBehind", rec_writer)
    monkeypatch.setattr(batch, "iter_chunks_from", rec_chunks)


def _worker_asks(log: Path) -> dict[str, set[str]]:
    """What each worker process asked for, by pid (the parent scores nothing itself)."""
    asks: dict[str, set[str]] = {}
    for line in log.read_text(encoding="utf-8").splitlines():
        pid, text = line.split(" ", 1)
        asks.setdefault(pid, set()).add(text)
    assert str(os.getpid()) not in asks
    return asks


def _same_bytes(a: Path, b: Path) -> None:
    files = sorted(p.relative_to(a) for p in a.rglob("*.parquet"))
    assert files == sorted(p.relative_to(b) for p in b.rglob("*.parquet")) and len(files) > 15
    for f in files:
        assert pq.read_table(a / f).equals(pq.read_table(b / f), check_metadata=True), f
        assert filecmp.cmp(a / f, b / f, shallow=False), f


@pytest.mark.parametrize(("cores", "inline"), [(2, True), (4, False)])
def test_workers_run_inline_only_when_they_fill_the_cores(scoring_env: Any, tiled: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch, cores: int,
                                                         inline: bool) -> None:
    one = score_file(scoring_env.model_uri, tiled, tmp_path / "one", chunk_rows=CHUNK, progress=False, workers=1)
    log = tmp_path / "asks.log"
    _record_worker_threads(monkeypatch, log)
    monkeypatch.setattr(batch, "default_workers", lambda: cores)
    two = score_file(scoring_env.model_uri, tiled, tmp_path / "two", chunk_rows=CHUNK, progress=False, workers=2)
    asks = _worker_asks(log)
    assert two.workers == 2 and len(asks) == 2
    want = ({"read_ahead=0", "write_behind=False", "use_threads=False"} if inline
            else {"read_ahead=2", "write_behind=True", "use_threads=True"})
    assert all(a == want for a in asks.values()), asks
    # inline, reading and writing are no waits: the stage table counts them once
    assert {"read", "write"} <= set(two.stages) and inline != ({"wait_read", "wait_write"} <= set(two.stages))
    assert two.reconciled and two.programme == one.programme
    assert (two.rows_read, two.scored, two.quarantined, two.problems) == (
        one.rows_read, one.scored, one.quarantined, one.problems)
    _same_bytes(tmp_path / "one", tmp_path / "two")
    quarantined = set(pq.read_table(tmp_path / "two" / "quarantine_rows").column("row_number").to_pylist())
    assert {10, 5_200} <= quarantined  # the copy across the two workers' runs


def test_chunks_decoded_in_the_calling_thread_are_the_pooled_ones(tiled: Path) -> None:
    pooled = list(batch.iter_chunks_from(tiled, 3 * CHUNK, CHUNK, None))
    inline = list(batch.iter_chunks_from(tiled, 3 * CHUNK, CHUNK, None, use_threads=False))
    rows = pq.ParquetFile(tiled).metadata.num_rows
    want = [(k, k * CHUNK) for k in range(3, -(-rows // CHUNK))]
    assert [(k, first) for k, first, _ in inline] == [(k, first) for k, first, _ in pooled] == want
    assert len(want) >= 3 and sum(len(b) for _, _, b in inline) == rows - 3 * CHUNK
    for (_, _, a), (_, _, b) in zip(pooled, inline, strict=True):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
