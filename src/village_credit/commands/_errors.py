"""How every command turns a toolkit error into what a user reads: one line, exit 2.

Why one place: a :class:`~village_credit.errors.VillageCreditError` already names the
file, row, column or key and the reason; a command prints it in red on stderr, with no
traceback, and exits 2 (Typer's code for a usage error), so scripts can tell a bad input
(2) from a failed gate (1).

A tracking server that refuses the credentials (HTTP 401) or the account's rights
(HTTP 403) is the same kind of error: the user fixes their environment, not the code.
:class:`CommandGroup` (the CLI's group) turns it into one line and exit 2 for every
command, instead of MLflow's traceback ending in ``error code 401 != 200``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from typer.core import TyperGroup

from village_credit.errors import VillageCreditError


def auth_error(exc: BaseException) -> str | None:
    """The one-line message for an authentication/permission refusal, else None.

    Follows the exception chain (the loader may wrap MLflow's error). Never prints the
    password; names the user the request was made as.

    >>> from mlflow.exceptions import MlflowException
    >>> from mlflow.protos.databricks_pb2 import UNAUTHENTICATED
    >>> print(auth_error(MlflowException("API request failed with error code 401 != 200",
    ...                                  error_code=UNAUTHENTICATED)))  # doctest: +ELLIPSIS
    the MLflow tracking server...refused the credentials (HTTP 401): check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD
    >>> auth_error(ValueError("not an auth error")) is None
    True
    """
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        code = getattr(e, "get_http_status_code", None)  # MlflowException, RestException
        status = code() if callable(code) and code() in (401, 403) else None
        response = getattr(e, "response", None)  # requests.HTTPError from an artifact download
        if status is None and getattr(response, "status_code", None) in (401, 403):
            status = int(response.status_code)
        if status is not None:
            server = os.environ.get("MLFLOW_TRACKING_URI", "")
            where = f"the MLflow tracking server ({server})" if server else "the MLflow tracking server"
            if status == 401:
                return (f"{where} refused the credentials (HTTP 401): check "
                        "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD")
            user = os.environ.get("MLFLOW_TRACKING_USERNAME") or "(no user set)"
            return (f"{where} denied this to account {user} (HTTP 403 PERMISSION_DENIED): the account "
                    "lacks the permission; ask the registry's admin")
        e = e.__cause__ or e.__context__
    return None


class CommandGroup(TyperGroup):
    """The CLI's group: an auth refusal from any command is one line on stderr, exit 2."""

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except Exception as exc:
            message = auth_error(exc)
            if message is None:
                raise
            Console(stderr=True).print(f"[red]error:[/red] {message}", soft_wrap=True)
            raise typer.Exit(code=2) from exc


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
        # soft_wrap: one line, never a path broken at the terminal's width
        (console or Console(stderr=True)).print(f"[red]error:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(code=2) from exc
