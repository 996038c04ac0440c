"""Validate a household table against the schema: valid rows + a quarantine table.

Why quarantine instead of failing: one bad cell in a village file must not stop the
credit center from scoring the other households; the bad row is set aside with a
reason a data clerk can act on (row, column, value, reason). Only table-level
problems (required columns missing) raise, as :class:`SchemaError`, listing them all.

Every check is vectorised per column. Extra, unknown columns are kept and ignored.
Invariant: ``n_in == n_valid + n_quarantined`` where ``n_quarantined`` counts bad
*rows*; the quarantine table has one row per *problem* (a row may have several).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from village_credit.data.io import DATE_MAX, DATE_MIN
from village_credit.data.schema import SCHEMA, ColumnSpec, HouseholdSchema, months_in
from village_credit.errors import ConfigError, SchemaError

__all__ = ["QUARANTINE_COLUMNS", "ValidationResult", "coerce_households", "parse_date_option", "parse_dates",
           "validate_households"]

QUARANTINE_COLUMNS = ["row_number", "household_id", "column", "value", "reason", "check"]
SNAPSHOT_SLACK_DAYS = 366
"""How far after today a snapshot date may lie before its row is refused."""
_TRUE = {"true", "1", "yes", "y", "t", "1.0"}
_FALSE = {"false", "0", "no", "n", "f", "0.0"}


@dataclass
class ValidationResult:
    """Outcome of :func:`validate_households`.

    ``valid``: rows without problems, cast to schema dtypes, original index kept.
    ``quarantine``: one row per problem: ``row_number`` (0-based position in the input),
    ``household_id``, ``column``, ``value`` (as text), ``reason``, ``check`` (short code:
    missing, type, range, category, duplicate, consistency).
    ``bad_rows``: the offending input rows, untouched, plus ``row_number``.
    """

    valid: pd.DataFrame
    quarantine: pd.DataFrame
    bad_rows: pd.DataFrame
    n_in: int

    @property
    def n_valid(self) -> int:
        return len(self.valid)

    @property
    def n_quarantined(self) -> int:
        return len(self.bad_rows)

    @property
    def ok(self) -> bool:
        return self.n_quarantined == 0

    def summary(self) -> pd.DataFrame:
        """Problem counts per column and check, most frequent first."""
        if self.quarantine.empty:
            return pd.DataFrame({"column": [], "check": [], "n": []})
        return (self.quarantine.groupby(["column", "check"]).size().rename("n")
                .reset_index().sort_values("n", ascending=False, kind="stable")
                .reset_index(drop=True))


def _schema_for(df: pd.DataFrame) -> HouseholdSchema:
    m = months_in(list(df.columns))
    return SCHEMA if m in (0, SCHEMA.months) else HouseholdSchema(months=m)


def _fmt(v: object) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NaT or v is pd.NA:
        return ""
    if isinstance(v, pd.Timestamp):
        return v.strftime("%Y-%m-%d")
    if isinstance(v, np.datetime64):
        return "" if np.isnat(v) else str(v)[:10]
    return str(v)


def _problems(df: pd.DataFrame, pos: np.ndarray, column: str, reason: str | np.ndarray,
              check: str, values: pd.Series | None = None) -> pd.DataFrame:
    """Quarantine rows for positions ``pos`` (only the problem cells are formatted)."""
    src = values if values is not None else df[column] if column in df.columns else None
    vals = ([_fmt(v) for v in src.to_numpy()[pos]] if src is not None else [""] * len(pos))
    hid = df["household_id"] if "household_id" in df.columns else None
    ids = [_fmt(v) for v in hid.to_numpy()[pos]] if hid is not None else [""] * len(pos)
    return pd.DataFrame({
        "row_number": pos.astype(np.int64),
        "household_id": pd.Series(ids, dtype=object).astype(str),
        "column": column,
        "value": pd.Series(vals, dtype=object).astype(str),
        "reason": reason,
        "check": check,
    })


def _type_problems(df: pd.DataFrame, pos: np.ndarray, column: str,
                   reason: str | np.ndarray) -> pd.DataFrame:
    """Problems of cells that did not parse; a per-cell reason array is cut to ``pos``."""
    if isinstance(reason, np.ndarray):
        why = reason[pos]
        out = _problems(df, pos, column, why, "type")
        out["check"] = np.where(why == _OUT_OF_RANGE, "range", "type")
        return out
    return _problems(df, pos, column, reason, "type")


def _is_text(s: pd.Series) -> bool:
    return s.dtype == object or pd.api.types.is_string_dtype(s.dtype)


def _coerce_column(s: pd.Series, spec: ColumnSpec) -> tuple[pd.Series, np.ndarray, str]:
    """Cast one column; return (casted, bad-parse mask, reason for bad cells)."""
    notna = s.notna().to_numpy()
    if spec.dtype in ("int", "float"):
        if pd.api.types.is_bool_dtype(s.dtype):
            out = s.astype(np.float64)
        elif pd.api.types.is_numeric_dtype(s.dtype):
            out = s.astype(np.float64)
        else:
            text = s.astype(object).where(s.notna(), None)
            out = pd.to_numeric(pd.Series(text, index=s.index).astype("string").str.strip(),
                                errors="coerce").astype(np.float64)
        vals = out.to_numpy()
        bad = notna & np.isnan(vals)
        reason = f"not a number (expected {spec.dtype})"
        if spec.dtype == "int":
            frac = notna & ~np.isnan(vals) & (np.floor(np.nan_to_num(vals)) != vals)
            if frac.any():
                bad |= frac
                reason = "not an integer"
        return out, bad, reason
    if spec.dtype == "bool":
        if pd.api.types.is_bool_dtype(s.dtype) and not s.isna().any():
            return s.astype(bool), np.zeros(len(s), bool), ""
        low = s.astype(object).where(s.notna(), None).astype("string").str.strip().str.lower()
        is_t = low.isin(_TRUE).fillna(False).to_numpy(bool)
        is_f = low.isin(_FALSE).fillna(False).to_numpy(bool)
        bad = notna & ~is_t & ~is_f
        out = pd.Series(np.where(is_t, True, np.where(is_f, False, None)), index=s.index,
                        dtype=object)
        return out, bad, "not a boolean (expected true/false/1/0)"
    if spec.dtype == "date":
        return parse_dates(s)
    # string / category
    if _is_text(s):
        out = s.astype(object).where(s.notna(), None)
        out = pd.Series(out, index=s.index, dtype=object)
        blank = out.notna().to_numpy() & (out.astype("string").str.strip() == "").fillna(False).to_numpy(bool)
        out = out.where(~blank, None)
        return out, np.zeros(len(s), bool), ""
    out = s.astype(object).where(s.notna(), None).map(str, na_action="ignore")
    return out, np.zeros(len(s), bool), ""


_NOT_A_DATE = "not a date (expected YYYY-MM-DD)"
_OUT_OF_RANGE = (f"date out of range (supported {DATE_MIN.isoformat()} to {DATE_MAX.isoformat()})")
# a calendar date, optionally followed by a time and a UTC offset: the local date counts
_ISO_DATE = r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\s*$"


def parse_dates(s: pd.Series) -> tuple[pd.Series, np.ndarray, str | np.ndarray]:
    """Any date column -> ``datetime64[ns]`` with a per-cell reason for the cells refused.

    Why not ``pd.to_datetime(...).astype("datetime64[ns]")``: nanoseconds hold only
    1677-09-22..2262-04-11, and a date outside wraps or raises. Here each cell is read
    as a calendar day (any day), and one outside that window is refused as *out of
    range* in its own row and column; a text that is no calendar date (``2025-13-45``,
    and ``2025-02-30``, which a lenient parser would roll over to 2 March) as *not a
    date*. Timezone-aware values count by their local date. Python ``date`` objects
    (what ``pd.read_parquet`` gives for a date column) are converted by Arrow, not
    parsed as text.
    """
    n = len(s)
    dt = s.dtype
    if isinstance(dt, pd.DatetimeTZDtype):
        s = s.dt.tz_localize(None)
        dt = s.dtype
    if dt == object:
        as_days = _object_days(s)
        if as_days is not None:
            return _from_days(as_days, s.index, np.zeros(n, bool))
    if pd.api.types.is_datetime64_any_dtype(dt):
        if dt == np.dtype("datetime64[ns]"):
            return s, np.zeros(n, bool), ""
        return _from_days(s.to_numpy().astype("datetime64[D]"), s.index, np.zeros(n, bool))
    text = s.astype(object).where(s.notna(), None).astype("string").str.strip()
    text = text.where(text != "", None)
    parts = text.str.extract(_ISO_DATE)
    iso = (parts[0] + "-" + parts[1].str.zfill(2) + "-" + parts[2].str.zfill(2))
    arr = pa.array(iso.astype(object).where(iso.notna(), None).to_numpy(), type=pa.string())
    secs = pc.strptime(arr, format="%Y-%m-%d", unit="s", error_is_null=True)
    # strptime rolls an impossible day over (2025-02-30 -> 2025-03-02): a day is a
    # calendar date only when its month and day read back as written
    month = pd.to_numeric(parts[1], errors="coerce").to_numpy(dtype=np.float64)
    day = pd.to_numeric(parts[2], errors="coerce").to_numpy(dtype=np.float64)
    same = (np.asarray(pc.month(secs).to_numpy(zero_copy_only=False), dtype=np.float64) == month) & \
        (np.asarray(pc.day(secs).to_numpy(zero_copy_only=False), dtype=np.float64) == day)
    days = np.asarray(pc.cast(secs, pa.date32()).to_numpy(zero_copy_only=False), dtype="datetime64[D]")
    days = np.where(same, days, np.datetime64("NaT"))
    given = text.notna().to_numpy(bool)
    return _from_days(days, s.index, given & np.isnat(days))


def _object_days(s: pd.Series) -> np.ndarray | None:
    """Days of an object column of ``date`` / ``datetime`` objects (and missing cells), via
    Arrow; ``None`` when it holds anything else (text is parsed cell by cell)."""
    try:
        arr = pa.array(s.to_numpy(dtype=object), from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return None
    if pa.types.is_timestamp(arr.type):
        if arr.type.tz is not None:
            arr = pc.local_timestamp(arr)
        arr = pc.cast(pc.floor_temporal(arr, unit="day"), pa.date32(), safe=False)
    elif not pa.types.is_date(arr.type):
        return None
    return np.asarray(pc.cast(arr, pa.date32()).to_numpy(zero_copy_only=False), dtype="datetime64[D]")


def _from_days(days: np.ndarray, index: pd.Index, not_a_date: np.ndarray
               ) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Days -> ``datetime64[ns]``; days outside what nanoseconds hold are refused."""
    lo, hi = np.datetime64(DATE_MIN, "D"), np.datetime64(DATE_MAX, "D")
    ok = ~np.isnat(days)
    outside = ok & ((days < lo) | (days > hi))
    good = ok & ~outside
    out = pd.Series(np.where(good, days, np.datetime64("NaT")).astype("datetime64[ns]"), index=index)
    return out, not_a_date | outside, np.where(outside, _OUT_OF_RANGE, _NOT_A_DATE)


