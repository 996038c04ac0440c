"""Raw village records -> the anonymised household table ("usable but not visible").

Why this order of steps: the resident ID number is read first because it is the
only reliable source of the head's age and gender and of a stable household key;
then every direct identifier is dropped, the ID replaced by a keyed pseudonym, and
the quasi-identifiers a neighbour could know (age, gender, village) generalised until
each released household hides among at least ``k`` others.

Choices (documented because they change what the released table means):

* **Age.** The quasi-identifier is the released ``head_age`` column itself. When the
  generalisation loop bands age, ``head_age`` holds the integer *midpoint of the
  band* (e.g. 46-55 -> 50), so the table still fits the schema (int, 18-100) and
  k-anonymity holds on what is actually released. Band edges always include 61 and
  66, so the 18-60 and 18-65 eligibility rules give the same answer as exact ages.
  The report names the band scheme.
* **Gender and village** are never generalised (the rules and village reports need
  them): households in classes still smaller than ``k`` are *suppressed* (withheld,
  counted in the report, row numbers in ``suppressed_row_numbers``).
* **Amounts** (incomes, assets, debts) are rounded to ``amount_rounding`` steps
  (default 100 yuan) so exact figures cannot be matched; amounts may also be named as
  quasi-identifiers, then they are rounded further as needed.
* **Location**: the detailed address is dropped; township and village codes stay.
* **15-digit IDs** (pre-1999) are converted to 18 digits by the standard rule ('19'
  inserted, check digit added), so they pseudonymise to the same household as the
  18-digit form.
* **Order**: released rows are sorted by pseudonym, so the raw file's order (often
  by name or house number) does not leak.

``rows in = released + suppressed + quarantined``, always. The quarantine holds the
raw rows (with personal data) plus ``row_number`` (1 = first data row) and
``reason``; it is written only by :func:`write_quarantine`, next to the input or
where the user says, with owner-only permissions, and never to MLflow. Reasons name
the column and the problem, never the value.
"""

from __future__ import annotations

import csv as _csv
import io as _io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from village_credit.data.schema import SCHEMA, HouseholdSchema, months_in
from village_credit.errors import DataReadError
from village_credit.privacy.errors import RawEncodingError, RawSchemaError
from village_credit.privacy.kanon import (
    Hierarchy,
    band_labels,
    default_hierarchies,
    diversity_table,
    generalise_until_k,
)
from village_credit.privacy.pseudonym import key_fingerprint, load_key, pseudonymise
from village_credit.privacy.raw_records import DERIVED_COLUMNS, RAW_HEADER_ALIASES, RAW_PII_COLUMNS
from village_credit.privacy.resident_id import parse_resident_ids

DEFAULT_QUASI_IDENTIFIERS: tuple[str, ...] = ("head_age", "head_gender", "village_code")
"""What a neighbour or a bank clerk plausibly knows about a household head."""

DEFAULT_SENSITIVE = "default_12m"

DEFAULT_AMOUNT_ROUNDING: dict[str, float] = {
    **{f"income_{s}": 100.0 for s in ("farming", "livestock", "migrant", "business", "pension_subsidy")},
    "assets_yuan": 100.0, "private_debt_yuan": 100.0, "balance_yuan": 100.0, "credit_limit_yuan": 100.0,
}
"""Baseline rounding (yuan) of released amounts; exact figures are linkable."""

MIN_HEAD_AGE, MAX_HEAD_AGE = 18, 100

QUARANTINE_SUFFIX = ".QUARANTINE-PERSONAL-DATA.csv"
_NULLS = ["", "NA", "NaN", "nan", "NaT", "null", "None", "NULL"]


# --- reading raw files ---------------------------------------------------------

