"""Options several commands share, declared once so they read and behave the same."""

from __future__ import annotations

from typing import Any

import typer

TRACKING_URI_HELP = "MLflow store (default: MLFLOW_TRACKING_URI, else sqlite under mlruns/)."


def tracking_uri_option() -> Any:
    """``--tracking-uri`` for every command that reads or writes the MLflow store.

    A fresh ``typer.Option`` per command (Typer keeps one per parameter).

    >>> tracking_uri_option().envvar
    'MLFLOW_TRACKING_URI'
    """
    return typer.Option(None, "--tracking-uri", envvar="MLFLOW_TRACKING_URI", help=TRACKING_URI_HELP)
