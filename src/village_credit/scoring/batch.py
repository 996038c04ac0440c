"""Batch scoring on one machine: streaming, resumable, lossless.

Why chunks with markers: the credit center scores every household of a county in
one go, on a shared machine that may be restarted. Each chunk's decisions and
quarantine are written to temporary files and renamed into place; a small marker
file written *last* says the chunk is done. A rerun with the same arguments skips
chunks that have a marker and redoes any chunk that was cut off, so every input row
ends up exactly once in either the decisions or the quarantine, even after
``kill -9``.

Layout of ``output_dir``::

    _run.json                  the arguments the run is bound to (checked on resume)
    _chunks/00000.json ...     done-markers with per-chunk counts
    decisions/part-00000.parquet ...   one decision per valid household
    quarantine/part-00000.parquet ...  one row per problem: row_number, column, reason
    quarantine_rows/part-00000.parquet the offending input rows, untouched
    summary.json               rows read = scored + quarantined, model version, timing
    programme_villages.parquet, programme_townships.parquet
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from village_credit.data.io import count_rows, iter_batches
from village_credit.data.validation import coerce_households, validate_households
from village_credit.errors import VillageCreditError

PASSTHROUGH = ("village_code", "township_code")
"""Input columns copied onto each decision so programme reports need no join."""


class ScoringError(VillageCreditError):
    """Scoring could not start or could not score anything."""


@dataclass
class ModelRef:
    """What scored the file: URI, resolved registered name/version and alias."""

    uri: str
    name: str | None = None
    version: str | None = None
    alias: str | None = None
    run_id: str | None = None

    def as_metadata(self) -> dict[str, str]:
        return {f"village_credit.model_{k}": str(v) for k, v in asdict(self).items() if v is not None}


@dataclass
class ScoreSummary:
    input: str
    output_dir: str
    rows_read: int = 0
    scored: int = 0
    quarantined: int = 0
    chunks: int = 0
    chunks_resumed: int = 0
    seconds: float = 0.0
    model: dict[str, Any] = field(default_factory=dict)
    reconciled: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_model(model_uri: str) -> ModelRef:
    """Resolve ``models:/name@alias`` or ``models:/name/N`` to a concrete version."""
    ref = ModelRef(uri=model_uri)
    if not model_uri.startswith("models:/"):
        return ref
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    body = model_uri[len("models:/"):]
    try:
        if "@" in body:
            name, alias = body.split("@", 1)
            mv = client.get_model_version_by_alias(name, alias)
            ref.alias = alias
        else:
            name, version = body.rsplit("/", 1)
            mv = client.get_model_version(name, version)
    except Exception as exc:  # mlflow raises MlflowException with a useful message
        raise ScoringError(f"cannot resolve model {model_uri}: {exc}") from exc
    ref.name, ref.version, ref.run_id = mv.name, str(mv.version), mv.run_id
    return ref


def load_scoring_model(model_uri: str) -> tuple[Any, ModelRef]:
    """Load the pyfunc decision model; a clear ScoringError when it cannot be loaded."""
    import mlflow.pyfunc

    ref = resolve_model(model_uri)
    target = f"models:/{ref.name}/{ref.version}" if ref.version else model_uri
    try:
        model = mlflow.pyfunc.load_model(target)
    except Exception as exc:
        raise ScoringError(f"cannot load model {model_uri}: {exc}") from exc
    return model, ref


def _atomic_write_table(table: pa.Table, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def _atomic_write_json(obj: dict[str, Any], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _run_identity(input_path: Path, chunk_rows: int, ref: ModelRef) -> dict[str, Any]:
    st = input_path.stat()
    return {
        "input": str(input_path.resolve()),
        "input_bytes": st.st_size,
        "input_mtime_ns": st.st_mtime_ns,
        "chunk_rows": chunk_rows,
        "model_uri": ref.uri,
        "model_version": ref.version,
    }


def _prepare_output(output_dir: Path, identity: dict[str, Any], overwrite: bool) -> None:
    for sub in ("_chunks", "decisions", "quarantine", "quarantine_rows"):
        (output_dir / sub).mkdir(parents=True, exist_ok=True)
    run_file = output_dir / "_run.json"
    if run_file.exists():
        previous = json.loads(run_file.read_text(encoding="utf-8"))
        if previous != identity:
            if not overwrite:
                changed = sorted(k for k in identity if previous.get(k) != identity[k])
                raise ScoringError(
                    f"{output_dir} holds a run with other arguments ({', '.join(changed)} differ); "
                    "use a new output directory or --overwrite"
                )
            for sub in ("_chunks", "decisions", "quarantine", "quarantine_rows"):
                for f in (output_dir / sub).glob("*"):
                    f.unlink()
    _atomic_write_json(identity, run_file)


def score_chunk(model: Any, chunk: pd.DataFrame, first_row: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Validate then decide one chunk: (decisions, problems, bad input rows).

    Rows failing the schema never reach the model; rows the model itself flags
    (status ``quarantined``) join the quarantine with its reason. Nothing is dropped.
    """
    chunk = chunk.reset_index(drop=True)
    row_numbers = pd.RangeIndex(first_row, first_row + len(chunk))
    coerced = coerce_households(chunk)
    result = validate_households(coerced)
    problems = result.quarantine.copy()
    # validate_households numbers rows from 0 within the frame it saw.
    problems["row_number"] = problems["row_number"].astype("int64") + first_row
    valid = result.valid
    bad_positions = sorted(set(range(len(chunk))) - set(valid.index))
    bad_rows = chunk.iloc[bad_positions].copy()
    bad_rows.insert(0, "row_number", row_numbers[bad_positions])

    decisions = pd.DataFrame()
    if len(valid):
        decided = model.predict(valid)
        if not isinstance(decided, pd.DataFrame):
            decided = pd.DataFrame(decided)
        decided = decided.reset_index(drop=True)
        if len(decided) != len(valid):
            raise ScoringError(f"model returned {len(decided)} rows for {len(valid)} inputs (rows from {first_row})")
        decided.insert(0, "row_number", row_numbers[valid.index].to_numpy())
        for col in PASSTHROUGH:
            if col in valid.columns and col not in decided.columns:
                decided[col] = valid[col].to_numpy()
        flagged = decided["status"].astype(str) != "scored" if "status" in decided else pd.Series(False, index=decided.index)
        if flagged.any():
            extra = decided.loc[flagged]
            problems = pd.concat([problems, pd.DataFrame({
                "row_number": extra["row_number"].to_numpy(),
                "household_id": extra.get("household_id", pd.Series([None] * len(extra))).to_numpy(),
                "column": "",
                "value": "",
                "reason": extra.get("quarantine_reason", pd.Series(["rejected by model"] * len(extra))).astype(str).to_numpy(),
            })], ignore_index=True)
            model_bad = chunk.iloc[valid.index[flagged.to_numpy()]].copy()
            model_bad.insert(0, "row_number", extra["row_number"].to_numpy())
            bad_rows = pd.concat([bad_rows, model_bad], ignore_index=True)
        decisions = decided.loc[~flagged].reset_index(drop=True)
    problems = problems.astype({"column": "string", "value": "string", "reason": "string"})
    return decisions, problems.reset_index(drop=True), bad_rows.reset_index(drop=True)


