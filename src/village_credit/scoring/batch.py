"""Batch scoring on one machine: streaming, resumable, lossless.

Why chunks with markers: the credit center scores every household of a county in
one go, on a shared machine that may be restarted. Each chunk's decisions and
quarantine are written to temporary files and renamed into place; a small marker
file written *last* says the chunk is done. A rerun with the same arguments skips
chunks that have a marker and redoes any chunk that was cut off, so every input row
ends up exactly once in either the decisions or the quarantine, even after
``kill -9``. Done chunks are recognised by their marker (chunk index, first row,
row count); the run is bound to its arguments (input path, size and content
digest, chunk size, model URI and the *resolved* version) in ``_run.json``, so a
rerun after ``@champion`` moved, or with another input (even one whose mtime was
restored), is refused unless ``overwrite``. ``_lock.json`` keeps a second run out
of the folder while one writes (see :mod:`village_credit.scoring.guards`).

Validation happens once, inside the model (``DecisionModel.decide`` runs
``validate_households``): rows it flags come back with ``status="quarantined"``
and a ``column: reason; ...`` text, which is split into one quarantine entry per
problem. The Spark engine runs these same chunk functions as parallel tasks
(``scoring.spark``), so its outputs are these files, identical.
Duplicate ``household_id`` is detected across the whole file from a first pass over
the id column (:func:`village_credit.scoring.guards.duplicate_ids`, bounded memory):
every copy is quarantined with the rows that share it, on both engines.

Layout of ``output_dir``::

    _run.json                  the arguments the run is bound to (checked on resume)
    _chunks/00000.json ...     done-markers with per-chunk counts
    decisions/part-00000.parquet ...   one decision per valid household
    quarantine/part-00000.parquet ...  one row per problem: row_number, column, reason
    quarantine_rows/part-00000.parquet the offending input rows as text (the columns read:
                               the model's input contract + village/township codes)
    summary.json               rows read = scored + quarantined, model version, timing
    programme_villages.parquet, programme_townships.parquet
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import multiprocessing
import os
import queue
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from village_credit._lazy import frozen_gc
from village_credit.data.io import count_rows, iter_batches, read_header, table_to_frame
from village_credit.errors import DataReadError, VillageCreditError
from village_credit.models.additive import PREDICT_OPTIONS
from village_credit.registry.loading import ModelLoadError, load_model, resolve_uri
from village_credit.registry.decision_face import input_columns_of
from village_credit.reporting.progress import row_bar
from village_credit.scoring.guards import (
    LOCK_NAME,
    OutputLock,
    check_delimiter,
    check_output,
    duplicate_ids,
    input_digest,
    quarantine_duplicates,
)
from village_credit.scoring.outputs import QUARANTINE_COLUMNS, atomic_write_frame, atomic_write_json
from village_credit.scoring.programme import chunk_sums, part_sums, write_programme_report

PASSTHROUGH = ("village_code", "township_code")
"""Input columns copied onto each decision so programme reports need no join."""


class ScoringError(VillageCreditError):
    """Scoring could not start or could not score anything.

    >>> import pandas as pd
    >>> from village_credit.registry.examples import ExampleStore
    >>> from village_credit.scoring import ScoringError, score_file
    >>> store = ExampleStore()  # a throwaway sqlite store in a temporary folder
    >>> store.champion("demo")  # a tiny model, registered and promoted
    '1'
    >>> pd.DataFrame({"household_id": ["H1"]}).to_parquet(store.root / "thin.parquet")
    >>> try:
    ...     score_file("models:/demo@champion", store.root / "thin.parquet", store.root / "out",
    ...                progress=False)
    ... except ScoringError as exc:
    ...     print(exc)
    /...thin.parquet: missing ... column(s) the model needs: township_code, village_code, ...
    >>> store.close()
    """


class NoRowsScored(ScoringError):
    """Every input row was quarantined (the outputs and summary.json are still written).

    >>> from village_credit.registry.examples import ExampleStore
    >>> from village_credit.scoring import NoRowsScored, read_quarantine, score_file
    >>> from village_credit.scoring.examples import households_file
    >>> store = ExampleStore()  # a throwaway sqlite store in a temporary folder
    >>> store.champion("demo")  # a tiny model, registered and promoted
    '1'
    >>> households = households_file(store.root, n=3, bad_rows=(0, 1, 2))
    >>> try:
    ...     score_file("models:/demo@champion", households, store.root / "scores", progress=False)
    ... except NoRowsScored as exc:
    ...     print(exc)
    no row of /...households.parquet could be scored (3 quarantined); see /...scores/quarantine
    >>> len(read_quarantine(store.root / "scores"))  # the outputs are still written
    3
    >>> store.close()
    """


@dataclass
class ModelRef:
    """What scored the file: URI, resolved registered name/version and alias, gate status.

    ``gated`` is ``False`` only when the model was scored with ``allow_ungated``;
    ``gate`` says why (the loader's reason), and both travel into every output file's
    metadata and the summary.
    """

    uri: str
    name: str | None = None
    version: str | None = None
    alias: str | None = None
    run_id: str | None = None
    artifact_digest: str | None = None
    gated: bool | None = None
    gate: str | None = None

    def as_metadata(self) -> dict[str, str]:
        return {f"village_credit.model_{k}": str(v) for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_loaded(cls, loaded: Any) -> "ModelRef":
        i = loaded.identity
        return cls(uri=i.uri, name=i.name, version=i.version, alias=i.alias, run_id=i.run_id,
                   artifact_digest=loaded.artifact_sha256, gated=loaded.gate.gated,
                   gate=("UNGATED, scored with --allow-ungated: " + loaded.gate.reason)
                   if loaded.gate.loaded_ungated else loaded.gate.reason)


STAGES = ("model_load", "duplicate_ids", "read", "wait_read", "row_checks", "features", "model", "rules",
          "blend", "reasons", "format", "quarantine", "write", "wait_write", "programme_report")
"""Stages of a local scoring run, in the order a chunk meets them (``ScoreSummary.stages``)."""


class StageClock:
    """Seconds per named stage, added up over chunks and threads (one lock-free dict per
    thread would do; each stage is only ever timed from one thread)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    def since(self, stage: str, t0: float) -> float:
        now = time.perf_counter()
        self.add(stage, now - t0)
        return now

    def rounded(self) -> dict[str, float]:
        known = [s for s in STAGES if s in self.seconds]
        return {s: round(self.seconds[s], 3) for s in [*known, *sorted(set(self.seconds) - set(known))]}


@dataclass
class ScoreSummary:
    """Counts of one scoring run; ``reconciled``: rows read == scored + quarantined.

    ``quarantined`` counts input rows, ``problems`` quarantine entries (a row may
    have several); ``rows_per_second``: rows decided (and written) per second of
    chunk work in this invocation (model loading and resumed chunks excluded).
    ``stages``: seconds per stage of this invocation (:data:`STAGES`); ``read`` and
    ``write`` run in their own threads, overlapping the deciding stages, and
    ``wait_read`` / ``wait_write`` are the time the deciding thread waited for them.
    ``workers``: processes that decided chunks; with more than one, ``stages`` adds up
    every worker's seconds (so they may exceed ``seconds``, the wall time of the run).
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
    workers: int = 1
    programme: dict[str, Any] = field(default_factory=dict)
    stages: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_model(model_uri: str) -> ModelRef:
    """The registered version behind any model URI (no download, no gate check)."""
    try:
        i = resolve_uri(model_uri)
    except ModelLoadError as exc:
        raise ScoringError(str(exc)) from exc
    return ModelRef(uri=i.uri, name=i.name, version=i.version, alias=i.alias, run_id=i.run_id)


def load_scoring_model(model_uri: str, *, allow_ungated: bool = False) -> tuple[Any, ModelRef]:
    """The verified pyfunc decision model (``registry.loading.load_model``) and its ref.

    Refuses (``UngatedModelError``, exit 2 on the CLI) a version without a valid
    promotion record unless ``allow_ungated``.
    """
    loaded = load_model(model_uri, allow_ungated=allow_ungated)
    return loaded.pyfunc, ModelRef.from_loaded(loaded)


def model_input_columns(model: Any) -> tuple[list[str], list[str]]:
    """(required, optional) input column names: the signature's, else the metadata contract."""
    cols = input_columns_of(getattr(model, "metadata", None)) or []
    req = [c["name"] for c in cols if c.get("required", True)]
    opt = [c["name"] for c in cols if not c.get("required", True)]
    return req, opt


def _any_typed_inputs(model: Any) -> bool:
    """True for models logged with the old all-``Any`` signature (MLflow checks it cell by cell)."""
    meta = getattr(model, "metadata", None)
    schema = meta.get_input_schema() if meta is not None else None
    if schema is None or not schema.has_input_names():
        return False
    return any(type(c.type).__name__ == "AnyType" for c in schema.inputs)


class PyfuncScorer:
    """Calls a loaded pyfunc decision model on a DataFrame chunk, the MLflow way.

    Decision models keep their input contract out of the MLflow signature (they
    validate rows themselves), so ``model.predict`` costs little over the model
    itself and is what runs here. Only models logged with the earlier all-``Any``
    signature -- which MLflow "enforces" with a Python call per cell, ~90 % of the
    time -- are called past MLflow (``unwrap_python_model().predict``), after one
    column-name check per file (the only thing an ``Any`` schema enforces).
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.required, self.optional = model_input_columns(model)
        self._direct = None
        try:
            inner = model.unwrap_python_model()
        except Exception:  # not a PythonModel flavour
            inner = None
        # the decision model behind the pyfunc: its stage timings and its id column's name
        self.decision_model = getattr(inner, "model", None)
        if _any_typed_inputs(model) and inner is not None and hasattr(inner, "predict"):
            self._direct = inner
        self._arrow = _arrow_face(inner)

    @property
    def id_column(self) -> str:
        """The decisions' id column (``household_id``; a table model's own id name)."""
        return str(getattr(self.decision_model, "output_id_column", None) or "household_id")

    @property
    def input_id_column(self) -> str:
        """The input column holding the ids (duplicates are looked for there)."""
        return str(getattr(self.decision_model, "id_column", None) or "household_id")

    def model_timings(self) -> dict[str, float]:
        """Seconds per stage inside the model so far (``DecisionModel.timings``)."""
        return dict(getattr(self.decision_model, "timings", None) or {})

    @property
    def needed_columns(self) -> list[str]:
        """Every column the model reads (required and optional), in signature order."""
        return [*self.required, *self.optional]

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

    def decide_table(self, df: pd.DataFrame) -> pa.Table:
        """The model's decisions as Arrow. A decision model's pyfunc is called on its Arrow
        face (:meth:`DecisionModel.decide_arrow`), as its ``predict`` would call ``decide``:
        the same ``top_k`` and serving-input coercion, no pandas frame of the decisions;
        any other pyfunc's frame is converted."""
        if self._arrow is not None:
            return self._arrow(df)
        return pa.Table.from_pandas(self.predict(df), preserve_index=False).replace_schema_metadata(None)


