"""JSON transport fixes in the decision pyfunc (dates over ``mlflow models predict``)."""

from __future__ import annotations

import pandas as pd

from village_credit.registry.decision_pyfunc import coerce_serving_input

TYPES = {"snapshot_date": "datetime", "veto_date": "datetime", "age": "long"}


def test_iso_strings_and_nat_tokens_become_datetimes() -> None:
    df = pd.DataFrame({"snapshot_date": ["2025-06-30T00:00:00", "2025-06-30"],
                       "veto_date": ["NaT", None], "age": [30, 40]})
    out = coerce_serving_input(df, TYPES)
    assert pd.api.types.is_datetime64_any_dtype(out["snapshot_date"])
    assert out["snapshot_date"].iloc[1] == pd.Timestamp("2025-06-30")
    assert pd.api.types.is_datetime64_any_dtype(out["veto_date"]) and out["veto_date"].isna().all()
    assert out["age"].tolist() == [30, 40]
    assert df["veto_date"].iloc[0] == "NaT"  # input untouched


def test_bad_date_is_left_for_decide_to_quarantine_not_hidden_as_nat() -> None:
    df = pd.DataFrame({"snapshot_date": ["2025-06-30", "30/06/2025?", "NaT"]})
    out = coerce_serving_input(df, TYPES)
    assert out["snapshot_date"].tolist() == ["2025-06-30", "30/06/2025?", None]


def test_real_datetime_columns_and_unknown_types_pass_through() -> None:
    df = pd.DataFrame({"snapshot_date": pd.to_datetime(["2025-06-30"]), "other": ["NaT"]})
    out = coerce_serving_input(df, TYPES)
    assert out is df
