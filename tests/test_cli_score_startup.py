"""``village-credit score`` as a fresh process: what its start-up imports and how it ends
(issue 31 item 4, the CLI's fixed cost; docs/benchmarks.md "CLI fixed cost (issue 31 item 4),
fifth pass").

No wall-clock limits: each test checks the mechanism that saves the time (a module not
imported, the collector's state, the interpreter's teardown skipped) and that the
command's outputs, messages and exit codes stay what they were.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from village_credit.commands.scoring import summary_line

# Heavy stacks `score` never needs: a top-level import of any of them in the scoring,
# registry or model code would put seconds back into every scoring run.
NOT_FOR_SCORE = ("matplotlib", "shap", "optuna", "fairlearn", "numba", "statsmodels",
                 "village_credit.explain", "village_credit.fairness", "village_credit.validation",
                 "village_credit.pipeline", "village_credit.privacy", "village_credit.policy_lab",
                 "village_credit.reporting.html", "village_credit.models.blend")

# What the child runs before the CLI: an object whose finaliser only the interpreter's
# teardown calls, and an atexit callback; each leaves a file behind when it runs.
_MARKERS = """
import atexit, os, sys
class _Teardown:
    def __init__(self, path):
        self.path = path
    def __del__(self, open=open):
        open(self.path, "w").write("teardown")