def _chunks(input_path: Path, chunk_rows: int) -> Iterator[tuple[int, int, pd.DataFrame]]:
    first = 0
    for k, batch in enumerate(iter_batches(input_path, batch_rows=chunk_rows)):
        yield k, first, batch
        first += len(batch)


def score_file(
    model_uri: str,
    input_path: str | Path,
    output_dir: str | Path,
    *,
    chunk_rows: int = 50_000,
    overwrite: bool = False,
    progress: bool = True,
    model: Any = None,
) -> ScoreSummary:
    """Score every household of a Parquet/CSV file with a registered decision model.

    Raises ``ScoringError`` (non-zero exit on the CLI) only when nothing can be
    scored: the model cannot be loaded or the input cannot be read.
    """
    input_path, output_dir = Path(input_path), Path(output_dir)
    started = time.perf_counter()
    if model is None:
        model, ref = load_scoring_model(model_uri)
    else:
        ref = resolve_model(model_uri)
    total = count_rows(input_path)  # raises DataReadError naming the file
    identity = _run_identity(input_path, chunk_rows, ref)
    _prepare_output(output_dir, identity, overwrite)
    meta = {**ref.as_metadata(), "village_credit.input": input_path.name}

    summary = ScoreSummary(input=str(input_path), output_dir=str(output_dir), model=asdict(ref))
    bar = _progress(total, progress)
    try:
        for k, first, batch in _chunks(input_path, chunk_rows):
            marker = output_dir / "_chunks" / f"{k:05d}.json"
            if marker.exists():
                counts = json.loads(marker.read_text(encoding="utf-8"))
                summary.chunks_resumed += 1
            else:
                decisions, problems, bad_rows = score_chunk(model, batch, first)
                name = f"part-{k:05d}.parquet"
                _atomic_write_table(_with_meta(decisions, meta), output_dir / "decisions" / name)
                _atomic_write_table(_with_meta(problems, meta), output_dir / "quarantine" / name)
                _atomic_write_table(_with_meta(bad_rows, meta), output_dir / "quarantine_rows" / name)
                counts = {"chunk": k, "first_row": first, "rows": len(batch),
                          "scored": len(decisions), "quarantined": int(bad_rows["row_number"].nunique()) if len(bad_rows) else 0}
                _atomic_write_json(counts, marker)
            summary.chunks += 1
            summary.rows_read += counts["rows"]
            summary.scored += counts["scored"]
            summary.quarantined += counts["quarantined"]
            bar.advance(counts["rows"])
    finally:
        bar.close()
    summary.seconds = round(time.perf_counter() - started, 3)
    summary.reconciled = summary.rows_read == summary.scored + summary.quarantined == total
    _atomic_write_json(summary.to_dict(), output_dir / "summary.json")
    if summary.scored == 0 and summary.rows_read > 0:
        raise ScoringError(f"no row of {input_path} could be scored; see {output_dir / 'quarantine'}")
    _write_programme_report(output_dir)
    return summary


