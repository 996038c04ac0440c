"""LGBMDefaultModel: sklearn contract, monotone/additive constraints, init_score, determinism, save/load."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from village_credit.models.features import HouseholdFeatures
from village_credit.models.gbm import LGBMDefaultModel


@parametrize_with_checks([LGBMDefaultModel(n_estimators=5)])
def test_sklearn_contract(estimator, check):
    check(estimator)


def _data(n: int = 3000, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=["risk_up", "risk_down", "noise", "free"])
    logit = -1.0 + 1.0 * X.risk_up - 1.0 * X.risk_down + 0.5 * np.sin(3 * X.free)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


def test_monotone_constraints_honoured():
    X, y = _data()
    m = LGBMDefaultModel(n_estimators=60, num_leaves=15, monotone_constraints={"risk_up": 1, "risk_down": -1})
    m.fit(X, y)
    rng = np.random.default_rng(1)
    base = pd.DataFrame(rng.normal(size=(200, 4)), columns=X.columns)
    grid = np.linspace(-3, 3, 41)
    up = np.array([m.predict_proba(base.assign(risk_up=v))[:, 1] for v in grid])
    down = np.array([m.predict_proba(base.assign(risk_down=v))[:, 1] for v in grid])
    assert np.all(np.diff(up, axis=0) >= -1e-12)
    assert np.all(np.diff(down, axis=0) <= 1e-12)
    assert roc_auc_score(y, m.predict_proba(X)[:, 1]) > 0.7


def test_monotone_from_spec_on_household_features(tiny_households):
    df = tiny_households(1500, seed=3)
    t = HouseholdFeatures().fit(df)
    X = t.transform(df)
    m = LGBMDefaultModel(n_estimators=30, monotone_constraints="spec").fit(X, df.default_12m)
    assert m.lgb_params(list(X.columns))["monotone_constraints"] == t.monotone_constraints()
    hi = m.predict_proba(X.assign(dpd_months=30.0))[:, 1]
    lo = m.predict_proba(X.assign(dpd_months=0.0))[:, 1]
    assert np.all(hi >= lo - 1e-12)


def test_additive_mode_uses_one_feature_per_tree():
    X, y = _data()
    m = LGBMDefaultModel(n_estimators=40, num_leaves=7, interaction_constraints="additive").fit(X, y)
    trees = m.booster_.trees_to_dataframe()
    per_tree = trees.dropna(subset=["split_feature"]).groupby("tree_index").split_feature.nunique()
    assert (per_tree == 1).all()
    free = LGBMDefaultModel(n_estimators=40, num_leaves=7).fit(X, y).booster_.trees_to_dataframe()
    assert free.dropna(subset=["split_feature"]).groupby("tree_index").split_feature.nunique().max() > 1


def test_deterministic_same_seed():
    X, y = _data()
    kw = dict(n_estimators=50, subsample=0.7, colsample_bytree=0.7, random_state=7, n_jobs=2)
    a = LGBMDefaultModel(**kw).fit(X, y).predict_proba(X)
    b = LGBMDefaultModel(**kw).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    c = LGBMDefaultModel(**{**kw, "random_state": 8}).fit(X, y).predict_proba(X)
    assert not np.array_equal(a, c)


def test_init_score_semantics():
    X, y = _data()
    offset = np.where(X.risk_up > 0, 1.0, -1.0)
    m = LGBMDefaultModel(n_estimators=20).fit(X, y, init_score=offset)
    assert m.fitted_with_init_score_
    np.testing.assert_allclose(m.decision_function(X, init_score=offset), m.raw_score(X) + offset)
    np.testing.assert_allclose(m.decision_function(X), m.raw_score(X))
    p = m.predict_proba(X, init_score=offset)[:, 1]
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-(m.raw_score(X) + offset))), rtol=1e-12)


def test_early_stopping_and_string_labels():
    X, y = _data()
    labels = np.where(y == 1, "default", "good")
    m = LGBMDefaultModel(n_estimators=500, learning_rate=0.3, early_stopping_rounds=10)
    m.fit(X[:2000], labels[:2000], eval_set=[(X[2000:], labels[2000:])])
    assert list(m.classes_) == ["default", "good"]  # positive class is classes_[1]
    assert m.best_iteration_ < 500
    assert set(m.predict(X)) <= {"default", "good"}


def test_save_load_round_trip(tmp_path):
    X, y = _data()
    m = LGBMDefaultModel(n_estimators=30, monotone_constraints={"risk_up": 1}, random_state=3).fit(X, y)
    path = m.save_model(tmp_path / "gbm.txt")
    assert path.read_text().startswith("tree")
    m2 = LGBMDefaultModel.load_model(path)
    np.testing.assert_array_equal(m.predict_proba(X), m2.predict_proba(X))
    assert list(m2.feature_names_in_) == list(X.columns)
    assert m2.get_params() == m.get_params()