_teardown = _Teardown(os.environ["MARK_TEARDOWN"])
atexit.register(lambda: open(os.environ["MARK_ATEXIT"], "w").write("atexit"))
"""


def _run_cli(args: list[str], tmp: Path, env_extra: dict[str, str] | None = None,
             before: str = _MARKERS) -> subprocess.CompletedProcess[str]:
    tmpdir = tmp / "tmpdir"
    tmpdir.mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(tmpdir), "MARK_TEARDOWN": str(tmp / "teardown.mark"),
           "MARK_ATEXIT": str(tmp / "atexit.mark"), "COLUMNS": "200", **(env_extra or {})}
    code = before + "\nfrom village_credit.cli import app\napp()\n"
    return subprocess.run([sys.executable, "-c", code, *args], check=False, capture_output=True, text=True, env=env)


def test_score_as_the_program_ends_without_teardown_and_keeps_its_outputs(scoring_env, tmp_path: Path) -> None:
    out = tmp_path / "scored"
    res = _run_cli(["score", "-i", str(scoring_env.parquet), "-o", str(out), "-m", scoring_env.model_uri,
                    "--tracking-uri", scoring_env.tracking_uri, "--chunk-rows", "1000", "--workers", "2",
                    "--no-progress"], tmp_path)
    assert res.returncode == 0, res.stderr
    written = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    printed = json.loads(res.stdout)  # every byte of the summary reached the pipe
    assert printed == json.loads(json.dumps(written, default=str))
    assert printed["reconciled"] and printed["scored"] + printed["quarantined"] == printed["rows_read"]
    assert " ".join(summary_line(written).split()) in " ".join(res.stderr.split())  # the line under it
    assert (tmp_path / "atexit.mark").read_text() == "atexit"  # atexit callbacks ran...
    assert not (tmp_path / "teardown.mark").exists()  # ...the interpreter's teardown did not
    assert list((tmp_path / "tmpdir").iterdir()) == []  # the model's download was removed (its finalizer)


def test_a_refused_score_keeps_its_message_and_exit_code(scoring_env, tmp_path: Path) -> None:
    res = _run_cli(["score", "-i", str(tmp_path / "missing.parquet"), "-o", str(tmp_path / "scored"),
                    "-m", scoring_env.model_uri, "--tracking-uri", scoring_env.tracking_uri], tmp_path)
    assert res.returncode == 2, res.stderr
    assert "error:" in res.stderr and "missing.parquet" in res.stderr and "not found" in res.stderr
    assert (tmp_path / "atexit.mark").exists() and not (tmp_path / "teardown.mark").exists()


def test_other_commands_and_callers_exit_as_before(tmp_path: Path) -> None:
    # a command outside FAST_EXIT_COMMANDS: the normal exit, teardown included (the marker works)
    res = _run_cli(["policies"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "teardown.mark").read_text() == "teardown"
    # score called with explicit arguments (a script, CliRunner): click's exit, then the caller goes on
    (tmp_path / "teardown.mark").unlink()
    code = _MARKERS + (
        "from village_credit.cli import app\n"
        "try:\n"
        f"    app(['score', '-i', {str(tmp_path / 'missing.parquet')!r}, '-o', {str(tmp_path / 'o')!r}])\n"
        "except SystemExit as stop:\n"
        "    print('caller resumed, code', stop.code)\n")
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True,
                         env={**os.environ, "MARK_TEARDOWN": str(tmp_path / "teardown.mark"),
                              "MARK_ATEXIT": str(tmp_path / "atexit.mark")})
    assert "caller resumed, code 2" in out.stdout, out.stderr
    assert (tmp_path / "teardown.mark").exists()


def test_fast_exit_leaves_the_normal_exit_when_something_could_be_lost(tmp_path: Path) -> None:
    """Each guard of ``cli.fast_exit``: it returns (the normal exit runs) instead of ending;
    and a thread still working is waited for, as the normal exit waits for it."""
    done = tmp_path / "thread.done"
    code = (
        "import sys, threading, time\n"
        "from village_credit.cli import fast_exit\n"
        "fast_exit('a message')\n"  # not an int: Python prints it
        "print('str code: returned', flush=True)\n"
        "sys.settrace(lambda *a: None)\n"
        "fast_exit(0)\n"  # a tracer (coverage) writes its data at the normal exit
        "sys.settrace(None)\n"
        "print('tracer: returned', flush=True)\n"
        "def work():\n"
        "    time.sleep(0.5)\n"
        f"    open({str(done)!r}, 'w').write('done')\n"
        "threading.Thread(target=work).start()\n"
        "fast_exit(3)\n"
        "print('not reached')\n")
    res = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert res.stdout.split("\n")[:2] == ["str code: returned", "tracer: returned"], res
    assert "not reached" not in res.stdout and res.returncode == 3, res
    assert done.read_text() == "done"  # the running thread finished before the process ended


def test_score_start_up_imports_none_of_the_heavy_stacks_it_does_not_use(scoring_env, tmp_path: Path) -> None:
    """A score run (in-process, CliRunner) in a fresh interpreter, then its ``sys.modules``."""
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from village_credit.cli import app\n"
        f"r = CliRunner().invoke(app, ['score', '-i', {str(scoring_env.parquet)!r}, '-o', "
        f"{str(tmp_path / 'scored')!r}, '-m', {scoring_env.model_uri!r}, '--tracking-uri', "
        f"{scoring_env.tracking_uri!r}, '--workers', '1', '--no-progress'])\n"
        "assert r.exit_code == 0, r.output\n"
        "print('\\n'.join(sys.modules))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    mods = set(res.stdout.split())
    assert "village_credit.models.decision" in mods  # the run did load and use the model
    assert {m for m in NOT_FOR_SCORE if m in mods or any(x.startswith(m + ".") for x in mods)} == set()
    commands = {m for m in mods if m.startswith("village_credit.commands.") and not m.split(".")[-1].startswith("_")}
    assert commands == {"village_credit.commands.scoring"}


def test_score_imports_its_stacks_with_the_collector_paused_and_freezes_them(scoring_env, tmp_path: Path) -> None:
    """The collector walking the heap while pandas, LightGBM and SciPy import is the cost
    ``paused_gc`` removes: each of them must first import with the collector off (the
    scorer, the model's code), and the program freezes what start-up left, with
    the collector back on for the scoring. The store's stack (SQLAlchemy, alembic) is the
    store process's (``registry.store_process``): never imported by the command's process."""
    spy = (
        "import gc, sys, atexit\n"
        "first = {}\n"
        "class _Spy:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name in ('pandas', 'mlflow', 'sqlalchemy', 'alembic', 'lightgbm', 'scipy.stats'):\n"
        "            first.setdefault(name, gc.isenabled())\n"
        "        return None\n"
        "sys.meta_path.insert(0, _Spy())\n"
        "atexit.register(lambda: print('COLLECTOR', sorted((m, first.get(m)) for m in "
        "('lightgbm', 'mlflow', 'pandas', 'scipy.stats')), gc.isenabled(), "
        "gc.get_freeze_count() > 100_000, sorted({'sqlalchemy', 'alembic'} & set(sys.modules)), flush=True))\n")
    res = _run_cli(["score", "-i", str(scoring_env.parquet), "-o", str(tmp_path / "scored"), "-m",
                    scoring_env.model_uri, "--tracking-uri", scoring_env.tracking_uri, "--workers", "1",
                    "--no-progress"], tmp_path, before=_MARKERS + spy)
    assert res.returncode == 0, res.stderr
    line = [x for x in res.stdout.splitlines() if x.startswith("COLLECTOR")]
    # MLflow: never imported by the command's process (the store process's; test_cli_no_mlflow)
    stacks = [("lightgbm", False), ("mlflow", None), ("pandas", False), ("scipy.stats", False)]
    assert line == [f"COLLECTOR {stacks} True True []"], res.stdout[-2000:]


def test_paused_gc_nests_and_puts_back_what_it_found() -> None:
    import gc

    from village_credit._lazy import paused_gc

    frozen = gc.get_freeze_count()
    assert gc.isenabled()
    try:
        with paused_gc():
            assert not gc.isenabled()
            with paused_gc():
                assert not gc.isenabled()
            assert not gc.isenabled()  # the inner block leaves it to the outer one
        assert gc.isenabled()
        gc.disable()
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # off before the block: stays off
    finally:
        gc.enable()
    assert gc.get_freeze_count() == frozen  # a library caller (this test) never freezes anything
