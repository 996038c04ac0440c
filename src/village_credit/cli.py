"""The ``village-credit`` command line: a thin Typer app over the public API."""

from __future__ import annotations

import importlib
import os
import pkgutil

import typer

# the commands show their own progress; MLflow's per-file download bars (110 of them per
# model load) would bury the summary a user reads
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import village_credit.commands as _commands
from village_credit.commands._errors import CommandGroup

app = typer.Typer(
    name="village-credit",
    cls=CommandGroup,  # an MLflow auth refusal from any command: one line, exit 2
    help="Credit scoring for rural whole-village credit programmes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

# workflow order first (the help panels follow it), then any module not yet listed;
# private modules (``_tables``) are helpers, not commands
_found = sorted(m.name for m in pkgutil.iter_modules(_commands.__path__) if not m.name.startswith("_"))
for _name in [*(m for m in _commands.MODULE_ORDER if m in _found),
              *(m for m in _found if m not in _commands.MODULE_ORDER)]:
    importlib.import_module(f"village_credit.commands.{_name}").register(app)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