def _arrow_face(inner: Any) -> Any:
    """``df -> pa.Table`` of a decision pyfunc (``DecisionPyfunc.predict_arrow``: ``predict``'s
    own steps, decisions kept in Arrow); ``None`` for any other pyfunc, or one logged before
    the method existed, which keeps its ``predict``."""
    face = getattr(inner, "predict_arrow", None)
    return face if callable(face) else None


def _run_identity(input_path: Path, chunk_rows: int | None, ref: ModelRef, engine: str,
                  digest: str | None = None) -> dict[str, Any]:
    """What a run is bound to; ``digest``: the input's :func:`input_digest`, if already taken."""
    st = input_path.stat()
    return {
        "engine": engine,
        "input": str(input_path.resolve()),
        "input_bytes": st.st_size,
        "input_digest": digest or input_digest(input_path),  # content, not mtime: cp -p keeps mtimes
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
    elif output_dir.exists() and any(p.name != LOCK_NAME for p in output_dir.iterdir()) and not overwrite:
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
    atomic_write_json(identity, run_file)


# Reason texts of ``validate_households`` -> its short check codes (the model's own
# validation returns ``column: reason; column: reason`` per row).
_CHECKS = (
    ("missing value", "missing"),
    ("not a number", "type"), ("not an integer", "type"), ("not a boolean", "type"), ("not a date", "type"),
    ("out of range", "range"),
    ("unknown category", "category"),
    ("duplicate", "duplicate"),
    ("exceed", "consistency"), ("after snapshot", "consistency"),
    ("in the future", "range"),
)


def quarantine_columns(id_name: str = "household_id") -> list[str]:
    """Columns of the quarantine parts; the id column keeps the model's name for it."""
    return [id_name if c == "household_id" else c for c in QUARANTINE_COLUMNS]


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


def split_reasons(row_numbers: Any, household_ids: Any, reasons: Any, id_name: str = "household_id"
                  ) -> pd.DataFrame:
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
                         id_name: pd.Series(hid, dtype=object),
                         "column": pd.Series(cols, dtype=object),
                         "reason": pd.Series(why, dtype=object)})