def decode_bytes(data: bytes, source: str = "<bytes>", encoding: str | None = None) -> tuple[str, str]:
    """Decode a raw text file: the given encoding, else UTF-8 (BOM or not), else GB18030.

    GB18030 is a superset of GBK and GB2312, the encodings Chinese spreadsheet
    software writes by default. Returns (text, encoding used).
    """
    tries = [encoding] if encoding else ["utf-8-sig", "gb18030"]
    if not encoding and data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        tries.insert(0, "utf-16")
    first_error: UnicodeDecodeError | None = None
    for enc in tries:
        try:
            return data.decode(enc), ("gb18030" if enc == "gb18030" else enc)
        except UnicodeDecodeError as exc:
            first_error = first_error or exc
        except LookupError:
            raise RawEncodingError(f"{source}: unknown encoding {enc!r}") from None
    pos = first_error.start if first_error else -1
    raise RawEncodingError(
        f"{source}: not readable as {' or '.join(tries)} (first bad byte at offset {pos}); "
        "save the file as UTF-8 CSV or pass --encoding"
    )


def read_raw(path: str | os.PathLike[str], encoding: str | None = None) -> tuple[pd.DataFrame, str | None]:
    """Read a raw village file (CSV in UTF-8/GBK/GB18030, or Parquet) with every CSV cell as text.

    Text keeps ID numbers intact (leading zeros, the trailing ``X``). Returns the frame
    and the encoding used (``None`` for Parquet).
    """
    p = Path(path)
    if not p.is_file():
        raise RawEncodingError(f"{p}: file not found")
    suffix = p.suffix.lower()
    if suffix in (".parquet", ".pq"):
        try:
            df = pd.read_parquet(p)
        except Exception as exc:  # pyarrow raises many types; name the file and the cause
            raise RawEncodingError(f"{p}: cannot read Parquet file ({type(exc).__name__})") from None
        return df, None
    if suffix in (".xlsx", ".xls"):
        raise RawEncodingError(f"{p}: Excel files are not read directly; save the sheet as CSV "
                               "(keep the ID number column as text)")
    text, used = decode_bytes(p.read_bytes(), str(p), encoding)
    from village_credit.data.io import guess_delimiter, refuse_duplicate_names

    first_line = text.split("\n", 1)[0].lstrip("\ufeff").rstrip("\r")
    sep = "\t" if suffix == ".tsv" else guess_delimiter(first_line)
    try:  # the data layer's rules: delimiter as sniffed, a header name given twice is refused
        refuse_duplicate_names(p, [h.strip() for h in next(_csv.reader([first_line], delimiter=sep))]
                               if first_line else [])
    except DataReadError as exc:
        raise RawEncodingError(str(exc)) from None
    try:
        df = pd.read_csv(_io.StringIO(text), dtype=str, keep_default_na=False, na_values=_NULLS,
                         sep=sep, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        # pandas messages quote a line number, never cell contents beyond counts
        raise RawEncodingError(f"{p}: not a readable CSV file ({str(exc).splitlines()[0]})") from None
    return df, used


# --- results -------------------------------------------------------------------

@dataclass
class AnonymisationReport:
    """Aggregate figures only: safe to print, log and send to MLflow (no personal data, no key)."""

    source: str
    encoding: str | None
    eval_date: str | None
    n_in: int
    n_released: int
    n_suppressed: int
    n_quarantined: int
    k_required: int
    k_achieved: int
    quasi_identifiers: list[str]
    generalisation: dict[str, str]
    n_generalised: int
    sensitive: str | None
    l_diversity: int | None
    n_classes: int
    n_classes_l1: int | None
    amount_rounding: dict[str, float]
    n_converted_15: int
    quarantine_reasons: dict[str, int]
    suppressed_by_age_band: dict[str, int]
    dropped_columns: list[str]
    key_fingerprint: str
    max_suppression: float
    quarantine_path: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def reconciles(self) -> bool:
        return self.n_in == self.n_released + self.n_suppressed + self.n_quarantined

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write_json(self, path: str | os.PathLike[str]) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2, sort_keys=True) + "\n",
                     encoding="utf-8")
        return p

    def summary(self) -> str:
        lines = [
            f"{self.source}: {self.n_in} rows in -> {self.n_released} released, "
            f"{self.n_suppressed} suppressed, {self.n_quarantined} quarantined",
            f"k-anonymity on {', '.join(self.quasi_identifiers)}: required {self.k_required}, "
            f"achieved {self.k_achieved}; {self.n_generalised} records generalised",
        ]
        lines += [f"  {q}: {d}" for q, d in self.generalisation.items() if d != "exact"]
        if self.sensitive:
            lines.append(f"l-diversity of {self.sensitive}: {self.l_diversity} "
                         f"({self.n_classes_l1} of {self.n_classes} classes hold a single value)")
        for reason, count in sorted(self.quarantine_reasons.items(), key=lambda kv: -kv[1]):
            lines.append(f"  quarantined {count}: {reason}")
        return "\n".join(lines)


