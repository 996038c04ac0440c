"""``village-credit explain``: reason codes for every household of a file, streamed.

Thin: load the model once (a saved folder, or an MLflow URI through the one loader,
``registry.load_decision_model``, which reads plain and recalibrated versions), stream the input in chunks
(``data.io.iter_batches``, bounded memory), call the public
:func:`village_credit.explain.explain` per chunk, append to one Parquet file with a
fixed schema. ``row`` in the output is the household's position in the whole file.
Only counts are printed -- never household data.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from enum import Enum
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import typer
from rich.console import Console

from village_credit.commands._errors import user_errors
from village_credit.commands._options import tracking_uri_option
from village_credit.data.io import count_rows, iter_batches
from village_credit.explain.api import explain, load_decision_model, reasons_arrow_schema
from village_credit.registry import configure
from village_credit.registry import load_decision_model as load_registered
from village_credit.reporting.progress import row_bar


class Form(str, Enum):
    """Shapes of the reason-code file (``explain.api.explain``'s ``form``)."""

    long = "long"
    wide = "wide"


def explain_cmd(
    model: str = typer.Option(..., "--model", "-m",
                              help="Saved DecisionModel directory or MLflow URI (models:/name@alias, runs:/id/model)."),
    input: Path = typer.Option(..., "--input", "-i", help="Rows to explain (the model's input columns), Parquet or CSV."),
    output: Path = typer.Option(..., "--output", "-o", help="Reason codes Parquet file to write."),
    top_k: int = typer.Option(3, "--top-k", min=1, help="Factors per direction (down / up)."),
    form: Form = typer.Option(Form.long, "--form", help="long (one row per reason) or wide (one row per input row)."),
    chunk_rows: int = typer.Option(50_000, "--chunk-rows", min=1, help="Rows per chunk."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    allow_ungated: bool = typer.Option(
        False, "--allow-ungated",
        help="Explain a registered version without a valid promotion record (as `score`)."),
    tracking_uri: str = tracking_uri_option(),
) -> None:
    """Write the top-k reason codes (Chinese and English labels, points) for every input row."""
    console = Console(stderr=True)
    with user_errors(console):
        if "://" in model or model.startswith(("models:/", "runs:/")):
            configure(tracking_uri)  # default: the project's store, as `village-credit score`
            # the one loader of every command: plain and recalibrated versions, checked
            # against their promotion record
            dm = load_registered(model, allow_ungated=allow_ungated)
        else:
            dm = load_decision_model(model)  # a folder written by DecisionModel.save
        total = count_rows(input)
        schema = reasons_arrow_schema(form.value, top_k, dm.output_id_column)
        output.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent)
        os.close(fd)
        n_in = n_out = n_households = 0
        start = time.perf_counter()
        bar = row_bar(total, progress, "explaining", console)
        try:
            with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
                for chunk in iter_batches(input, batch_rows=chunk_rows):
                    first = int(chunk.index[0]) if len(chunk) else n_in
                    res = explain(dm, chunk, top_k=top_k, form=form.value)
                    res = res.assign(row=res["row"].to_numpy() + first)
                    table = pa.Table.from_pandas(res, schema=schema, preserve_index=False)
                    writer.write_table(table)
                    n_in += len(chunk)
                    n_out += len(res)
                    if form is Form.long:
                        n_households += int(res["row"].nunique())
                    else:
                        n_households += int(((res["n_decisive"] > 0) | (res["down_1_code"] != "")
                                             | (res["up_1_code"] != "")).sum())
                    bar.advance(len(chunk))
            os.replace(tmp, output)  # readers never see half a file
        finally:
            bar.close()
            if os.path.exists(tmp):
                os.unlink(tmp)
    seconds = time.perf_counter() - start
    typer.echo(json.dumps({
        "input": str(input), "output": str(output), "form": form.value, "top_k": top_k,
        "rows_in": n_in, "rows_out": n_out, "rows_with_reasons": n_households,
        "seconds": round(seconds, 3), "rows_per_second": round(n_in / seconds, 1) if seconds > 0 else None,
    }, indent=2))
