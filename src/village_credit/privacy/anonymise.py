"""Raw village records -> the anonymised household table ("usable but not visible").

Why this order of steps: the resident ID number is read first because it is the
only reliable source of the head's age and gender and of a stable household key;
then every direct identifier is dropped, the ID replaced by a keyed pseudonym, and
the quasi-identifiers the declared attackers know (threat_model.py: the village
insider's land registry and household register, the outside party's public records)
generalised per equivalence class (local recoding, recoding.py) until each released
household hides among at least ``k`` others on all of them at once.

Choices (documented because they change what the released table means; docs/privacy.md):

* **Generalisation before suppression.** Each class is as precise as its own
  households allow: village -> township -> any; age, household size, land and
  pension income -> unions of declared bands, released as the class mean; education
  -> ordered bands, released as the class median. Values stay in their schema
  columns, so the table is still a valid household table.
* **Age.** Bands never cross 60 (the equal-risk comparison); the other fairness band starts
  (41, 65, 70) are cut right after the location wherever k allows, so a village's few
  elderly heads keep their village in a wider age band (``burden`` counts the fairness
  bands moved); 61 and 66 (18-60 and 18-65 eligibility) are kept whenever k allows;
  ``age_rule_moved`` counts the households whose eligibility the banding moved.
* **Gender and formerly-poor status** are never generalised: households in a cell of such
  exact values (with the side of 60) smaller than ``k`` are *suppressed*
  (withheld, counted per age band and formerly-poor status, row numbers in
  ``suppressed_row_numbers``).
* **Risk** is measured, not asserted: pycanon's k, l and t over the QIs and per
  attacker, and anonymeter's singling-out, linkability and inference attacks when it
  is installed (risk.py).
* **Dates and the bank's figures** are released at the models' precision (precision.py:
  event dates as window bands, the repayment history as ratios in canonical order), and
  households still unique to the lending bank or the register keeper, or in a class of theirs
  holding only defaults, are protected step by step (``protect_holders``, alternating with the
  t-closeness repair until neither changes anything); each declared holder's figures are in
  ``risk.holders``, the outcome's homogeneity per holder in ``risk.homogeneity.outcome``.
* **Pseudonyms** are scoped to the release unless linking is chosen (``link_releases``).
* **Amounts** (incomes, assets, debts) are rounded to ``amount_rounding`` steps
  (default 100 yuan) so exact figures cannot be matched; amounts named as
  quasi-identifiers (pension and subsidy income by default) are banded per class.
* **Location**: the detailed address is dropped; township and village codes stay
  where k allows (``T03-*`` = some village of township T03, ``*`` = any).
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
import hashlib
import hmac
import io as _io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from village_credit.data.groups import ELDERLY_AGE, SUPPORT_AGE_BANDS, age_band
from village_credit.data.io import guess_delimiter, refuse_duplicate_names, write_parquet
from village_credit.data.schema import SCHEMA, HouseholdSchema, months_in
from village_credit.data.validation import validate_households
from village_credit.errors import DataReadError
from village_credit.privacy.closeness import class_distances, enforce_t_closeness, outcome_homogeneity
from village_credit.privacy.errors import KAnonymityError, RawEncodingError, RawSchemaError
from village_credit.privacy.kanon import diversity_table, k_anonymity
from village_credit.privacy.pseudonym import key_fingerprint, load_key, pseudonymise, release_context
from village_credit.privacy.raw_records import DERIVED_COLUMNS, RAW_HEADER_ALIASES, RAW_PII_COLUMNS
from village_credit.privacy.recoding import BandHierarchy, LocationHierarchy, local_recode
from village_credit.privacy.resident_id import parse_resident_ids
from village_credit.privacy.precision import protect_holders, release_precision
from village_credit.privacy.risk import (
    anonymeter_available,
    attack_risk,
    holder_risk,
    homogeneity_attack,
    syntactic_risk,
)
from village_credit.privacy.threat_model import DEFAULT_PRIVACY_CONFIG, PrivacyConfig

DEFAULT_QUASI_IDENTIFIERS: tuple[str, ...] = DEFAULT_PRIVACY_CONFIG.qis
"""What the declared attackers know (threat_model.py): the village insider and the outside party."""

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
    suppressed_by_group: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    location_levels: dict[str, int] = field(default_factory=dict)
    age_rule_moved: dict[str, int] = field(default_factory=dict)
    threat_model: dict[str, Any] = field(default_factory=dict)
    risk: dict[str, Any] = field(default_factory=dict)
    precision: dict[str, Any] = field(default_factory=dict)
    pseudonyms: dict[str, Any] = field(default_factory=dict)
    burden: dict[str, Any] = field(default_factory=dict)
    closeness: dict[str, Any] = field(default_factory=dict)

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
            # a rare outcome protected by t-closeness is not required to be l-diverse: say so
            by_t = self.sensitive in (self.closeness.get("targets") or ())
            lines.append(f"l-diversity of {self.sensitive}: {self.l_diversity} "
                         f"({self.n_classes_l1} of {self.n_classes} classes hold a single value)"
                         + ("; not required: protected by t-closeness (below)" if by_t else ""))
        if self.age_rule_moved:
            moved = ", ".join(f"{rule} {n}" for rule, n in self.age_rule_moved.items())
            lines.append(f"  households whose age-rule eligibility the banding moved: {moved}")
        if self.location_levels:
            levels = ", ".join(f"{lv} {n}" for lv, n in self.location_levels.items())
            lines.append(f"  location released at: {levels}")
        for grp, cells in self.suppressed_by_group.items():
            lines.append(f"  suppressed by {grp}: " + ", ".join(
                f"{g} {v['n_suppressed']}/{v['n_in']} ({v['share']:.1%})" for g, v in cells.items()))
        syn = self.risk.get("syntactic", {})
        if syn.get("k_anonymity") is not None:
            lines.append(f"pycanon: k={syn['k_anonymity']}, l={syn['l_diversity']}, t={syn['t_closeness']}, "
                         f"k by attacker {syn['k_by_attacker']}")
        att = self.risk.get("attacks", {})
        if att.get("status") == "measured":
            for name in ("singling_out", "linkability", "inference"):
                if name in att:
                    a = att[name]
                    lines.append(f"anonymeter {name}: risk {a['risk']:.3f} (CI {a['risk_ci'][0]:.3f}-"
                                 f"{a['risk_ci'][1]:.3f}); attack {a['attack_rate'][0]:.3f}, baseline "
                                 f"{a['baseline_rate'][0]:.3f}, control "
                                 f"{(a['control_rate'] or [float('nan')])[0]:.3f}")
        elif att:
            lines.append(f"anonymeter: {att.get('status')}")
        for name, v in (self.risk.get("holders", {}).get("released", {})).items():
            before = self.risk["holders"]["raw"].get(name, {})
            lines.append(f"holder {name}: unique {before.get('unique_share', float('nan')):.1%} -> "
                         f"{v['unique_share'] if v['unique_share'] is not None else float('nan'):.1%}, smallest class "
                         f"{v['k']}")
        if self.closeness.get("targets"):
            c = self.closeness
            lines.append(f"t-closeness of {', '.join(c['targets'])}: target {c['t_target']}, achieved "
                         f"{c['t_achieved']} (base rate {c['overall']}); {c['n_suppressed']} household(s) "
                         "withheld for it")
        out_h = self.risk.get("homogeneity", {}).get("outcome", {}).get("by_holder", {})
        for name, v in out_h.items():
            if v.get("base_rate") is not None:
                lines.append(f"homogeneity of the outcome, {name}: repaid certain for {v['repaid_certain_share']:.1%}, "
                             f"default certain for {v['default_certain_n']}, largest default posterior "
                             f"{v['max_default_posterior']:.3f} (base rate {v['base_rate']:.3f})")
        if self.precision.get("holder_protection"):
            lines.append(f"  protection against the bank and the register keeper: {self.precision['holder_protection']}")
        if self.burden.get("elderly_loss_ratio"):
            lines.append(f"  information loss, elderly / under-60s: {self.burden['elderly_loss_ratio']}")
        if self.pseudonyms:
            lines.append(f"pseudonyms: {self.pseudonyms['scope']} (release {self.pseudonyms['release']})")
        for note in self.notes:
            lines.append(f"  note: {note}")
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
    res = validate_households(df)
    if res.n_quarantined == 0:
        return res.valid, pd.Series([], dtype="string")
    q = res.quarantine
    labels = df.index.to_numpy()[q["row_number"].to_numpy(np.int64)]
    text = (q["column"].astype(str) + ": " + q["reason"].astype(str)).set_axis(labels)
    msgs = text.groupby(level=0).agg(lambda m: "; ".join(dict.fromkeys(m))).astype("string")
    return res.valid, msgs.reindex(res.bad_rows.index).fillna("failed household validation")


def suppression_by_group(households: pd.DataFrame, suppressed: pd.Series) -> dict[str, dict[str, dict[str, float]]]:
    """Households in / suppressed / share per fairness age band and formerly-poor status.

    The groups are the fairness audit's own (fairness/groups.py), so "who loses records to
    anonymisation" is measured on the groups the audit reports on.
    """
    out: dict[str, dict[str, dict[str, float]]] = {}
    if not len(households):
        return {"age_band": {}, "formerly_poor": {}}
    sup = suppressed.reindex(households.index).fillna(False).to_numpy(dtype=bool)
    groups = {"age_band": pd.Series(age_band(households["head_age"]), index=households.index)}
    if "formerly_poor" in households.columns:
        fp = households["formerly_poor"].astype(bool)
        groups["formerly_poor"] = fp.map({True: "formerly_poor", False: "other"})
    for name, g in groups.items():
        frame = pd.DataFrame({"g": g.to_numpy(), "s": sup})
        agg = frame.groupby("g", sort=True)["s"].agg(["size", "sum"])
        out[name] = {str(grp): {"n_in": int(r["size"]), "n_suppressed": int(r["sum"]),
                                "share": round(float(r["sum"] / r["size"]), 6)}
                     for grp, r in agg.iterrows()}
    return out


def describe_generalisation(rec: Any, hierarchies: Mapping[str, BandHierarchy], qis: Sequence[str]) -> dict[str, str]:
    """One line per QI: how it was generalised, and its most common released bands."""
    out: dict[str, str] = {}
    for q in qis:
        if q in rec.bands.columns:
            top = rec.bands[q].value_counts().head(3)
            out[q] = (f"local recoding over bands {list(hierarchies[q].edges)}; released as the class "
                      f"{'median' if hierarchies[q].categories else 'mean'}; commonest bands: "
                      + ", ".join(f"{b} ({n})" for b, n in top.items()))
        elif q in ("village_code", "township_code"):
            out[q] = "village -> township -> any, per class: " + ", ".join(
                f"{lv} {n}" for lv, n in rec.location_levels.items())
        else:
            out[q] = "exact (classes split on it; cells smaller than k suppressed)"
    return out


def measure_attack_risk(households: pd.DataFrame, qis: Sequence[str], k: int,
                        hierarchies: Mapping[str, BandHierarchy], secret: str | None,
                        cfg: PrivacyConfig) -> dict[str, Any]:
    """anonymeter attacks on the method: recode a random half, attack it, the other half is control.

    Why a half: anonymeter needs raw households of the same population that were *not*
    released, to tell what the release leaks about its own households from what it says
    about anyone.
    """
    if not anonymeter_available():
        return attack_risk(households, households, households, qis, secret)
    if len(households) < 4 * k:
        return {"status": f"not measured: {len(households)} households are too few for a released/control split"}
    rng = np.random.default_rng(cfg.risk.seed)
    in_a = rng.random(len(households)) < 0.5
    half, control = households.loc[in_a], households.loc[~in_a]
    close = {c: half[c].to_numpy() for c in cfg.t_targets if c in half.columns} if cfg.t is not None else {}
    rec = local_recode(half, qis, k, hierarchies, LocationHierarchy(), closeness=close or None,
                       t=cfg.t if close else None)
    ori = half.loc[rec.data.index]
    return attack_risk(ori, rec.data, control, qis, secret, n_attacks=cfg.risk.n_attacks, seed=cfg.risk.seed,
                       confidence_level=cfg.risk.confidence_level)


# --- the anonymiser ------------------------------------------------------------

def anonymise(
    raw: pd.DataFrame,
    key: bytes,
    *,
    eval_date: str | pd.Timestamp | None = None,
    k: int | None = None,
    quasi_identifiers: Sequence[str] | None = None,
    sensitive: str | None = DEFAULT_SENSITIVE,
    hierarchies: Mapping[str, BandHierarchy] | None = None,
    max_suppression: float = 0.05,
    amount_rounding: Mapping[str, float] | None = None,
    source: str = "<DataFrame>",
    encoding: str | None = None,
    config: PrivacyConfig | None = None,
    measure_risk: bool | None = None,
    release: str | None = None,
    link_releases: bool = False,
) -> AnonymisationResult:
    """Anonymise raw village records (see the module docstring for every choice).

    ``eval_date``: date ages are computed at (default: each row's ``snapshot_date``;
    it also fills a missing ``snapshot_date`` column). ``config``: the threat model
    (default :data:`~village_credit.privacy.threat_model.DEFAULT_PRIVACY_CONFIG`);
    ``k``, ``quasi_identifiers`` and ``hierarchies`` override it. ``sensitive``: outcome
    column whose l-diversity and t-closeness are reported (skipped when absent).
    ``max_suppression``: share above which the report carries a warning note (local
    recoding suppresses only cells of exact QI values smaller than k).
    ``measure_risk``: run the attack-based risk measurement (default: the config's
    ``risk.enabled``). ``release``: label of this release (default: a keyed digest of the raw
    content); pseudonyms are scoped to it unless ``link_releases`` (an explicit choice, recorded
    in the report: the pseudonyms then join with every other linked release under the key).
    Rows the data layer's ``validate_households`` rejects are
    quarantined with its reasons.

    >>> import tempfile
    >>> from village_credit.data.generator import GeneratorConfig
    >>> from village_credit.privacy import anonymise, generate_key, generate_raw_records
    >>> from village_credit.privacy.pseudonym import load_key
    >>> raw = generate_raw_records(GeneratorConfig(n_households=200, seed=0))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     key = load_key(generate_key(f"{tmp}/secret.key"))
    >>> result = anonymise(raw, key, measure_risk=False)
    >>> result  # never shows personal data
    AnonymisationResult(households=197 rows, quarantine=0 rows, k=5)
    >>> sorted(set(raw.columns) - set(result.households.columns))
    ['address', 'family_relations', 'name', 'phone', 'resident_id']
    >>> result.report.n_in, result.report.n_released, result.report.n_suppressed
    (200, 197, 3)
    """
    cfg = config or DEFAULT_PRIVACY_CONFIG
    k = cfg.k if k is None else int(k)
    if quasi_identifiers is None:
        quasi_identifiers = cfg.qis
    hier = {**cfg.hierarchies, **(hierarchies or {})}
    if not 0 <= max_suppression <= 1:
        raise KAnonymityError(f"max_suppression must be within 0..1, got {max_suppression}")
    raw, original_names, schema, notes = _raw_columns(raw, source, eval_date)
    qis = list(quasi_identifiers)
    unknown_qi = [q for q in qis if q not in schema.names]
    if unknown_qi:
        raise RawSchemaError(f"{source}: quasi-identifier(s) not in the household schema: {unknown_qi}")
    n_in = len(raw)
    keep_cols = [c for c in schema.names if c in raw.columns and c not in DERIVED_COLUMNS]
    dropped = [c for c in raw.columns if c not in keep_cols]  # includes replaced derived columns

    scope = _pseudonym_scope(raw, key, release, link_releases)
    hh, parsed, reasons = _households_from_ids(raw, key, eval_date, keep_cols, schema, source,
                                               scope["context"])  # 1.
    ok = reasons.isna()  # before validation: the rows whose resident ID was usable
    hh, rounded = _validate_and_round(hh, reasons, amount_rounding, schema)  # 2.
    hh_exact = hh
    hh, precision = release_precision(hh)  # 2b. dates and amounts at the models' precision
    sens_flags = sensitive_flags(hh, cfg.l_targets)
    protection: dict[str, Any] = {}
    holders = {a.name: a.knows for a in cfg.attackers if not a.recoded}
    t_targets = {c: hh[c] for c in cfg.t_targets if c in hh.columns}
    outcome = hh[DEFAULT_SENSITIVE] if DEFAULT_SENSITIVE in hh.columns else None  # no holder learns a default
    rec, released = _recode(hh, qis, k, hier, notes, sens_flags, cfg.l, holders, protection,
                            min(cfg.holder_k, k), t_targets, cfg.t, outcome)  # 3. (k = 1 asks for no anonymity from anyone)
    if holders:
        protection["suppressed_by_group"] = suppression_by_group(hh, rec.suppressed_holders)
    closeness = _closeness_report(hh, rec, released, qis, t_targets, cfg.t)
    released, outcome_noise = flip_outcome(released, cfg.outcome_flip_rate, cfg.outcome_flip_seed)
    precision_report = {**asdict(precision), "holder_protection": protection}
    suppressed_idx = rec.suppressed[rec.suppressed].index
    l_value, n_l1, n_classes = _class_counts(released, qis, sensitive)
    by_group = suppression_by_group(hh, rec.suppressed)
    if len(hh) and len(suppressed_idx) > max_suppression * len(hh):
        notes.append(f"{len(suppressed_idx)} households suppressed ({len(suppressed_idx) / len(hh):.1%}), "
                     f"more than max_suppression {max_suppression:.0%}: cells of exact quasi-identifier "
                     f"values smaller than k={k}")
    sens = [sensitive] if sensitive else []
    attackers = {a.name: a.knows for a in cfg.attackers}
    recoded = {a.name: a.knows for a in cfg.attackers if a.recoded}
    risk: dict[str, Any] = {"syntactic": syntactic_risk(released, qis, sens, recoded)}
    risk["holders"] = {"raw": holder_risk(hh_exact.loc[rec.data.index], attackers, k),
                       "released": holder_risk(released, attackers, k)}
    flags_released = sensitive_flags(released, cfg.sensitive)
    risk["homogeneity"] = {"l_target": cfg.l, "l_targets": list(sensitive_flags(released, cfg.l_targets)),
                           "sensitive": list(flags_released), "outcome_noise": outcome_noise,
                           "by_holder": homogeneity_attack(released, attackers, flags_released)}
    if DEFAULT_SENSITIVE in released.columns:  # both values of the outcome, as released
        risk["homogeneity"]["outcome"] = {"column": DEFAULT_SENSITIVE, "t_target": cfg.t,
                                          "by_holder": outcome_homogeneity(released, attackers,
                                                                           released[DEFAULT_SENSITIVE])}
    unique = {n: v["n_unique"] for n, v in risk["holders"]["released"].items() if v["n_unique"]}
    if unique:
        notes.append("rows unique on a declared holder's released columns: "
                     + ", ".join(f"{n} {c}" for n, c in unique.items()))
    do_attacks = cfg.risk.enabled if measure_risk is None else measure_risk
    risk["attacks"] = (measure_attack_risk(hh, qis, k, hier, sensitive, cfg) if do_attacks
                       else {"status": "not measured (disabled)"})

    q_reasons = reasons.dropna()
    quarantine = _quarantine_frame(raw, q_reasons).rename(columns=original_names)
    reason_counts = (q_reasons.str.replace(r"duplicate of row \d+", "duplicate of an earlier row", regex=True)
                     .value_counts())
    report = AnonymisationReport(
        source=source, encoding=encoding,
        eval_date=None if eval_date is None else pd.Timestamp(eval_date).strftime("%Y-%m-%d"),
        n_in=n_in, n_released=len(released), n_suppressed=len(suppressed_idx), n_quarantined=len(quarantine),
        k_required=k, k_achieved=k_anonymity(released, qis), quasi_identifiers=qis,
        generalisation=describe_generalisation(rec, hier, qis), n_generalised=rec.n_generalised,
        sensitive=sensitive if sensitive and sensitive in released.columns else None,
        l_diversity=l_value, n_classes=n_classes, n_classes_l1=n_l1,
        amount_rounding=rounded,
        n_converted_15=int((parsed.converted_15 & ok).sum()),
        quarantine_reasons={str(r): int(c) for r, c in reason_counts.items()},
        suppressed_by_age_band={b: v["n_suppressed"] for b, v in by_group["age_band"].items()
                                if v["n_suppressed"]},
        dropped_columns=dropped, key_fingerprint=key_fingerprint(key),
        max_suppression=max_suppression, notes=notes,
        suppressed_by_group=by_group, location_levels=rec.location_levels,
        age_rule_moved=_age_rule_moved(rec, hh, qis),
        precision=precision_report,
        pseudonyms={kk: v for kk, v in scope.items() if kk != "context"},
        burden=burden_by_group(hh_exact, rec, qis, k, sens_flags, cfg.l),
        closeness=closeness,
        threat_model={"source": cfg.source,
                      "attackers": {a.name: {"description": a.description, "knows": list(a.knows),
                                             "recoded": a.recoded} for a in cfg.attackers}},
        risk=risk,
    )
    return AnonymisationResult(
        households=released, quarantine=quarantine, report=report,
        suppressed_row_numbers=pd.Series(np.sort(suppressed_idx.to_numpy() + 1), dtype="int64"),
    )


def _raw_columns(raw: pd.DataFrame, source: str, eval_date: str | pd.Timestamp | None
                 ) -> tuple[pd.DataFrame, dict[str, Any], Any, list[str]]:
    """Raw columns under the schema's names (Chinese headers mapped), each once, the required
    ones present; ``(raw, schema name -> original name, schema, notes)``."""
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
    return raw, original_names, schema, notes


def _pseudonym_scope(raw: pd.DataFrame, key: bytes, release: str | None, link: bool) -> dict[str, Any]:
    """Which records a pseudonym links: this release only (default), or every linked release.

    The default release label is a keyed digest of the raw content: the same file gives the
    same pseudonyms (reproducible), next year's file different ones.
    """
    if link:
        return {"context": release_context(None), "scope": "linked across releases (explicit choice)",
                "release": release, "linkable_across_releases": True}
    if release is None:
        content = pd.util.hash_pandas_object(raw.astype("string"), index=False).to_numpy().tobytes()
        release = "r-" + hmac.new(key, hashlib.sha256(content).digest(), hashlib.sha256).hexdigest()[:12]
    return {"context": release_context(release), "scope": "this release only", "release": release,
            "linkable_across_releases": False}


def sensitive_flags(households: pd.DataFrame, sensitive: Sequence[str]) -> dict[str, pd.Series]:
    """The declared sensitive attributes as released values: amounts as "has any" flags
    (``private_debt_yuan>0``: holds private debt), others as they are."""
    out: dict[str, pd.Series] = {}
    for c in sensitive:
        if c not in households.columns:
            continue
        s = households[c]
        if pd.api.types.is_float_dtype(s):
            out[f"{c}>0"] = (s.fillna(0) > 0).astype("int64")
        else:
            out[c] = s
    return out


def flip_outcome(released: pd.DataFrame, rate: float, seed: int = 0,
                 column: str = DEFAULT_SENSITIVE) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Randomized response on the released outcome: each value flipped with probability ``rate``
    (seeded), so a class whose released outcomes are all "repaid" no longer tells the insider that
    any of its households repaid: each released value is true with probability ``1 - rate``.
    Returns the table and what was done (no values); ``rate`` 0 changes nothing.
    """
    if not 0 <= rate < 0.5:
        raise KAnonymityError(f"outcome flip rate must be within [0, 0.5), got {rate}")
    if rate == 0 or column not in released.columns or not len(released):
        return released, {"column": column, "flip_rate": 0.0, "n_flipped": 0, "released_value_true_prob": 1.0}
    flip = np.random.default_rng(seed).random(len(released)) < rate
    y = released[column]
    out = released.assign(**{column: y.where(~flip, 1 - y).astype(y.dtype)})
    return out, {"column": column, "flip_rate": float(rate), "seed": int(seed), "n_flipped": int(flip.sum()),
                 "released_value_true_prob": round(1.0 - rate, 6)}