@dataclass
class AnonymisationResult:
    """``households``: the releasable table; ``quarantine``: raw rows with personal data
    (``row_number``, ``reason`` first) - write it only with :func:`write_quarantine`;
    ``suppressed_row_numbers``: raw row numbers withheld for k-anonymity."""

    households: pd.DataFrame
    quarantine: pd.DataFrame
    report: AnonymisationReport
    suppressed_row_numbers: pd.Series

    def __repr__(self) -> str:  # never show the quarantine's contents
        return (f"AnonymisationResult(households={len(self.households)} rows, "
                f"quarantine={len(self.quarantine)} rows, k={self.report.k_achieved})")


# --- helpers -------------------------------------------------------------------

def _schema_for(columns: Sequence[str]) -> HouseholdSchema:
    m = months_in(list(columns))
    return SCHEMA if m in (0, SCHEMA.months) else HouseholdSchema(months=m)


def _quarantine_frame(raw: pd.DataFrame, reasons: pd.Series) -> pd.DataFrame:
    head = pd.DataFrame({"row_number": reasons.index.to_numpy() + 1, "reason": reasons.to_numpy()},
                        index=reasons.index)
    return pd.concat([head, raw.loc[reasons.index]], axis=1).sort_values("row_number")


def _validate(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """The data layer's validation (it also casts text cells to schema types).

    Returns the valid rows (typed, index kept) and, per bad row's index label, its
    problems as ``'column: reason; ...'`` (the validation's ``value`` is not copied).
    """
    from village_credit.data.validation import validate_households

    res = validate_households(df)
    if res.n_quarantined == 0:
        return res.valid, pd.Series([], dtype="string")
    q = res.quarantine
    labels = df.index.to_numpy()[q["row_number"].to_numpy(np.int64)]
    text = (q["column"].astype(str) + ": " + q["reason"].astype(str)).set_axis(labels)
    msgs = text.groupby(level=0).agg(lambda m: "; ".join(dict.fromkeys(m))).astype("string")
    return res.valid, msgs.reindex(res.bad_rows.index).fillna("failed household validation")


# --- the anonymiser ------------------------------------------------------------

def anonymise(
    raw: pd.DataFrame,
    key: bytes,
    *,
    eval_date: str | pd.Timestamp | None = None,
    k: int = 5,
    quasi_identifiers: Sequence[str] = DEFAULT_QUASI_IDENTIFIERS,
    sensitive: str | None = DEFAULT_SENSITIVE,
    hierarchies: Mapping[str, Hierarchy] | None = None,
    max_suppression: float = 0.05,
    amount_rounding: Mapping[str, float] | None = None,
    source: str = "<DataFrame>",
    encoding: str | None = None,
) -> AnonymisationResult:
    """Anonymise raw village records (see the module docstring for every choice).

    ``eval_date``: date ages are computed at (default: each row's ``snapshot_date``;
    it also fills a missing ``snapshot_date`` column). ``sensitive``: outcome column
    whose l-diversity is reported (skipped when absent). Rows the data layer's
    ``validate_households`` rejects are quarantined with its reasons.
    """
    original_names = {RAW_HEADER_ALIASES.get(str(c).strip(), str(c).strip()): c for c in raw.columns}
    raw = raw.rename(columns=lambda c: RAW_HEADER_ALIASES.get(str(c).strip(), str(c).strip()))
    dup = raw.columns[raw.columns.duplicated()].tolist()
    if dup:
        raise RawSchemaError(f"{source}: columns appear more than once (after mapping Chinese "
                             f"headers): {', '.join(dict.fromkeys(dup))}")
    raw = raw.reset_index(drop=True)
    schema = _schema_for(raw.columns)
    if eval_date is not None and "snapshot_date" not in raw.columns:
        raw = raw.assign(snapshot_date=pd.Timestamp(eval_date).strftime("%Y-%m-%d"))
    notes: list[str] = []
    if "vintage" not in raw.columns:
        raw = raw.assign(vintage="1")
        notes.append("no vintage column: vintage set to 1")
    needed = ["resident_id"] + [c for c in schema.input_columns if c not in DERIVED_COLUMNS]
    missing = [c for c in needed if c not in raw.columns]
    if missing:
        raise RawSchemaError(f"{source}: missing {len(missing)} required column(s): {', '.join(missing)}")
    qis = list(quasi_identifiers)
    unknown_qi = [q for q in qis if q not in schema.names]
    if unknown_qi:
        raise RawSchemaError(f"{source}: quasi-identifier(s) not in the household schema: {unknown_qi}")
    n_in = len(raw)
    keep_cols = [c for c in schema.names if c in raw.columns and c not in DERIVED_COLUMNS]
    dropped = [c for c in raw.columns if c not in keep_cols]  # includes replaced derived columns

    # 1. resident ID numbers -> age, gender, pseudonym
    if pd.api.types.is_float_dtype(raw["resident_id"]):
        raise RawSchemaError(f"{source}: column resident_id holds floating-point numbers, so digits "
                             "of 18-digit ID numbers are already lost; export that column as text")
    ids = raw["resident_id"].astype("string")
    reasons = pd.Series(pd.NA, index=raw.index, dtype="string")
    if eval_date is not None:
        when: pd.Series | pd.Timestamp = pd.Timestamp(eval_date)
    else:
        when = pd.to_datetime(raw["snapshot_date"].astype("string"), errors="coerce", format="ISO8601")
        reasons = reasons.mask(when.isna(), "snapshot_date: not a date (needed for the age)")
    parsed = parse_resident_ids(ids, when if eval_date is None else pd.Timestamp(eval_date))
    reasons = reasons.fillna(("resident_id: " + parsed.reason).where(~parsed.valid))
    first_row = parsed.normalised.to_frame("n").assign(r=np.arange(1, n_in + 1)).groupby("n")["r"].transform("min")
    dup_mask = parsed.valid & parsed.normalised.duplicated(keep="first")
    reasons = reasons.fillna(("resident_id: duplicate of row " + first_row.astype("string")).where(dup_mask))
    age_bad = parsed.valid & ~parsed.age.between(MIN_HEAD_AGE, MAX_HEAD_AGE).fillna(False)
    reasons = reasons.fillna(pd.Series(f"resident_id: head age outside {MIN_HEAD_AGE}-{MAX_HEAD_AGE} "
                                       "at the evaluation date", index=raw.index, dtype="string")
                             .where(age_bad))

    ok = reasons.isna()
    base = raw.loc[ok, keep_cols]
    derived = pd.DataFrame({
        "household_id": pseudonymise(parsed.normalised[ok], key).astype("str"),
        "head_age": parsed.age[ok].astype("int64"),
        "head_gender": parsed.gender[ok].astype("str"),
    }, index=base.index)
    hh = pd.concat([base, derived], axis=1)
    hh = hh[[c for c in schema.names if c in hh.columns]]

    # 2. the data layer's validation: schema types, ranges, categories, consistency
    if len(hh):
        hh, bad = _validate(hh)
        if len(bad):
            reasons.loc[bad.index] = bad
    rounding = dict(DEFAULT_AMOUNT_ROUNDING if amount_rounding is None else amount_rounding)
    rnd = {c: (hh[c] / step).round() * step for c, step in rounding.items()
           if c in hh.columns and pd.api.types.is_float_dtype(hh[c])}
    hh = hh.drop(columns=list(rnd)).join(pd.DataFrame(rnd, index=hh.index)) if rnd else hh
    hh = hh[[c for c in schema.names if c in hh.columns]].copy()

    # 3. k-anonymity
    kres = generalise_until_k(hh, qis, k, {**default_hierarchies(), **(hierarchies or {})},
                              max_suppression=max_suppression)
    released = kres.data.sort_values("household_id", kind="stable").reset_index(drop=True)
    suppressed_idx = kres.suppressed[kres.suppressed].index
    l_value = n_l1 = None
    n_classes = 0
    if len(released):
        if sensitive and sensitive in released.columns:
            table = diversity_table(released, qis, sensitive)
            l_value, n_l1, n_classes = int(table["distinct"].min()), int((table["distinct"] < 2).sum()), len(table)
        else:
            n_classes = int(released.groupby(qis, dropna=False, observed=True).ngroups)
    by_band = band_labels(hh.loc[suppressed_idx, "head_age"], (18, 41, 61, 66, 101)).value_counts()

    q_reasons = reasons.dropna()
    quarantine = _quarantine_frame(raw, q_reasons).rename(columns=original_names)
    reason_counts = (q_reasons.str.replace(r"duplicate of row \d+", "duplicate of an earlier row", regex=True)
                     .value_counts())
    report = AnonymisationReport(
        source=source, encoding=encoding,
        eval_date=None if eval_date is None else pd.Timestamp(eval_date).strftime("%Y-%m-%d"),
        n_in=n_in, n_released=len(released), n_suppressed=len(suppressed_idx), n_quarantined=len(quarantine),
        k_required=k, k_achieved=kres.k_achieved, quasi_identifiers=qis,
        generalisation=kres.descriptions, n_generalised=kres.n_generalised,
        sensitive=sensitive if sensitive and sensitive in released.columns else None,
        l_diversity=l_value, n_classes=n_classes, n_classes_l1=n_l1,
        amount_rounding={c: float(s) for c, s in rounding.items() if c in rnd},
        n_converted_15=int((parsed.converted_15 & ok).sum()),
        quarantine_reasons={str(r): int(c) for r, c in reason_counts.items()},
        suppressed_by_age_band={str(b): int(c) for b, c in by_band.items() if c},
        dropped_columns=dropped, key_fingerprint=key_fingerprint(key),
        max_suppression=max_suppression, notes=notes,
    )
    return AnonymisationResult(
        households=released, quarantine=quarantine, report=report,
        suppressed_row_numbers=pd.Series(np.sort(suppressed_idx.to_numpy() + 1), dtype="int64"),
    )


# --- files ---------------------------------------------------------------------

def default_quarantine_path(input_path: str | os.PathLike[str]) -> Path:
    """``<input dir>/<input stem>.QUARANTINE-PERSONAL-DATA.csv``: next to the raw file it came from."""
    p = Path(input_path)
    return p.with_name(p.stem + QUARANTINE_SUFFIX)


def write_quarantine(quarantine: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write quarantined raw rows (personal data!) as UTF-8-with-BOM CSV, owner-only (0600)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8-sig", newline="") as fh:
        quarantine.to_csv(fh, index=False)
    os.chmod(p, 0o600)
    return p


def anonymise_file(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    key_file: str | os.PathLike[str],
    *,
    quarantine_path: str | os.PathLike[str] | None = None,
    report_path: str | os.PathLike[str] | None = None,
    encoding: str | None = None,
    **kwargs: Any,
) -> AnonymisationResult:
    """Read a raw file, anonymise it, write the Parquet household table, the report JSON
    (default ``<output>.anonymisation.json``) and, if any rows were quarantined, the
    quarantine CSV (default next to the input). ``kwargs`` go to :func:`anonymise`."""
    from village_credit.data.io import write_parquet

    key = load_key(key_file)
    src = Path(input_path)
    raw, used = read_raw(src, encoding)
    result = anonymise(raw, key, source=str(src), encoding=used, **kwargs)
    out = Path(output_path)
    rep = result.report
    write_parquet(result.households, out, metadata={
        "village_credit.anonymised": "true",
        "village_credit.k": str(rep.k_achieved),
        "village_credit.quasi_identifiers": ",".join(rep.quasi_identifiers),
    })
    if len(result.quarantine):
        qpath = Path(quarantine_path) if quarantine_path else default_quarantine_path(src)
        rep.quarantine_path = str(write_quarantine(result.quarantine, qpath))
    rep.write_json(Path(report_path) if report_path else out.with_name(out.stem + ".anonymisation.json"))
    return result


__all__ = [
    "DEFAULT_AMOUNT_ROUNDING", "DEFAULT_QUASI_IDENTIFIERS", "DEFAULT_SENSITIVE", "RAW_PII_COLUMNS",
    "AnonymisationReport", "AnonymisationResult", "anonymise", "anonymise_file", "decode_bytes",
    "default_quarantine_path", "read_raw", "write_quarantine",
]