def score_chunk(model: Any, chunk: pd.DataFrame, first_row: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Decide one chunk: (decisions, problems, bad input rows). Nothing is dropped.

    The whole chunk goes to the model, whose own validation (the schema checks of
    ``validate_households``, run once) flags bad rows with ``status != "scored"``
    and a ``column: reason`` text; those rows become quarantine entries (one per
    problem, with the offending cell's value) and their input rows are kept as text.
    Row numbers are 0-based positions in the input file. The decisions as pandas:
    :func:`score_chunk_arrow`, whose Arrow table the batch scorer writes as it is.
    """
    decisions, problems, bad_rows = score_chunk_arrow(model, chunk, first_row)
    return decisions_frame(decisions), problems, bad_rows


def decisions_frame(decisions: pa.Table) -> pd.DataFrame:
    """A decisions table as pandas, with the dtypes the frame it was built from had
    (texts as ``str``; the pandas metadata the table carries, if any, is not used)."""
    return decisions.replace_schema_metadata(None).to_pandas()


def score_chunk_arrow(model: Any, chunk: pd.DataFrame, first_row: int) -> tuple[pa.Table, pd.DataFrame, pd.DataFrame]:
    """:func:`score_chunk` with the decisions kept in Arrow from the model to the writer.

    A decision model's texts (codes, reasons, ids, village codes) never become Python
    objects or pandas columns here; only the (few) quarantined rows go through pandas.
    """
    scorer = model if isinstance(model, PyfuncScorer) else PyfuncScorer(model)
    chunk = chunk.reset_index(drop=True)
    decided = scorer.decide_table(chunk)
    if decided.num_rows != len(chunk):
        raise ScoringError(f"model returned {decided.num_rows} rows for {len(chunk)} inputs (rows from {first_row})")
    rows = np.arange(first_row, first_row + len(chunk), dtype=np.int64)
    decided = decided.add_column(0, "row_number", pa.array(rows))
    for col in PASSTHROUGH:
        if col in chunk.columns and col not in decided.column_names:
            # text stays Arrow: no Python string per row; the type from_pandas gives the column
            decided = decided.append_column(col, pa.Array.from_pandas(chunk[col].array))
    if "status" in decided.column_names:
        status = decided.column("status")
        flagged = pc.fill_null(pc.not_equal(status.cast(pa.large_string()), "scored"), True).to_numpy(
            zero_copy_only=False)
    else:
        flagged = np.zeros(len(chunk), dtype=bool)
    pos = np.flatnonzero(flagged)
    idn = scorer.id_column
    if len(pos):
        extra = decided.take(pa.array(pos))
        ids = (extra.column(idn).to_numpy(zero_copy_only=False) if idn in extra.column_names
               else np.full(len(pos), ""))
        reasons = (extra.column("quarantine_reason").to_numpy(zero_copy_only=False)
                   if "quarantine_reason" in extra.column_names else np.full(len(pos), "rejected by the model"))
    else:
        ids = reasons = np.zeros(0, dtype=object)
    problems = split_reasons(rows[pos], ids, reasons, idn)
    local = problems["row_number"].to_numpy() - first_row
    problems["value"] = [_fmt_cell(chunk.at[i, c]) if c in chunk.columns else ""
                         for i, c in zip(local, problems["column"], strict=True)]
    problems["check"] = [check_code(r) for r in problems["reason"]]
    string = pd.StringDtype()
    problems = problems[quarantine_columns(idn)].astype(
        {idn: string, "column": string, "value": string, "reason": string, "check": string})
    if len(pos):
        bad_rows = _as_text(chunk.iloc[pos])
        bad_rows.insert(0, "row_number", rows[pos])
        bad_rows = bad_rows.reset_index(drop=True)
        decisions = decided.filter(pa.array(~flagged))
    else:  # the common case: no copies, and the empty text table is built once per column set
        bad_rows = _no_bad_rows(tuple(chunk.columns))
        decisions = decided
    return decisions, problems, bad_rows


@functools.lru_cache(maxsize=8)
def _no_bad_rows(columns: tuple[str, ...]) -> pd.DataFrame:
    """Empty quarantined-rows table with the same schema as a non-empty one (do not mutate)."""
    empty = _as_text(pd.DataFrame({c: pd.Series([], dtype=object) for c in columns}))
    empty.insert(0, "row_number", np.array([], dtype=np.int64))
    return empty


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


def plan_chunks(total: int, chunk_rows: int) -> list[tuple[int, int, int]]:
    """``(chunk, first_row, rows)`` of each chunk: the unit of work, output parts and resume.

    Both engines use this plan, so their part files, markers and row numbers agree.
    """
    return [(k, first, min(chunk_rows, total - first)) for k, first in enumerate(range(0, total, chunk_rows))]


def read_columns(input_path: Path, scorer: PyfuncScorer) -> list[str] | None:
    """The file's columns that the model reads (its input contract) plus ``PASSTHROUGH``,
    in file order; ``None`` (read everything) when the model declares no input columns."""
    needed = set(scorer.needed_columns)
    if not needed:
        return None
    return [c for c in input_columns(input_path) if c in needed or c in PASSTHROUGH]


def _chunks(input_path: Path, chunk_rows: int, columns: list[str] | None = None
            ) -> Iterator[tuple[int, int, pd.DataFrame]]:
    first = 0
    for k, batch in enumerate(iter_batches(input_path, batch_rows=chunk_rows, columns=columns)):
        yield k, first, batch
        first += len(batch)


def iter_chunks_from(input_path: Path, first: int, chunk_rows: int, columns: list[str] | None,
                     *, use_threads: bool = True) -> Iterator[tuple[int, int, pd.DataFrame]]:
    """The plan's chunks ``(k, first_row, frame)`` from the one starting at row ``first``
    to the end of the file, as :func:`iter_batches` gives them (same dtypes, index).

    Parquet: decoding starts at the row group holding ``first`` (its earlier rows are
    decoded and dropped: a file with one big row group is decoded from the top). CSV
    cannot seek by row: the file is streamed from the start, typed chunk by chunk as
    the local engine does. Used where chunks are read out of order (Spark tasks).
    ``use_threads=False`` decodes Parquet in the calling thread, not on Arrow's pool
    (a worker process that shares the cores with another one; same batches).
    """
    if first % chunk_rows:
        raise ScoringError(f"row {first} does not start a chunk of {chunk_rows} rows")
    if input_path.suffix.lower() not in (".parquet", ".pq"):
        for k, start, batch in _chunks(input_path, chunk_rows, columns):
            if start >= first:
                yield k, start, batch
        return
    try:
        pf = pq.ParquetFile(input_path, pre_buffer=True)
        meta = pf.metadata
        group, skip, start = meta.num_row_groups, 0, 0
        for g in range(meta.num_row_groups):
            n = meta.row_group(g).num_rows
            if start + n > first:
                group, skip = g, first - start
                break
            start += n
        pending: list[pa.RecordBatch] = []
        have, pos = 0, first
        # batches of the chunk size, as ``iter_batches`` reads them: a chunk is then one
        # batch, and its pandas conversion does not first join Arrow pieces of each column
        batches = pf.iter_batches(batch_size=chunk_rows, row_groups=list(range(group, meta.num_row_groups)),
                                  columns=columns, use_threads=use_threads) if group < meta.num_row_groups else iter(())
        for batch in batches:
            if skip:
                cut = min(skip, batch.num_rows)
                batch, skip = batch.slice(cut), skip - cut
                if not batch.num_rows:
                    continue
            pending.append(batch)
            have += batch.num_rows
            while have >= chunk_rows:
                table = pa.Table.from_batches(pending)
                out, rest = table.slice(0, chunk_rows), table.slice(chunk_rows)
                yield pos // chunk_rows, pos, _frame(out, pos)
                pos += chunk_rows
                pending, have = (rest.to_batches() if rest.num_rows else []), rest.num_rows
        if have:
            yield pos // chunk_rows, pos, _frame(pa.Table.from_batches(pending), pos)
    except (pa.ArrowException, OSError) as exc:
        raise DataReadError(f"{input_path}: cannot read from row {first}: {exc}") from exc


def _frame(table: pa.Table, first: int) -> pd.DataFrame:
    df = table_to_frame(table)
    df.index = pd.RangeIndex(first, first + len(df))
    return df


def read_chunk(input_path: Path, first: int, rows: int, columns: list[str] | None,
               chunk_rows: int) -> pd.DataFrame:
    """Rows ``[first, first + rows)``: one chunk of a plan of ``chunk_rows``."""
    for _, start, batch in iter_chunks_from(input_path, first, chunk_rows, columns):
        if start == first and len(batch) == rows:
            return batch
        break
    raise DataReadError(f"{input_path}: no chunk of {rows} rows starts at row {first}")


def prefetch(items: Iterator[Any], depth: int) -> Iterator[Any]:
    """Yield ``items`` while a reader thread produces up to ``depth`` ahead (bounded queue).

    Why: Parquet decoding and the Arrow -> pandas conversion mostly release the GIL,
    so the next chunk is read while this one is decided and written. Errors in the
    reader are re-raised here; ``depth < 1`` reads in the caller's thread.
    """
    if depth < 1:
        yield from items
        return
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def run() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put((True, item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put((True, done))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            q.put((False, exc))

    t = threading.Thread(target=run, name="village-credit-reader", daemon=True)
    t.start()
    try:
        while True:
            ok, item = q.get()
            if not ok:
                raise item
            if item is done:
                return
            yield item
    finally:
        stop.set()
        t.join(timeout=5)


class WriteBehind:
    """Writes one chunk in a background thread while the next one is decided.

    At most one write is in flight (memory: one extra chunk of outputs); ``put``
    returns the counts of writes that have finished, ``drain`` waits for the rest.
    A failed write is re-raised by the next ``put``/``drain``, before any later
    chunk's marker could be written out of order. Disabled: writes run inline.
    """

    def __init__(self, enabled: bool) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="village-credit-writer") if enabled else None
        self._pending: Any = None

    def put(self, fn: Any, *args: Any) -> list[dict[str, int]]:
        done = self.drain()
        if self._pool is None:
            return [*done, fn(*args)]
        self._pending = self._pool.submit(fn, *args)
        return done

    def drain(self) -> list[dict[str, int]]:
        if self._pending is None:
            return []
        fut, self._pending = self._pending, None
        return [fut.result()]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)


def write_chunk(output_dir: Path, k: int, first: int, rows: int, decisions: pd.DataFrame,
                problems: pd.DataFrame, bad_rows: pd.DataFrame, meta: dict[str, str]) -> dict[str, int]:
    """Write one chunk's three parts atomically, then its done-marker (last); its counts."""
    name = f"part-{k:05d}.parquet"
    atomic_write_frame(decisions, meta, output_dir / "decisions" / name)
    atomic_write_frame(problems, meta, output_dir / "quarantine" / name)
    atomic_write_frame(bad_rows, meta, output_dir / "quarantine_rows" / name)
    counts = {"chunk": k, "first_row": first, "rows": rows, "scored": len(decisions),
              "quarantined": len(bad_rows), "problems": len(problems)}
    atomic_write_json(counts, output_dir / "_chunks" / f"{k:05d}.json")  # last: the chunk is done
    return counts


def add_counts(summary: ScoreSummary, counts: dict[str, int]) -> None:
    summary.chunks += 1
    summary.rows_read += counts["rows"]
    summary.scored += counts["scored"]
    summary.quarantined += counts["quarantined"]
    summary.problems += counts.get("problems", 0)


def finish_summary(summary: ScoreSummary, output_dir: Path, total: int, started: float,
                   work_rows: int, work_seconds: float, report: bool,
                   sums: list[Any] | None = None, clock: StageClock | None = None) -> None:
    """Stale-marker check, timing, reconciliation, programme report, summary.json.

    ``sums``: per-chunk programme sums gathered while writing (else read from the parts).
    """
    stale = sorted(int(p.stem) for p in (output_dir / "_chunks").glob("*.json") if int(p.stem) >= summary.chunks)
    if stale:  # cannot happen with an unchanged input (bound by size + mtime); be loud if it does
        raise ScoringError(f"{output_dir}: done-markers for chunks {stale} beyond the input's {summary.chunks}")
    summary.seconds = round(time.perf_counter() - started, 3)
    summary.rows_per_second = round(work_rows / work_seconds, 1) if work_seconds > 0 else 0.0
    summary.reconciled = summary.rows_read == summary.scored + summary.quarantined == total
    if summary.scored and report:
        t0 = time.perf_counter()
        summary.programme = write_programme_report(output_dir, sums)
        if clock is not None:
            clock.since("programme_report", t0)
    if clock is not None:
        summary.stages = clock.rounded()
    atomic_write_json(summary.to_dict(), output_dir / "summary.json")
    if summary.scored == 0 and summary.rows_read > 0:
        raise NoRowsScored(f"no row of {summary.input} could be scored ({summary.quarantined} quarantined); "
                           f"see {output_dir / 'quarantine'}")


def input_columns(input_path: Path) -> list[str]:
    """Column names of a Parquet file (footer) or a CSV file (sniffed header), as the reader sees them."""
    return read_header(input_path)


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
    read_ahead: int = 2,
    allow_ungated: bool = False,
    workers: int | None = None,
) -> ScoreSummary:
    """Score every household of a Parquet/CSV file with a registered decision model.

    Reads only the columns in the model's input contract (plus ``PASSTHROUGH``);
    ``read_ahead`` chunks are read by a background thread while the current one is
    decided, and the previous chunk is written by another (``WriteBehind``); 0 runs
    all three in turn. Quarantined input rows are kept with the columns that were read.

    ``workers`` processes (default: one per core this process may use,
    :func:`default_workers`) decide a Parquet file's chunks at once, each a contiguous
    run of them, read and written by the worker itself; the outputs are those of one
    process, file for file. ``workers=1`` (and any CSV input, which cannot be read from
    the middle) decides in this process.

    The model is loaded through the one loader, which checks its promotion record;
    ``allow_ungated`` scores an ungated version anyway and records that fact in the
    output metadata and ``summary.json`` (``model.gated = false``).

    Streams ``chunk_rows`` rows at a time; each chunk's outputs are written
    atomically, then its done-marker; a rerun with the same arguments (and an input
    of the same content) resumes. One run at a time writes ``output_dir`` (a lock
    naming the other run refuses a second). Raises ``ScoringError`` /
    ``DataReadError`` / ``OutputBusy`` (non-zero exit on the CLI) only when nothing
    can be scored: the output directory cannot be written or is another run's, the
    model cannot be loaded, the input cannot be read or lacks the model's columns, or
    no row at all passed validation.

    >>> from village_credit.registry.examples import ExampleStore
    >>> from village_credit.scoring import score_file
    >>> from village_credit.scoring.examples import households_file
    >>> store = ExampleStore()  # a throwaway sqlite store in a temporary folder
    >>> store.champion("demo")  # a tiny model, registered and promoted
    '1'
    >>> households = households_file(store.root, n=20, bad_rows=(3,))  # row 3 lacks head_age
    >>> summary = score_file("models:/demo@champion", households, store.root / "scores",
    ...                      progress=False)
    >>> summary.rows_read, summary.scored, summary.quarantined, summary.reconciled
    (20, 19, 1, True)
    >>> store.close()
    """
    check_output(output_dir)  # before reading the input or loading any model
    with OutputLock(output_dir, input_path), _system_memory_pool():
        return _score_file(model_uri, input_path, output_dir, chunk_rows=chunk_rows,
                           overwrite=overwrite, progress=progress, model=model, report=report,
                           read_ahead=read_ahead, allow_ungated=allow_ungated, workers=workers)


@contextlib.contextmanager
def _system_memory_pool() -> Iterator[None]:
    """Arrow allocates from the C library's ``malloc`` while a run lasts (the default pool,
    mimalloc, is put back after it).

    Why: a chunk's Arrow buffers are allocated in the reader thread and freed in the
    deciding and writer threads; pyarrow's bundled mimalloc hands such memory back to the
    kernel and faults it in again chunk after chunk. Measured on 200k rows (one
    process): system CPU 0.36-0.69 s -> 0.14-0.23 s once warm, 2.1 -> 0.5 s on the first
    run of a process (every worker process is one); see docs/benchmarks.md. Forked
    workers inherit the setting. Buffers keep the pool they came from, so switching
    back is safe. Runs that overlap in one process (threads) share one switch: the
    first in sets it, the last out restores the pool found before.
    """
    global _POOL_DEPTH, _POOL_BEFORE
    with _POOL_LOCK:
        if _POOL_DEPTH == 0:
            _POOL_BEFORE = pa.default_memory_pool()
            pa.set_memory_pool(pa.system_memory_pool())
        _POOL_DEPTH += 1
    try:
        yield
    finally:
        with _POOL_LOCK:
            _POOL_DEPTH -= 1
            if _POOL_DEPTH == 0 and _POOL_BEFORE is not None:
                pa.set_memory_pool(_POOL_BEFORE)
                _POOL_BEFORE = None


_POOL_LOCK = threading.Lock()
_POOL_DEPTH = 0
_POOL_BEFORE: pa.MemoryPool | None = None




def _score_file(
    model_uri: str,
    input_path: str | Path,
    output_dir: str | Path,
    *,
    chunk_rows: int,
    overwrite: bool,
    progress: bool,
    model: Any,
    report: bool,
    read_ahead: int,
    allow_ungated: bool,
    workers: int | None,
) -> ScoreSummary:
    input_path, output_dir = Path(input_path), Path(output_dir)
    if chunk_rows < 1:
        raise ScoringError(f"chunk_rows must be >= 1, got {chunk_rows}")
    n_workers = default_workers() if workers is None else workers
    if n_workers < 1:
        raise ScoringError(f"workers must be >= 1, got {workers}")
    started = time.perf_counter()
    clock = StageClock()
    total = count_rows(input_path)  # DataReadError naming the file, before loading any model
    with _PrePass.take(input_path, clock) as early:  # reads the file while the model loads
        t0 = time.perf_counter()
        if model is None:
            model, ref = load_scoring_model(model_uri, allow_ungated=allow_ungated)
        else:
            ref = resolve_model(model_uri)
        scorer = PyfuncScorer(model)
        clock.since("model_load", t0)
        inside_before = scorer.model_timings()
        header = input_columns(input_path)
        check_delimiter(input_path, header, len(scorer.required))
        scorer.check_columns(header, str(input_path))
        identity = _run_identity(input_path, chunk_rows, ref, "local", early.digest())
        _prepare_output(output_dir, identity, overwrite)
        meta = {**ref.as_metadata(), "village_credit.input": input_path.name}
        atomic_write_json(asdict(ref), output_dir / "_model.json")

        summary = ScoreSummary(input=str(input_path), output_dir=str(output_dir), model=asdict(ref))
        columns = read_columns(input_path, scorer)
        dups = early.duplicate_ids(scorer.input_id_column)  # across chunks, from the id column only
        # the pre-pass thread stays alive (idle) until the workers are forked: a thread that
        # ends just before a fork can still hold an allocator lock (mimalloc's thread heap)
        # in its C-level teardown after it was joined, and the forked child deadlocks on it
        plan = plan_chunks(total, chunk_rows)
        with frozen_gc():
            if n_workers > 1 and len(plan) > 1 and input_path.suffix.lower() in (".parquet", ".pq"):
                job = _Job(scorer, input_path, output_dir, columns, chunk_rows, meta, dups, report, read_ahead)
                work_rows, work_seconds, sums = _score_in_workers(job, plan, n_workers, summary, clock, progress)
            else:
                work_rows, work_seconds, sums = _score_in_turn(scorer, input_path, output_dir, columns, chunk_rows,
                                                               meta, dups, report, read_ahead, summary, clock,
                                                               progress, total)
                _split_decide(clock, scorer, inside_before)
    finish_summary(summary, output_dir, total, started, work_rows, work_seconds, report, sums, clock)
    return summary


class _PrePass:
    """The input's digest and duplicate-id pass, run in a thread while the model loads.

    Why: both only read the file, and loading the model (registry look-up, download,
    hash, MLflow's parse) is serial time in which the second core idles; at 1M rows the
    two passes are a few tenths of a second of the run's wall time. The duplicate pass
    is started for ``household_id`` (every household model's id column) when the
    Parquet file has one; another id column (a table model's) is passed over after the
    load, as before. Results and errors are those of the plain calls, taken where the
    plain calls stood. CSV input is left to the plain calls (its reads are streamed).
    """

    GUESS = "household_id"

    def __init__(self, input_path: Path, clock: StageClock) -> None:
        self.input_path, self.clock = input_path, clock
        self._pool: ThreadPoolExecutor | None = None
        self._digest: Any = None
        self._dups: Any = None

    @classmethod
    def take(cls, input_path: Path, clock: StageClock) -> _PrePass:
        """The pre-pass of ``input_path`` started by :func:`early_prepass`, now timed on
        ``clock``, else a new one (started by ``with``)."""
        early = _EARLY.pop(Path(input_path), None)
        if early is None:
            return cls(input_path, clock)
        early.clock = clock
        return early

    def __enter__(self) -> Self:
        if self._pool is None and self.input_path.suffix.lower() in (".parquet", ".pq"):
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="village-credit-prepass")
            self._digest = self._pool.submit(input_digest, self.input_path)
            if self.GUESS in read_header(self.input_path):
                self._dups = self._pool.submit(self._timed_dups, self.GUESS)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _timed_dups(self, column: str) -> tuple[Any, float]:
        t0 = time.perf_counter()
        return duplicate_ids(self.input_path, column), time.perf_counter() - t0

    def digest(self) -> str:
        return self._digest.result() if self._digest is not None else input_digest(self.input_path)

    def duplicate_ids(self, column: str) -> Any:
        """:func:`duplicate_ids` of ``column`` (its seconds in the ``duplicate_ids`` stage)."""
        early = self._dups is not None and column == self.GUESS
        dups, seconds = self._dups.result() if early else self._timed_dups(column)
        self.clock.add("duplicate_ids", seconds)
        return dups


