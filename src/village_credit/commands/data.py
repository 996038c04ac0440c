"""``village-credit generate`` and ``check-data``: synthetic households and schema checks."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from village_credit.commands._errors import user_errors
from village_credit.data import GeneratorConfig, read_table, validate_households, write_synthetic
from village_credit.data.io import check_output_file, write_parquet


def generate(
    output: Path = typer.Option(..., "--output", "-o", help="Parquet file to write."),
    n: int = typer.Option(20_000, "--n-households", "-n", min=1, help="Number of households."),
    seed: int = typer.Option(42, help="Random seed (same seed, identical bytes)."),
    vintage: int = typer.Option(1, min=1, max=2,
                                help="1 = first review; 2 = the later snapshot with drift."),
    default_rate: float = typer.Option(0.04, help="Target mean true PD."),
    chunk_rows: int = typer.Option(200_000, help="Rows per chunk (memory stays flat)."),
) -> None:
    """Generate synthetic households with ground truth (streams Parquet in chunks)."""
    cfg = GeneratorConfig(n_households=n, seed=seed, target_default_rate=default_rate)
    path = write_synthetic(cfg, output, chunk_rows=chunk_rows, vintage=vintage, progress=True)
    typer.echo(f"wrote {n:,} households to {path}")


def check_data(
    input: Path = typer.Option(..., "--input", "-i", help="Household table (Parquet or CSV)."),
    quarantine: Path = typer.Option(None, help="Write one row per problem here (Parquet)."),
    encoding: str = typer.Option(None, help="CSV encoding (default: detected: UTF-8 with or "
                                 "without BOM, else GB18030)."),
    delimiter: str = typer.Option(None, help="CSV delimiter (default: detected among , ; tab |)."),
) -> None:
    """Validate a household table against the schema; bad rows are listed, never dropped."""
    console = Console(stderr=True)
    with user_errors(console):
        if quarantine is not None:
            check_output_file(quarantine, "--quarantine")
        result = validate_households(read_table(input, encoding=encoding, delimiter=delimiter),
                                     source=str(input))
        if quarantine is not None:
            write_parquet(result.quarantine, quarantine)
    summary = {"rows": result.n_in, "valid": result.n_valid, "quarantined": result.n_quarantined,
               "problems": result.summary().to_dict(orient="records")}
    typer.echo(json.dumps(summary, indent=2, default=str))
    raise typer.Exit(code=0 if result.ok else 1)