def _closeness_report(hh: pd.DataFrame, rec: Any, released: pd.DataFrame, qis: Sequence[str],
                      targets: Mapping[str, pd.Series], t: float | None) -> dict[str, Any]:
    """t-closeness as the recoding met it (true outcomes of the released rows, before any
    randomized response): per target the largest distance of a released class (own count) and the
    base rate; the households withheld for it, per age band and formerly-poor status."""
    if not targets:
        return {}
    by_row = {n: class_distances(released, qis, v.loc[rec.data.sort_values("household_id", kind="stable").index]
                                 .to_numpy()) for n, v in targets.items()} if len(released) else {}
    overall = {n: round(float(v.loc[rec.data.index].astype(float).mean()), 6) if len(rec.data) else None
               for n, v in targets.items()}
    sup_t = rec.suppressed_t.reindex(hh.index).fillna(False).astype(bool)
    return {"targets": list(targets), "t_target": t, "overall": overall,
            "t_achieved": {n: round(float(d.max()), 6) if len(d) else None for n, d in by_row.items()},
            "n_suppressed": int(sup_t.sum()), "suppressed_by_group": suppression_by_group(hh, sup_t)}


def burden_by_group(households: pd.DataFrame, rec: Any, qis: Sequence[str], k: int = 5,
                    sensitive: Mapping[str, pd.Series] | None = None, l_div: int = 1) -> dict[str, Any]:
    """Who pays for the anonymity: per fairness age band and formerly-poor status, the share
    suppressed, the share whose location was coarsened, the share of each QI altered (and of the
    fairness age band, ``altered_share.age_band``: moved where a class keeps its village by
    spanning a band start) and the mean information loss (suppressed = 1; else the mean over QIs of the class band's share of
    the QI's range, location: township 0.5, any 1).

    ``location_floor_share``: households whose village holds fewer than ``k`` of their cell of
    values released exactly (gender, formerly-poor status, under 60 or not; the recoding crosses
    the 41, 65 and 70 band starts within a village before it gives the village up): they cannot keep their village without crossing the 60 cut or
    generalising gender or formerly-poor status, so it is the least share of location coarsening
    such a hierarchy gives that group (issue 28 item 5). With ``sensitive`` flags and ``l_div`` > 1
    (the recoding's l-diversity targets), a village cell with fewer than ``l_div`` distinct values
    of a flag cannot keep its village either (when its township's cell spans other villages):
    it counts in the floor too.
    """
    if not len(households):
        return {}
    idx = households.index
    sup = rec.suppressed.reindex(idx).fillna(False).to_numpy(bool)
    rel = rec.data.reindex(idx)
    loss_parts = []
    altered: dict[str, np.ndarray] = {}
    for q in qis:
        if q in rec.bands.columns:
            raw_q, rel_q = households[q].astype(str), rel[q].astype(str)
            altered[q] = (~sup) & (raw_q != rel_q).to_numpy(bool)
            span = pd.to_numeric(households[q], errors="coerce") if households[q].dtype.kind in "iuf" else None
            # spread of the class over the QI's range (per class: max - min of the exact values)
            cls = rec.class_id.reindex(idx)
            if span is not None:
                rng_all = float(span.max() - span.min()) or 1.0
                w = span.groupby(cls).transform("max") - span.groupby(cls).transform("min")
                loss_parts.append((w / rng_all).fillna(0).to_numpy(float))
            else:
                codes = pd.Series(pd.factorize(households[q], sort=True)[0], index=idx)
                w = codes.groupby(cls).transform("max") - codes.groupby(cls).transform("min")
                loss_parts.append((w / max(1, codes.max())).fillna(0).to_numpy(float))
    loc_cols = [c for c in ("village_code", "township_code") if c in qis]
    if loc_cols:
        lv_raw = households["village_code"].astype(str)
        lv_rel = rel["village_code"].astype(str)
        coarse = (~sup) & (lv_raw != lv_rel).to_numpy(bool)
        anyloc = (~sup) & (lv_rel == "*").to_numpy(bool)
        altered["location"] = coarse
        loss_parts.append(np.where(anyloc, 1.0, np.where(coarse, 0.5, 0.0)))
    if "head_age" in rec.bands.columns:  # a fairness band crossed to keep a village (recoding's soft cuts)
        altered["age_band"] = (~sup) & (age_band(households["head_age"]) != age_band(
            rel["head_age"].fillna(households["head_age"]))).astype(bool)
    loss = np.mean(loss_parts, axis=0) if loss_parts else np.zeros(len(idx))
    loss = np.where(sup, 1.0, loss)
    groups = {"age_band": pd.Series(age_band(households["head_age"]), index=idx).astype(str)}
    if "formerly_poor" in households.columns:
        groups["formerly_poor"] = households["formerly_poor"].astype(bool).map(
            {True: "formerly_poor", False: "other"})
    floor = np.zeros(len(idx), dtype=bool)
    if loc_cols:
        exact = [households[c].astype(str) for c in ("head_gender", "formerly_poor")
                 if c in qis and c in households.columns]
        under_60 = pd.to_numeric(households["head_age"], errors="coerce") < ELDERLY_AGE
        keys = [households["village_code"].astype(str), *exact, under_60]
        cell = pd.Series(0, index=idx).groupby(keys).transform("size")
        floor = (cell < k).to_numpy(bool).copy()
        if sensitive and l_div > 1 and "township_code" in households.columns:
            town_keys = [households["township_code"].astype(str), *exact, under_60]
            villages = households["village_code"].astype(str).groupby(town_keys).transform("nunique")
            for flag in sensitive.values():
                values = pd.Series(np.asarray(flag), index=idx)
                floor |= ((values.groupby(keys).transform("nunique") < l_div) & (villages > 1)).to_numpy(bool)
    out: dict[str, Any] = {}
    for name, g in groups.items():
        gv = g.to_numpy()
        cells = {}
        for grp in sorted(pd.unique(gv)):
            m = gv == grp
            cells[str(grp)] = {"n": int(m.sum()), "suppressed_share": round(float(sup[m].mean()), 6),
                               "mean_loss": round(float(loss[m].mean()), 6),
                               "location_floor_share": round(float(floor[m].mean()), 6),
                               **{f"altered_share.{q}": round(float(a[m].mean()), 6) for q, a in altered.items()}}
        out[name] = cells
    ab = out.get("age_band", {})
    under = households["head_age"].to_numpy(float) < ELDERLY_AGE
    young = float(loss[under].mean()) if under.any() else 0.0  # every under-60, pooled
    if young:
        elderly = [b[0] for b in SUPPORT_AGE_BANDS]
        out["elderly_loss_ratio"] = {b: round(v["mean_loss"] / young, 4) for b, v in ab.items() if b in elderly}
    return out