_EARLY: dict[Path, _PrePass] = {}
"""Pre-passes started by :func:`early_prepass`, by input path: the next ``score_file`` of
that path takes its own (results and errors where the plain calls stood)."""


@contextlib.contextmanager
def early_prepass(input_path: str | Path) -> Iterator[None]:
    """Start the input's digest and duplicate-id pre-pass now, for the ``score_file`` of
    ``input_path`` that this block runs.

    Why: ``village-credit score`` waits ~0.7 s for its store process (MLflow's import, the
    fetch) after importing the model's code; the pre-pass, started only once ``score_file``
    began, used to end after the model was loaded (0.3-1.5 s waited before the workers
    fork; docs/benchmarks.md, "CLI fixed cost (issue 31 item 4), eighth pass"). Nothing
    changes for an input the pre-pass cannot start on (no error here: ``score_file``
    raises it where it always did); a run refused (the model, the output folder) only
    discards the pre-pass, whose running step the block's end waits for.
    The thread stays alive (idle) until the block ends, so after the workers fork, as
    :class:`_PrePass` requires; Arrow allocates from the system pool meanwhile, as in a run.
    """
    path = Path(input_path)
    with _system_memory_pool():
        pre = _PrePass(path, StageClock())
        try:
            pre.__enter__()
        except Exception:  # noqa: BLE001 - unreadable here: score_file's plain calls raise it
            pre.__exit__(None, None, None)
        else:
            _EARLY[path] = pre
        try:
            yield
        finally:
            if _EARLY.get(path) is pre:
                del _EARLY[path]
            pre.__exit__(None, None, None)


