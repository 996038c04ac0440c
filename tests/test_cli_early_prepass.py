"""``village-credit score`` starts ``score_file``'s input pre-pass (digest, duplicate ids)
before its model's code is imported and the store answers (issue 31 item 4, eighth pass;
``scoring.batch.early_prepass``).

No wall-clock limits: the order of events (the pre-pass running when the model load
starts, taken by ``score_file`` rather than done twice) and the outputs with the early
pre-pass on and off, on an input whose duplicate ids span chunks, with two workers forked
while its thread is alive.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from village_credit.cli import app
from village_credit.data.io import write_parquet
from village_credit.errors import DataReadError
from village_credit.registry.store_process import StoreProcess
from village_credit.scoring import batch, read_decisions, read_quarantine
from village_credit.scoring.batch import early_prepass, score_file


@pytest.fixture
def cross_chunk_duplicates(scoring_env, tmp_path: Path) -> Path:
    """The scoring input with ids repeated across chunks of 1,000 rows (the pre-pass's
    duplicate map then changes what is quarantined)."""
    df = scoring_env.households.copy()
    ids = df["household_id"].astype(object).to_numpy().copy()
    assert len(ids) > 2900
    ids[1500], ids[2900] = ids[10], ids[700]
    return write_parquet(df.assign(household_id=ids), tmp_path / "dups.parquet")


def _recorded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """The real pre-pass and load functions, each call recorded (name, what it saw)."""
    events: list[tuple[str, Any]] = []
    for name in ("input_digest", "duplicate_ids"):
        real = getattr(batch, name)

        def spy(*a: Any, _real: Any = real, _name: str = name, **k: Any) -> Any:
            events.append((_name, threading.current_thread() is threading.main_thread()))
            return _real(*a, **k)
        monkeypatch.setattr(batch, name, spy)
    configured = StoreProcess.configured

    def configured_spy(self: StoreProcess) -> None:  # the store's answer (or configure), awaited
        events.append(("configured", sorted(str(p) for p in batch._EARLY)))
        configured(self)
    monkeypatch.setattr(StoreProcess, "configured", configured_spy)
    load = batch.load_scoring_model

    def load_spy(*a: Any, **k: Any) -> Any:
        events.append(("load", None))
        return load(*a, **k)
    monkeypatch.setattr(batch, "load_scoring_model", load_spy)
    return events


def test_the_command_starts_the_prepass_before_the_model_load_and_score_file_takes_it(
        scoring_store, cross_chunk_duplicates: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events = _recorded(monkeypatch)
    res = CliRunner().invoke(app, ["score", "-i", str(cross_chunk_duplicates), "-o", str(tmp_path / "out"),
                                   "-m", scoring_store.model_uri, "--tracking-uri", scoring_store.tracking_uri,
                                   "--chunk-rows", "1000", "--workers", "2", "--no-progress"])
    assert res.exit_code == 0, res.output
    steps = [name for name, _ in events if name in ("configured", "load")]
    assert steps == ["configured", "load"]
    # the pre-pass was under way before the store's answer was awaited and the model loaded
    assert events[[name for name, _ in events].index("configured")][1] == [str(cross_chunk_duplicates)]
    # done once each, in the pre-pass's thread: score_file took the command's, started none of its own
    passes = sorted(e for e in events if e[0] in ("input_digest", "duplicate_ids"))
    assert passes == [("duplicate_ids", False), ("input_digest", False)]
    assert batch._EARLY == {}


def test_outputs_equal_with_the_early_prepass_on_and_off(scoring_store, cross_chunk_duplicates: Path,
                                                         tmp_path: Path) -> None:
    runs = {}
    for name in ("plain", "early"):
        out = tmp_path / name
        if name == "early":
            with early_prepass(cross_chunk_duplicates):
                summary = score_file(scoring_store.model_uri, cross_chunk_duplicates, out, chunk_rows=1000,
                                     progress=False, workers=2)
        else:
            summary = score_file(scoring_store.model_uri, cross_chunk_duplicates, out, chunk_rows=1000,
                                 progress=False, workers=2)
        runs[name] = (summary, out)
    (plain, p_out), (early, e_out) = runs["plain"], runs["early"]
    assert early.workers == plain.workers == 2
    assert early.quarantined > 0
    for key in ("rows_read", "scored", "quarantined", "problems", "chunks", "reconciled", "model"):
        assert getattr(early, key) == getattr(plain, key), key
    for read in (read_decisions, read_quarantine):
        pd.testing.assert_frame_equal(read(e_out), read(p_out))
    ids = ("_run.json", "_model.json")
    for f in ids:  # the run's identity (the input's digest among it) and the model's
        got, want = (json.loads((o / f).read_text(encoding="utf-8")) for o in (e_out, p_out))
        assert got == want, f
    assert batch._EARLY == {}


@pytest.mark.parametrize("content", [None, b"not a parquet file"])
def test_an_unreadable_input_fails_as_without_the_early_prepass(scoring_store, tmp_path: Path,
                                                                 content: bytes | None) -> None:
    bad = tmp_path / "households.parquet"
    if content is not None:
        bad.write_bytes(content)
    with pytest.raises(DataReadError) as plain:
        score_file(scoring_store.model_uri, bad, tmp_path / "plain", progress=False)
    res = CliRunner().invoke(app, ["score", "-i", str(bad), "-o", str(tmp_path / "cli"), "-m",
                                   scoring_store.model_uri, "--tracking-uri", scoring_store.tracking_uri,
                                   "--no-progress"])
    assert res.exit_code == 2
    assert " ".join(str(plain.value).split()) in " ".join(res.output.split())
    assert batch._EARLY == {}
