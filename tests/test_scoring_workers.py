"""``score_file`` on several worker processes writes what one process writes, file for file.

The workers are forked from the process that loaded the model; each reads, decides and
writes its own contiguous run of chunks. What must not change: every part file (bytes
of the tables and their metadata), the markers' counts, the summary's counts, the
duplicate pass across chunks that different workers decide, the programme report
(its sums added in chunk order), and resuming a run cut off in the middle.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from village_credit.cli import app
from village_credit.data.io import write_parquet
from village_credit.scoring import score_file
from village_credit.scoring.batch import _split_ranges, default_workers, load_scoring_model

pytestmark = pytest.mark.usefixtures("scoring_store")

CHUNK = 1_000


@pytest.fixture(scope="module")
def tiled(scoring_env: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scoring input (bad rows included) tiled to 7,500 rows in row groups of 2,000
    (chunks start inside row groups), two ids copied into chunks another worker decides."""
    base = scoring_env.households
    big = pd.concat([base, base, base.head(1_500)], ignore_index=True)
    tile = np.repeat(np.arange(3), len(base))[:len(big)]
    ids = (big["household_id"].astype(str) + "-" + pd.Series(tile).astype(str)).to_numpy(dtype=object)
    ids[[7_000, 6_999]] = ids[[8, 2_500]]  # chunk 0 vs chunk 6, chunk 2 vs chunk 6
    big["household_id"] = ids
    return write_parquet(big, tmp_path_factory.mktemp("workers") / "tiled.parquet", row_group_rows=2_000)


def _outputs(out: Path) -> dict[str, Any]:
    """Every output table of a run (with metadata) and the markers' counts."""
    files = sorted(p for sub in ("decisions", "quarantine", "quarantine_rows") for p in (out / sub).glob("*.parquet"))
    tables = {str(p.relative_to(out)): pq.read_table(p) for p in files}
    tables.update({p.name: pq.read_table(p) for p in out.glob("programme_*.parquet")})
    markers = {p.name: json.loads(p.read_text()) for p in (out / "_chunks").glob("*.json")}
    return {"tables": tables, "markers": markers}


def _assert_same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a["markers"] == b["markers"]
    assert a["tables"].keys() == b["tables"].keys()
    for name, table in a["tables"].items():
        assert table.equals(b["tables"][name], check_metadata=True), name


def _counts(s: Any) -> tuple[int, ...]:
    return s.rows_read, s.scored, s.quarantined, s.problems, s.chunks


def test_two_workers_write_what_one_writes(scoring_env: Any, tiled: Path, tmp_path: Path) -> None:
    one = score_file(scoring_env.model_uri, tiled, tmp_path / "one", chunk_rows=CHUNK, progress=False, workers=1)
    two = score_file(scoring_env.model_uri, tiled, tmp_path / "two", chunk_rows=CHUNK, progress=False, workers=2)
    assert (one.workers, two.workers) == (1, 2)
    assert two.reconciled and _counts(two) == _counts(one) and two.chunks == 8
    assert two.programme == one.programme
    # the workers' stages come back to the parent's table
    assert {"read", "row_checks", "features", "reasons", "write", "programme_report"} <= set(two.stages)
    _assert_same(_outputs(tmp_path / "one"), _outputs(tmp_path / "two"))
    quarantined = set(pq.read_table(tmp_path / "two" / "quarantine_rows").column("row_number").to_pylist())
    assert {8, 2_500, 6_999, 7_000} <= quarantined  # copies decided by different workers


def test_a_run_cut_off_resumes_on_workers(scoring_env: Any, tiled: Path, tmp_path: Path) -> None:
    out = tmp_path / "scores"
    score_file(scoring_env.model_uri, tiled, out, chunk_rows=CHUNK, progress=False, workers=2)
    full = _outputs(out)
    for k in (1, 5, 6):  # cut off: these chunks lost their marker (and one its parts)
        (out / "_chunks" / f"{k:05d}.json").unlink()
    (out / "decisions" / "part-00005.parquet").unlink()
    again = score_file(scoring_env.model_uri, tiled, out, chunk_rows=CHUNK, progress=False, workers=2)
    assert again.chunks_resumed == 5 and again.reconciled and again.rows_read == 7_500
    _assert_same(full, _outputs(out))