def _chunk_writer(output_dir: Path, meta: dict[str, str], report: bool, clock: StageClock) -> Any:
    """The write step of one chunk (run by ``WriteBehind``): its parts, marker and report sums."""
    def write(k: int, first: int, rows: int, *parts: pd.DataFrame) -> dict[str, Any]:
        t0 = time.perf_counter()
        counts: dict[str, Any] = write_chunk(output_dir, k, first, rows, *parts, meta)
        if report:  # the programme report's sums of this chunk, while the next one is decided
            counts = {**counts, "_sums": chunk_sums(_report_columns(parts[0]), parts[2])}
        clock.since("write", t0)
        return counts
    return write


def _report_columns(decisions: pd.DataFrame | pa.Table) -> pd.DataFrame:
    """The decisions as the programme sums read them (pandas; texts stay Arrow-backed,
    so a table's conversion is ~0.6 ms a chunk)."""
    return decisions if isinstance(decisions, pd.DataFrame) else decisions_frame(decisions)


def _decide_chunk(scorer: PyfuncScorer, batch: pd.DataFrame, first: int, dups: Any, clock: StageClock,
                  t0: float) -> tuple[Any, ...]:
    """One chunk's (decisions, problems, bad rows), the cross-chunk duplicates moved to quarantine."""
    decisions, problems, bad_rows = score_chunk_arrow(scorer, batch, first)
    t0 = clock.since("decide", t0)
    if dups:  # ids seen more than once in the file: the guard moves rows of a pandas frame
        parts = quarantine_duplicates(decisions_frame(decisions), problems, bad_rows, batch, first, dups,
                                      _as_text, scorer.input_id_column)
    else:
        parts = (decisions, problems, bad_rows)
    clock.since("quarantine", t0)
    return parts


