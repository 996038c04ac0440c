"""Feature building: hand-checked values, no truth columns, spec alignment, BYO data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from village_credit.data.schema import TRUTH_COLUMNS, history_columns
from village_credit.errors import SchemaError
from village_credit.models.features import (
    FEATURE_SPECS,
    GenericFeatures,
    HouseholdFeatures,
    load_feature_specs,
    spec_for,
    specs_from_frame,
)


def two_households(tiny_households) -> pd.DataFrame:
    """Two hand-built households with a 3-month history."""
    base = tiny_households(2, seed=1, months=3)
    rows = {
        # household 0: loan each month, dpd 30, 60, 0; paid half in months 1-2, full in month 3
        **dict(zip(history_columns("due", 3), [[100.0, 0.0], [100.0, 0.0], [100.0, 0.0]])),
        **dict(zip(history_columns("paid", 3), [[50.0, 0.0], [50.0, 0.0], [100.0, 0.0]])),
        **dict(zip(history_columns("dpd", 3), [[30, 0], [60, 0], [0, 0]])),
        **dict(zip(history_columns("utility_late", 3), [[1, 0], [0, 0], [1, 0]])),
    }
    df = base.assign(**{k: np.asarray(v) for k, v in rows.items()})
    return df.assign(
        income_farming=[6000.0, 0.0], income_livestock=[0.0, 0.0], income_migrant=[4000.0, 0.0],
        income_business=[0.0, 0.0], income_pension_subsidy=[0.0, 0.0],
        credit_limit_yuan=[10000.0, 0.0], balance_yuan=[2500.0, 0.0], private_debt_yuan=[5000.0, 500.0],
        household_size=[4, 1], dependents=[2, 0], education=["junior", "tertiary"], head_age=[65, 30],
        formerly_poor=[True, False],
    )


def test_hand_built_values(tiny_households):
    df = two_households(tiny_households)
    f = HouseholdFeatures().fit_transform(df)
    a, b = f.iloc[0], f.iloc[1]
    assert a.worst_dpd == 60 and a.months_since_delinquency == 1 and a.recent_dpd == 0
    assert a.dpd_months == 2 and a.ontime_count == 1 and a.ontime_ratio == pytest.approx(1 / 3)
    assert a.repayment_ratio == pytest.approx(200 / 300)
    assert a.utilisation == pytest.approx(0.25)
    assert a.loan_months == 3 and a.thin_file == 1 and a.has_credit_file == 1
    assert a.utility_late_count == 2 and a.utility_late_ratio == pytest.approx(2 / 3)
    assert a.income_total == 10000 and a.log_income == pytest.approx(np.log1p(10000))
    assert a.income_per_head == pytest.approx(2500)  # 10,000 yuan for 4 people
    assert a.income_share_farming == pytest.approx(0.6) and a.income_share_migrant == pytest.approx(0.4)
    assert a.private_debt_to_income == pytest.approx(0.5)
    assert a.dependents_ratio == pytest.approx(0.5) and a.education_level == 2
    # household 1: no loans, never delinquent, no income
    assert b.months_since_delinquency == 3 and b.worst_dpd == 0 and b.has_credit_file == 0
    assert np.isnan(b.ontime_ratio) and np.isnan(b.repayment_ratio) and np.isnan(b.utilisation)
    assert np.isnan(b.income_share_farming) and b.income_per_head == 0  # no income, one person
    assert b.private_debt_to_income == pytest.approx(0.5)  # 500 / income floor 1000
    assert "head_age" not in f.columns and "formerly_poor" not in f.columns


def test_protected_switch_and_no_truth(tiny_households):
    df = two_households(tiny_households)
    f = HouseholdFeatures(include_protected=True).fit_transform(df)
    assert list(f.head_age) == [65, 30] and list(f.age_band_60plus) == [1, 0] and list(f.formerly_poor) == [1, 0]
    assert not set(TRUTH_COLUMNS) & set(f.columns)
    # changing the truth columns never changes features
    g = HouseholdFeatures(include_protected=True).fit_transform(df.assign(true_pd=0.99, default_12m=1))
    pd.testing.assert_frame_equal(f, g)
    assert f.dtypes.map(lambda d: d == np.float64).all()


def test_specs_aligned_and_labelled(tiny_households):
    t = HouseholdFeatures(include_protected=True).fit(tiny_households(50))
    names = t.feature_names_out
    assert len(names) == len(set(names)) == len(t.monotone_constraints())
    for n, m in zip(names, t.monotone_constraints()):
        s = t.spec_for(n)
        assert s.monotone == m and s.label_zh and s.label_en
    assert t.spec_for("dpd_months").monotone == 1 and t.spec_for("ontime_count").monotone == -1
    assert all(t.spec_for(n).monotone == 0 for n in ("head_age", "age_band_60plus", "formerly_poor"))
    assert len({s.name for s in FEATURE_SPECS}) == len(FEATURE_SPECS)


def test_rule_features_optional_and_required_once_fitted(tiny_households):
    df = tiny_households(20)
    extra = pd.DataFrame({"base": 30.0, "bonus_party": 10.0, "ded_traffic": -10.0, "rule_points": 30.0},
                         index=df.index)
    t = HouseholdFeatures(rule_items=True)
    f = t.fit_transform(df, extra=extra)
    assert {"rule_points", "base", "bonus_party", "ded_traffic"} <= set(f.columns)
    assert t.spec_for("ded_traffic").label_zh.endswith("交通违法") and t.spec_for("ded_traffic").monotone == -1
    with pytest.raises(SchemaError, match="rule_points"):
        t.transform(df)
    assert "rule_points" not in HouseholdFeatures().fit_transform(df).columns


def test_missing_history_column_named(tiny_households):
    df = tiny_households(5).drop(columns=["paid_m07"])
    with pytest.raises(SchemaError, match="paid_m07"):
        HouseholdFeatures().fit_transform(df)


def test_spec_for_unknown():
    with pytest.raises(KeyError, match="nope"):
        spec_for("nope")


def test_generic_features_from_spec_file(tmp_path):
    df = pd.DataFrame({"income": [1.0, 2.0, np.nan], "grade": ["low", "high", "mid"], "ok": [True, False, True],
                       "target": [0, 1, 0]})
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({"target": "target", "features": [
        {"name": "income", "label_zh": "收入", "monotone": -1},
        {"name": "grade", "categories": ["low", "mid", "high"], "monotone": -1}]}))
    spec = load_feature_specs(path)
    specs = specs_from_frame(df, target=spec["target"], overrides=spec["features"])
    t = GenericFeatures(specs).fit(df)
    out = t.transform(df.assign(grade=["mid", "unknown", None]))
    assert t.feature_names_out == ["income", "grade", "ok"]
    assert t.monotone_constraints() == [-1, -1, 0]
    assert list(out.grade.fillna(-9)) == [1.0, -9, -9]
    assert list(out.ok) == [1.0, 0.0, 1.0]


def test_on_generator_output(generated_households):
    df = generated_households(1500, seed=2)
    t = HouseholdFeatures(include_protected=True)
    f = t.fit_transform(df)
    assert len(f) == len(df) and f.index.equals(df.index)
    assert not set(TRUTH_COLUMNS) & set(f.columns)
    assert (f.months_since_delinquency <= 36).all() and (f.worst_dpd >= f.worst_dpd_12m).all()
    assert (f.worst_dpd_12m >= f.worst_dpd_6m).all() and (f.worst_dpd_6m >= f.recent_dpd).all()
    assert (f.dpd_months >= f.dpd_months_12m).all()
    shares = f.filter(like="income_share_").dropna()
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)


def test_income_per_head_undefined_without_a_household_size(tiny_households):
    """A missing or zero household size leaves income per person missing, never infinite."""
    df = two_households(tiny_households).assign(household_size=[0.0, np.nan])
    f = HouseholdFeatures().fit_transform(df)
    assert f["income_per_head"].isna().all() and f["income_total"].tolist() == [10000, 0]