def parse_date_option(text: object, what: str) -> pd.Timestamp:
    """One date given as an option or config value (``--eval-date``), read like a date cell.

    Raises :class:`ConfigError` naming the option and the value for anything that is
    not a calendar date the toolkit holds (``2025-13-45``, ``2999-01-01``).
    """
    out, bad, reason = parse_dates(pd.Series([None if text is None else str(text)], dtype=object))
    if text is None or str(text).strip() == "" or bad[0]:
        why = reason[0] if isinstance(reason, np.ndarray) else (reason or _NOT_A_DATE)
        raise ConfigError(f"{what} {text!r}: {why or _NOT_A_DATE}")
    return pd.Timestamp(out.iloc[0])


_STR_DTYPE = pd.Series([], dtype="str").dtype
_INT53 = 2 ** 53


def _coerce_for_validation(s: pd.Series, spec: ColumnSpec) -> tuple[pd.Series, np.ndarray | None, str]:
    """:func:`_coerce_column` for :func:`validate_households`, without copies where possible.

    Returns the column itself when it already has the dtype the valid output ends up
    with and holds nothing to coerce (int64 / float64 / bool / datetime64[ns] columns,
    ``str`` columns without missing or blank cells): every check and the valid rows are
    then the same as through :func:`_coerce_column`, minus the object round trips.
    ``bad`` is ``None`` when no cell is bad. Anything else goes through
    :func:`_coerce_column` unchanged.
    """
    dt = s.dtype
    if spec.dtype == "int" and dt == np.int64:
        v = s.to_numpy()
        # beyond 2**53 the float64 round trip of _coerce_column changes values: keep it
        if not len(v) or (v.min() >= -_INT53 and v.max() <= _INT53):
            return s, None, ""
    elif spec.dtype == "float" and dt == np.float64:
        return s, None, ""
    elif spec.dtype == "int" and dt == np.float64:
        vals = s.to_numpy()
        notna = ~np.isnan(vals)
        frac = notna & (np.floor(np.nan_to_num(vals)) != vals)
        return s, (frac if frac.any() else None), "not an integer"
    elif spec.dtype == "bool" and dt == np.bool_:
        return s, None, ""
    elif spec.dtype == "date" and dt == np.dtype("datetime64[ns]"):
        return s, None, ""
    elif spec.dtype in ("string", "category") and dt == _STR_DTYPE:
        if hasattr(s.array, "__arrow_array__"):
            if _no_missing_or_blank(s.array.__arrow_array__()):
                return s, None, ""
        elif not s.isna().any():
            blank = (s.astype("string").str.strip() == "").fillna(False).to_numpy(bool)
            if not blank.any():
                return s, None, ""
    out, bad, reason = _coerce_column(s, spec)
    return out, (bad if bad.any() else None), reason


