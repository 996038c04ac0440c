"""Batch scoring on one machine: streaming, resumable, lossless.

Why chunks with markers: the credit center scores every household of a county in
one go, on a shared machine that may be restarted. Each chunk's decisions and
quarantine are written to temporary files and renamed into place; a small marker
file written *last* says the chunk is done. A rerun with the same arguments skips
chunks that have a marker and redoes any chunk that was cut off, so every input row
ends up exactly once in either the decisions or the quarantine, even after
``kill -9``. Done chunks are recognised by their marker (chunk index, first row,
row count); the run is bound to its arguments (input path, size and mtime, chunk
size, model URI and the *resolved* version) in ``_run.json``, so a rerun after
``@champion`` moved, or with another input, is refused unless ``overwrite``.

Validation happens once, inside the model (``DecisionModel.decide`` runs
``validate_households``): rows it flags come back with ``status="quarantined"``
and a ``column: reason; ...`` text, which is split into one quarantine entry per
problem. The Spark engine gets exactly the same flags from the same model.
Duplicate ``household_id`` is detected within a chunk (or a Spark Arrow batch),
not across chunks.

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
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from village_credit.data.io import count_rows, iter_batches
from village_credit.errors import DataReadError, VillageCreditError

PASSTHROUGH = ("village_code", "township_code")
"""Input columns copied onto each decision so programme reports need no join."""


class ScoringError(VillageCreditError):
    """Scoring could not start or could not score anything."""


class NoRowsScored(ScoringError):
    """Every input row was quarantined (the outputs and summary.json are still written)."""


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
    """Counts of one scoring run; ``reconciled``: rows read == scored + quarantined.

    ``quarantined`` counts input rows, ``problems`` quarantine entries (a row may
    have several); ``rows_per_second``: rows decided (and written) per second of
    chunk work in this invocation (model loading and resumed chunks excluded).
    """

    input: str
    output_dir: str
    engine: str = "local"
    rows_read: int = 0
    scored: int = 0
    quarantined: int = 0
    problems: int = 0
    chunks: int = 0
    chunks_resumed: int = 0
    seconds: float = 0.0
    rows_per_second: float = 0.0
    model: dict[str, Any] = field(default_factory=dict)
    reconciled: bool = False
    programme: dict[str, Any] = field(default_factory=dict)

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
    if "@" not in body and "/" not in body:  # models:/m-<id>: a logged model, not a registered version
        return ref
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


def model_input_columns(model: Any) -> tuple[list[str], list[str]]:
    """(required, optional) input column names from the pyfunc model's signature."""
    meta = getattr(model, "metadata", None)
    schema = meta.get_input_schema() if meta is not None else None
    if schema is None or not schema.has_input_names():
        return [], []
    req = [c.name for c in schema.inputs if getattr(c, "required", True)]
    opt = [c.name for c in schema.inputs if not getattr(c, "required", True)]
    return req, opt


