"""PRC resident identity numbers (GB 11643-1999): validate, parse, and make fake ones.

Why here: the resident ID number is both the strongest direct identifier in a
village file and the only trustworthy source of the head's age and gender. The
anonymiser reads age and gender from it, then throws it away; the scanner uses the
check digit so that random 18-digit numbers (order ids, timestamps) rarely look like
IDs.

Layout of an 18-character number: ``RRRRRR YYYYMMDD SSS C``: region code of the
registration place (first two digits = province), birth date, a sequence number whose
last digit is odd for men and even for women, and an ISO 7064 MOD 11-2 check
character (``X`` stands for 10).

Old 15-digit numbers (issued before 1999: ``RRRRRR YYMMDD SSS``) are converted with
the standard rule: insert ``19`` before the two-digit year and append the check
character. (People born before 1900 got sequence codes 996-999 and would need
``18``; they are far outside the ages a credit file holds, so the rule is ``19``.)

Everything is vectorised over a pandas Series: one numpy pass for the checksum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
"""ISO 7064 MOD 11-2 weights for the first 17 digits (2**(17-i) mod 11)."""

CHECK_CHARS = "10X98765432"
"""Check character indexed by (weighted sum mod 11)."""

PROVINCE_CODES: frozenset[str] = frozenset(
    [str(c) for c in range(11, 16)]
    + [str(c) for c in range(21, 24)]
    + [str(c) for c in range(31, 38)]
    + [str(c) for c in range(41, 47)]
    + [str(c) for c in range(50, 55)]
    + [str(c) for c in range(61, 66)]
    + ["71", "81", "82"]
)
"""First two digits of every valid region code (provinces, Taiwan, Hong Kong, Macau)."""

MIN_BIRTH_YEAR = 1900
"""Birth dates before this are treated as implausible (no living household head)."""

REASON_LENGTH = "not 18 characters"
REASON_LENGTH_15 = "not 15 or 18 characters"
REASON_CHARS = "non-digit characters"
REASON_CHECK = "bad check digit"
REASON_REGION = "unknown region code"
REASON_DATE = "invalid birth date"
REASON_FUTURE = "birth date after the evaluation date"
REASON_OLD = f"implausible birth date (before {MIN_BIRTH_YEAR})"
REASON_MISSING = "missing"


def check_char(first17: str) -> str:
    """The check character for 17 leading digits."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("need exactly 17 ASCII digits")
    total = int(np.dot(np.frombuffer(first17.encode(), dtype=np.uint8) - 48, WEIGHTS))
    return CHECK_CHARS[total % 11]


def is_valid_checksum(number: str) -> bool:
    """True when an 18-character number's last character matches its check digit."""
    number = number.strip().upper()
    if len(number) != 18 or not number[:17].isascii() or not number[:17].isdigit():
        return False
    return check_char(number[:17]) == number[17]


def convert_15_to_18(number: str) -> str:
    """Old 15-digit number -> 18-digit form ('19' inserted before the year, check char added)."""
    number = number.strip()
    if len(number) != 15 or not number.isascii() or not number.isdigit():
        raise ValueError("need exactly 15 ASCII digits")
    first17 = number[:6] + "19" + number[6:]
    return first17 + check_char(first17)


def _checksum_chars(digits17: np.ndarray) -> np.ndarray:
    """Vectorised check characters for an (n, 17) array of digit values."""
    sums = digits17.astype(np.int64) @ WEIGHTS
    return np.array(list(CHECK_CHARS))[sums % 11]


def _digits(strings: pd.Series, width: int) -> np.ndarray:
    """(n, width) digit array from equal-length ASCII strings (one C-level join, no loop)."""
    if len(strings) == 0:
        return np.zeros((0, width), dtype=np.int64)
    buf = "".join(strings.tolist()).encode("ascii")
    return np.frombuffer(buf, dtype=np.uint8).reshape(-1, width).astype(np.int64) - 48


def age_at(birth: pd.Series, when: pd.Series | pd.Timestamp) -> pd.Series:
    """Completed years between birth dates and an evaluation date (scalar or per row)."""
    birth = pd.to_datetime(birth)
    when_s = pd.Series(pd.to_datetime(when), index=birth.index) if not isinstance(when, pd.Series) \
        else pd.to_datetime(when)
    years = when_s.dt.year - birth.dt.year
    before_birthday = (when_s.dt.month < birth.dt.month) | (
        (when_s.dt.month == birth.dt.month) & (when_s.dt.day < birth.dt.day)
    )
    return (years - before_birthday.astype("Int64")).astype("Int64")


@dataclass(frozen=True)
class ParsedIds:
    """Result of :func:`parse_resident_ids`; every Series is aligned to the input index.

    ``normalised`` holds the 18-character form (15-digit numbers converted, ``x`` upper
    cased) for valid rows and ``<NA>`` otherwise; ``reason`` is empty for valid rows and
    names every problem (joined with ``"; "``) otherwise. Reasons never contain the number.
    """

    valid: pd.Series
    reason: pd.Series
    normalised: pd.Series
    birth_date: pd.Series
    gender: pd.Series
    age: pd.Series
    converted_15: pd.Series

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({
            "valid": self.valid, "reason": self.reason, "normalised": self.normalised,
            "birth_date": self.birth_date, "gender": self.gender, "age": self.age,
            "converted_15": self.converted_15,
        })


