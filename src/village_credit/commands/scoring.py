"""``village-credit score``: batch-score a file of rows (households or a table) with a model.

Imports only the CLI's own light modules at its top: the store process
(``registry.store_process``) is forked once pandas is imported (it needs it too) and the
output folder checked, before the scorer or the model's code is imported, and this
process never imports MLflow on the local engine (docs/benchmarks.md, "CLI fixed cost
(issue 31 item 4), seventh pass").
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path

import typer
from rich.console import Console

from village_credit._lazy import paused_gc
from village_credit.commands._options import tracking_uri_option
from village_credit.errors import VillageCreditError
from village_credit.registry.store_process import store_process


class Engine(str, Enum):
    """Where ``score`` runs: one machine (chunked, resumable) or Spark."""

    local = "local"
    spark = "spark"

def score(
    input: Path = typer.Option(..., "--input", "-i",
                               help="Rows to score (the model's input columns) as Parquet or CSV."),
    output: Path = typer.Option(..., "--output", "-o", help="Output directory (resumable)."),
    model: str = typer.Option("models:/village-credit@champion", "--model", "-m", help="Model URI."),
    engine: Engine = typer.Option(Engine.local, help="local (chunked, resumable) or spark."),
    master: str = typer.Option("local[*]", help="Spark master for --engine spark."),
    chunk_rows: int = typer.Option(50_000, help="Rows per chunk (local engine); the most rows per "
                                   "task on Spark."),
    workers: int = typer.Option(0, min=0, help="Local engine: processes deciding chunks at once "
                                "(0: one per core this process may use; 1: one process). On a "
                                "machine shared with other work, --workers 1 is cheaper: two "
                                "workers used 13-33 % more CPU there for no reliably faster run "
                                "(docs/benchmarks.md)."),
    tasks_per_core: int = typer.Option(2, help="Spark: at least this many row-range tasks per core."),
    overwrite: bool = typer.Option(False, help="Start afresh in OUTPUT, discarding an earlier run there."),
    progress: bool = typer.Option(True, help="Show a progress bar (rows/s) on stderr."),
    report: bool = typer.Option(True, "--programme-report/--no-programme-report",
                                help="Write the credit village / township report."),
    tracking_uri: str = tracking_uri_option(),
    allow_ungated: bool = typer.Option(
        False, "--allow-ungated",
        help="Score with a version that has no valid promotion record (recorded in the "
             "output metadata and summary.json)."),
) -> None:
    """Score every row with the model; invalid rows go to quarantine; rows read = scored + quarantined.

    Prints the summary JSON. Exit code 2 only when nothing could be scored
    (unreadable input, unloadable model, a model without a valid promotion record
    and no --allow-ungated, output directory of another run, no valid row).
    """
    console = Console(stderr=True)
    try:
        if engine is Engine.spark:
            with paused_gc():  # pandas, MLflow, SQLAlchemy's ORM and alembic
                from village_credit.data.io import check_output_dir
                from village_credit.registry.store import configure
                from village_credit.scoring.spark import score_file_spark

            check_output_dir(output, "--output")  # before the model store is even opened
            with paused_gc():  # opening the store imports SQLAlchemy's ORM and alembic
                configure(tracking_uri)
            summary = score_file_spark(model, input, output, master=master, overwrite=overwrite,
                                       report=report, allow_ungated=allow_ungated,
                                       chunk_rows=chunk_rows, tasks_per_core=tasks_per_core,
                                       progress=progress)
        else:
            with paused_gc():  # pandas, pyarrow: the store process inherits them
                from village_credit.data.io import check_output_dir
            check_output_dir(output, "--output")  # before the model store is even opened
            # MLflow imported, the store opened, the model resolved, fetched and its promotion
            # record read in another process (the program only) while this one imports the
            # scorer and the model's code, and a thread takes the input's digest and
            # duplicate ids (score_file's pre-pass, started before the model is there)
            with store_process(tracking_uri, model) as store:
                store.open()
                with paused_gc():
                    from village_credit.registry.loading import import_model_code
                    from village_credit.scoring.batch import early_prepass, score_file
                with early_prepass(input):  # after the store process's fork: no thread runs then
                    if store.forked:
                        import_model_code()
                    store.configured()  # configure's error, if any, raised here as before
                    summary = score_file(model, input, output, chunk_rows=chunk_rows,
                                         overwrite=overwrite, progress=progress, report=report,
                                         allow_ungated=allow_ungated, workers=workers or None)
    except VillageCreditError as exc:
        summary_file = output / "summary.json"
        if summary_file.exists() and _no_rows_scored(exc):
            typer.echo(summary_file.read_text(encoding="utf-8"))
        console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(code=2) from exc
    typer.echo(json.dumps(summary.to_dict(), indent=2, default=str))
    if summary.model.get("gated") is False:
        console.print(f"[yellow]warning:[/yellow] {summary.model.get('gate')}")
    console.print(summary_line(summary.to_dict()))



def _no_rows_scored(exc: BaseException) -> bool:
    """Whether ``exc`` is the scorer's ``NoRowsScored`` (imported only if the scorer was)."""
    batch = sys.modules.get("village_credit.scoring.batch")
    return batch is not None and isinstance(exc, batch.NoRowsScored)


def summary_line(summary: dict) -> str:  # type: ignore[type-arg]
    """The line printed under the JSON: every figure read from the summary it printed."""
    return (f"{summary['rows_read']:,} rows read = {summary['scored']:,} scored + "
            f"{summary['quarantined']:,} quarantined"
            + ("" if summary["reconciled"] else " [red](NOT reconciled)[/red]")
            + f"; {summary['rows_per_second']:,.0f} rows/s; {summary['seconds']:,.1f} s in all")