class PyfuncScorer:
    """Calls a loaded pyfunc decision model on a DataFrame chunk.

    Why not always ``model.predict``: the decision model's signature declares its
    inputs as MLflow ``Any`` (so one bad cell quarantines one row instead of failing
    the batch), and MLflow "enforces" ``Any`` with a Python call per cell -- about
    85 % of the scoring time. The decision model validates every row itself, so the
    batch scorer checks the column names once per file (the only thing the ``Any``
    schema enforces) and calls the python model directly. Models that are not
    python models (no ``unwrap_python_model``) go through ``model.predict``.
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.required, self.optional = model_input_columns(model)
        self._direct = None
        try:
            inner = model.unwrap_python_model()
        except Exception:  # not a PythonModel flavour
            inner = None
        if inner is not None and hasattr(inner, "predict"):
            self._direct = inner

    def check_columns(self, columns: list[str], source: str) -> None:
        missing = [c for c in self.required if c not in set(columns)]
        if missing:
            shown = ", ".join(missing[:20]) + (f" ... ({len(missing)} in all)" if len(missing) > 20 else "")
            raise ScoringError(f"{source}: missing {len(missing)} column(s) the model needs: {shown}")

    def predict(self, df: pd.DataFrame) -> pd.DataFrame:
        if self._direct is not None:
            out = self._direct.predict(None, df)
        else:
            out = self.model.predict(df)
        return out if isinstance(out, pd.DataFrame) else pd.DataFrame(out)


def _atomic_write_table(table: pa.Table, path: Path) -> None:
    """Write to ``<name>.tmp``, fsync, rename: readers and resumes never see half a file."""
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd")
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _atomic_write_json(obj: dict[str, Any], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _run_identity(input_path: Path, chunk_rows: int | None, ref: ModelRef, engine: str) -> dict[str, Any]:
    st = input_path.stat()
    return {
        "engine": engine,
        "input": str(input_path.resolve()),
        "input_bytes": st.st_size,
        "input_mtime_ns": st.st_mtime_ns,
        "chunk_rows": chunk_rows,
        "model_uri": ref.uri,
        "model_name": ref.name,
        "model_version": ref.version,
    }


_SUBDIRS = ("_chunks", "decisions", "quarantine", "quarantine_rows")
_OUTPUT_FILES = ("summary.json", "programme_villages.parquet", "programme_townships.parquet", "_model.json")


def _prepare_output(output_dir: Path, identity: dict[str, Any], overwrite: bool) -> None:
    """Bind ``output_dir`` to this run's arguments; refuse another run's directory.

    Same arguments: keep finished chunks (resume). Other arguments: refuse unless
    ``overwrite``. ``overwrite`` always starts from scratch.
    """
    run_file = output_dir / "_run.json"
    if run_file.exists():
        try:
            previous = json.loads(run_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = {}
        if previous != identity and not overwrite:
            changed = sorted(k for k in set(identity) | set(previous) if previous.get(k) != identity.get(k))
            raise ScoringError(
                f"{output_dir} holds a scoring run made with other arguments ({', '.join(changed)} differ); "
                "use a new output directory or --overwrite"
            )
    elif output_dir.exists() and any(output_dir.iterdir()) and not overwrite:
        raise ScoringError(f"{output_dir} is not empty and is not a scoring output; "
                           "use a new output directory or --overwrite")
    if overwrite and output_dir.exists():
        for sub in _SUBDIRS:
            if (output_dir / sub).is_dir():
                shutil.rmtree(output_dir / sub)
        for name in _OUTPUT_FILES:
            (output_dir / name).unlink(missing_ok=True)
    for sub in _SUBDIRS:
        (output_dir / sub).mkdir(parents=True, exist_ok=True)
        for tmp in (output_dir / sub).glob("*.tmp"):  # left by a killed run
            tmp.unlink()
    _atomic_write_json(identity, run_file)


# Reason texts of ``validate_households`` -> its short check codes (the model's own
# validation returns ``column: reason; column: reason`` per row).
_CHECKS = (
    ("missing value", "missing"),
    ("not a number", "type"), ("not an integer", "type"), ("not a boolean", "type"), ("not a date", "type"),
    ("out of range", "range"),
    ("unknown category", "category"),
    ("duplicate", "duplicate"),
    ("exceed", "consistency"), ("after snapshot", "consistency"),
)


def check_code(reason: str) -> str:
    for needle, code in _CHECKS:
        if needle in reason:
            return code
    return "model"


def _fmt_cell(v: Any) -> str:
    if v is None or v is pd.NaT or v is pd.NA or (isinstance(v, float) and v != v):
        return ""
    if isinstance(v, pd.Timestamp):
        return v.strftime("%Y-%m-%d")
    return str(v)


def split_reasons(row_numbers: Any, household_ids: Any, reasons: Any) -> pd.DataFrame:
    """One quarantine row per problem from the model's ``column: reason; ...`` texts."""
    rn, cols, why, hid = [], [], [], []
    for r, h, text in zip(row_numbers, household_ids, reasons, strict=True):
        parts = [p for p in str(text or "").split("; ") if p] or ["rejected by the model"]
        for part in parts:
            col, sep, reason = part.partition(": ")
            if not sep:
                col, reason = "", part
            rn.append(int(r))
            hid.append(_fmt_cell(h))
            cols.append(col)
            why.append(reason)
    return pd.DataFrame({"row_number": np.asarray(rn, dtype=np.int64),
                         "household_id": pd.Series(hid, dtype=object),
                         "column": pd.Series(cols, dtype=object),
                         "reason": pd.Series(why, dtype=object)})


QUARANTINE_COLUMNS = ["row_number", "household_id", "column", "value", "reason", "check"]


