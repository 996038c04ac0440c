"""Resumability: SIGKILL a real ``village-credit score`` process mid-run, rerun, lose nothing.

The killed run is a real process; the reruns and the refusals run the same command
through click's runner in the test process (a real process's exit codes and exit path:
tests/test_cli_score_startup.py).

Also: an output directory bound to other arguments is refused unless ``--overwrite``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from typer.testing import CliRunner

from village_credit.cli import app
from village_credit.scoring import ScoringError, read_decisions, read_quarantine, score_file

if TYPE_CHECKING:
    from conftest import ScoringEnv

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("scoring_store")]  # MLflow on the scoring store


@pytest.fixture(scope="session")
def env(scoring_env: ScoringEnv) -> ScoringEnv:
    return scoring_env


def _cmd(env: ScoringEnv, out: Path, chunk_rows: int) -> list[str]:
    return [sys.executable, "-m", "village_credit.cli", "score", "--model", env.model_uri,
            "--input", str(env.parquet), "--output", str(out), "--chunk-rows", str(chunk_rows), "--no-progress"]


def _cli(env: ScoringEnv, out: Path, chunk_rows: int) -> list[str]:
    """``_cmd``'s arguments for click's runner in this process (the store named, as the
    subprocess's environment names it)."""
    return ["score", "--tracking-uri", env.tracking_uri, *_cmd(env, out, chunk_rows)[4:]]


def test_sigkill_mid_run_then_rerun_scores_every_row_exactly_once(assert_every_row_once, env: ScoringEnv, tmp_path: Path) -> None:
    out = tmp_path / "out"
    n = len(env.households)
    chunk_rows = 60  # 50 chunks
    proc = subprocess.Popen(_cmd(env, out, chunk_rows), env=env.env(), cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = out / "_chunks" / "00000.json"
    while not first.exists() and proc.poll() is None:  # no wall-clock limit: waits on the process
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    done = sorted((out / "_chunks").glob("*.json"))
    assert 1 <= len(done) < n // chunk_rows, "the run must have been cut off mid-way"
    assert not (out / "summary.json").exists()
    # Also the worst moment: last chunk's parts written, its marker not yet.
    done[-1].unlink()

    # the rerun: the same command, in this process (click's runner); the process that had
    # to be real is the killed one
    rerun = CliRunner().invoke(app, _cli(env, out, chunk_rows))
    assert rerun.exit_code == 0, rerun.output[-3000:]
    summary = json.loads(rerun.stdout)
    assert summary["chunks_resumed"] == len(done) - 1
    assert summary["rows_read"] == summary["scored"] + summary["quarantined"] == n and summary["reconciled"]
    dec, bad = assert_every_row_once(out, n)
    assert set(bad["row_number"]) == set(env.bad_rows)
    assert not list(out.rglob("*.tmp"))
    q = read_quarantine(out)
    assert sorted(q["row_number"].unique()) == sorted(env.bad_rows)

    # Same decisions as an uninterrupted run (different chunking does not change a decision).
    clean = score_file(env.model_uri, env.parquet, tmp_path / "clean", chunk_rows=1000, progress=False)
    ref = read_decisions(tmp_path / "clean")
    assert clean.scored == len(dec)
    assert ref["household_id"].tolist() == dec["household_id"].tolist()
    np.testing.assert_array_equal(ref["points"].to_numpy(), dec["points"].to_numpy())
    assert ref["grade"].tolist() == dec["grade"].tolist()


def test_output_bound_to_other_arguments_is_refused_unless_overwrite(assert_every_row_once, env: ScoringEnv, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = score_file(env.model_uri, env.parquet, out, chunk_rows=1000, progress=False, report=False)
    again = score_file(env.model_uri, env.parquet, out, chunk_rows=1000, progress=False, report=False)
    assert again.chunks_resumed == again.chunks == 3 and again.scored == first.scored

    with pytest.raises(ScoringError, match="chunk_rows"):
        score_file(env.model_uri, env.parquet, out, chunk_rows=500, progress=False)
    with pytest.raises(ScoringError, match="input"):
        score_file(env.model_uri, env.csv, out, chunk_rows=1000, progress=False)
    # the refused runs left the earlier output intact
    assert_every_row_once(out, len(env.households))

    # from the command line: non-zero exit, then --overwrite starts afresh (click's runner,
    # the command's arguments and exit codes as typed)
    cli = _cli(env, out, 500)
    refused = CliRunner().invoke(app, cli)
    assert refused.exit_code == 2 and "--overwrite" in refused.stderr, refused.output
    ok = CliRunner().invoke(app, [*cli, "--overwrite"])
    assert ok.exit_code == 0, ok.output[-3000:]
    summary = json.loads(ok.stdout)
    assert summary["chunks"] == 6 and summary["chunks_resumed"] == 0
    assert len(list((out / "decisions").glob("part-*.parquet"))) == 6
    assert_every_row_once(out, len(env.households))
    assert os.path.exists(out / "programme_villages.parquet")
