"""How every command turns a toolkit error into what a user reads: one line, exit 2.

Why one place: a :class:`~village_credit.errors.VillageCreditError` already names the
file, row, column or key and the reason; a command prints it in red on stderr, with no
traceback, and exits 2 (Typer's code for a usage error), so scripts can tell a bad input
(2) from a failed gate (1).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

from village_credit.errors import VillageCreditError


@contextmanager
def user_errors(console: Console | None = None) -> Iterator[None]:
    """Run the block; a ``VillageCreditError`` becomes ``error: <message>`` and exit code 2.

    >>> from village_credit.errors import ConfigError
    >>> try:
    ...     with user_errors(Console(width=80)):  # commands pass their stderr console
    ...         raise ConfigError("exp.yaml: seed: Input should be a valid integer, got 'x'")
    ... except typer.Exit as stop:
    ...     print("exit code", stop.exit_code)
    error: exp.yaml: seed: Input should be a valid integer, got 'x'
    exit code 2
    """
    try:
        yield
    except VillageCreditError as exc:
        (console or Console(stderr=True)).print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from exc
