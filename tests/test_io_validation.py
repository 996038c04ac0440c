"""Tests of Parquet/CSV I/O and schema validation with quarantine."""

from __future__ import annotations

import hashlib
from datetime import date as _date

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from village_credit.data import (
    SCHEMA,
    GeneratorConfig,
    count_rows,
    generate_households,
    history_long,
    iter_batches,
    read_table,
    validate_households,
    write_parquet,
)
from village_credit.data.io import DATE_MAX, DATE_MIN
from village_credit.data.validation import coerce_households, parse_dates
from village_credit.errors import DataReadError, SchemaError


@pytest.fixture(scope="module")
def hh() -> pd.DataFrame:
    return generate_households(GeneratorConfig(n_households=400, seed=3))


# --------------------------------------------------------------------------- I/O
def test_parquet_and_csv_round_trip(tmp_path, hh) -> None:
    pq_path, csv_path = tmp_path / "h.parquet", tmp_path / "h.csv"
    write_parquet(hh, pq_path)
    hh.to_csv(csv_path, index=False)
    pd.testing.assert_frame_equal(read_table(pq_path), hh)
    pd.testing.assert_frame_equal(read_table(csv_path), hh)
    sub = read_table(csv_path, columns=["household_id", "smartphone", "ded_hygiene_date"])
    assert list(sub.columns) == ["household_id", "smartphone", "ded_hygiene_date"]
    assert sub["smartphone"].dtype == bool and sub["ded_hygiene_date"].dtype == "datetime64[ns]"


def test_write_parquet_deterministic(tmp_path, hh) -> None:
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    write_parquet(hh, a)
    write_parquet(hh.copy(), b)
    assert hashlib.sha256(a.read_bytes()).hexdigest() == hashlib.sha256(b.read_bytes()).hexdigest()


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_iter_batches_streams_everything(tmp_path, hh, suffix) -> None:
    path = tmp_path / f"h.{suffix}"
    write_parquet(hh, path) if suffix == "parquet" else hh.to_csv(path, index=False)
    batches = list(iter_batches(path, batch_rows=150))
    assert [len(b) for b in batches] == [150, 150, 100]
    assert batches[1].index[0] == 150  # global row numbering
    pd.testing.assert_frame_equal(pd.concat(batches), hh)
    assert count_rows(path) == len(hh)
    cols = next(iter_batches(path, batch_rows=10, columns=["household_id", "true_pd"]))
    assert list(cols.columns) == ["household_id", "true_pd"]