def _score_in_turn(scorer: PyfuncScorer, input_path: Path, output_dir: Path, columns: list[str] | None,
                   chunk_rows: int, meta: dict[str, str], dups: Any, report: bool, read_ahead: int,
                   summary: ScoreSummary, clock: StageClock, progress: bool, total: int
                   ) -> tuple[int, float, list[Any]]:
    """One deciding thread, chunks in file order (a reader and a writer thread beside it)."""
    bar = row_bar(total, progress, "scoring")
    work_rows, t_loop = 0, time.perf_counter()
    writer = WriteBehind(enabled=read_ahead > 0)
    write = _chunk_writer(output_dir, meta, report, clock)
    sums: list[Any] = []

    def done(finished: list[dict[str, Any]]) -> None:
        for counts in finished:
            sums.append(counts.pop("_sums", None))
            add_counts(summary, counts)
            bar.advance(counts["rows"])

    try:
        t_wait = time.perf_counter()
        for k, first, batch in prefetch(_timed(_chunks(input_path, chunk_rows, columns), clock), read_ahead):
            t0 = clock.since("wait_read", t_wait)
            counts = _read_marker(output_dir / "_chunks" / f"{k:05d}.json", k, first, len(batch))
            if counts is not None:
                summary.chunks_resumed += 1
                done([{**counts, "_sums": part_sums(output_dir, f"part-{k:05d}.parquet") if report else None}])
                t_wait = time.perf_counter()
                continue
            parts = _decide_chunk(scorer, batch, first, dups, clock, t0)
            t0 = time.perf_counter()
            done(writer.put(write, k, first, len(batch), *parts))
            clock.since("wait_write", t0)
            work_rows += len(batch)
            t_wait = time.perf_counter()
        t0 = time.perf_counter()
        done(writer.drain())
        clock.since("wait_write", t0)
    finally:
        writer.close()
        bar.close()
    work_seconds = time.perf_counter() - t_loop if work_rows else 0.0  # reading, deciding, writing overlap
    return work_rows, work_seconds, sums