def _households_from_ids(raw: pd.DataFrame, key: bytes, eval_date: str | pd.Timestamp | None,
                         keep_cols: list[str], schema: Any, source: str,
                         context: str = "household") -> tuple[pd.DataFrame, Any, pd.Series]:
    """Step 1: resident ID numbers -> age, gender, pseudonym. ``(households, parsed IDs,
    reason per raw row, <NA> where the row is usable)``."""
    if pd.api.types.is_float_dtype(raw["resident_id"]):
        raise RawSchemaError(f"{source}: column resident_id holds floating-point numbers, so digits "
                             "of 18-digit ID numbers are already lost; export that column as text")
    n_in = len(raw)
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
        "household_id": pseudonymise(parsed.normalised[ok], key, context=context).astype("str"),
        "head_age": parsed.age[ok].astype("int64"),
        "head_gender": parsed.gender[ok].astype("str"),
    }, index=base.index)
    hh = pd.concat([base, derived], axis=1)
    return hh[[c for c in schema.names if c in hh.columns]], parsed, reasons


def _validate_and_round(hh: pd.DataFrame, reasons: pd.Series, amount_rounding: Mapping[str, float] | None,
                        schema: Any) -> tuple[pd.DataFrame, dict[str, float]]:
    """Step 2: the data layer's validation (schema types, ranges, categories, consistency;
    rejected rows get their reason in ``reasons``), then amounts rounded.
    ``(households, step per rounded column)``."""
    if len(hh):
        hh, bad = _validate(hh)
        if len(bad):
            reasons.loc[bad.index] = bad
    rounding = dict(DEFAULT_AMOUNT_ROUNDING if amount_rounding is None else amount_rounding)
    rnd = {c: (hh[c] / step).round() * step for c, step in rounding.items()
           if c in hh.columns and pd.api.types.is_float_dtype(hh[c])}
    hh = hh.drop(columns=list(rnd)).join(pd.DataFrame(rnd, index=hh.index)) if rnd else hh
    return hh[[c for c in schema.names if c in hh.columns]].copy(), {c: float(s) for c, s in rounding.items()
                                                                    if c in rnd}


