"""model.elderly_pension_interaction: age enters the model only through a pension, and only to lower risk."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from village_credit.config import load_config
from village_credit.errors import ConfigError
from village_credit.models import CreditScoreClassifier, HouseholdFeatures

FLAG = "pension_head_60plus"


def test_config_key_defaults_off_and_is_validated() -> None:
    assert load_config().model.elderly_pension_interaction is False
    assert load_config(None, {"model.elderly_pension_interaction": True}).model.elderly_pension_interaction is True
    with pytest.raises(ConfigError, match="elderly_pension_interaction"):
        load_config(None, {"model.elderly_pension_interaction": "sometimes"})


def test_flag_is_pension_and_60plus_only(generated_households) -> None:
    hh = generated_households(1500, seed=3)
    X = HouseholdFeatures(elderly_pension=True).fit_transform(hh)
    expected = ((hh["head_age"] >= 60) & hh["social_insurance"].astype(bool)
                & (hh["income_pension_subsidy"] > 0)).to_numpy(float)
    np.testing.assert_array_equal(X[FLAG].to_numpy(), expected)
    assert 0 < expected.sum() < len(hh)
    # age itself never becomes a feature: not without include_protected
    assert not {"head_age", "age_band_60plus"} & set(X.columns)
    assert FLAG not in HouseholdFeatures().fit_transform(hh.head(5)).columns


def test_recorded_with_the_model_and_constrained_in_the_booster(generated_households) -> None:
    hh = generated_households(1500, seed=4)
    clf = CreditScoreClassifier(strategy="additive_points", policy="jinxiang_2022", calibration_folds=2,
                                gbm_params={"n_estimators": 30}, seed=0, elderly_pension_interaction=True)
    clf.fit(hh, hh["default_12m"])
    model = clf.model_
    assert model.metadata["elderly_pension_interaction"] is True
    assert "only through its interaction with pension" in model.metadata["age_use"]
    booster = model.booster
    names = booster.feature_name()
    assert FLAG in names and not {"head_age", "age_band_60plus"} & set(names)
    dump = booster.dump_model()
    assert dump["monotone_constraints"][names.index(FLAG)] == -1
    # the constraint binds: switching the flag on never raises the trees' risk
    X = model.features.transform(hh.head(200)).to_numpy(float)
    on, off = X.copy(), X.copy()
    on[:, names.index(FLAG)], off[:, names.index(FLAG)] = 1.0, 0.0
    assert np.all(booster.predict(on, raw_score=True) <= booster.predict(off, raw_score=True) + 1e-12)


def test_refused_for_a_table_of_ones_own() -> None:
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400)})
    y = (table["a"].to_numpy() + rng.normal(size=400) > 0).astype(int)
    with pytest.raises(ConfigError, match="household features"):
        CreditScoreClassifier(elderly_pension_interaction=True, calibration_folds=2,
                              gbm_params={"n_estimators": 5}).fit(table, y)