@dataclass
class _Job:
    """What a worker process needs to score its chunks (inherited through ``fork``)."""

    scorer: PyfuncScorer
    input_path: Path
    output_dir: Path
    columns: list[str] | None
    chunk_rows: int
    meta: dict[str, str]
    dups: Any
    report: bool
    read_ahead: int
    done: Any = None  # the queue each finished chunk's counts go to (the parent's progress)
    inline: bool = False  # the workers fill the cores: each reads, decides and writes in one thread


_JOB: list[_Job] = []
"""The job of this worker process: set in the parent just before the workers fork."""


def default_workers() -> int:
    """The cores this process may run on (``os.sched_getaffinity``): ``score_file``'s default."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _split_ranges(todo: list[tuple[int, int, int]], n: int) -> list[list[tuple[int, int, int]]]:
    """``todo`` as ``n`` contiguous runs of nearly equal row counts: each worker reads its
    run in one pass (a chunk inside a row group costs decoding the group from its start)."""
    rows = np.cumsum([r for _, _, r in todo])
    cuts = np.searchsorted(rows, rows[-1] * np.arange(1, n) / n, side="left") + 1
    runs = [list(r) for r in np.split(np.arange(len(todo)), np.unique(np.clip(cuts, 1, len(todo) - 1)))]
    return [[todo[i] for i in run] for run in runs if len(run)]


def _score_in_workers(job: _Job, plan: list[tuple[int, int, int]], n_workers: int, summary: ScoreSummary,
                      clock: StageClock, progress: bool) -> tuple[int, float, list[Any]]:
    """The plan's chunks decided by ``n_workers`` processes, each on its own contiguous run.

    Why processes: deciding is pandas and numpy under the GIL, so a second thread would
    not use the second core. Each worker is forked with the loaded model, reads its own
    chunks from the file and writes their parts and markers itself (no chunk crosses a
    pipe); only each chunk's counts and programme sums come back, in a queue, so the
    row bar moves as chunks finish. The parent keeps the rest: resumed chunks, the
    report's sums in chunk order, the summary and the stage table (workers' seconds
    added up). A chunk's marker is still written after its parts, so a run cut off
    anywhere resumes; markers may finish out of order, which resuming never relied on.
    """
    sums: dict[int, Any] = {}
    todo = []
    for k, first, rows in plan:
        counts = _read_marker(job.output_dir / "_chunks" / f"{k:05d}.json", k, first, rows)
        if counts is None:
            todo.append((k, first, rows))
            continue
        summary.chunks_resumed += 1
        sums[k] = part_sums(job.output_dir, f"part-{k:05d}.parquet") if job.report else None
        add_counts(summary, counts)
    resumed_rows = summary.rows_read
    t_loop = time.perf_counter()
    if todo:
        ctx = multiprocessing.get_context("fork")  # the loaded model and the duplicate ids, not pickled
        job.done = ctx.Queue()
        _JOB[:] = [job]
        ranges = _split_ranges(todo, min(n_workers, len(todo)))
        summary.workers = len(ranges)
        job.inline = len(ranges) >= default_workers()  # see _score_range
        pool = ProcessPoolExecutor(len(ranges), mp_context=ctx, initializer=_die_with_parent,
                                   initargs=(os.getpid(),))
        try:
            futures = [pool.submit(_score_range, r) for r in ranges]  # forks every worker now, before
        finally:                                                    # the bar starts a thread
            _JOB.clear()
        bar = row_bar(summary.rows_read + sum(r for _, _, r in todo), progress, "scoring")
        bar.advance(resumed_rows)
        try:
            left = len(todo)
            while left:
                try:
                    counts = job.done.get(timeout=0.2)
                except queue.Empty:
                    failed = [f for f in futures if f.done() and f.exception() is not None]
                    if failed:
                        raise _worker_error(failed[0].exception())
                    continue
                sums[counts["chunk"]] = counts.pop("_sums", None)
                add_counts(summary, counts)
                bar.advance(counts["rows"])
                left -= 1
            for f in futures:
                if f.exception() is not None:
                    raise _worker_error(f.exception())
                for stage, secs in f.result().items():
                    clock.add(stage, secs)
        finally:
            bar.close()
            pool.shutdown(wait=True, cancel_futures=True)
    work_rows = summary.rows_read - resumed_rows
    work_seconds = time.perf_counter() - t_loop if work_rows else 0.0
    return work_rows, work_seconds, [sums[k] for k, _, _ in plan]


def _die_with_parent(parent: int) -> None:
    """Worker initializer: the worker is killed when the run's process dies (Linux
    ``PR_SET_PDEATHSIG``). A worker that outlived a ``kill -9`` of the run would go on
    writing chunks beside the rerun that resumes them."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: nothing to ask for
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _worker_error(exc: BaseException) -> BaseException:
    if isinstance(exc, BrokenProcessPool):
        return ScoringError(f"a scoring worker process died ({exc}); the chunks it finished are kept: "
                            "rerun the same command to resume")
    return exc


