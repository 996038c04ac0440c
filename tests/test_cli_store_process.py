"""``village-credit score`` leaves the MLflow store to a store process (issue 31 item 4,
sixth pass; ``registry.store_process``): the command's own process never imports the
store's stack, and what the store process finds (the version, the promotion record, an
error) reaches the command as it did when the command did the work itself.

No wall-clock limits: the mechanism is checked (what the command's process imported),
and every output and message against the same command run in-process (``CliRunner``,
where the work is done in turn, as before).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from village_credit.cli import app
from village_credit.registry.store_process import _REDO, _portable
from village_credit.scoring import read_decisions, read_quarantine

# the store's stack: imported by the store process only
STORE_STACK = ("sqlalchemy", "alembic", "mlflow.store.tracking.sqlalchemy_store",
               "mlflow.store.model_registry.sqlalchemy_store")

_SPY = """
import atexit, sys
atexit.register(lambda: print('STORE_STACK', sorted(m for m in {stack!r} if m in sys.modules),
                              'village_credit.models.decision' in sys.modules, flush=True))
from village_credit.cli import app
app()
"""


def _program(args: list[str], tmp: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI as the program (``sys.argv``), its temporary files in ``tmp/tmpdir``."""
    tmpdir = tmp / "tmpdir"
    tmpdir.mkdir(exist_ok=True)
    src = str(Path(__file__).resolve().parents[1] / "src")
    full = {**os.environ, "TMPDIR": str(tmpdir), "COLUMNS": "200",
            "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]), **(env or {})}
    return subprocess.run([sys.executable, "-c", _SPY.format(stack=STORE_STACK), *args], check=False,
                          capture_output=True, text=True, env=full)


def _error_line(text: str) -> str:
    return " ".join(text[text.index("error:"):].split())


def test_the_programs_process_never_opens_the_store_and_scores_as_before(scoring_env, tmp_path: Path) -> None:
    args = ["-i", str(scoring_env.parquet), "-m", scoring_env.model_uri, "--tracking-uri",
            scoring_env.tracking_uri, "--chunk-rows", "1000", "--workers", "2", "--no-progress"]
    res = _program(["score", *args, "-o", str(tmp_path / "program")], tmp_path)
    assert res.returncode == 0, res.stderr
    marker = [x for x in res.stdout.splitlines() if x.startswith("STORE_STACK")]
    assert marker == ["STORE_STACK [] True"], res.stdout[-2000:]  # the model loaded, the store not here
    printed = json.loads(res.stdout[:res.stdout.index("STORE_STACK")])
    assert printed["model"]["gated"] is True and printed["model"]["gate"] == "promoted by override"
    assert list((tmp_path / "tmpdir").iterdir()) == []  # the store process's download went with the model

    inproc = CliRunner().invoke(app, ["score", *args, "-o", str(tmp_path / "in_turn")])
    assert inproc.exit_code == 0, inproc.output
    before = json.loads((tmp_path / "in_turn" / "summary.json").read_text(encoding="utf-8"))
    assert printed["model"] == before["model"]  # version, alias, run, digest, gate: the same
    for key in ("rows_read", "scored", "quarantined", "problems", "chunks", "reconciled"):
        assert printed[key] == before[key], key
    for read in (read_decisions, read_quarantine):
        pd.testing.assert_frame_equal(read(tmp_path / "program"), read(tmp_path / "in_turn"))


@pytest.fixture
def example_store():
    from village_credit.registry.examples import ExampleStore
    from village_credit.scoring.examples import households_file

    store = ExampleStore()  # a throwaway sqlite store in a temporary folder
    try:
        store.ungated = store.register("demo")  # logged, never promoted
        store.households = households_file(store.root, n=20)
        yield store
    finally:
        store.close()


@pytest.mark.parametrize("case", ["ungated", "unknown model", "not a store"])
def test_an_error_found_by_the_store_process_reads_as_before(example_store, tmp_path: Path, case: str) -> None:
    """The refusal of an ungated version (decided in the command from the record the store
    process read), a model the registry lacks (the store process's own error) and a
    tracking URI that is no sqlite store (``configure``'s error): message and exit code
    as the in-turn run gives them, and no download left behind."""
    uri, model = example_store.uri, f"models:/demo/{example_store.ungated}"
    if case == "unknown model":
        model = "models:/no-such-model@champion"
    elif case == "not a store":
        uri = f"sqlite:///{tmp_path.as_posix()}"  # a directory
    args = ["-i", str(example_store.households), "-m", model, "--tracking-uri", uri, "--no-progress"]
    res = _program(["score", *args, "-o", str(tmp_path / "program")], tmp_path)
    inproc = CliRunner().invoke(app, ["score", *args, "-o", str(tmp_path / "in_turn")])
    assert res.returncode == inproc.exit_code == 2, (res.stderr, inproc.output)
    assert _error_line(res.stderr) == _error_line(inproc.output).replace(str(tmp_path / "in_turn"),
                                                                         str(tmp_path / "program"))
    assert list((tmp_path / "tmpdir").iterdir()) == []


def test_only_the_toolkits_own_errors_cross_between_the_processes() -> None:
    """Another exception (SQLAlchemy's, MLflow's) is redone in the command, which then
    raises it exactly as before; the toolkit's own cross with their type and message."""
    from mlflow.exceptions import MlflowException

    from village_credit.errors import ConfigError

    assert _portable(MlflowException("boom")) == _REDO
    assert _portable(ValueError("x")) == _REDO
    back = _portable(ConfigError("tracking URI 'x': no"))
    assert type(back) is ConfigError and str(back) == "tracking URI 'x': no"