def _withhold(rec: Any, gone: pd.Index) -> None:
    """Withhold released rows ``gone`` (index labels of the input) after the recoding."""
    rec.suppressed.loc[gone] = True
    rec.data = rec.data.drop(index=gone)
    rec.class_id = rec.class_id.loc[rec.data.index]
    rec.bands = rec.bands.loc[rec.data.index]


MAX_REPAIR_ROUNDS = 16
"""Bound on the rounds of bank / keeper protection and t-closeness repair (each round that does
not end the loop withholds at least one row; 2-3 rounds are measured, docs/privacy.md)."""


def _recode(hh: pd.DataFrame, qis: list[str], k: int, hier: Mapping[str, Any], notes: list[str],
            sensitive: Mapping[str, pd.Series] | None = None, l_div: int = 1,
            holders: Mapping[str, Sequence[str]] | None = None,
            protection: dict[str, Any] | None = None, holder_k: int = 2,
            closeness: Mapping[str, pd.Series] | None = None, t: float | None = None,
            outcome: pd.Series | None = None) -> tuple[Any, pd.DataFrame]:
    """Step 3: k-anonymity (and l-diversity of the sensitive flags, t-closeness of ``closeness``) by
    local recoding over the declared quasi-identifiers; ``(recoding, released table in household_id
    order)``. ``rec.suppressed_t`` marks what t-closeness alone withheld (the recoding's cells that
    cannot be merged, then classes the later steps moved beyond ``t``), ``rec.suppressed_holders``
    what the bank / keeper protection withheld.

    The protection (no row unique to a holder, no holder class of ``outcome`` defaults only) and the
    t-closeness repair each change what the other checks, so they alternate until a round changes
    nothing (at most :data:`MAX_REPAIR_ROUNDS`; beyond it a clear error)."""
    close = dict(closeness or {}) if t is not None else {}
    rec = local_recode(hh, qis, k, hier, LocationHierarchy(),
                       sensitive={n: v.to_numpy() for n, v in (sensitive or {}).items()}, l_diversity=l_div,
                       closeness={n: v.to_numpy() for n, v in close.items()} or None, t=t if close else None)
    rec.suppressed_holders = pd.Series(False, index=rec.suppressed.index)
    totals: dict[str, int] = {}
    for rnd in range(1, MAX_REPAIR_ROUNDS + 1):
        if holders:
            y = None if outcome is None else outcome.loc[rec.data.index].to_numpy()
            data, extra, prot = protect_holders(rec.data, holders, qis, k, holder_k, outcome=y)
            rec.data = data  # the protected values, same rows and index
            gone_h = data.index[extra]
            _withhold(rec, gone_h)
            rec.suppressed_holders.loc[gone_h] = True
            for name, v in asdict(prot).items():
                totals[name] = v if name == "k" else totals.get(name, 0) + v
        _cap_dependents(rec.data, qis, notes)
        if not close or not len(rec.data):
            break
        gone = enforce_t_closeness(rec.data, qis, {n: v.loc[rec.data.index] for n, v in close.items()}, t)
        if not gone.any():
            break
        _withhold(rec, gone[gone].index)
        rec.suppressed_t.loc[gone[gone].index] = True
        notes.append(f"{int(gone.sum())} household(s) withheld: their released class breached t-closeness "
                     f"(t = {t}) after the bank / keeper protection (round {rnd})")
        if not holders:
            break  # enforce_t_closeness reaches its own fixpoint
    else:
        raise KAnonymityError(f"the bank / keeper protection and the t-closeness repair found no fixpoint in "
                              f"{MAX_REPAIR_ROUNDS} rounds")
    if protection is not None and holders:
        protection.update(totals, repair_rounds=rnd)
    released = rec.data.sort_values("household_id", kind="stable").reset_index(drop=True)
    return rec, released