def test_unreadable_files_raise_data_read_error_naming_file(tmp_path) -> None:
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"this is not parquet at all, just text")
    cases = [tmp_path / "missing.parquet", junk, tmp_path / "data.xlsx", tmp_path]
    (tmp_path / "data.xlsx").write_text("x")
    for path in cases:
        with pytest.raises(DataReadError) as info:
            read_table(path)
        assert str(path) in str(info.value)
    with pytest.raises(DataReadError, match="junk.parquet"):
        list(iter_batches(junk))
    with pytest.raises(DataReadError, match="missing.csv"):
        count_rows(tmp_path / "missing.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataReadError, match="empty.csv"):
        read_table(empty)


def test_requesting_absent_columns_is_schema_error(tmp_path, hh) -> None:
    path = write_parquet(hh, tmp_path / "h.parquet")
    with pytest.raises(SchemaError, match="no_such_column"):
        read_table(path, columns=["household_id", "no_such_column"])


def test_history_long(hh) -> None:
    long = history_long(hh.head(5))
    assert len(long) == 5 * 36
    assert list(long.columns) == ["household_id", "month", "months_before_snapshot",
                                  "due", "paid", "dpd", "utility_late"]
    row = long[(long["household_id"] == hh["household_id"].iloc[2]) & (long["month"] == 36)]
    assert row["dpd"].item() == hh["dpd_m36"].iloc[2]
    assert row["months_before_snapshot"].item() == 1
    with pytest.raises(SchemaError):
        history_long(hh[["household_id"]])


# --------------------------------------------------------------------------- validation
def test_missing_columns_listed_all_at_once(hh) -> None:
    with pytest.raises(SchemaError) as info:
        validate_households(hh.drop(columns=["head_age", "education", "dpd_m07"]))
    msg = str(info.value)
    assert "head_age" in msg and "education" in msg and "dpd_m07" in msg
    validate_households(hh.drop(columns=["true_pd"]))  # truth optional by default
    with pytest.raises(SchemaError, match="true_pd"):
        validate_households(hh.drop(columns=["true_pd"]), require_truth=True)


def test_malformed_rows_quarantined_with_specific_reasons(hh) -> None:
    bad = hh.astype({"head_age": object, "snapshot_date": object, "smartphone": object}
                    ).assign(extra_note="x")
    bad.loc[1, "head_age"] = 130
    bad.loc[2, "head_age"] = "forty"
    bad.loc[3, "education"] = "phd"
    bad.loc[4, "smartphone"] = None
    bad.loc[5, "dependents"] = bad.loc[5, "household_size"] + 1
    bad.loc[6, "household_id"] = bad.loc[0, "household_id"]
    bad.loc[7, "snapshot_date"] = "31/12/2024"
    bad.loc[8, "ded_traffic_date"] = pd.Timestamp("2030-01-01")
    bad.loc[9, "land_mu"] = -1.0
    res = validate_households(bad)
    q = res.quarantine.set_index("row_number")
    expect = {1: ("head_age", "range"), 2: ("head_age", "type"), 3: ("education", "category"),
              4: ("smartphone", "missing"), 5: ("dependents", "consistency"),
              0: ("household_id", "duplicate"), 6: ("household_id", "duplicate"), 7: ("snapshot_date", "type"),
              8: ("ded_traffic_date", "consistency"), 9: ("land_mu", "range")}
    for row, (col, check) in expect.items():
        assert (q.loc[[row], "column"] == col).any() and (q.loc[[row], "check"] == check).any(), row
    assert q.loc[2, "value"] == "forty" and "not a number" in q.loc[2, "reason"]
    assert q.loc[1, "value"] == "130" and "out of range" in q.loc[1, "reason"]
    assert q.loc[6, "household_id"] == hh.loc[0, "household_id"]
    assert res.n_quarantined == 10 and res.n_valid == len(hh) - 10 == res.n_in - 10
    assert 0 not in res.valid.index  # every copy of a duplicated id: which one is true is unknown
    assert sorted(res.bad_rows["row_number"]) == list(range(0, 10))
    assert res.bad_rows.loc[2, "head_age"] == "forty"  # untouched input
    assert "extra_note" in res.valid.columns
    assert res.valid["head_age"].dtype == np.int64
    assert res.valid["snapshot_date"].dtype == "datetime64[ns]"
    assert set(res.summary()["check"]) >= {"range", "type", "category", "missing"}


def test_csv_with_bad_cells_reads_then_quarantines(tmp_path, hh) -> None:
    raw = hh.astype({"income_farming": object, "formerly_poor": object})
    raw.loc[3, "income_farming"] = "12,5 yuan"
    raw.loc[4, "formerly_poor"] = "maybe"
    path = tmp_path / "village.csv"
    raw.to_csv(path, index=False)
    df = read_table(path)
    assert not pd.api.types.is_numeric_dtype(df["income_farming"])  # left as text
    res = validate_households(df)
    assert sorted(res.bad_rows["row_number"]) == [3, 4]
    assert res.valid["income_farming"].dtype == np.float64
    assert res.valid["formerly_poor"].dtype == bool
    pd.testing.assert_frame_equal(res.valid, hh.drop(index=[3, 4]))


def test_coerce_households_marks_uncoercible_cells() -> None:
    raw = pd.DataFrame({"head_age": ["45", "x", None, "50.5"], "smartphone": ["yes", "0", "True", "?"],
                        "note": ["a", "b", "c", "d"]})
    frame, problems = coerce_households(raw)
    assert frame["head_age"].iloc[0] == 45
    assert frame["smartphone"].tolist()[:3] == [True, False, True]
    got = set(zip(problems["row_number"], problems["column"], strict=True))
    assert got == {(1, "head_age"), (3, "head_age"), (3, "smartphone")}
    assert (frame["note"] == raw["note"]).all()


_CORRUPTIONS = {
    "head_age": [-5, 101, "old"],
    "education": ["phd", None],
    "household_size": [0, 16, 2.5],
    "smartphone": ["perhaps", None],
    "true_pd": [1.5, -0.1],
    "dpd_m12": [-1, 1000, "late"],
    "hon_courtyard": ["planet", ""],
    "snapshot_date": ["2025-13-45", None],
    "income_migrant": [-100.0, "much"],
}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_corruption_keeps_count_invariant(hh, data) -> None:
    df = hh.head(60).astype({c: object for c in _CORRUPTIONS})
    rows = data.draw(st.lists(st.integers(0, 59), min_size=0, max_size=15, unique=True))
    for r in rows:
        col = data.draw(st.sampled_from(sorted(_CORRUPTIONS)))
        df.loc[r, col] = data.draw(st.sampled_from(_CORRUPTIONS[col]))
    res = validate_households(df, require_truth=True)
    assert res.n_in == res.n_valid + res.n_quarantined == 60
    assert set(res.bad_rows["row_number"]) == set(rows)
    assert set(res.quarantine["row_number"]) == set(rows)
    assert res.valid.index.isin(set(range(60)) - set(rows)).all()
    assert list(res.quarantine.columns)[:5] == ["row_number", "household_id", "column", "value", "reason"]


def test_schema_names_cover_generated_columns(hh) -> None:
    assert set(SCHEMA.names) == set(hh.columns)


# --- dates never wrap -------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.dates(min_value=_date(1, 1, 1), max_value=_date(9999, 12, 31)),
       st.sampled_from(["{}", " {} ", "{}T23:59:59+08:00", "{} 00:00"]))
