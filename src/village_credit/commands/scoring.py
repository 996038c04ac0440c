"""``village-credit score``: batch-score a household file with a registered model."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console


def register(app: typer.Typer) -> None:
    @app.command("score")
    def score(
        input: Path = typer.Option(..., "--input", "-i", help="Households as Parquet or CSV."),
        output: Path = typer.Option(..., "--output", "-o", help="Output directory (resumable)."),
        model: str = typer.Option("models:/village-credit@champion", "--model", "-m", help="Model URI."),
        engine: str = typer.Option("local", help="local (chunked, resumable) or spark."),
        master: str = typer.Option("local[*]", help="Spark master for --engine spark."),
        chunk_rows: int = typer.Option(50_000, help="Rows per chunk (local engine)."),
        overwrite: bool = typer.Option(False, help="Discard an earlier run in OUTPUT made with other arguments."),
        progress: bool = typer.Option(True, help="Show a progress bar."),
    ) -> None:
        """Score every household; invalid rows go to quarantine; counts reconcile."""
        from village_credit.errors import VillageCreditError
        from village_credit.registry.store import configure

        console = Console(stderr=True)
        configure()
        try:
            if engine == "spark":
                from village_credit.scoring import score_file_spark

                summary = score_file_spark(model, input, output, master=master)
            elif engine == "local":
                from village_credit.scoring import score_file

                summary = score_file(model, input, output, chunk_rows=chunk_rows,
                                     overwrite=overwrite, progress=progress)
            else:
                raise typer.BadParameter("engine must be 'local' or 'spark'")
        except VillageCreditError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(code=2) from exc
        typer.echo(json.dumps(summary.to_dict(), indent=2, default=str))