def score_chunk(model: Any, chunk: pd.DataFrame, first_row: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Decide one chunk: (decisions, problems, bad input rows). Nothing is dropped.

    The whole chunk goes to the model, whose own validation (the schema checks of
    ``validate_households``, run once) flags bad rows with ``status != "scored"``
    and a ``column: reason`` text; those rows become quarantine entries (one per
    problem, with the offending cell's value) and their input rows are kept as text.
    Row numbers are 0-based positions in the input file.
    """
    scorer = model if isinstance(model, PyfuncScorer) else PyfuncScorer(model)
    chunk = chunk.reset_index(drop=True)
    decided = scorer.predict(chunk).reset_index(drop=True)
    if len(decided) != len(chunk):
        raise ScoringError(f"model returned {len(decided)} rows for {len(chunk)} inputs (rows from {first_row})")
    decided.insert(0, "row_number", np.arange(first_row, first_row + len(chunk), dtype=np.int64))
    for col in PASSTHROUGH:
        if col in chunk.columns and col not in decided.columns:
            decided[col] = chunk[col].to_numpy()
    if "status" in decided.columns:
        flagged = (decided["status"].astype(str) != "scored").to_numpy()
    else:
        flagged = np.zeros(len(decided), dtype=bool)
    pos = np.flatnonzero(flagged)
    extra = decided.iloc[pos]
    ids = extra["household_id"].to_numpy() if "household_id" in extra else np.full(len(pos), "")
    reasons = (extra["quarantine_reason"].to_numpy() if "quarantine_reason" in extra
               else np.full(len(pos), "rejected by the model"))
    problems = split_reasons(extra["row_number"].to_numpy(), ids, reasons)
    local = problems["row_number"].to_numpy() - first_row
    problems["value"] = [_fmt_cell(chunk.at[i, c]) if c in chunk.columns else ""
                         for i, c in zip(local, problems["column"], strict=True)]
    problems["check"] = [check_code(r) for r in problems["reason"]]
    string = pd.StringDtype()
    problems = problems[QUARANTINE_COLUMNS].astype(
        {"household_id": string, "column": string, "value": string, "reason": string, "check": string})
    bad_rows = _as_text(chunk.iloc[pos])
    bad_rows.insert(0, "row_number", extra["row_number"].to_numpy())
    decisions = decided.iloc[np.flatnonzero(~flagged)].reset_index(drop=True)
    return decisions, problems, bad_rows.reset_index(drop=True)


def _as_text(df: pd.DataFrame) -> pd.DataFrame:
    """Input rows as text (same schema in every part, whatever each chunk's dtypes were)."""
    string = pd.StringDtype()  # one dtype object: parsing "string" per column costs more than the cast
    out = {}
    for c in df.columns:
        s = df[c]
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            out[c] = s.dt.strftime("%Y-%m-%d").astype(string)
        else:
            out[c] = s.astype(string)
    return pd.DataFrame(out, index=df.index, columns=df.columns)


def _chunks(input_path: Path, chunk_rows: int) -> Iterator[tuple[int, int, pd.DataFrame]]:
    first = 0
    for k, batch in enumerate(iter_batches(input_path, batch_rows=chunk_rows)):
        yield k, first, batch
        first += len(batch)


def input_columns(input_path: Path) -> list[str]:
    """Column names of a Parquet file (footer) or a CSV file (header line)."""
    kind = input_path.suffix.lower()
    try:
        if kind == ".csv":
            with input_path.open("r", encoding="utf-8") as fh:
                return [h.strip().strip('"') for h in fh.readline().rstrip("\r\n").split(",")]
        return list(pq.ParquetFile(input_path).schema_arrow.names)
    except (OSError, UnicodeDecodeError, pa.ArrowException) as exc:
        raise DataReadError(f"{input_path}: cannot read the column names: {exc}") from exc


def score_file(
    model_uri: str,
    input_path: str | Path,
    output_dir: str | Path,
    *,
    chunk_rows: int = 50_000,
    overwrite: bool = False,
    progress: bool = True,
    model: Any = None,
    report: bool = True,
) -> ScoreSummary:
    """Score every household of a Parquet/CSV file with a registered decision model.

    Streams ``chunk_rows`` rows at a time; each chunk's outputs are written
    atomically, then its done-marker; a rerun with the same arguments resumes.
    Raises ``ScoringError`` / ``DataReadError`` (non-zero exit on the CLI) only when
    nothing can be scored: the model cannot be loaded, the input cannot be read or
    lacks the model's columns, the output directory belongs to another run, or no
    row at all passed validation.
    """
    input_path, output_dir = Path(input_path), Path(output_dir)
    if chunk_rows < 1:
        raise ScoringError(f"chunk_rows must be >= 1, got {chunk_rows}")
    started = time.perf_counter()
    total = count_rows(input_path)  # DataReadError naming the file, before loading any model
    if model is None:
        model, ref = load_scoring_model(model_uri)
    else:
        ref = resolve_model(model_uri)
    scorer = PyfuncScorer(model)
    scorer.check_columns(input_columns(input_path), str(input_path))
    identity = _run_identity(input_path, chunk_rows, ref, "local")
    _prepare_output(output_dir, identity, overwrite)
    meta = {**ref.as_metadata(), "village_credit.input": input_path.name}
    _atomic_write_json(asdict(ref), output_dir / "_model.json")

    summary = ScoreSummary(input=str(input_path), output_dir=str(output_dir), model=asdict(ref))
    bar = _progress(total, progress)
    work_rows, work_seconds = 0, 0.0
    try:
        for k, first, batch in _chunks(input_path, chunk_rows):
            marker = output_dir / "_chunks" / f"{k:05d}.json"
            counts = _read_marker(marker, k, first, len(batch))
            if counts is not None:
                summary.chunks_resumed += 1
            else:
                t0 = time.perf_counter()
                decisions, problems, bad_rows = score_chunk(scorer, batch, first)
                name = f"part-{k:05d}.parquet"
                _atomic_write_table(_with_meta(decisions, meta), output_dir / "decisions" / name)
                _atomic_write_table(_with_meta(problems, meta), output_dir / "quarantine" / name)
                _atomic_write_table(_with_meta(bad_rows, meta), output_dir / "quarantine_rows" / name)
                counts = {"chunk": k, "first_row": first, "rows": len(batch), "scored": len(decisions),
                          "quarantined": len(bad_rows), "problems": len(problems)}
                _atomic_write_json(counts, marker)  # last: the chunk is done
                work_rows += len(batch)
                work_seconds += time.perf_counter() - t0
            summary.chunks += 1
            summary.rows_read += counts["rows"]
            summary.scored += counts["scored"]
            summary.quarantined += counts["quarantined"]
            summary.problems += counts.get("problems", 0)
            bar.advance(counts["rows"])
    finally:
        bar.close()
    stale = sorted(int(p.stem) for p in (output_dir / "_chunks").glob("*.json") if int(p.stem) >= summary.chunks)
    if stale:  # cannot happen with an unchanged input (bound by size + mtime); be loud if it does
        raise ScoringError(f"{output_dir}: done-markers for chunks {stale} beyond the input's {summary.chunks}")
    summary.seconds = round(time.perf_counter() - started, 3)
    summary.rows_per_second = round(work_rows / work_seconds, 1) if work_seconds > 0 else 0.0
    summary.reconciled = summary.rows_read == summary.scored + summary.quarantined == total
    if summary.scored and report:
        summary.programme = _write_programme_report(output_dir)
    _atomic_write_json(summary.to_dict(), output_dir / "summary.json")
    if summary.scored == 0 and summary.rows_read > 0:
        raise NoRowsScored(f"no row of {input_path} could be scored ({summary.quarantined} quarantined); "
                           f"see {output_dir / 'quarantine'}")
    return summary


def _read_marker(marker: Path, k: int, first: int, rows: int) -> dict[str, Any] | None:
    """A chunk's done-marker if it is complete and matches this chunk, else None (redo it)."""
    if not marker.exists():
        return None
    try:
        counts = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if counts.get("chunk") != k or counts.get("first_row") != first or counts.get("rows") != rows:
        return None
    return counts


def _with_meta(df: pd.DataFrame, meta: dict[str, str]) -> pa.Table:
    table = pa.Table.from_pandas(df, preserve_index=False)
    merged = {**(table.schema.metadata or {}), **{k.encode(): v.encode() for k, v in meta.items()}}
    return table.replace_schema_metadata(merged)


def _parts(output_dir: str | Path, sub: str) -> list[Path]:
    return sorted((Path(output_dir) / sub).glob("part-*.parquet"))


def _read_parts(parts: list[Path], columns: list[str] | None, empty_cols: list[str]) -> pd.DataFrame:
    frames = [pq.read_table(p, columns=columns).to_pandas() for p in parts]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=columns or empty_cols)
    out = pd.concat(frames, ignore_index=True)
    if "row_number" in out.columns:  # Spark writes sorted ranges, not necessarily in part order
        out = out.sort_values("row_number", kind="stable", ignore_index=True)
    return out


def read_decisions(output_dir: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """All decisions of a scoring run (either engine), in input row order."""
    return _read_parts(_parts(output_dir, "decisions"), columns, ["row_number"])


def read_quarantine(output_dir: str | Path) -> pd.DataFrame:
    """One row per problem (row_number, household_id, column, value, reason, check)."""
    return _read_parts(_parts(output_dir, "quarantine"), None, QUARANTINE_COLUMNS)


def read_quarantine_rows(output_dir: str | Path) -> pd.DataFrame:
    """The quarantined input rows (as text), with their row_number."""
    return _read_parts(_parts(output_dir, "quarantine_rows"), None, ["row_number"])


def read_model_metadata(output_dir: str | Path) -> dict[str, str]:
    """``village_credit.model_*`` key-value metadata of the first decisions part file."""
    parts = _parts(output_dir, "decisions")
    if not parts:
        return {}
    meta = pq.read_schema(parts[0]).metadata or {}
    out = {k.decode(): v.decode() for k, v in meta.items() if k.startswith(b"village_credit.")}
    spark_meta = meta.get(b"org.apache.spark.sql.parquet.row.metadata")
    if spark_meta:  # Spark keeps column metadata there; the model is on household_id
        for f in json.loads(spark_meta).get("fields", []):
            out.update({k: str(v) for k, v in (f.get("metadata") or {}).items()
                        if k.startswith("village_credit.")})
    return out


def _read_for_report(parts: list[Path], columns: list[str]) -> pd.DataFrame:
    """Only the report columns; codes and grades as categoricals (small per row)."""
    frames = []
    for p in parts:
        have = pq.read_schema(p).names
        cols = [c for c in columns if c in have]
        if not cols:
            continue
        t = pq.read_table(p, columns=cols, read_dictionary=[c for c in cols if c in (
            "village_code", "township_code", "grade")])
        if t.num_rows:
            frames.append(t.to_pandas())
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def _write_programme_report(output_dir: Path) -> dict[str, Any]:
    """Credit village / credit township tables for the scored population.

    Every input household with a village counts: scored households are "on file"
    (their points put them on file), quarantined ones are in the village but have no
    file (they count against the 952 coverage test). Part by part, as additive
    per-village sums, so memory stays that of one chunk however large the input.
    """
    from village_credit.rules import add_village_sums, report_from_village_sums, village_sums

    keys = ["village_code", "township_code"]
    sums = []
    for name in sorted(p.name for p in _parts(output_dir, "decisions")):
        dec = _read_for_report([output_dir / "decisions" / name],
                               [*keys, "points", "eligible", "grade", "approved", "credit_line"])
        bad_part = output_dir / "quarantine_rows" / name
        bad = _read_for_report([bad_part], keys) if bad_part.exists() else pd.DataFrame()
        if len(bad) and set(keys) <= set(bad.columns):
            bad = bad.dropna(subset=keys).assign(points=np.nan, eligible=False, grade=None, approved=False,
                                                 credit_line=np.nan)
            dec = pd.concat([dec.astype({k: "object" for k in keys}) if len(dec) else dec,
                             bad.astype({k: "object" for k in keys})], ignore_index=True)
        if dec.empty or not set(keys) <= set(dec.columns):
            continue
        sums.append(village_sums(dec[keys], dec, points_column="points"))
    if not sums:
        return {}
    report = report_from_village_sums(add_village_sums(sums))
    villages = output_dir / "programme_villages.parquet"
    townships = output_dir / "programme_townships.parquet"
    _atomic_write_table(pa.Table.from_pandas(_plain(report.villages), preserve_index=False), villages)
    _atomic_write_table(pa.Table.from_pandas(_plain(report.townships), preserve_index=False), townships)
    cv = report.villages["is_credit_village"]
    ct = report.townships["is_credit_township"]
    return {"villages": int(len(report.villages)), "credit_villages": int((cv == True).sum()),  # noqa: E712
            "villages_unknown": int(cv.isna().sum()), "townships": int(len(report.townships)),
            "credit_townships": int((ct == True).sum()),  # noqa: E712
            "villages_file": villages.name, "townships_file": townships.name}


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    """Categoricals back to plain strings for the report files."""
    fixes = {c: df[c].astype(str) for c in df.columns if isinstance(df[c].dtype, pd.CategoricalDtype)}
    return df.assign(**fixes) if fixes else df


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

        from rich.console import Console

        # stderr: stdout carries the summary JSON
        self._p = Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(),
                           RowsPerSecond(), TimeRemainingColumn(), console=Console(stderr=True))
        self._rows = 0
        self._t0 = time.perf_counter()
        self._p.start()
        self._t = self._p.add_task("scoring", total=total)

    def advance(self, n: int) -> None:
        self._p.advance(self._t, n)
        self._rows += n

    def close(self) -> None:
        self._p.stop()
        dt = time.perf_counter() - self._t0
        self._p.console.print(f"scored {self._rows:,} rows in {dt:,.1f} s ({self._rows / max(dt, 1e-9):,.0f} rows/s)")


def _progress(total: int, enabled: bool) -> _NoBar | _RichBar:
    return _RichBar(total) if enabled else _NoBar()