def test_any_calendar_date_is_kept_exactly_or_refused_never_wrapped(d: _date, shape: str) -> None:
    out, bad, reason = parse_dates(pd.Series([shape.format(d.isoformat()), None], dtype=object))
    assert not bad[1] and pd.isna(out.iloc[1])
    if DATE_MIN <= d <= DATE_MAX:
        assert not bad[0] and out.iloc[0].date() == d
    else:
        assert bad[0] and pd.isna(out.iloc[0]) and str(reason[0]).startswith("date out of range")


@settings(max_examples=25, deadline=None)
@given(st.lists(st.dates(min_value=_date(1, 1, 1), max_value=_date(9999, 12, 31)), min_size=1, max_size=6))
def test_parquet_dates_read_and_validated_without_wrapping(tmp_path_factory, days: list[_date]) -> None:
    """A date32 column read by the one reader: every date kept or its own cell refused."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = tmp_path_factory.mktemp("dates") / "d.parquet"
    pq.write_table(pa.table({"household_id": [f"H{i}" for i in range(len(days))],
                             "ded_hygiene_date": pa.array(days, pa.date32())}), p)
    col = read_table(p)["ded_hygiene_date"]
    out, bad, _ = parse_dates(col)
    for i, d in enumerate(days):
        inside = DATE_MIN <= d <= DATE_MAX
        assert bad[i] == (not inside)
        if inside:
            assert out.iloc[i].date() == d


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(column=st.sampled_from(["head_age", "land_mu", "education", "household_size", "snapshot_date",
                               "ded_hygiene_date", "smartphone", "head_gender"]),
       bad=st.sampled_from(["none", "missing", "low", "high", "unknown", "blank"]),
       row=st.integers(0, 59))
def test_clean_column_shortcut_flags_what_the_full_checks_flag(generated_households, monkeypatch,
                                                               column, bad, row) -> None:
    """Row checks prove a clean column clean with min/max (or Arrow is_in) and skip the
    cell-by-cell passes: whatever cell is spoiled, the valid rows and the quarantine are
    those of the full checks (the shortcut turned off)."""
    from village_credit.data import validation

    df = generated_households(60, seed=3).copy()
    s = df[column]
    if bad == "missing":
        if s.dtype.kind in "ib":  # int and bool columns hold no missing cell in their own dtype
            df[column] = s.astype(np.float64 if s.dtype.kind == "i" else object)
        df.loc[row, column] = None  # NaN, NaT or missing text in the others
    elif bad in ("low", "high") and s.dtype.kind in "if":
        df.loc[row, column] = -1e6 if bad == "low" else 1e12
    elif bad in ("unknown", "blank") and (s.dtype == object or pd.api.types.is_string_dtype(s.dtype)):
        df[column] = s.astype(object)
        df.loc[row, column] = "no-such-category" if bad == "unknown" else "  "
        df[column] = df[column].astype(s.dtype)
    fast = validate_households(df)
    monkeypatch.setattr(validation, "_clean_column", lambda *_: False)
    full = validate_households(df)
    pd.testing.assert_frame_equal(fast.valid, full.valid)
    pd.testing.assert_frame_equal(fast.quarantine, full.quarantine)
    pd.testing.assert_frame_equal(fast.bad_rows, full.bad_rows)
    spoiled = ((bad == "missing" and column != "ded_hygiene_date")
               or (bad in ("low", "high") and column in ("head_age", "land_mu", "household_size"))
               or (bad in ("unknown", "blank") and column in ("education", "head_gender")))
    assert (row in fast.quarantine["row_number"].to_numpy()) == spoiled  # the generated rows are clean
