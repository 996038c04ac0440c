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
import importlib
import importlib.util
import inspect
import os
from pathlib import Path

import click
import typer
import typer.main
from typer.core import TyperCommand

# the commands show their own progress; MLflow's per-file download bars (110 of them per
# model load) would bury the summary a user reads
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

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


class LazyGroup(CommandGroup):
    """The CLI's group: a command's module is imported when that command runs, not before.

    The group's own ``--help`` lists each command from :data:`COMMANDS` and its
    docstring (:func:`command_help`), so listing imports no command module.
    """

    _listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        panel = COMMANDS[cmd_name][1]
        if self._listing:
            return TyperCommand(cmd_name, help=command_help(cmd_name), rich_help_panel=panel)
        module, function = _module_and_function(cmd_name)
        one = typer.Typer()
        one.command(cmd_name, rich_help_panel=panel)(getattr(importlib.import_module(module), function))
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
