"""PII scanner: the guard that checks no personal data leaked into any artifact.

Why a scanner and not just discipline: models, reports, MLflow runs and logs are
written by many modules; one careless ``print(row)`` or a raw column left in a
feature frame would leak names and ID numbers into places (MLflow, shared reports)
that the secrecy agreement forbids. The scanner walks files and directories
(Parquet, CSV, JSON, HTML, text, YAML, MLflow run folders, SQLite databases such as
``mlflow.db``) and finds:

* resident ID numbers: 18-character candidates must also pass the MOD 11-2 check
  digit, a valid province code and a real birth date, so random 18-digit numbers
  (order numbers, hashes) match about 1 time in 10**3; 15-digit old numbers need a
  province code, a real date and must stand alone (not part of a decimal);
* mobile phone numbers: ``1[3-9]`` + 9 digits, optionally ``+86``/spaced/dashed, not
  glued to other digits, letters or a decimal point;
* names from a configured list (substring match: Chinese has no word boundaries);
* tables (Parquet, CSV) that carry the threat model's quasi-identifiers with
  equivalence classes smaller than k (:func:`scan_qi_classes`): no name needed to
  single a household out to a neighbour who knows its village, age and land.

Findings never hold the full value: the middle is masked (``110***********002X``).
"""

from __future__ import annotations

import bisect
import functools
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from village_credit.privacy.errors import PrivacyError
from village_credit.privacy.resident_id import PROVINCE_CODES, check_char
from village_credit.privacy.threat_model import DEFAULT_PRIVACY_CONFIG

_ASCII_EDGE_L = r"(?<![0-9A-Za-z_.])"
_ASCII_EDGE_R = r"(?![0-9A-Za-z_]|\.[0-9])"
# \w in Python matches Chinese characters; ASCII classes let "身份证号110..." match
ID18_RE = re.compile(
    _ASCII_EDGE_L + r"([1-9][0-9]{5}(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
    r"[0-9]{3}[0-9Xx])" + _ASCII_EDGE_R
)
ID15_RE = re.compile(
    _ASCII_EDGE_L + r"([1-9][0-9]{5}[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3})"
    + _ASCII_EDGE_R
)
PHONE_RE = re.compile(
    r"(?<![0-9A-Za-z_.+])(?:(?:\+|00)?86[ -]?)?(1[3-9][0-9](?:[0-9]{8}|(?:(?<=86[ -][0-9]{3})|(?<![0-9][ -][0-9]{3})(?<!=[0-9]{3}))"
    r"(?:[ -][0-9]{4}){2}(?![ -][0-9])))" + _ASCII_EDGE_R
)
"""A mobile number: 11 digits, or grouped 3-4-4 with spaces or dashes. A grouped form inside
a longer run of space- or dash-separated numbers (a LightGBM ``leaf_count=`` line of 3- and 4-digit counts,
a column of counts) is not a phone number: the run must start and end with it, and not follow
``=`` (``internal_count=`` of a three-node tree)."""

TEXT_SUFFIXES = frozenset({
    ".csv", ".tsv", ".txt", ".json", ".jsonl", ".ndjson", ".html", ".htm", ".xml", ".yaml", ".yml",
    ".md", ".log", ".ipynb", ".py", ".ini", ".cfg", ".toml", ".sql", ".svg", "",
})
PARQUET_SUFFIXES = frozenset({".parquet", ".pq"})
SQLITE_SUFFIXES = frozenset({".db", ".sqlite", ".sqlite3"})
SKIP_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp", ".ico", ".woff", ".woff2", ".ttf"})
"""Images and fonts cannot be scanned as text (their names still are, see the report)."""

MAX_BYTES = 512 * 1024 * 1024
"""Larger non-Parquet files are scanned in their first ``MAX_BYTES`` only (reported)."""


@dataclass(frozen=True)
class Finding:
    """One suspected piece of personal data: where, what kind, and a masked snippet."""

    file: str
    location: str
    kind: str
    snippet_masked: str

    def __str__(self) -> str:
        return f"{self.file}:{self.location}: {self.kind} {self.snippet_masked}"


def mask(value: str, keep_start: int = 3, keep_end: int = 2) -> str:
    """Keep a few characters at each end, star the middle (names: first character only)."""
    v = str(value)
    if len(v) <= keep_start + keep_end:
        return v[:1] + "*" * (len(v) - 1)
    return v[:keep_start] + "*" * (len(v) - keep_start - keep_end) + v[len(v) - keep_end:]