_BLANK = pa.scalar("", pa.large_string())


def _no_missing_or_blank(arr: pa.ChunkedArray | pa.Array) -> bool:
    """No missing cell and none blank once stripped, decided on the Arrow buffers.

    The same test as ``s.isna().any()`` and ``s.astype("string").str.strip() == ""``
    (pandas strips an Arrow text by this same ``utf8_trim_whitespace``), without the
    pandas ``string`` copy and the boolean Series (~1 ms a text column per 50k rows).
    """
    if arr.null_count:
        return False
    blank = pc.any(pc.equal(pc.utf8_trim_whitespace(arr), _BLANK.cast(arr.type))).as_py()
    return not blank


def _clean_column(s: pd.Series, spec: ColumnSpec) -> bool:
    """True when one or two reductions prove that no per-column check can flag a cell.

    Why: a clean column of its final dtype (the common case in batch scoring) needs no
    coercion, missing-value, range or category pass; ``min``/``max`` settle it (NaN
    propagates through them, so a column holding one is never called clean). ``False``
    only means "check it cell by cell", which gives the same problems as always.
    """
    dt = s.dtype
    if spec.dtype in ("int", "float") and dt in (np.int64, np.float64):
        if spec.dtype == "int" and dt == np.float64:
            return False  # integer check of floats: the full path
        v = s.to_numpy()
        if not len(v):
            return True
        lo = -np.inf if spec.min is None else spec.min
        hi = np.inf if spec.max is None else spec.max
        if dt == np.int64:
            lo, hi = max(lo, -_INT53), min(hi, _INT53)  # beyond 2**53: the full path keeps its float round trip
        mn, mx = v.min(), v.max()
        return bool(lo <= mn and mx <= hi)  # False for NaN: missing cells go the full path
    if spec.dtype == "bool" and dt == np.bool_:
        return True
    if spec.dtype == "date" and dt == np.dtype("datetime64[ns]"):
        return spec.nullable or not np.isnat(s.to_numpy()).any()
    if (spec.dtype == "category" and spec.categories and all(c.strip() for c in spec.categories)
            and dt == _STR_DTYPE and hasattr(s.array, "__arrow_array__")):
        arr = s.array.__arrow_array__()  # Arrow-backed text: no Python string per cell
        # every cell one of the (non-blank) categories: no missing, blank or unknown cell
        return arr.null_count == 0 and bool(pc.all(pc.is_in(arr, value_set=_category_set(spec.categories))).as_py())
    return False


