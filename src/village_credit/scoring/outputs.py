"""The output folder of a scoring run: atomic writes, part files, and their readers.

Both engines (``scoring.batch``, ``scoring.spark``) write the same layout (see
:mod:`village_credit.scoring.batch`); these functions read it back in input row order.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

QUARANTINE_COLUMNS = ["row_number", "household_id", "column", "value", "reason", "check"]


def atomic_write_table(table: pa.Table, path: Path) -> None:
    """Write to ``<name>.tmp``, fsync, rename: readers and resumes never see half a file."""
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd")
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_write_frame(df: pd.DataFrame | pa.Table, meta: dict[str, str], path: Path) -> None:
    """``df`` with ``meta`` as one Parquet part, atomically (:func:`atomic_write_table`).

    ``df`` may be an Arrow table (the batch scorer's decisions): it is written as it is,
    with the pandas metadata its frame would have had (:func:`table_with_meta`).

    An empty frame's file is encoded once per column set, dtypes and metadata and its
    bytes reused: most chunks have no quarantined rows, and converting and encoding the
    ~200 empty text columns of ``quarantine_rows`` cost ~17 ms a chunk. The bytes are
    those ``pq.write_table`` gives for that frame (the writer is deterministic).
    """
    if len(df):
        atomic_write_table(table_with_meta(df, meta), path)
        return
    key = ((df.schema,) if isinstance(df, pa.Table)
           else (tuple(df.columns), tuple(df.dtypes), df.columns.dtype, df.columns.name)) + tuple(meta.items())
    data = _EMPTY_PARTS.get(key)
    if data is None:
        sink = pa.BufferOutputStream()
        pq.write_table(table_with_meta(df, meta), sink, compression="zstd")
        data = sink.getvalue().to_pybytes()
        if len(_EMPTY_PARTS) >= 64:  # a long-lived process scoring many files
            _EMPTY_PARTS.clear()
        _EMPTY_PARTS[key] = data
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


_EMPTY_PARTS: dict[tuple[Any, ...], bytes] = {}
"""Encoded empty parts (:func:`atomic_write_frame`), by columns, dtypes and metadata."""


def atomic_write_json(obj: dict[str, Any], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def table_with_meta(df: pd.DataFrame | pa.Table, meta: dict[str, str]) -> pa.Table:
    """A frame (or a table built as from that frame) with its pandas metadata and ``meta``."""
    if isinstance(df, pa.Table):
        table, pandas_meta = df, _pandas_metadata(df.schema.remove_metadata())
    else:
        table = pa.Table.from_pandas(df, preserve_index=False)
        pandas_meta = table.schema.metadata or {}
    merged = {**pandas_meta, **{k.encode(): v.encode() for k, v in meta.items()}}
    return table.replace_schema_metadata(merged)


@functools.lru_cache(maxsize=64)
def _pandas_metadata(schema: pa.Schema) -> dict[bytes, bytes]:
    """The schema metadata ``pa.Table.from_pandas`` writes for the frame ``to_pandas`` gives
    a table of this schema (columns, dtypes, pandas version): a function of the schema
    alone, so it is worked out once per schema on an empty table, not per part (callers
    read the dict, never change it)."""
    frame = schema.empty_table().to_pandas()
    return dict(pa.Table.from_pandas(frame, preserve_index=False).schema.metadata or {})


def part_files(output_dir: str | Path, sub: str) -> list[Path]:
    return sorted((Path(output_dir) / sub).glob("part-*.parquet"))


def read_parts(parts: list[Path], columns: list[str] | None, empty_cols: list[str]) -> pd.DataFrame:
    frames = [pq.read_table(p, columns=columns).to_pandas() for p in parts]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=columns or empty_cols)
    out = pd.concat(frames, ignore_index=True)
    if "row_number" in out.columns:  # Spark writes sorted ranges, not necessarily in part order
        out = out.sort_values("row_number", kind="stable", ignore_index=True)
    return out


def read_decisions(output_dir: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """All decisions of a scoring run (either engine), in input row order.

    >>> from village_credit.scoring import read_decisions
    >>> from village_credit.scoring.examples import scored_example
    >>> output = scored_example()  # score_file's example: 20 households, row 3 quarantined
    >>> decisions = read_decisions(output)
    >>> len(decisions), decisions["row_number"].tolist()[:5]  # in input order
    (19, [0, 1, 2, 4, 5])
    """
    return read_parts(part_files(output_dir, "decisions"), columns, ["row_number"])


def read_quarantine(output_dir: str | Path) -> pd.DataFrame:
    """One row per problem (row_number, household_id, column, value, reason, check).

    >>> from village_credit.scoring import read_quarantine
    >>> from village_credit.scoring.examples import scored_example
    >>> output = scored_example()  # score_file's example: 20 households, row 3 quarantined
    >>> read_quarantine(output)[["row_number", "household_id", "column", "check"]]
       row_number household_id    column    check
    0           3   HH00000004  head_age  missing
    """
    return read_parts(part_files(output_dir, "quarantine"), None, QUARANTINE_COLUMNS)


def read_quarantine_rows(output_dir: str | Path) -> pd.DataFrame:
    """The quarantined input rows (as text), with their row_number."""
    return read_parts(part_files(output_dir, "quarantine_rows"), None, ["row_number"])


def read_model_metadata(output_dir: str | Path) -> dict[str, str]:
    """``village_credit.model_*`` key-value metadata of the first decisions part file."""
    parts = part_files(output_dir, "decisions")
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
