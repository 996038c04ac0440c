"""Dates are calendar days, whatever form they arrive in (issue 26 item 5, issue 31 item 1)."""

from __future__ import annotations

import datetime

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from village_credit.data.validation import parse_dates


def _is_calendar(y: int, m: int, d: int) -> bool:
    try:
        datetime.date(y, m, d)
    except ValueError:
        return False
    return True


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1700, 2200), st.integers(0, 13), st.integers(0, 32)), min_size=1,
                max_size=30))
def test_a_text_date_is_accepted_exactly_when_it_is_a_calendar_day(ymd: list[tuple[int, int, int]]) -> None:
    text = pd.Series([f"{y:04d}-{m:02d}-{d:02d}" for y, m, d in ymd], dtype=object)
    out, bad, reason = parse_dates(text)
    for i, (y, m, d) in enumerate(ymd):
        if _is_calendar(y, m, d):
            assert not bad[i] and out.iloc[i] == pd.Timestamp(y, m, d), (y, m, d)
        else:  # never rolled over to another day (30 Feb is not 2 March)
            assert bad[i] and pd.isna(out.iloc[i]) and reason[i].startswith("not a date"), (y, m, d)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.one_of(st.none(), st.dates(datetime.date(1, 1, 1), datetime.date(9999, 12, 31))),
                min_size=1, max_size=30))
def test_date_objects_read_as_their_text(dates: list[datetime.date | None]) -> None:
    """``pd.read_parquet`` gives Python ``date`` objects: same days and refusals as their ISO text."""
    objs = parse_dates(pd.Series(dates, dtype=object))
    text = parse_dates(pd.Series([None if d is None else d.isoformat() for d in dates], dtype=object))
    assert objs[0].equals(text[0])
    np.testing.assert_array_equal(objs[1], text[1])
    np.testing.assert_array_equal(np.where(objs[1], objs[2], ""), np.where(text[1], text[2], ""))


def test_impossible_days_are_named_in_their_row() -> None:
    out, bad, reason = parse_dates(pd.Series(["2025-02-30", "2024-02-29", "2023-02-29", "2025-04-31"]))
    assert bad.tolist() == [True, False, True, True]
    assert out.iloc[1] == pd.Timestamp(2024, 2, 29)
    assert set(reason[bad]) == {"not a date (expected YYYY-MM-DD)"}
