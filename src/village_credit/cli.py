"""The ``village-credit`` command line: a thin Typer app over the public API.

Commands load lazily, in one place (click's documented "lazily loading subcommands"
pattern): :data:`COMMANDS` names each command's module and function, and
:class:`LazyGroup` imports a command module only when its command runs. A command
module imports its whole stack at its top (LightGBM, SHAP, MLflow, Spark's client), so
``village-credit --help`` must not import any of them: the listing reads each command's
docstring from its source (``ast``) instead (docs/benchmarks.md, "CLI start-up").
"""

from __future__ import annotations

import ast
import atexit
import ctypes
import importlib
import importlib.util
import inspect
import os
import sys
import threading
from pathlib import Path
from typing import Any

import click
import typer
import typer.main
from typer.core import TyperCommand

# the commands show their own progress; MLflow's per-file download bars (110 of them per
# model load) would bury the summary a user reads
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

from village_credit._lazy import freeze_after_imports, mark_program, paused_gc
from village_credit.commands import (  # noqa: E402 - after the environment default above
    DATA,
    EXPLAIN_AUDIT,
    REGISTRY,
    RULES,
    SCORE,
    TRAIN,
    VALIDATE,
)
from village_credit.commands._errors import CommandGroup  # noqa: E402

COMMANDS: dict[str, tuple[str, str]] = {
    # command: ("module:function" under village_credit.commands, help panel); in workflow
    # order, which --help follows (panels appear in the order of their first command)
    "generate": ("data:generate", DATA),
    "check-data": ("data:check_data", DATA),
    "anonymise": ("privacy:anonymise_cmd", DATA),
    "scan-pii": ("privacy:scan_pii_cmd", DATA),
    "generate-raw": ("privacy:generate_raw_cmd", DATA),
    "make-key": ("privacy:make_key_cmd", DATA),
    "rules": ("rules:rules_cmd", RULES),
    "policies": ("rules:policies_cmd", RULES),
    "policy-lab": ("policy_lab:policy_lab", RULES),
    "train": ("pipeline:train", TRAIN),
    "demo": ("pipeline:demo", TRAIN),
    "schemas": ("formats:schemas_cmd", TRAIN),
    "explain": ("explain:explain_cmd", EXPLAIN_AUDIT),
    "fairness": ("fairness:fairness", EXPLAIN_AUDIT),
    "validate": ("validation:validate_cmd", VALIDATE),
    "recalibrate": ("validation:recalibrate_cmd", VALIDATE),
    "monitor": ("validation:monitor_cmd", VALIDATE),
    "promote": ("registry:promote_cmd", REGISTRY),
    "rollback": ("registry:rollback_cmd", REGISTRY),
    "models": ("registry:models_cmd", REGISTRY),
    "score": ("scoring:score", SCORE),
}
"""Every command of the CLI: where its function lives and its ``--help`` panel."""

FAST_EXIT_COMMANDS: frozenset[str] = frozenset({"score"})
"""Commands whose process ends without the interpreter's teardown (:func:`fast_exit`) when
the CLI is the program (``village-credit ...`` or ``python -c "...app()"``).

Why: tearing down what ``score`` imported (SQLAlchemy's ORM registry of MLflow's store,
pandas, SciPy, ~3,000 modules) cost ~1.1 CPU s after the summary was printed, a fifth
of the command's fixed cost (docs/benchmarks.md, "CLI fixed cost (issue 31 item 4), fifth
pass"). ``score`` writes every output atomically and closes it before it prints.
"""


def _module_and_function(name: str) -> tuple[str, str]:
    module, _, function = COMMANDS[name][0].partition(":")
    return f"village_credit.commands.{module}", function


def command_help(name: str) -> str:
    """The docstring of command ``name``'s function, read from its source without importing it.

    >>> command_help("score").splitlines()[0]
    'Score every row with the model; invalid rows go to quarantine; rows read = scored + quarantined.'
    """
    module, function = _module_and_function(name)
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise LookupError(f"command {name!r}: module {module} not found")
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            return inspect.cleandoc(ast.get_docstring(node) or "")
    raise LookupError(f"command {name!r}: {module} has no function {function}")


def fast_exit(code: Any) -> None:
    """End the process now with ``code``, as the interpreter would, minus its teardown.

    Runs what the interpreter's exit runs before tearing down, in its order: the
    threads' shutdown (``threading._shutdown``: concurrent.futures' exit hook, then every
    non-daemon thread joined, e.g. MLflow's idle download pool), stdout and stderr
    flushed, the ``atexit`` callbacks (logging's flush, MLflow's own, ``weakref.finalize``
    clean-ups such as the model's temporary download, multiprocessing's), C stdio flushed;
    then ``os._exit``. What is skipped is only the freeing of every module and object.
    Returns without doing anything, leaving the normal exit to run, where skipping the
    teardown could lose something: a code that is not an int (Python prints it), an
    interactive session or IPython (``SystemExit`` is caught there), a tracer or profiler
    (coverage, cProfile write their data after the program), a stream that cannot be
    flushed (a closed pipe: the interpreter reports it as usual), or an interpreter
    without these hooks.
    """
    if code is not None and not isinstance(code, int):
        return
    if sys.flags.interactive or hasattr(sys, "ps1") or "IPython" in sys.modules:
        return
    if sys.gettrace() is not None or sys.getprofile() is not None:
        return
    shutdown_threads = getattr(threading, "_shutdown", None)
    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
    if shutdown_threads is None or run_exitfuncs is None or threading.current_thread() is not threading.main_thread():
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    shutdown_threads()
    run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    try:
        ctypes.CDLL(None).fflush(None)  # what C code (LightGBM, Arrow) printed, as exit() would
    except (OSError, AttributeError):
        pass
    os._exit(code or 0)


class LazyGroup(CommandGroup):
    """The CLI's group: a command's module is imported when that command runs, not before.

    The group's own ``--help`` lists each command from :data:`COMMANDS` and its
    docstring (:func:`command_help`), so listing imports no command module.

    Run as the program (arguments from ``sys.argv``, standalone), a command of
    :data:`FAST_EXIT_COMMANDS` ends through :func:`fast_exit`; called with explicit
    arguments (``CliRunner``, a test, a script) the group exits as click always does.
    """

    _listing = False
    _ran: str | None = None

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        if args is None and standalone_mode:  # the program, not a caller: freeze what start-up imports
            mark_program()
            freeze_after_imports()
        try:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        except SystemExit as stop:
            if args is None and standalone_mode and self._ran in FAST_EXIT_COMMANDS:
                fast_exit(stop.code)  # returns only where the normal exit must run
            raise

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        panel = COMMANDS[cmd_name][1]
        if self._listing:
            return TyperCommand(cmd_name, help=command_help(cmd_name), rich_help_panel=panel)
        module, function = _module_and_function(cmd_name)
        self._ran = cmd_name
        one = typer.Typer()
        with paused_gc():  # the command's stack (pandas, MLflow...): imported without the collector walking it
            command = getattr(importlib.import_module(module), function)
        one.command(cmd_name, rich_help_panel=panel)(command)
        return typer.main.get_command(one)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="village-credit",
    cls=LazyGroup,  # lazy commands; an MLflow auth refusal from any command: one line, exit 2
    help="Credit scoring for rural whole-village credit programmes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _group() -> None:
    # a callback makes Typer build a group whose commands LazyGroup supplies
    pass


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