def _score_range(chunks: list[tuple[int, int, int]]) -> dict[str, float]:
    """Worker process: decide and write a contiguous run of chunks; its stage seconds.

    When the workers fill the cores (``job.inline``), a worker reads, decides and writes
    in its one thread: no read-ahead thread, no write-behind thread, Parquet decoded in
    the calling thread. Why: the other worker already keeps the second core busy, so a
    worker's own helper threads only compete with it for the same cores, and each chunk
    held ahead is memory a fresh process faults in. Measured on 1M rows, two workers,
    load 5-10: minor faults ~348k -> ~219k, the workers' CPU -9 % (wall time at that
    load worse: one thread gets less of a busy box than five; a quiet box not measured;
    docs/benchmarks.md, "issue 31, eighth pass"). Same chunks, same functions: same bytes.
    """
    job = _JOB[0]
    ahead = 0 if job.inline else job.read_ahead
    PREDICT_OPTIONS["num_threads"] = 1  # a forked child must not use the parent's OpenMP pool
    # the parent reads every count before it shuts the pool down; when it stopped reading
    # (another worker failed), an exiting worker must not wait for a full pipe
    job.done.cancel_join_thread()
    clock = StageClock()
    before = job.scorer.model_timings()
    wanted = {k: rows for k, _, rows in chunks}
    last = max(wanted)
    writer = WriteBehind(enabled=ahead > 0)
    write = _chunk_writer(job.output_dir, job.meta, job.report, clock)

    def done(finished: list[dict[str, Any]]) -> None:
        for counts in finished:
            job.done.put(counts)

    source = iter_chunks_from(job.input_path, chunks[0][1], job.chunk_rows, job.columns,
                              use_threads=not job.inline)
    try:
        t_wait = time.perf_counter()
        for k, first, batch in prefetch(_timed(source, clock), ahead):
            t0 = clock.since("wait_read", t_wait)
            if k > last:
                break
            if k in wanted:  # else done by an earlier run, inside this run of chunks
                if len(batch) != wanted[k]:
                    raise ScoringError(f"{job.input_path}: chunk {k} has {len(batch)} rows, the plan {wanted[k]}")
                parts = _decide_chunk(job.scorer, batch, first, job.dups, clock, t0)
                t0 = time.perf_counter()
                done(writer.put(write, k, first, len(batch), *parts))
                clock.since("wait_write", t0)
            t_wait = time.perf_counter()
        t0 = time.perf_counter()
        done(writer.drain())
        clock.since("wait_write", t0)
    finally:
        writer.close()
    if not ahead:  # read and written in this thread: the waits are the read and write stages again
        clock.seconds.pop("wait_read", None)
        clock.seconds.pop("wait_write", None)
    _split_decide(clock, job.scorer, before)
    return clock.seconds


def _timed(items: Iterator[Any], clock: StageClock) -> Iterator[Any]:
    """``items``, with the time spent producing each added to the ``read`` stage."""
    it = iter(items)
    while True:
        t0 = time.perf_counter()
        try:
            item = next(it)
        except StopIteration:
            return
        clock.since("read", t0)
        yield item


def _split_decide(clock: StageClock, scorer: PyfuncScorer, before: dict[str, float]) -> None:
    """The ``decide`` stage split into the model's own stages; the rest of it (the pyfunc
    call, splitting quarantine texts) is counted under ``quarantine``."""
    total = clock.seconds.pop("decide", 0.0)
    inside = {k: v - before.get(k, 0.0) for k, v in scorer.model_timings().items()}
    for stage, secs in inside.items():
        clock.add(stage, secs)
    clock.add("quarantine", max(0.0, total - sum(inside.values())))


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