def _cap_dependents(data: pd.DataFrame, qis: list[str], notes: list[str]) -> None:
    """A class's household size is its mean: keep the schema's "dependents <= size" true (in place)."""
    if {"dependents", "household_size"} <= set(data.columns) and "household_size" in qis:
        over = data["dependents"] > data["household_size"]
        if over.any():
            data.loc[over, "dependents"] = data.loc[over, "household_size"].astype(data["dependents"].dtype)
            notes.append(f"dependents capped at the released household size for {int(over.sum())} household(s)")


def _class_counts(released: pd.DataFrame, qis: list[str], sensitive: str | None
                  ) -> tuple[int | None, int | None, int]:
    """``(l, classes with l = 1, classes)`` of the release (l only with the sensitive column)."""
    if not len(released):
        return None, None, 0
    if sensitive and sensitive in released.columns:
        table = diversity_table(released, qis, sensitive)
        return int(table["distinct"].min()), int((table["distinct"] < 2).sum()), len(table)
    return None, None, int(released.groupby(qis, dropna=False, observed=True).ngroups)


def _age_rule_moved(rec: Any, hh: pd.DataFrame, qis: list[str]) -> dict[str, int]:
    """Households whose released age band puts them on the other side of an age rule (60, 65)."""
    if "head_age" not in qis or not len(rec.data):
        return {}
    a_rel, a_raw = rec.data["head_age"], hh.loc[rec.data.index, "head_age"]
    return {f"18-{cut}": int(((a_rel <= cut) != (a_raw <= cut)).sum()) for cut in (60, 65)}


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
    quarantine CSV (default next to the input). ``kwargs`` go to :func:`anonymise`.

    >>> import os
    >>> import tempfile
    >>> from village_credit.data.generator import GeneratorConfig
    >>> from village_credit.privacy import anonymise_file, generate_key, generate_raw_records
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     raw = generate_raw_records(GeneratorConfig(n_households=200, seed=0))
    ...     raw.to_csv(f"{tmp}/raw.csv", index=False)
    ...     key_file = generate_key(f"{tmp}/secret.key")
    ...     result = anonymise_file(f"{tmp}/raw.csv", f"{tmp}/households.parquet", key_file,
    ...                             measure_risk=False)
    ...     print(result)
    ...     print(sorted(os.listdir(tmp)))
    AnonymisationResult(households=197 rows, quarantine=0 rows, k=5)
    ['households.anonymisation.json', 'households.parquet', 'raw.csv', 'secret.key']
    """
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