def _with_meta(df: pd.DataFrame, meta: dict[str, str]) -> pa.Table:
    table = pa.Table.from_pandas(df, preserve_index=False)
    merged = {**(table.schema.metadata or {}), **{k.encode(): v.encode() for k, v in meta.items()}}
    return table.replace_schema_metadata(merged)


def read_decisions(output_dir: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """All decisions of a scoring run, in input row order."""
    parts = sorted((Path(output_dir) / "decisions").glob("part-*.parquet"))
    frames = [pq.read_table(p, columns=columns).to_pandas() for p in parts]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=columns or [])
    return pd.concat(frames, ignore_index=True)


def read_quarantine(output_dir: str | Path) -> pd.DataFrame:
    parts = sorted((Path(output_dir) / "quarantine").glob("part-*.parquet"))
    frames = [pq.read_table(p).to_pandas() for p in parts]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["row_number", "household_id", "column", "value", "reason"])


def _write_programme_report(output_dir: Path) -> None:
    """Credit village / credit township tables for the scored population."""
    from village_credit.rules import programme_report

    cols = ["household_id", "village_code", "township_code", "grade", "credit_line", "eligible", "vetoed"]
    decisions = read_decisions(output_dir)
    if decisions.empty or not set(cols[:4]) <= set(decisions.columns):
        return
    report = programme_report(decisions, decisions)
    report.villages.to_parquet(output_dir / "programme_villages.parquet", index=False)
    report.townships.to_parquet(output_dir / "programme_townships.parquet", index=False)


class _NoBar:
    def advance(self, n: int) -> None:  # noqa: D401 - trivial
        pass

    def close(self) -> None:
        pass


class _RichBar:
    """Rich progress bar with rows/s, for humans at a terminal."""

    def __init__(self, total: int) -> None:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn,
                                   TextColumn, TimeRemainingColumn)
        from rich.text import Text

        class RowsPerSecond(ProgressColumn):
            def render(self, task):  # type: ignore[override]
                return Text(f"{task.speed or 0:,.0f} rows/s")

        self._p = Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(),
                           RowsPerSecond(), TimeRemainingColumn())
        self._p.start()
        self._t = self._p.add_task("scoring", total=total)

    def advance(self, n: int) -> None:
        self._p.advance(self._t, n)

    def close(self) -> None:
        self._p.stop()


def _progress(total: int, enabled: bool) -> _NoBar | _RichBar:
    return _RichBar(total) if enabled else _NoBar()
