"""Reading and writing household tables: Parquet and CSV, whole or streamed.

Why a module of its own: every layer reads the same files, and a file that cannot be
read must fail the same way everywhere, with a :class:`DataReadError` that names the
file and the cause rather than a pyarrow traceback. Dtypes are normalised to one
convention on the way in (``bool`` as numpy bool, dates as ``datetime64[ns]`` with
``NaT``, categories as plain strings, ints as int64, floats as float64), and Parquet
is written with the schema's logical types so the files read the same in Spark.

CSV cells that do not parse as their schema type are *not* an error here: that
column is returned as strings so that :func:`village_credit.data.validation.
validate_households` can quarantine the bad cells one by one.

Every command reads through here, so a file means the same everywhere: a CSV's
encoding (UTF-8 with or without BOM, else GB18030) and delimiter (``, ; tab |``)
are sniffed unless given, a header naming a column twice is refused by name, and
the header names are the reader's own (so a BOM never hides ``household_id``).
Dates never wrap: ``datetime64[ns]`` holds only 1677-09-22..2262-04-11, so a column
with a date outside that window is handed on as ISO text and validation refuses
those cells by row and column; a timezone-aware timestamp becomes its local date.
"""

from __future__ import annotations

import codecs
import csv
import datetime
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from village_credit.data.schema import SCHEMA, HouseholdSchema, months_in
from village_credit.errors import DataReadError, SchemaError

__all__ = [
    "DATE_MAX",
    "DATE_MIN",
    "CsvDialect",
    "arrow_schema",
    "arrow_type",
    "check_output_dir",
    "check_output_file",
    "count_rows",
    "guess_delimiter",
    "history_long",
    "iter_batches",
    "iter_column",
    "normalise_frame",
    "read_header",
    "read_table",
    "refuse_duplicate_names",
    "sniff_csv",
    "table_to_frame",
    "write_parquet",
]

PARQUET_COMPRESSION = "zstd"
_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
_TRUE = ("true", "True", "TRUE", "1", "yes", "Yes", "YES", "t", "T", "y", "Y")
_FALSE = ("false", "False", "FALSE", "0", "no", "No", "NO", "f", "F", "n", "N")


def arrow_type(dtype: str) -> pa.DataType:
    """The Arrow (and so Parquet) type of a schema logical dtype."""
    return {
        "string": pa.string(),
        "category": pa.string(),
        "int": pa.int64(),
        "float": pa.float64(),
        "bool": pa.bool_(),
        "date": pa.date32(),
    }[dtype]


def _schema_for(columns: Sequence[str]) -> HouseholdSchema:
    m = months_in(list(columns))
    return SCHEMA if m in (0, SCHEMA.months) else HouseholdSchema(months=m)


def arrow_schema(months: int = SCHEMA.months, include_truth: bool = True) -> pa.Schema:
    """Arrow schema of the household table (column order = ``SCHEMA.names``)."""
    sch = SCHEMA if months == SCHEMA.months else HouseholdSchema(months=months)
    return pa.schema(
        [pa.field(c.name, arrow_type(c.dtype), nullable=c.nullable)
         for c in sch.columns if include_truth or c.role != "truth"]
    )


def _kind(path: Path) -> str:
    kind = _SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DataReadError(
            f"{path}: unsupported file type {path.suffix!r}; expected .parquet or .csv")
    if not path.exists():
        raise DataReadError(f"{path}: file not found")
    if path.is_dir():
        raise DataReadError(f"{path}: is a directory, expected a file")
    if not os.access(path, os.R_OK):
        raise DataReadError(f"{path}: permission denied")
    return kind


def _known_types(names: Sequence[str]) -> dict[str, pa.DataType]:
    sch = _schema_for(names)
    spec = {c.name: c for c in sch.columns}
    return {n: arrow_type(spec[n].dtype) for n in names if n in spec}


