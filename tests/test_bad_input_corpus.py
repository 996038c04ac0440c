"""A corpus of bad inputs, run through the CLI: a clear answer, no traceback, no lost row.

Each class of bad input is one :class:`Case` (how to make the file, which commands
read it, what the answer must say); adding a class is one entry. For every case and
command: the exit code, the file named in the message for file-level problems, the
row and column in the quarantine for row-level ones, and rows in = scored +
quarantined. Real model and real sqlite MLflow store (the ``scoring_env`` fixture, tests/conftest.py).
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner, Result

from village_credit.cli import app
from village_credit.data.io import write_parquet
from village_credit.scoring import read_decisions, read_quarantine, score_file

if TYPE_CHECKING:
    from conftest import ScoringEnv

pytestmark = pytest.mark.slow
N = 40  # rows of every corpus file


@pytest.fixture(scope="session")
def env(scoring_env: ScoringEnv) -> ScoringEnv:
    return scoring_env


@pytest.fixture(scope="module")
def base(env: ScoringEnv) -> pd.DataFrame:
    """N clean households (rows the fixture did not spoil)."""
    return env.households.iloc[100:100 + N].reset_index(drop=True)


def _squash(text: str) -> str:
    return "".join(text.split())  # Rich wraps long lines: compare without whitespace


def _no_traceback(res: Result) -> None:
    assert "Traceback" not in res.output, res.output[-3000:]
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)


def _by_row(problems: pd.DataFrame) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    for r, c in zip(problems["row_number"], problems["column"], strict=True):
        out.setdefault(int(r), set()).add(str(c))
    return out


def _csv(df: pd.DataFrame, path: Path, **kw) -> Path:
    out = df.copy()
    for c in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[c].dtype):
            out[c] = out[c].dt.strftime("%Y-%m-%d")
    out.to_csv(path, index=False, **kw)
    return path


def _with_text(df: pd.DataFrame, **cells: dict[int, str]) -> pd.DataFrame:
    """``df`` with the named columns as text and some cells replaced."""
    out = df.copy()
    for col, repl in cells.items():
        s = out[col]
        text = (s.dt.strftime("%Y-%m-%d") if pd.api.types.is_datetime64_any_dtype(s.dtype)
                else s.astype(object).map(lambda v: None if pd.isna(v) else str(v)))
        text = text.astype(object)
        for row, v in repl.items():
            text.iloc[row] = v
        out[col] = text
    return out


# --------------------------------------------------------------------------- the corpus
@dataclass
class Case:
    """One class of bad input: ``make(tmp, base) -> input path``."""

    id: str
    make: Callable[[Path, pd.DataFrame], Path]
    commands: tuple[str, ...] = ("check-data", "rules", "score")
    exit_codes: dict[str, int] = field(default_factory=dict)  # command -> code (default below)
    bad: dict[int, str] = field(default_factory=dict)  # row -> column quarantined
    says: tuple[str, ...] = ()  # fragments of the message (file-level problems)


def _far_dates_parquet(tmp: Path, b: pd.DataFrame) -> Path:
    df = b.copy()
    t = pa.Table.from_pandas(df.drop(columns=["ded_hygiene_date", "snapshot_date"]), preserve_index=False)
    hyg = [None] * N
    hyg[3], hyg[7] = datetime.date(2999, 1, 1), datetime.date(1600, 1, 1)
    snap = [d.date() for d in df["snapshot_date"]]
    snap[11] = datetime.date(2999, 1, 1)
    t = t.append_column("ded_hygiene_date", pa.array(hyg, pa.date32()))
    t = t.append_column("snapshot_date", pa.array(snap, pa.date32()))
    p = tmp / "far_dates.parquet"
    pq.write_table(t, p)
    return p


def _far_dates_csv(tmp: Path, b: pd.DataFrame) -> Path:
    return _csv(_with_text(b, ded_hygiene_date={3: "2999-01-01", 7: "1600-01-01"},
                           snapshot_date={11: "2999-01-01"}), tmp / "far_dates.csv")


def _future_snapshot(tmp: Path, b: pd.DataFrame) -> Path:
    later = (datetime.date.today() + datetime.timedelta(days=3 * 365)).isoformat()
    return _csv(_with_text(b, snapshot_date={2: later}), tmp / "future.csv")


def _bad_dates_text(tmp: Path, b: pd.DataFrame) -> Path:
    return _csv(_with_text(b, ded_traffic_date={4: "2025-13-45"}, snapshot_date={9: "yesterday"}),
                tmp / "bad_dates.csv")


def _impossible_dates(tmp: Path, b: pd.DataFrame) -> Path:
    # calendar-impossible days a lenient parser rolls over (30 Feb -> 2 March): real registers carry them
    return _csv(_with_text(b, snapshot_date={6: "2025-02-30"}, ded_traffic_date={5: "2023-02-29"}),
                tmp / "impossible_dates.csv")


def _tz_snapshot(tmp: Path, b: pd.DataFrame) -> Path:
    df = b.copy()
    df["snapshot_date"] = (df["snapshot_date"] + pd.Timedelta(hours=23)).dt.tz_localize("Asia/Shanghai")
    p = tmp / "tz.parquet"
    df.to_parquet(p, index=False)
    return p


def _head_ages(tmp: Path, b: pd.DataFrame) -> Path:
    df = _with_text(b, head_age={1: "-5", 2: "0", 3: "45.5", 4: "200"})
    return _csv(df, tmp / "ages.csv")


def _dup_header(tmp: Path, b: pd.DataFrame) -> Path:
    p = _csv(b, tmp / "dup_header.csv")
    lines = p.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    i = header.index("education")
    header[i] = "head_age"  # head_age twice
    p.write_text("\n".join([",".join(header), *lines[1:]]) + "\n", encoding="utf-8")
    return p


def _bom(tmp: Path, b: pd.DataFrame) -> Path:
    return _csv(b, tmp / "bom.csv", encoding="utf-8-sig")


def _semicolon(tmp: Path, b: pd.DataFrame) -> Path:
    return _csv(b, tmp / "semicolon.csv", sep=";")


def _gbk(tmp: Path, b: pd.DataFrame) -> Path:
    return _csv(pd.concat([b, pd.Series("张三的备注", index=b.index, name="note")], axis=1),
                tmp / "gbk.csv", encoding="gbk")


def _spaces(tmp: Path, b: pd.DataFrame) -> Path:
    return _csv(b, tmp / "spaces.csv", sep=" ")


def _parquet_bytes(name: str, data: Callable[[bytes], bytes]) -> Callable[[Path, pd.DataFrame], Path]:
    def make(tmp: Path, b: pd.DataFrame) -> Path:
        good = tmp / "good.parquet"
        b.to_parquet(good, index=False)
        p = tmp / name
        p.write_bytes(data(good.read_bytes()))
        return p
    return make


def _footer_2gb(raw: bytes) -> bytes:
    # footer length field (4 bytes before the closing magic) claims 2 GB
    return raw[:-8] + (2_000_000_000).to_bytes(4, "little") + b"PAR1"


def _a_directory(tmp: Path, b: pd.DataFrame) -> Path:
    p = tmp / "folder.parquet"
    p.mkdir()
    return p


CASES = [
    Case("far-dates-parquet", _far_dates_parquet,
         bad={3: "ded_hygiene_date", 7: "ded_hygiene_date", 11: "snapshot_date"}),
    Case("far-dates-csv", _far_dates_csv,
         bad={3: "ded_hygiene_date", 7: "ded_hygiene_date", 11: "snapshot_date"}),
    Case("future-snapshot", _future_snapshot, bad={2: "snapshot_date"}),
    Case("not-a-date", _bad_dates_text, bad={4: "ded_traffic_date", 9: "snapshot_date"}),
    Case("impossible-date", _impossible_dates, bad={5: "ded_traffic_date", 6: "snapshot_date"}),
    Case("tz-aware-snapshot", _tz_snapshot),
    Case("head-ages", _head_ages, bad={1: "head_age", 2: "head_age", 3: "head_age", 4: "head_age"}),
    Case("utf8-bom", _bom),
    Case("semicolon", _semicolon),
    Case("gbk", _gbk),
    Case("duplicate-header", _dup_header, exit_codes=dict.fromkeys(("check-data", "rules", "score"), 2),
         says=("dup_header.csv", "head_age", "more than once")),
    Case("unknown-delimiter", _spaces, exit_codes=dict.fromkeys(("check-data", "rules", "score"), 2),
         says=("spaces.csv", "delimiter")),
    *[Case(f"parquet-{name}", make, exit_codes=dict.fromkeys(("check-data", "rules", "score"), 2),
           says=(fname,))
      for name, fname, make in [
          ("empty", "empty.parquet", _parquet_bytes("empty.parquet", lambda r: b"")),
          ("not-parquet", "text.parquet", _parquet_bytes("text.parquet", lambda r: b"household_id\nH1\n")),
          ("truncated", "cut.parquet", _parquet_bytes("cut.parquet", lambda r: r[: len(r) // 2])),
          ("footer-2gb", "footer.parquet", _parquet_bytes("footer.parquet", _footer_2gb)),
          ("directory", "folder.parquet", _a_directory),
      ]],
]


def _run(args: list[str], env_vars: dict[str, str] | None = None) -> Result:
    return CliRunner(env=env_vars).invoke(app, args)


def _check_data(tmp: Path, src: Path) -> tuple[Result, int, dict[int, set[str]]]:
    q = tmp / "check_q.parquet"
    res = _run(["check-data", "--input", str(src), "--quarantine", str(q)])
    if res.exit_code == 2:
        return res, 0, {}
    summary = json.loads(res.stdout)
    assert summary["rows"] == N == summary["valid"] + summary["quarantined"]
    problems = pd.read_parquet(q)
    bad = problems.pipe(_by_row)
    assert summary["quarantined"] == len(bad)
    return res, summary["valid"], bad


def _rules(tmp: Path, src: Path) -> tuple[Result, int, dict[int, set[str]]]:
    out = tmp / "rules.parquet"
    res = _run(["rules", "--input", str(src), "--output", str(out)])
    if res.exit_code == 2:
        return res, 0, {}
    scored = len(pd.read_parquet(out))
    q = tmp / "rules.quarantine.parquet"
    bad = (pd.read_parquet(q).pipe(_by_row) if q.exists() else {})
    assert scored + len(bad) == N  # rows in = scored + quarantined
    for row, cols in bad.items():  # the message names row and column
        if row < 5:
            assert any(_squash(f"row {row}, column {c}") in _squash(res.output) for c in cols), res.output
    return res, scored, bad


def _score(tmp: Path, src: Path, env: ScoringEnv, chunk_rows: int = 15) -> tuple[Result, int, dict[int, set[str]]]:
    out = tmp / "scored"
    res = _run(["score", "--input", str(src), "--output", str(out), "--model", env.model_uri,
                "--tracking-uri", env.tracking_uri, "--chunk-rows", str(chunk_rows), "--no-progress"])
    if res.exit_code == 2:
        return res, 0, {}
    summary = json.loads(res.stdout)
    assert summary["reconciled"] and summary["rows_read"] == N == summary["scored"] + summary["quarantined"]
    q = read_quarantine(out)
    bad = q.pipe(_by_row)
    assert len(read_decisions(out)) == summary["scored"]
    return res, summary["scored"], bad


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_corpus_case(case: Case, base: pd.DataFrame, env: ScoringEnv, tmp_path: Path) -> None:
    src = case.make(tmp_path, base)
    for command in case.commands:
        work = tmp_path / command
        work.mkdir()
        runner = {"check-data": _check_data, "rules": _rules,
                  "score": lambda t, s: _score(t, s, env)}[command]
        res, scored, bad = runner(work, src)
        _no_traceback(res)
        expected = case.exit_codes.get(command, 1 if (command == "check-data" and case.bad) else 0)
        assert res.exit_code == expected, (command, res.output[-3000:])
        for fragment in case.says:
            assert _squash(fragment) in _squash(res.output), (command, fragment, res.output[-2000:])
        if expected != 2:
            # exactly the spoilt rows, each under its own column
            assert {r: c for r, cols in bad.items() for c in cols} == case.bad, (command, bad)
            assert scored == N - len(case.bad)


# --------------------------------------------------------------------------- score-only classes
def _score_args(env: ScoringEnv, src: Path, out: Path, *extra: str) -> list[str]:
    return ["score", "--input", str(src), "--output", str(out), "--model", env.model_uri,
            "--tracking-uri", env.tracking_uri, "--no-progress", *extra]


def _writable(folder: Path) -> bool:
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def test_score_output_paths_are_checked_before_any_work(base: pd.DataFrame, env: ScoringEnv,
                                                        tmp_path: Path) -> None:
    src = write_parquet(base, tmp_path / "in.parquet")
    a_file = tmp_path / "taken.txt"
    a_file.write_text("x")
    res = _run(_score_args(env, src, a_file))
    _no_traceback(res)
    assert res.exit_code == 2 and "taken.txt" in _squash(res.output) and "isafile" in _squash(res.output)
    res = _run(_score_args(env, src, a_file / "below"))
    _no_traceback(res)
    assert res.exit_code == 2 and "notadirectory" in _squash(res.output)
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        # as root the mode bits do not bind; /sys (a kernel file system) still refuses
        target = locked if not _writable(locked) else Path("/sys")
        if _writable(target):
            pytest.skip("no unwritable folder available to this user")
        res = _run(_score_args(env, src, target / "village_credit_out"))
        _no_traceback(res)
        assert res.exit_code == 2 and "permissiondenied" in _squash(res.output)
        assert not (target / "village_credit_out").exists()
    finally:
        locked.chmod(0o700)


def test_tracking_uri_that_is_not_a_database(base: pd.DataFrame, env: ScoringEnv, tmp_path: Path) -> None:
    src = write_parquet(base, tmp_path / "in.parquet")
    x = tmp_path / "x.db"
    x.write_text("household_id\nH1\n")
    res = _run(["score", "--input", str(src), "--output", str(tmp_path / "out"), "--model", env.model_uri,
                "--tracking-uri", f"sqlite:///{x}", "--no-progress"])
    _no_traceback(res)
    assert res.exit_code == 2 and _squash(f"{x} exists but is not a sqlite database") in _squash(res.output)
    assert x.read_text() == "household_id\nH1\n"  # untouched


def test_changed_input_with_restored_mtime_is_not_resumed(base: pd.DataFrame, env: ScoringEnv,
                                                          tmp_path: Path) -> None:
    src = _csv(base, tmp_path / "in.csv")
    out = tmp_path / "out"
    res = _run(_score_args(env, src, out, "--chunk-rows", "15"))
    assert res.exit_code == 0, res.output
    st = src.stat()
    text = src.read_text(encoding="utf-8")
    row = text.splitlines()[6].split(",")
    col = text.splitlines()[0].split(",").index("land_mu")
    new_value = "9" * len(row[col]) if set(row[col]) != {"9"} else "1" * len(row[col])
    row[col] = new_value  # same size, other value
    lines = text.splitlines()
    lines[6] = ",".join(row)
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))  # as cp -p / rsync -t
    assert src.stat().st_size == st.st_size and src.stat().st_mtime_ns == st.st_mtime_ns
    res = _run(_score_args(env, src, out, "--chunk-rows", "15"))
    _no_traceback(res)
    assert res.exit_code == 2 and "input_digest" in res.output  # not the old decision, silently
    res = _run(_score_args(env, src, out, "--chunk-rows", "15", "--overwrite"))
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["chunks_resumed"] == 0 and summary["rows_read"] == N and summary["reconciled"]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_one_writer_per_output_folder(base: pd.DataFrame, env: ScoringEnv, tmp_path: Path) -> None:
    src = write_parquet(base, tmp_path / "in.parquet")
    out = tmp_path / "out"
    out.mkdir()
    lock = out / "_lock.json"
    # a live run (this test process) holds the folder
    lock.write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname(),
                                "started": "2026-01-01T00:00:00+00:00", "input": "other.parquet"}))
    res = _run(_score_args(env, src, out))
    _no_traceback(res)
    assert res.exit_code == 2
    said = _squash(res.output)
    assert _squash(f"pid {os.getppid()}") in said and "other.parquet" in said and "2026-01-01" in said
    assert lock.exists() and not (out / "summary.json").exists()
    # the holder died (kill -9): its lock is stale and taken over
    lock.write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname(),
                                "started": "2026-01-01T00:00:00+00:00", "input": str(src)}))
    res = _run(_score_args(env, src, out))
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["reconciled"] and not lock.exists()


def test_two_runs_into_one_folder_at_once(env: ScoringEnv, tmp_path: Path) -> None:
    """A second run while the first is writing (a thread here; another process is the
    same lock, see the test above): refused naming the first; the first completes intact."""
    out = tmp_path / "out"
    src = write_parquet(env.households.iloc[100:400], tmp_path / "in.parquet")  # 300 clean rows
    done: dict[str, object] = {}

    def first() -> None:
        try:
            done["summary"] = score_file(env.model_uri, src, out, chunk_rows=15, progress=False)
        except Exception as exc:  # noqa: BLE001 - surfaced by the assertion below
            done["error"] = exc

    worker = threading.Thread(target=first)
    worker.start()
    marker = out / "_chunks" / "00000.json"
    while not marker.exists() and worker.is_alive():  # no wall-clock limit: waits on the run
        time.sleep(0.002)
    second = _run(_score_args(env, src, out, "--chunk-rows", "15"))
    running = worker.is_alive()
    worker.join()
    assert "error" not in done, done.get("error")
    assert running, "the first run ended before the second started: nothing was tested"
    _no_traceback(second)
    assert second.exit_code == 2 and _squash(f"pid {os.getpid()}") in _squash(second.output)
    summary = done["summary"]
    assert summary.reconciled and summary.rows_read == summary.scored == 300  # type: ignore[attr-defined]
    assert not (out / "_lock.json").exists() and not list(out.rglob("*.tmp"))


def test_duplicate_ids_across_chunks_are_quarantined(base: pd.DataFrame, env: ScoringEnv, tmp_path: Path) -> None:
    df = base.copy()
    hid = df["household_id"].to_numpy(dtype=object).copy()
    hid[33] = hid[3]  # chunk 2 repeats an id of chunk 0
    hid[22] = hid[21] = hid[8]  # three copies, over two chunks
    src = write_parquet(df.assign(household_id=hid), tmp_path / "dups.parquet")
    res, scored, bad = _score(tmp_path, src, env, chunk_rows=10)
    assert res.exit_code == 0, res.output
    # every copy is quarantined: which one is the household's record cannot be known
    assert bad == {r: {"household_id"} for r in (3, 33, 8, 21, 22)}
    q = read_quarantine(tmp_path / "scored")
    assert set(q["check"]) == {"duplicate"}
    assert q.loc[q["row_number"] == 33, "reason"].iloc[0].startswith("duplicate household_id (also at row 3;")
    assert "also at row 21, 22; 3 rows have it" in q.loc[q["row_number"] == 8, "reason"].iloc[0]
    dec = read_decisions(tmp_path / "scored")
    assert dec["household_id"].is_unique and not {3, 8, 21, 22, 33} & set(dec["row_number"])
    assert scored == N - 5


# --------------------------------------------------------------------------- configs and dates
@pytest.mark.parametrize(("key", "value", "says"), [
    ("data.n_households", "many", ("data.n_households: Input should be a valid integer, unable to parse "
                                  "string as an integer, got 'many'")),
    ("model.tuning.n_trials", -1, "model.tuning.n_trials: Input should be greater than or equal to 0, got -1"),
    ("policy", "no_such_policy", "policy 'no_such_policy'"),
    # a relative input path is read from the YAML's folder: the message names where it looked
    ("data.source", "missing/file.parquet", "data.source '{dir}/missing/file.parquet': file not found"),
    ("eval_date", "2025-13-45", "eval_date: not a date (expected YYYY-MM-DD), got '2025-13-45'"),
    ("split.train_outcomes", "some", "split.train_outcomes: Input should be 'observed' or 'all', got 'some'"),
])
def test_experiment_errors_before_any_work(key: str, value: object, says: str, tmp_path: Path) -> None:
    raw: dict = {}
    node = raw
    *parents, leaf = key.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump(raw), encoding="utf-8")
    db = tmp_path / "mlruns" / "mlflow.db"
    res = _run(["train", "--config", str(exp)], {"MLFLOW_TRACKING_URI": f"sqlite:///{db}"})
    _no_traceback(res)
    assert res.exit_code == 2
    assert _squash(f"{exp}: {says.format(dir=tmp_path)}") in _squash(res.output), res.output
    assert not db.exists()  # no MLflow store, so no FAILED run


def test_anonymise_eval_date_is_checked(tmp_path: Path) -> None:
    res = _run(["anonymise", "--input", str(tmp_path / "raw.csv"), "--output", str(tmp_path / "a.parquet"),
                "--key-file", str(tmp_path / "k.key"), "--eval-date", "2025-13-45"])
    _no_traceback(res)
    assert res.exit_code == 2 and _squash("--eval-date '2025-13-45': not a date") in _squash(res.output)


def test_rules_eval_date_is_checked(base: pd.DataFrame, tmp_path: Path) -> None:
    src = write_parquet(base, tmp_path / "in.parquet")
    res = _run(["rules", "--input", str(src), "--output", str(tmp_path / "o.parquet"), "--eval-date", "2999-01-01"])
    _no_traceback(res)
    assert res.exit_code == 2 and "dateoutofrange" in _squash(res.output)


def test_monitor_names_an_empty_file(base: pd.DataFrame, tmp_path: Path) -> None:
    ref = write_parquet(base, tmp_path / "ref.parquet")
    cur = write_parquet(base.iloc[:0], tmp_path / "empty_current.parquet")
    res = _run(["monitor", "--reference", str(ref), "--current", str(cur), "--output", str(tmp_path / "r")])
    _no_traceback(res)
    assert res.exit_code == 2 and _squash(f"{cur} has no rows") in _squash(res.output)


def test_no_row_is_lost_on_many_bad_cells(base: pd.DataFrame, env: ScoringEnv, tmp_path: Path) -> None:
    """Random bad cells: each command keeps every row, and the untouched rows score as before."""
    rng = np.random.default_rng(5)
    rows = rng.choice(N, 12, replace=False)
    spoilt = _with_text(base, head_age={int(r): v for r, v in zip(rows[:4], ["-5", "abc", "45.5", "999"])},
                        snapshot_date={int(rows[4]): "2999-01-01", int(rows[5]): "31/12/2024"},
                        ded_hygiene_date={int(rows[6]): "1500-06-01"},
                        education={int(rows[7]): "phd"})
    src = _csv(spoilt, tmp_path / "spoilt.csv")
    res, scored, bad = _score(tmp_path, src, env)
    assert res.exit_code == 0 and set(bad) == {int(r) for r in rows[:8]} and scored == N - 8
    clean_dir = tmp_path / "clean"
    clean_dir.mkdir()
    _score(clean_dir, _csv(base, clean_dir / "c.csv"), env)
    a = read_decisions(tmp_path / "scored").set_index("row_number")
    b = read_decisions(tmp_path / "clean" / "scored").set_index("row_number").loc[a.index]
    np.testing.assert_array_equal(a["points"].to_numpy(), b["points"].to_numpy())