_CATEGORY_SETS: dict[tuple[str, ...], pa.Array] = {}


def _category_set(categories: Sequence[str]) -> pa.Array:
    key = tuple(categories)
    if key not in _CATEGORY_SETS:
        _CATEGORY_SETS[key] = pa.array(list(key), type=pa.large_string())
    return _CATEGORY_SETS[key]


def coerce_households(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cast a raw frame (e.g. CSV read as text) to schema dtypes, cell by cell.

    Returns ``(frame, problems)``: uncoercible cells become missing in ``frame`` and are
    listed in ``problems`` (quarantine columns, check ``type``) instead of raising.
    Integer and boolean columns stay float/object while they hold missing cells;
    :func:`validate_households` casts them once bad rows are removed.
    """
    schema = _schema_for(df)
    specs = {c.name: c for c in schema.columns}
    fixes: dict[str, pd.Series] = {}
    probs: list[pd.DataFrame] = []
    for name in df.columns:
        spec = specs.get(name)
        if spec is None:
            continue
        out, bad, reason = _coerce_column(df[name], spec)
        if bad.any():
            probs.append(_type_problems(df, np.flatnonzero(bad), name, reason))
            out = out.where(~bad, None if out.dtype == object else np.nan)
        fixes[name] = out
    frame = df.assign(**fixes) if fixes else df.copy()
    return frame, _concat(probs)


def _repeated(ids: pd.Series) -> np.ndarray:
    """Rows whose (non-missing) id another row of the frame also holds.

    Ids held in Arrow (a Parquet read's text) are counted on Arrow's dictionary
    encoding (~3 ms per 50k rows, half of pandas' ``duplicated`` on the same column);
    any other dtype by ``duplicated(keep=False)``: the same rows either way.
    """
    if isinstance(ids.dtype, pd.StringDtype) and ids.dtype.storage == "pyarrow":
        arr = pa.array(ids.array)
        if isinstance(arr, pa.ChunkedArray):  # one dictionary for every row (no copy of one chunk)
            arr = arr.chunk(0) if arr.num_chunks == 1 else arr.combine_chunks()
        enc = pc.dictionary_encode(arr)
        idx = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        present = idx >= 0
        counts = np.bincount(idx[present], minlength=max(1, len(enc.dictionary)))
        return present & (counts[np.maximum(idx, 0)] > 1)
    return (ids.duplicated(keep=False) & ids.notna()).to_numpy(bool)


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame({c: pd.Series([], dtype=np.int64 if c == "row_number" else object)
                             for c in QUARANTINE_COLUMNS})
    return pd.concat(parts, ignore_index=True)


def _final_dtypes(df: pd.DataFrame, specs: dict[str, ColumnSpec]) -> pd.DataFrame:
    fixes: dict[str, pd.Series] = {}
    for name, dt in df.dtypes.items():  # one look-up of every dtype; a column is read only to fix it
        spec = specs.get(name)
        if spec is None:
            continue
        # columns already of their final dtype (and so without missing cells) stay as they are
        if (dt == np.int64 and spec.dtype == "int") or (dt == np.float64 and spec.dtype == "float") \
                or (dt == np.bool_ and spec.dtype == "bool") \
                or (dt == _STR_DTYPE and spec.dtype in ("string", "category")) or spec.dtype == "date":
            continue
        s = df[name]
        if spec.dtype == "int":
            if dt != np.int64 and not s.isna().any():
                fixes[name] = s.astype(np.int64)
        elif spec.dtype == "float":
            if dt != np.float64:
                fixes[name] = s.astype(np.float64)
        elif spec.dtype == "bool":
            if dt != np.bool_ and not s.isna().any():
                fixes[name] = s.astype(bool)
        elif spec.dtype in ("string", "category"):
            if dt != _STR_DTYPE and not s.isna().any():
                fixes[name] = s.astype("str")
    return df.assign(**fixes) if fixes else df


def validate_households(df: pd.DataFrame, require_truth: bool = False, *,
                        required: Sequence[str] | None = None, source: str | None = None,
                        today: datetime.date | None = None) -> ValidationResult:
    """Check every row against the schema; split into valid rows and a quarantine.

    Raises :class:`SchemaError` (listing *all* missing columns, and the ``source``
    file when given) when required columns are absent: by default every input column
    of the schema (plus the truth with ``require_truth``); ``required`` narrows that
    to what a step reads (the rules command checks only a policy's columns). Row
    checks, on every schema column present: unparseable values, dates outside what
    the toolkit holds, missing values in non-nullable columns, out-of-range numbers,
    unknown categories, dependents > household_size, event dates after the snapshot,
    a snapshot date after ``today`` (default: the current UTC date), duplicate
    household_id (first kept, later ones quarantined).

    Examples
    --------
    >>> from village_credit.data import GeneratorConfig, generate_households, validate_households
    >>> hh = generate_households(GeneratorConfig(n_households=50, seed=7))
    >>> bad = hh.copy()
    >>> bad.loc[0, "head_age"] = 150
    >>> result = validate_households(bad)
    >>> result.n_in, result.n_valid, result.n_quarantined
    (50, 49, 1)
    >>> result.quarantine[["row_number", "household_id", "column", "check"]]
       row_number household_id    column  check
    0           0   HH00000001  head_age  range
    """
    schema = _schema_for(df)
    if required is None:
        required = schema.names if require_truth else schema.input_columns
    missing = [c for c in required if c not in df.columns]
    if missing:
        shown = ", ".join(missing[:40]) + (f" ... ({len(missing)} in all)" if len(missing) > 40 else "")
        where = f"{source}: " if source else ""
        hint = ""
        if len(df.columns) == 1 and len(missing) > 1:
            hint = (f" (the file was read as one column {str(df.columns[0])[:60]!r}: "
                    "is its delimiter something other than , ; tab or |?)")
        raise SchemaError(f"{where}household table lacks {len(missing)} required column(s): {shown}{hint}")

    n = len(df)
    specs = {c.name: c for c in schema.columns}
    # coercion (as coerce_households, with no copy of columns that need none)
    fixes: dict[str, pd.Series] = {}
    cols: dict[str, pd.Series] = {}
    type_bad: dict[str, np.ndarray] = {}
    probs: list[pd.DataFrame] = []
    clean: set[str] = set()
    for name in df.columns:
        spec = specs.get(name)
        if spec is None:
            continue
        s = df[name]
        if _clean_column(s, spec):
            clean.add(name)  # nothing to coerce, nothing missing, in range, known categories
            cols[name] = s
            continue
        out, bad_cells, reason = _coerce_for_validation(s, spec)
        if bad_cells is not None:
            probs.append(_type_problems(df, np.flatnonzero(bad_cells), name, reason))
            out = out.where(~bad_cells, None if out.dtype == object else np.nan)
            type_bad[name] = bad_cells
        if out is not s:
            fixes[name] = out
        cols[name] = out
    frame = df.assign(**fixes) if fixes else df.copy(deep=False)
    for name, s in cols.items():
        if name in clean:
            continue
        spec = specs[name]
        dt = s.dtype
        if dt == np.float64:
            vals = s.to_numpy()
            isna = np.isnan(vals)
        elif dt in (np.int64, np.bool_):
            vals, isna = s.to_numpy(), None  # no missing cells
        else:
            vals, isna = None, s.isna().to_numpy()
        if not spec.nullable and isna is not None:
            was_type_bad = type_bad.get(name)
            miss = isna & ~was_type_bad if was_type_bad is not None else isna
            pos = np.flatnonzero(miss)
            if len(pos):
                probs.append(_problems(df, pos, name, "missing value (column is not nullable)",
                                       "missing"))
        if spec.dtype in ("int", "float") and (spec.min is not None or spec.max is not None):
            v = (vals if vals is not None and vals.dtype == np.float64
                 else s.to_numpy(dtype=np.float64, na_value=np.nan))
            lo = -np.inf if spec.min is None else spec.min
            hi = np.inf if spec.max is None else spec.max
            out_of_range = (v < lo) | (v > hi)  # NaN compares False
            if out_of_range.any():
                pos = np.flatnonzero(out_of_range)
                probs.append(_problems(df, pos, name, f"out of range [{lo:g}, {hi:g}]", "range"))
        if spec.categories:
            ok = s.isin(spec.categories).to_numpy(bool)
            if isna is not None:
                ok = ok | isna
            pos = np.flatnonzero(~ok)
            if len(pos):
                probs.append(_problems(df, pos, name,
                                       f"unknown category (allowed: {', '.join(spec.categories)})",
                                       "category"))

    if "dependents" in frame.columns and "household_size" in frame.columns:
        dep = frame["dependents"].to_numpy(dtype=np.float64, na_value=np.nan)
        size = frame["household_size"].to_numpy(dtype=np.float64, na_value=np.nan)
        pos = np.flatnonzero(dep > size)
        if len(pos):
            probs.append(_problems(df, pos, "dependents",
                                   "dependents exceed household_size", "consistency"))
    if "snapshot_date" in frame.columns:
        snap = frame["snapshot_date"]
        # a year of slack: synthetic later vintages and clocks a few days off are fine
        limit = np.datetime64(today or datetime.datetime.now(datetime.UTC).date(), "D") \
            + np.timedelta64(SNAPSHOT_SLACK_DAYS, "D")
        pos = np.flatnonzero((snap.to_numpy().astype("datetime64[D]") > limit)
                             & snap.notna().to_numpy(bool))
        if len(pos):
            probs.append(_problems(df, pos, "snapshot_date",
                                   f"snapshot_date too far in the future (after {limit})", "range"))
        snap_v = snap.to_numpy()
        for spec in schema.by_role("event"):
            if spec.name in frame.columns:
                ev = frame[spec.name]
                if ev.dtype == snap_v.dtype:  # numpy: NaT compares False, as in pandas
                    after = ev.to_numpy() > snap_v
                else:
                    after = (ev > snap).to_numpy(bool)
                pos = np.flatnonzero(after)
                if len(pos):
                    probs.append(_problems(df, pos, spec.name,
                                           "event date after snapshot_date", "consistency"))
    if "household_id" in frame.columns:
        hid = frame["household_id"]
        # every copy: which row is the household's true record cannot be known from the file
        # (the file scorer applies the same rule across chunks, scoring.guards.quarantine_duplicates)
        dup = _repeated(hid)
        if dup.any():
            probs.append(_problems(df, np.flatnonzero(dup), "household_id",
                                   "duplicate household_id (another row has it)", "duplicate"))

    quarantine = _concat(probs)
    if len(quarantine) > 1:
        quarantine = quarantine.sort_values(["row_number", "column"], kind="stable", ignore_index=True)
    bad = np.zeros(n, bool)
    bad[quarantine["row_number"].to_numpy(np.int64)] = True
    if not bad.any() and type(frame.index) is pd.RangeIndex:
        valid = _final_dtypes(frame.iloc[:], specs)  # every row: a slice, no copy
    else:
        valid = _final_dtypes(frame.iloc[np.flatnonzero(~bad)], specs)
    if bad.any():
        picked = df.iloc[np.flatnonzero(bad)]
    else:  # no row to pick: a slice, not a take of every column (the index a take would give)
        picked = df.iloc[:0].set_axis(pd.RangeIndex(0), axis=0)
    bad_rows = pd.concat([picked, pd.DataFrame({"row_number": np.flatnonzero(bad)},
                                               index=picked.index)], axis=1)
    return ValidationResult(valid=valid, quarantine=quarantine, bad_rows=bad_rows, n_in=n)