def parse_resident_ids(
    ids: pd.Series,
    eval_date: pd.Timestamp | str | pd.Series | None = None,
    *,
    allow_15: bool = True,
) -> ParsedIds:
    """Validate and parse resident ID numbers.

    ``eval_date`` (scalar or per-row Series; default today) bounds birth dates and gives
    the age. With ``allow_15`` old 15-digit numbers are converted to 18 digits first;
    without it they are invalid ("not 18 characters").
    """
    idx = ids.index
    n = len(ids)
    missing = ids.isna().to_numpy()
    s = ids.astype("string").fillna("").str.strip().str.upper()
    # Excel and CSV round trips turn numbers into "110105194912310021.0"
    s = s.str.replace(r"\.0$", "", regex=True)
    lengths = s.str.len().to_numpy()

    is15 = (lengths == 15) if allow_15 else np.zeros(n, dtype=bool)
    ok15 = is15 & s.str.fullmatch(r"[0-9]{15}").fillna(False).to_numpy(dtype=bool)
    converted = s.copy()
    if ok15.any():
        d15 = s[ok15]
        first17 = d15.str.slice(0, 6) + "19" + d15.str.slice(6, 15)
        checks = _checksum_chars(_digits(first17, 17))
        converted.loc[ok15] = first17 + pd.Series(checks, index=first17.index)

    len18 = (lengths == 18) | ok15
    form_ok = len18 & converted.str.fullmatch(r"[0-9]{17}[0-9X]").fillna(False).to_numpy(dtype=bool)

    # checksum over rows with a well-formed shape
    check_ok = np.zeros(n, dtype=bool)
    if form_ok.any():
        good = converted[form_ok]
        digits = _digits(good.str.slice(0, 17), 17)
        expected = _checksum_chars(digits)
        check_ok[form_ok] = expected == good.str.slice(17, 18).to_numpy(dtype=object).astype(str)

    region_ok = np.zeros(n, dtype=bool)
    region_ok[form_ok] = converted[form_ok].str.slice(0, 2).isin(PROVINCE_CODES).to_numpy(dtype=bool)

    if eval_date is None:
        eval_date = pd.Timestamp.today().normalize()
    when = (pd.to_datetime(eval_date) if isinstance(eval_date, pd.Series)
            else pd.Series(pd.Timestamp(eval_date), index=idx))
    when = when.reindex(idx) if isinstance(eval_date, pd.Series) else when

    birth = pd.Series(pd.NaT, index=idx, dtype="datetime64[ns]")
    year = np.zeros(n, dtype=np.int64)
    if form_ok.any():
        year[form_ok] = converted[form_ok].str.slice(6, 10).astype(int).to_numpy()
    in_range = form_ok & (year >= MIN_BIRTH_YEAR) & (year < 2200)  # also keeps to ns bounds
    if in_range.any():
        birth.loc[in_range] = pd.to_datetime(
            converted[in_range].str.slice(6, 14), format="%Y%m%d", errors="coerce"
        ).astype("datetime64[ns]")
    date_old = form_ok & (year < MIN_BIRTH_YEAR)
    date_bad = form_ok & ~date_old & birth.isna().to_numpy()
    date_future = form_ok & ~date_bad & (birth > when).fillna(False).to_numpy(dtype=bool)

    problems: list[tuple[np.ndarray, str]] = [
        (missing | (lengths == 0), REASON_MISSING),
        (~missing & (lengths > 0) & ~len18, REASON_LENGTH_15 if allow_15 else REASON_LENGTH),
        (len18 & ~form_ok & ~missing, REASON_CHARS),
        (form_ok & ~check_ok, REASON_CHECK),
        (form_ok & ~region_ok, REASON_REGION),
        (date_bad, REASON_DATE),
        (date_old, REASON_OLD),
        (date_future, REASON_FUTURE),
    ]
    reason = np.full(n, "", dtype=object)
    for mask, text in problems:
        reason = np.where(mask, np.where(reason == "", text, reason + "; " + text), reason)
    valid = reason == ""

    normalised = converted.where(valid, pd.NA).astype("string")
    birth = birth.where(valid, pd.NaT)
    odd = converted.str.slice(16, 17).isin(list("13579")).to_numpy(dtype=bool)
    gender = pd.Series(np.where(odd, "M", "F"), index=idx, dtype="string").where(valid, pd.NA)
    age = age_at(birth, when)
    return ParsedIds(
        valid=pd.Series(valid.astype(bool), index=idx),
        reason=pd.Series(reason.astype(str), index=idx, dtype="string"),
        normalised=normalised,
        birth_date=birth,
        gender=gender,
        age=age,
        converted_15=pd.Series(ok15 & valid, index=idx),
    )


def make_resident_ids(
    rng: np.random.Generator,
    birth_dates: pd.Series | np.ndarray,
    genders: pd.Series | np.ndarray,
    region_codes: pd.Series | np.ndarray,
) -> np.ndarray:
    """Fake but valid-checksum 18-digit numbers (for the raw-records generator and tests).

    ``genders`` are ``"M"``/``"F"`` (the 17th digit gets the matching parity);
    ``region_codes`` are 6-digit strings; sequence digits are drawn from ``rng``.
    """
    birth = pd.to_datetime(pd.Series(np.asarray(birth_dates)))
    n = len(birth)
    regions = pd.Series(np.asarray(region_codes), dtype="string")
    if n == 0:
        return np.array([], dtype=object)
    if not regions.str.fullmatch(r"[0-9]{6}").all():
        raise ValueError("region codes must be 6 digits")
    male = pd.Series(np.asarray(genders)).astype(str).str.upper().str.startswith("M").to_numpy()
    seq2 = rng.integers(0, 100, size=n)
    last = rng.integers(0, 5, size=n) * 2 + male.astype(int)  # odd = male
    seq = pd.Series(seq2 * 10 + last).astype(str).str.zfill(3)
    first17 = regions.reset_index(drop=True) + birth.dt.strftime("%Y%m%d").astype("string") + seq.astype("string")
    checks = _checksum_chars(_digits(first17, 17))
    return (first17 + pd.Series(checks)).to_numpy(dtype=object)