def _valid_id18(s: str) -> bool:
    s = s.upper()
    if s[:2] not in PROVINCE_CODES or check_char(s[:17]) != s[17]:
        return False
    return _valid_date(s[6:14])


def _valid_date(yyyymmdd: str) -> bool:
    try:
        np.datetime64(f"{yyyymmdd[:4]}-{yyyymmdd[4:6]}-{yyyymmdd[6:8]}")
    except ValueError:
        return False
    return True


def _valid_id15(s: str) -> bool:
    return s[:2] in PROVINCE_CODES and _valid_date("19" + s[6:12])


_CJK_RUN = re.compile(r"[\u4e00-\u9fff]{3,}")


@functools.lru_cache(maxsize=1)
def toolkit_vocabulary() -> tuple[str, ...]:
    """Chinese terms the toolkit itself ships (labels in its code and policy files).

    Why: Chinese has no word boundaries, so a common two-character name can occur
    inside a policy label such as 高利贷 (usury). Text the package ships cannot be
    personal data, so these terms are blanked out before names are matched.
    """
    root = Path(__file__).resolve().parents[1]
    terms: set[str] = set()
    for f in list(root.rglob("*.py")) + list(root.rglob("*.yaml")):
        try:
            terms.update(_CJK_RUN.findall(f.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError):
            continue
    return tuple(sorted(terms, key=len, reverse=True))


class PiiMatcher:
    """Compiled detectors; ``names`` are matched as substrings (two characters or more).

    ``vocabulary``: terms blanked out before name matching (default: the toolkit's own
    shipped Chinese labels, see :func:`toolkit_vocabulary`); pass ``()`` to disable.
    """

    def __init__(self, names: Iterable[str] | None = None, *, old_ids: bool = True,
                 vocabulary: Iterable[str] | None = None) -> None:
        clean = sorted({n.strip() for n in (names or []) if len(n.strip()) >= 2}, key=len, reverse=True)
        self.name_re = re.compile("|".join(map(re.escape, clean))) if clean else None
        vocab = toolkit_vocabulary() if vocabulary is None else tuple(vocabulary)
        # only terms that could hide a name matter
        vocab = tuple(v for v in vocab if self.name_re is not None and self.name_re.search(v))
        self.vocab_re = re.compile("|".join(map(re.escape, vocab))) if vocab else None
        self.old_ids = old_ids

    def find(self, text: str) -> Iterator[tuple[int, str, str]]:
        """(offset, kind, masked value) for every hit in ``text``."""
        for m in ID18_RE.finditer(text):
            if _valid_id18(m.group(1)):
                yield m.start(1), "resident_id", mask(m.group(1), 3, 2)
        if self.old_ids:
            for m in ID15_RE.finditer(text):
                if _valid_id15(m.group(1)):
                    yield m.start(1), "resident_id_15", mask(m.group(1), 3, 2)
        for m in PHONE_RE.finditer(text):
            yield m.start(1), "phone", mask(re.sub(r"[ -]", "", m.group(1)), 3, 2)
        if self.name_re is not None:
            if self.vocab_re is not None:
                text = self.vocab_re.sub(lambda v: " " * len(v.group(0)), text)
            for m in self.name_re.finditer(text):
                yield m.start(), "name", mask(m.group(0), 1, 0)


def _decode(data: bytes) -> str:
    for enc in ("utf-8", "gb18030"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="replace")


def _scan_text(path: Path, matcher: PiiMatcher) -> Iterator[Finding]:
    with path.open("rb") as fh:
        data = fh.read(MAX_BYTES)
    text = _decode(data)
    line_starts: list[int] | None = None
    for off, kind, masked in sorted(matcher.find(text)):
        if line_starts is None:
            line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        # bisect on the list: np.searchsorted would copy the whole list into an array per
        # finding (a raw table with 25k name hits spent 6 s there)
        line = bisect.bisect_right(line_starts, off)
        yield Finding(str(path), f"line {line}", kind, masked)


def _scan_values(values: Sequence[object], matcher: PiiMatcher, file: str,
                 where: str) -> Iterator[Finding]:
    for i, v in enumerate(values):
        if v is None:
            continue
        if isinstance(v, bytes):
            v = _decode(v)
        elif isinstance(v, float):
            continue  # floats cannot hold 11- or 18-digit identifiers exactly
        s = str(v)
        for _, kind, masked in matcher.find(s):
            yield Finding(file, f"{where}, row {i + 1}", kind, masked)


def _scan_parquet(path: Path, matcher: PiiMatcher) -> Iterator[Finding]:
    pf = pq.ParquetFile(path)
    names = pf.schema_arrow.names
    for f in _scan_values(names, matcher, str(path), "column names"):
        yield Finding(f.file, "column names", f.kind, f.snippet_masked)
    meta = pf.schema_arrow.metadata or {}
    for k, v in meta.items():
        for _, kind, masked in matcher.find(_decode(v)):
            yield Finding(str(path), f"metadata {k.decode(errors='replace')}", kind, masked)
    cols = [f.name for f in pf.schema_arrow
            if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
            or pa.types.is_integer(f.type) or pa.types.is_dictionary(f.type)
            or pa.types.is_binary(f.type)]
    offset = 0
    for batch in pf.iter_batches(batch_size=65_536, columns=cols):
        for name in batch.schema.names:
            col = batch.column(name)
            if pa.types.is_integer(col.type):
                # IDs without X and phones stored as numbers: only >= 10 digits can match
                arr = col.to_numpy(zero_copy_only=False)
                arr = arr[~np.isnan(arr)] if arr.dtype.kind == "f" else arr
                idx = np.flatnonzero(np.abs(arr.astype(np.float64)) >= 1e10)
                vals = [str(int(arr[j])) for j in idx]
                rows = idx
            else:
                vals = col.to_pylist()
                rows = np.arange(len(vals))
            keep = [(int(j), _decode(v) if isinstance(v, bytes) else str(v))
                    for j, v in zip(rows, vals, strict=True) if v is not None]
            if not keep:
                continue
            # one regex pass per column: join the cells, map offsets back to rows
            cells = [s.replace("\n", " ") for _, s in keep]
            starts = np.cumsum([0] + [len(s) + 1 for s in cells[:-1]])
            for off, kind, masked in matcher.find("\n".join(cells)):
                j = keep[int(np.searchsorted(starts, off, side="right")) - 1][0]
                yield Finding(str(path), f"row {offset + j + 1}, column {name}", kind, masked)
        offset += batch.num_rows


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def _scan_sqlite(path: Path, matcher: PiiMatcher) -> Iterator[Finding]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for t in tables:
            cur = con.execute(f'SELECT * FROM "{t}"')  # noqa: S608 - names from sqlite_master
            cols = [d[0] for d in cur.description]
            row_no = 0
            while rows := cur.fetchmany(5_000):
                for row in rows:
                    row_no += 1
                    for c, v in zip(cols, row, strict=True):
                        if v is None or isinstance(v, float):
                            continue
                        s = _decode(v) if isinstance(v, bytes) else str(v)
                        for _, kind, masked in matcher.find(s):
                            yield Finding(str(path), f"table {t}, row {row_no}, column {c}", kind, masked)
    finally:
        con.close()


def iter_files(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Every regular file under ``path`` (or ``path`` itself), sorted, symlinks not followed."""
    p = Path(path)
    if p.is_file():
        yield p
        return
    for root, dirs, files in os.walk(p, followlinks=False):
        dirs.sort()
        for f in sorted(files):
            fp = Path(root) / f
            if fp.is_file() and not fp.is_symlink():
                yield fp


def scan_file(path: Path, matcher: PiiMatcher) -> list[Finding]:
    """Findings in one file, by its type (Parquet, SQLite, else text)."""
    suffix = path.suffix.lower()
    # the file name itself can carry a name or an ID ("张三_110105....csv")
    found = [Finding(str(path), "file name", k, m) for _, k, m in matcher.find(path.name)]
    if suffix in SKIP_SUFFIXES:
        return found
    try:
        if suffix in PARQUET_SUFFIXES:
            found += list(_scan_parquet(path, matcher))
        elif suffix in SQLITE_SUFFIXES or _is_sqlite(path):
            found += list(_scan_sqlite(path, matcher))
        else:
            found += list(_scan_text(path, matcher))
    except Exception as exc:  # unreadable file: report it as a finding, never skip silently
        found.append(Finding(str(path), "whole file", "unscanned", f"could not scan ({type(exc).__name__})"))
    return found


LOCATION_QIS = frozenset({"village_code", "township_code"})


def _qi_table(path: Path, qis: Sequence[str]) -> tuple[list[str], Any] | None:
    """The declared QI columns a Parquet/CSV table carries, and those columns (else None)."""
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        names = pq.ParquetFile(path).schema_arrow.names
        cols = [q for q in qis if q in names]
        if not cols or not set(cols) - LOCATION_QIS:
            return None
        return cols, pd.read_parquet(path, columns=cols)
    if suffix in (".csv", ".tsv"):
        sep = "\t" if suffix == ".tsv" else ","
        with path.open("rb") as fh:
            header = _decode(fh.readline()).lstrip("\ufeff").strip().split(sep)
        names = [h.strip().strip('"') for h in header]
        cols = [q for q in qis if q in names]
        if not cols or not set(cols) - LOCATION_QIS:
            return None
        return cols, pd.read_csv(path, sep=sep, usecols=cols, dtype=str, keep_default_na=False)
    return None


def scan_qi_classes(path: Path, quasi_identifiers: Sequence[str], k: int) -> list[Finding]:
    """Tables holding declared quasi-identifiers whose combination has classes smaller than ``k``.

    Why: a file under ``out/`` or ``mlruns/`` without a single name or ID number can still
    single a household out to a neighbour who knows its village, age, household size and
    land (docs/privacy.md). The finding gives counts only, never values.
    """
    try:
        found = _qi_table(path, quasi_identifiers)
    except Exception as exc:  # noqa: BLE001 - unreadable table: say so, never skip silently
        return [Finding(str(path), "whole file", "unscanned", f"could not read columns ({type(exc).__name__})")]
    if found is None:
        return []
    cols, table = found
    if len(table) == 0:
        return []
    sizes = table.groupby(cols, dropna=False, observed=True, sort=False)[cols[0]].transform("size")
    small = sizes < k
    if not small.any():
        return []
    n_cls = int(table.loc[small].drop_duplicates().shape[0])
    return [Finding(str(path), f"columns {', '.join(cols)}", "small_qi_class",
                    f"{int(small.sum())} of {len(table)} row(s) in {n_cls} class(es) smaller than k={k}")]


def load_names(path: str | os.PathLike[str]) -> list[str]:
    """Names to look for: one per line (UTF-8 or GBK), or a CSV whose first column is the name.

    >>> import tempfile
    >>> from pathlib import Path
    >>> from village_credit.privacy import load_names
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = Path(tmp, "names.txt").write_text("张三\\n李四\\n", encoding="utf-8")
    ...     print(load_names(Path(tmp, "names.txt")))
    ['张三', '李四']
    """
    text = _decode(Path(path).read_bytes()).lstrip("\ufeff")
    names = []
    for line in text.splitlines():
        cell = line.split(",")[0].strip().strip('"')
        if cell and cell.lower() not in ("name", "姓名", "户主姓名"):
            names.append(cell)
    return names


def scan_pii(path: str | os.PathLike[str], names: Iterable[str] | None = None, *,
             old_ids: bool = True, quasi_identifiers: Sequence[str] | None = None,
             k: int | None = None) -> list[Finding]:
    """Scan a file or directory tree for resident IDs, mobile numbers, the given names and
    tables whose quasi-identifier classes are smaller than ``k``.

    ``quasi_identifiers`` / ``k``: default the declared threat model's
    (:data:`~village_credit.privacy.threat_model.DEFAULT_PRIVACY_CONFIG`); pass ``()``
    to skip the class check.

    >>> import tempfile
    >>> from pathlib import Path
    >>> from village_credit.privacy import scan_pii
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     phone = "138" + "12345678"  # built here: this source file (shipped with models) holds none
    ...     _ = Path(tmp, "note.txt").write_text(f"call 张三 on {phone}\\n", encoding="utf-8")
    ...     for finding in scan_pii(Path(tmp, "note.txt"), names=["张三"], quasi_identifiers=()):
    ...         print(finding.location, finding.kind, finding.snippet_masked)
    line 1 name 张*
    line 1 phone 138******78
    """
    p = Path(path)
    if not p.exists():
        raise PrivacyError(f"{p}: nothing to scan (path not found)")
    if quasi_identifiers is None or k is None:
        quasi_identifiers = DEFAULT_PRIVACY_CONFIG.qis if quasi_identifiers is None else quasi_identifiers
        k = DEFAULT_PRIVACY_CONFIG.k if k is None else k
    matcher = PiiMatcher(names, old_ids=old_ids)
    out: list[Finding] = []
    for f in iter_files(p):
        out += scan_file(f, matcher)
        if quasi_identifiers and not f.is_symlink():
            out += scan_qi_classes(f, list(quasi_identifiers), int(k))
    return out


__all__ = ["Finding", "PiiMatcher", "iter_files", "load_names", "mask", "scan_file", "scan_pii", "scan_qi_classes"]