def test_workers_use_treeshap_after_the_parent_used_openmp(scoring_env: Any, tiled: Path, tmp_path: Path) -> None:
    """A forked child that starts an OpenMP region of the parent's libgomp pool hangs; the
    workers predict on one thread. The model here is made to take LightGBM's TreeSHAP path
    (not the additive tables), and the parent predicts on two threads first."""
    model, _ = load_scoring_model(scoring_env.model_uri)
    dm = model.unwrap_python_model().model
    dm.explainer.additive = None  # every chunk's contributions come from Booster.predict(pred_contrib)
    X = np.zeros((64, dm.booster.num_feature()))
    dm.booster.predict(X, num_threads=2)  # the parent's OpenMP pool is started
    one = score_file(scoring_env.model_uri, tiled, tmp_path / "one", chunk_rows=CHUNK, progress=False,
                     model=model, workers=1)
    two = score_file(scoring_env.model_uri, tiled, tmp_path / "two", chunk_rows=CHUNK, progress=False,
                     model=model, workers=2)
    assert two.workers == 2 and _counts(two) == _counts(one)
    _assert_same(_outputs(tmp_path / "one"), _outputs(tmp_path / "two"))


def test_contiguous_runs_of_equal_rows() -> None:
    todo = [(k, k * 10, 10) for k in range(7)] + [(7, 70, 3)]
    runs = _split_ranges(todo, 2)
    assert [c for run in runs for c in run] == todo  # every chunk once, in order
    assert [sum(r for *_, r in run) for run in runs] == [40, 33]
    assert len(_split_ranges(todo[:1], 2)) == 1
    assert default_workers() >= 1


def test_workers_below_one_are_refused(scoring_env: Any, tiled: Path, tmp_path: Path) -> None:
    from village_credit.scoring import ScoringError

    with pytest.raises(ScoringError, match="workers must be >= 1"):
        score_file(scoring_env.model_uri, tiled, tmp_path / "x", chunk_rows=CHUNK, progress=False, workers=0)


def test_workers_die_with_a_killed_run(scoring_env: Any, tmp_path: Path) -> None:
    """``kill -9`` of the run: its workers go too (none keeps writing beside a rerun),
    and the rerun on workers loses nothing."""
    out = tmp_path / "out"
    # the untiled input (its bad rows included): chunks of 100 rows still give each worker a
    # run of chunks to be cut off in, and the rerun does a third of the tiled file's work
    n = len(scoring_env.households)
    chunks = -(-n // 100)
    cmd = [sys.executable, "-m", "village_credit.cli", "score", "--model", scoring_env.model_uri,
           "--input", str(scoring_env.parquet), "--output", str(out), "--chunk-rows", "100", "--workers", "2",
           "--no-progress"]
    proc = subprocess.Popen(cmd, env=scoring_env.env(), cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    while not list((out / "_chunks").glob("*.json")) and proc.poll() is None:  # no wall-clock limit
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    markers = sorted((out / "_chunks").glob("*.json"))
    time.sleep(1.0)  # orphaned workers would write a marker every few hundredths of a second
    assert sorted((out / "_chunks").glob("*.json")) == markers
    assert len(markers) < chunks, "the run must have been cut off mid-way"
    # the rerun in this process (click's runner, workers forked from here as score_file's
    # own tests do): the killed process above is the one that had to be real
    rerun = CliRunner().invoke(app, ["score", "--tracking-uri", scoring_env.tracking_uri, *cmd[4:]])
    assert rerun.exit_code == 0, rerun.output[-3000:]
    summary = json.loads(rerun.stdout)
    assert summary["chunks_resumed"] == len(markers) and summary["workers"] == 2
    assert summary["chunks"] == chunks
    assert summary["rows_read"] == summary["scored"] + summary["quarantined"] == n


def test_a_failing_worker_stops_the_run_with_its_error(scoring_env: Any, tiled: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """An error inside a worker reaches the caller (and the finished chunks stay resumable)."""
    model, _ = load_scoring_model(scoring_env.model_uri)
    dm = model.unwrap_python_model().model
    real = dm._transform

    def transform(df: pd.DataFrame) -> Any:  # fails on the third tile's rows (the second worker's run)
        if df["household_id"].astype(str).str.endswith("-2").any():
            raise ValueError("feature building failed on purpose")
        return real(df)

    # put back after the test: the loaded model is shared by digest with later loads in this process
    monkeypatch.setattr(dm, "_transform", transform)
    with pytest.raises(ValueError, match="feature building failed on purpose"):
        score_file(scoring_env.model_uri, tiled, tmp_path / "out", chunk_rows=CHUNK, progress=False,
                   model=model, workers=2)
    assert (tmp_path / "out" / "_chunks" / "00000.json").exists()  # the first worker's chunks were kept