def _cast_strings(table: pa.Table) -> pa.Table:
    """Cast string columns to their schema type where every cell parses; else keep text."""
    types = _known_types(table.column_names)
    arrays, fields = [], []
    for name, col in zip(table.column_names, table.columns, strict=True):
        target = types.get(name)
        if target is not None and col.type != target:
            try:
                if target == pa.bool_() and pa.types.is_string(col.type):
                    col = _parse_bool(col)
                else:
                    col = pc.cast(col, target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass  # leave as text: validation quarantines the bad cells
        arrays.append(col)
        fields.append(pa.field(name, col.type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _parse_bool(col: pa.ChunkedArray) -> pa.ChunkedArray:
    is_t = pc.is_in(col, value_set=pa.array(_TRUE))
    is_f = pc.is_in(col, value_set=pa.array(_FALSE))
    ok = pc.or_(pc.or_(is_t, is_f), pc.is_null(col))
    if not pc.all(ok).as_py():
        raise pa.ArrowInvalid("unparseable boolean")
    return pc.if_else(is_t, True, pc.if_else(is_f, False, pa.scalar(None, pa.bool_())))


@dataclass(frozen=True)
class CsvDialect:
    """How a CSV file is written: encoding, delimiter, whether it starts with a BOM, header."""

    encoding: str
    delimiter: str
    bom: bool
    header: tuple[str, ...]


_DELIMITERS = (",", ";", "\t", "|")
_SNIFF_BYTES = 1 << 16
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def _decode_sample(path: Path, raw: bytes, encoding: str | None) -> tuple[str, str, bool]:
    """(text, encoding, bom) of the first bytes of a CSV: given, BOM, UTF-8, else GB18030."""
    for bom, enc in _BOMS:
        if raw.startswith(bom) and encoding in (None, enc, enc.replace("-", ""), "utf-8-sig"):
            return raw[len(bom):].decode(enc, errors="ignore"), enc, True
    tries = [encoding] if encoding else ["utf-8", "gb18030"]
    # the sample may end inside a multi-byte character: decode whole lines only
    cut = raw if len(raw) < _SNIFF_BYTES else raw[: raw.rfind(b"\n") + 1 or len(raw)]
    for enc in tries:
        try:
            return cut.decode(enc), enc, False
        except UnicodeDecodeError:
            continue
        except LookupError:
            raise DataReadError(f"{path}: unknown encoding {enc!r}") from None
    raise DataReadError(f"{path}: not readable as {' or '.join(tries)}; "
                        "save it as UTF-8 CSV or give the encoding")


def sniff_csv(path: str | os.PathLike[str], encoding: str | None = None,
              delimiter: str | None = None) -> CsvDialect:
    """Detect (or take) the encoding and delimiter of a CSV file and read its header.

    Why here: every command must read a CSV the same way (a UTF-8 BOM, a semicolon
    file saved by a European spreadsheet, a GBK export from a Chinese one), and a
    header naming a column twice is refused by name rather than read ambiguously.
    """
    p = Path(path)
    try:
        with p.open("rb") as fh:
            raw = fh.read(_SNIFF_BYTES)
    except OSError as exc:
        raise DataReadError(f"{p}: cannot read CSV header: {exc.strerror or exc}") from exc
    text, enc, bom = _decode_sample(p, raw, encoding)
    first = text.splitlines()[0] if text.strip() else ""
    if not first.strip():
        raise DataReadError(f"{p}: empty CSV file (no header line)")
    if delimiter is None:
        delimiter = guess_delimiter(first)
    elif len(delimiter) != 1:
        raise DataReadError(f"{p}: the delimiter must be one character, got {delimiter!r}")
    header = tuple(h.strip() for h in next(csv.reader([first], delimiter=delimiter)))
    if any(not h for h in header):
        blank = [str(i + 1) for i, h in enumerate(header) if not h]
        raise DataReadError(f"{p}: the header has empty column name(s) at position(s) {', '.join(blank)}")
    refuse_duplicate_names(p, header)
    return CsvDialect(encoding=enc, delimiter=delimiter, bom=bom, header=header)


def guess_delimiter(header_line: str) -> str:
    """The one of ``, ; tab |`` that splits a header line into the most fields (ties: comma)."""
    counts = {d: len(next(csv.reader([header_line], delimiter=d))) for d in _DELIMITERS}
    return max(_DELIMITERS, key=lambda d: (counts[d], d == ","))


def refuse_duplicate_names(path: Path, names: Sequence[str]) -> None:
    """:class:`DataReadError` naming every column name given more than once, and where."""
    seen: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        seen.setdefault(n, []).append(i + 1)
    dup = {n: pos for n, pos in seen.items() if len(pos) > 1}
    if dup:
        shown = "; ".join(f"{n} (columns {', '.join(map(str, pos))})" for n, pos in dup.items())
        raise DataReadError(f"{path}: column name(s) appear more than once in the header: {shown}")


def _csv_options(path: Path, encoding: str | None = None, delimiter: str | None = None
                 ) -> tuple[pacsv.ReadOptions, pacsv.ParseOptions, pacsv.ConvertOptions]:
    d = sniff_csv(path, encoding, delimiter)
    header = list(d.header)
    convert = pacsv.ConvertOptions(
        column_types={h: pa.string() for h in header},
        strings_can_be_null=True,
        null_values=["", "NA", "NaN", "nan", "NaT", "null", "None"],
    )
    # our own header names (BOM and quotes already stripped), the file's header line skipped
    read = pacsv.ReadOptions(block_size=1 << 24, column_names=header, skip_rows=1,
                             encoding="utf8" if d.encoding == "utf-8" else d.encoding)
    return read, pacsv.ParseOptions(delimiter=d.delimiter), convert


def read_header(path: str | os.PathLike[str], encoding: str | None = None,
                delimiter: str | None = None) -> list[str]:
    """Column names of a Parquet file (footer) or a CSV file (sniffed header), checked.

    Raises :class:`DataReadError` naming the file for anything unreadable (0 bytes,
    not Parquet, truncated, a directory) and for names given twice.
    """
    p = Path(path)
    kind = _kind(p)
    if kind == "csv":
        return list(sniff_csv(p, encoding, delimiter).header)
    try:
        names = list(pq.ParquetFile(p).schema_arrow.names)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataReadError(f"{p}: cannot read parquet file: {exc}") from exc
    refuse_duplicate_names(p, names)
    return names


def _missing_hint(path: Path, missing: int, have: Sequence[str]) -> str:
    """A word about the delimiter when a CSV seems to be read as one column."""
    if path.suffix.lower() == ".csv" and len(have) == 1 and missing > 1:
        return (f" (the header was read as one column {have[0][:60]!r}: "
                "is the delimiter something other than , ; tab or |?)")
    return ""


DATE_MIN = datetime.date(1677, 9, 22)
DATE_MAX = datetime.date(2262, 4, 11)
"""Calendar dates the toolkit's ``datetime64[ns]`` columns hold; others are refused by cell."""


def _date_columns(names: Sequence[str]) -> set[str]:
    sch = _schema_for(names)
    return {c.name for c in sch.columns if c.dtype == "date"}


def _fix_temporal(table: pa.Table) -> pa.Table:
    """Timestamps and dates made safe for ``datetime64[ns]``: nothing wraps, nothing raises.

    * a timezone-aware timestamp becomes its local wall time (a snapshot taken at
      23:00 in Beijing is that Beijing day), a schema date column its calendar day;
    * a column holding a date outside 1677-09-22..2262-04-11 (which nanoseconds
      cannot hold: 2999-01-01 would silently become 1829) is handed on as ISO text,
      so validation refuses exactly those cells by row and column.
    """
    dates = _date_columns(table.column_names)
    out = table
    for i, f in enumerate(table.schema):
        t, col = f.type, table.column(i)
        if not (pa.types.is_timestamp(t) or pa.types.is_date(t)):
            continue
        changed = False
        if pa.types.is_timestamp(t) and t.tz is not None:
            col, changed = pc.local_timestamp(col), True
        if f.name in dates and pa.types.is_timestamp(col.type):
            col, changed = pc.cast(pc.floor_temporal(col, unit="day"), pa.date32(), safe=False), True
        if not (pa.types.is_timestamp(col.type) and col.type.unit == "ns"):
            as_date = col if pa.types.is_date32(col.type) else pc.cast(col, pa.date32(), safe=False)
            lo = pa.scalar(DATE_MIN, pa.date32())
            hi = pa.scalar(DATE_MAX, pa.date32())
            span = pc.min_max(as_date)  # one pass over the column (nulls skipped), then scalars
            if span["min"].is_valid and (pc.less(span["min"], lo).as_py() or pc.greater(span["max"], hi).as_py()):
                col = (pc.cast(col, pa.string()) if pa.types.is_date(col.type)
                       else pc.strftime(col, format="%Y-%m-%dT%H:%M:%S"))
                changed = True
        if changed:
            out = out.set_column(i, pa.field(f.name, col.type), col)
    return out


def table_to_frame(table: pa.Table) -> pd.DataFrame:
    """Arrow table -> pandas with the toolkit's dtype convention (see :func:`_fix_temporal`)."""
    df = _fix_temporal(table).to_pandas(date_as_object=False, coerce_temporal_nanoseconds=True,
                                        split_blocks=True, self_destruct=False)
    return normalise_frame(df)


def normalise_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Dates -> ``datetime64[ns]``; leaves everything else as read."""
    fixes = {}
    for name, dt in df.dtypes.items():  # not df[name] per column: ~200 Series built per chunk
        if isinstance(dt, np.dtype) and dt.kind == "M" and dt != np.dtype("datetime64[ns]"):
            fixes[name] = df[name].astype("datetime64[ns]")
    return df.assign(**fixes) if fixes else df


def _check_columns(path: Path, available: Sequence[str], columns: Sequence[str] | None) -> None:
    refuse_duplicate_names(path, available)
    if columns is None:
        return
    missing = [c for c in columns if c not in set(available)]
    if missing:
        raise SchemaError(f"{path}: requested columns not in the file: {', '.join(missing)}"
                          + _missing_hint(path, len(missing), available))


def _open(p: Path, kind: str, columns: Sequence[str] | None, encoding: str | None,
          delimiter: str | None) -> tuple[pq.ParquetFile | None, tuple | None]:
    """Parquet file handle or CSV (read, parse, convert) options, columns checked."""
    if kind == "parquet":
        # pre_buffer: coalesced reads of a row group's column chunks instead of many
        # small reads (a few % on wide tables; memory bounded by one row group)
        pf = pq.ParquetFile(p, pre_buffer=True)
        _check_columns(p, pf.schema_arrow.names, columns)
        return pf, None
    read_opts, parse, convert = _csv_options(p, encoding, delimiter)
    _check_columns(p, list(convert.column_types), columns)
    if columns is not None:
        convert.include_columns = list(columns)
    return None, (read_opts, parse, convert)


def read_table(path: str | os.PathLike[str], columns: Sequence[str] | None = None, *,
               encoding: str | None = None, delimiter: str | None = None) -> pd.DataFrame:
    """Read a whole Parquet or CSV household file into a DataFrame.

    CSV: encoding (UTF-8 with or without BOM, else GB18030) and delimiter
    (``, ; tab |``) are detected unless given; every cell is read as text, then each
    known column is cast to its schema type (dates ISO ``YYYY-MM-DD``; booleans
    true/false/1/0/yes/no) when all its cells parse. A name given twice in the
    header is refused by name. Unreadable files raise :class:`DataReadError` naming
    the file and the cause.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import pandas as pd
    >>> from village_credit.data import read_table
    >>> raw = pd.DataFrame({"household_id": ["HH1", "HH2"], "head_age": ["45", "67"],
    ...                     "smartphone": ["yes", "no"]})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = Path(tmp) / "hh.csv"
    ...     raw.to_csv(path, sep=";", index=False, encoding="gb18030")
    ...     df = read_table(path)  # delimiter and encoding detected, columns cast to the schema
    >>> df
      household_id  head_age  smartphone
    0          HH1        45        True
    1          HH2        67       False
    """
    p = Path(path)
    kind = _kind(p)
    try:
        pf, opts = _open(p, kind, columns, encoding, delimiter)
        if pf is not None:
            table = pf.read(columns=list(columns) if columns is not None else None)
        else:
            read_opts, parse, convert = opts  # type: ignore[misc]
            table = _cast_strings(pacsv.read_csv(p, read_options=read_opts, parse_options=parse,
                                                 convert_options=convert))
    except (SchemaError, DataReadError):
        raise
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataReadError(f"{p}: cannot read {kind} file: {exc}") from exc
    return table_to_frame(table)


def iter_batches(path: str | os.PathLike[str], batch_rows: int = 100_000,
                 columns: Sequence[str] | None = None, *, encoding: str | None = None,
                 delimiter: str | None = None) -> Iterator[pd.DataFrame]:
    """Stream a Parquet or CSV file as DataFrames of at most ``batch_rows`` rows.

    Read exactly as :func:`read_table`. Memory stays bounded by one batch; the index
    of each batch continues the row numbering of the file (so row numbers in
    quarantine tables stay global).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from village_credit.data import GeneratorConfig, generate_households, iter_batches, write_parquet
    >>> hh = generate_households(GeneratorConfig(n_households=50, seed=7))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = write_parquet(hh, Path(tmp) / "hh.parquet")
    ...     print([(len(b), b.index[0]) for b in iter_batches(path, batch_rows=20, columns=["household_id"])])
    [(20, 0), (20, 20), (10, 40)]
    """
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be >= 1, got {batch_rows}")
    p = Path(path)
    kind = _kind(p)
    offset = 0
    try:
        pf, opts = _open(p, kind, columns, encoding, delimiter)
        if pf is not None:
            batches: Iterator[pa.RecordBatch] = pf.iter_batches(
                batch_size=batch_rows, columns=list(columns) if columns is not None else None)
        else:
            read_opts, parse, convert = opts  # type: ignore[misc]
            batches = iter(pacsv.open_csv(p, read_options=read_opts, parse_options=parse,
                                          convert_options=convert))
        pending: list[pa.RecordBatch] = []
        pending_rows = 0
        for batch in batches:
            pending.append(batch)
            pending_rows += batch.num_rows
            while pending_rows >= batch_rows:
                table = pa.Table.from_batches(pending)
                out, rest = table.slice(0, batch_rows), table.slice(batch_rows)
                yield _emit(out, kind, offset)
                offset += out.num_rows
                pending = rest.to_batches() if rest.num_rows else []
                pending_rows = rest.num_rows
        if pending_rows:
            yield _emit(pa.Table.from_batches(pending), kind, offset)
    except (SchemaError, DataReadError):
        raise
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataReadError(f"{p}: cannot read {kind} file at row {offset}: {exc}") from exc


def iter_column(path: str | os.PathLike[str], column: str, batch_rows: int = 1_000_000, *,
                encoding: str | None = None, delimiter: str | None = None) -> Iterator[pa.Array]:
    """Stream one column as Arrow arrays, without the cost of the other columns or pandas."""
    p = Path(path)
    kind = _kind(p)
    try:
        pf, opts = _open(p, kind, [column], encoding, delimiter)
        if pf is not None:
            for b in pf.iter_batches(batch_size=batch_rows, columns=[column]):
                yield b.column(0)
        else:
            read_opts, parse, convert = opts  # type: ignore[misc]
            for b in pacsv.open_csv(p, read_options=read_opts, parse_options=parse,
                                    convert_options=convert):
                yield b.column(0)
    except (SchemaError, DataReadError):
        raise
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataReadError(f"{p}: cannot read column {column} of {kind} file: {exc}") from exc


def _emit(table: pa.Table, kind: str, offset: int) -> pd.DataFrame:
    if kind == "csv":
        table = _cast_strings(table)
    df = table_to_frame(table)
    df.index = pd.RangeIndex(offset, offset + len(df))
    return df


def count_rows(path: str | os.PathLike[str], *, encoding: str | None = None,
               delimiter: str | None = None) -> int:
    """Number of data rows, from Parquet metadata or by streaming a CSV once.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import pandas as pd
    >>> from village_credit.data import count_rows
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = Path(tmp) / "hh.csv"
    ...     pd.DataFrame({"household_id": ["HH1", "HH2", "HH3"]}).to_csv(path, index=False)
    ...     print(count_rows(path))
    3
    """
    p = Path(path)
    kind = _kind(p)
    try:
        if kind == "parquet":
            pf = pq.ParquetFile(p)
            refuse_duplicate_names(p, pf.schema_arrow.names)
            return int(pf.metadata.num_rows)
        read_opts, parse, convert = _csv_options(p, encoding, delimiter)
        first = next(iter(convert.column_types))
        convert.include_columns = [first]
        return sum(b.num_rows for b in pacsv.open_csv(p, read_options=read_opts, parse_options=parse,
                                                       convert_options=convert))
    except DataReadError:
        raise
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataReadError(f"{p}: cannot count rows of {kind} file: {exc}") from exc


def frame_to_table(df: pd.DataFrame) -> pa.Table:
    """DataFrame -> Arrow with schema logical types for known columns (dates as date32)."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    types = _known_types(table.column_names)
    arrays, fields = [], []
    for name, col in zip(table.column_names, table.columns, strict=True):
        target = types.get(name)
        if target is not None and col.type != target:
            try:
                col = pc.cast(col, target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass  # write as is; a reader's validation reports it
        arrays.append(col)
        fields.append(pa.field(name, col.type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def write_parquet(df: pd.DataFrame | pa.Table, path: str | os.PathLike[str],
                  metadata: dict[str, str] | None = None, row_group_rows: int = 200_000) -> Path:
    """Write a table to Parquet with deterministic bytes (same data -> same file).

    No pandas index or pandas metadata is stored (they carry library versions), the
    file is written to a temporary name and renamed so readers never see half a file.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from village_credit.data import GeneratorConfig, generate_households, read_table, write_parquet
    >>> hh = generate_households(GeneratorConfig(n_households=50, seed=7))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     a = write_parquet(hh, Path(tmp) / "a.parquet")
    ...     b = write_parquet(hh, Path(tmp) / "b.parquet")
    ...     print(a.read_bytes() == b.read_bytes(), read_table(a).shape)  # same data, same bytes
    True (50, 204)
    """
    p = Path(path)
    table = df if isinstance(df, pa.Table) else frame_to_table(df)
    table = table.replace_schema_metadata(
        {k.encode(): v.encode() for k, v in sorted((metadata or {}).items())} or None)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression=PARQUET_COMPRESSION,
                       row_group_size=row_group_rows, write_statistics=True)
        os.replace(tmp, p)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return p


def _nearest_existing(p: Path) -> Path:
    q = p.absolute()
    while not q.exists() and q != q.parent:
        q = q.parent
    return q


def _can_write_in(folder: Path) -> bool:
    """A real probe (a temporary file, removed at once): ``os.access`` is wrong for root,
    read-only mounts and ACLs."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".village-credit-probe-"):
            return True
    except OSError:
        return False


def check_output_file(path: str | os.PathLike[str], what: str = "output") -> Path:
    """Refuse, before any work, an output file that could not be written.

    A directory in its place, a file in the place of one of its folders, or a folder
    we may not write to: :class:`DataReadError` naming the path and the option.
    """
    p = Path(path)
    if p.is_dir():
        raise DataReadError(f"{what} {p}: is a directory, expected a file path")
    base = _nearest_existing(p.parent)
    if not base.is_dir():
        raise DataReadError(f"{what} {p}: {base} is a file, not a directory")
    if not _can_write_in(base) or (p.exists() and not os.access(p, os.W_OK)):
        raise DataReadError(f"{what} {p}: permission denied (cannot write in {base})")
    return p


def check_output_dir(path: str | os.PathLike[str], what: str = "output directory") -> Path:
    """Refuse, before any work, an output directory that could not be created or written."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise DataReadError(f"{what} {p}: is a file, expected a directory")
    base = _nearest_existing(p)
    if not base.is_dir():
        raise DataReadError(f"{what} {p}: {base} is a file, not a directory")
    if not _can_write_in(base):
        raise DataReadError(f"{what} {p}: permission denied (cannot write in {base})")
    return p


def history_long(df: pd.DataFrame, months: int | None = None) -> pd.DataFrame:
    """Melt the wide monthly history into one row per household and month.

    Columns: ``household_id, month`` (1 = oldest, ``months`` = last before snapshot),
    ``months_before_snapshot`` and the four series ``due, paid, dpd, utility_late``.

    Examples
    --------
    >>> from village_credit.data import GeneratorConfig, generate_households, history_long
    >>> hh = generate_households(GeneratorConfig(n_households=20, seed=7, months=12))
    >>> long = history_long(hh)
    >>> len(long), list(long.columns)
    (240, ['household_id', 'month', 'months_before_snapshot', 'due', 'paid', 'dpd', 'utility_late'])
    """
    m = months if months is not None else months_in(list(df.columns))
    if m <= 0:
        raise SchemaError("history_long: the table has no dpd_mNN history columns")
    series = ("due", "paid", "dpd", "utility_late")
    need = [f"{k}_m{i:02d}" for k in series for i in range(1, m + 1)] + ["household_id"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise SchemaError(f"history_long: missing columns {', '.join(missing[:10])}"
                          + (f" and {len(missing) - 10} more" if len(missing) > 10 else ""))
    n = len(df)
    out: dict[str, object] = {
        "household_id": np.repeat(df["household_id"].to_numpy(), m),
        "month": np.tile(np.arange(1, m + 1, dtype=np.int64), n),
    }
    out["months_before_snapshot"] = m + 1 - out["month"]  # type: ignore[operator]
    for k in series:
        cols = [f"{k}_m{i:02d}" for i in range(1, m + 1)]
        out[k] = df[cols].to_numpy().reshape(-1)
    return pd.DataFrame(out)
