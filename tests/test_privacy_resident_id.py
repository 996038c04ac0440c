"""Resident ID numbers: the GB 11643 check digit, parsing, reasons, fake IDs."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from village_credit.privacy.resident_id import (
    check_char,
    convert_15_to_18,
    is_valid_checksum,
    make_resident_ids,
    parse_resident_ids,
)

# published examples: GB 11643-1999 (Beijing Chaoyang 1949, Guangdong Chao'an 1880)
PUBLISHED = ["11010519491231002X", "440524188001010014"]


def test_published_examples_have_valid_check_digits() -> None:
    for number in PUBLISHED:
        assert check_char(number[:17]) == number[17]
        assert is_valid_checksum(number)
        assert is_valid_checksum(number.lower())


def test_parse_published_example() -> None:
    p = parse_resident_ids(pd.Series(["11010519491231002X"]), "2024-06-30")
    assert bool(p.valid.iloc[0])
    assert p.birth_date.iloc[0] == pd.Timestamp("1949-12-31")
    assert p.gender.iloc[0] == "F"  # 17th digit 2: even
    assert p.age.iloc[0] == 74


def test_reasons_name_the_problem_but_not_the_number() -> None:
    ids = pd.Series(["110105194912310021", "12345", None, "1101051949123100AX",
                     "99010519491231002X", "110105195002300023", "11010520491231002X"])
    # make the last three valid-checksum so only the intended problem shows
    fixed = [s[:17] + check_char(s[:17]) for s in ids.iloc[4:]]
    ids.iloc[4:] = fixed
    p = parse_resident_ids(ids, "2024-06-30")
    assert p.reason.tolist() == [
        "bad check digit", "not 15 or 18 characters", "missing", "non-digit characters",
        "unknown region code", "invalid birth date", "birth date after the evaluation date",
    ]
    assert not p.valid.any()
    for reason, number in zip(p.reason, ids, strict=True):
        assert not isinstance(number, str) or number not in reason


def test_age_uses_per_row_eval_dates_and_birthdays() -> None:
    ids = pd.Series(["11010519491231002X"] * 2, index=[7, 9])
    p = parse_resident_ids(ids, pd.Series(pd.to_datetime(["2024-12-30", "2024-12-31"]), index=[7, 9]))
    assert p.age.tolist() == [74, 75]


def test_fifteen_digit_ids_convert_to_18() -> None:
    assert convert_15_to_18("110105491231002") == "11010519491231002X"
    p = parse_resident_ids(pd.Series(["110105491231002"]), "2024-01-01")
    assert bool(p.valid.iloc[0]) and bool(p.converted_15.iloc[0])
    assert p.normalised.iloc[0] == "11010519491231002X"
    strict = parse_resident_ids(pd.Series(["110105491231002"]), "2024-01-01", allow_15=False)
    assert strict.reason.iloc[0] == "not 18 characters"


id_inputs = st.tuples(
    st.dates(min_value=pd.Timestamp("1920-01-01").date(), max_value=pd.Timestamp("2006-12-31").date()),
    st.sampled_from(["M", "F"]),
    st.sampled_from(["110105", "370828", "330483", "511324", "650102", "820000"]),
    st.integers(0, 2**32 - 1),
)


@settings(max_examples=50, deadline=None)
@given(id_inputs)
def test_generated_ids_validate_and_round_trip(args) -> None:
    birth, gender, region, seed = args
    number = make_resident_ids(np.random.default_rng(seed), pd.Series([pd.Timestamp(birth)]),
                               [gender], [region])[0]
    p = parse_resident_ids(pd.Series([number]), "2025-01-01")
    assert bool(p.valid.iloc[0]), p.reason.iloc[0]
    assert p.birth_date.iloc[0] == pd.Timestamp(birth)
    assert p.gender.iloc[0] == gender
    assert number[:6] == region


@settings(max_examples=80, deadline=None)
@given(id_inputs, st.integers(0, 17), st.integers(1, 10))
def test_any_single_character_change_invalidates(args, pos, delta) -> None:
    birth, gender, region, seed = args
    number = make_resident_ids(np.random.default_rng(seed), pd.Series([pd.Timestamp(birth)]),
                               [gender], [region])[0]
    alphabet = "0123456789X" if pos == 17 else "0123456789"
    old = alphabet.index(number[pos])
    new = alphabet[(old + delta) % len(alphabet)]
    if new == number[pos]:
        return
    changed = number[:pos] + new + number[pos + 1:]
    assert not is_valid_checksum(changed)
    assert not bool(parse_resident_ids(pd.Series([changed]), "2025-01-01").valid.iloc[0])
