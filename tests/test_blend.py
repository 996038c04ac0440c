"""Points scaling, the exact additive explainer, and the blend's additive decomposition."""

from __future__ import annotations

import json

import lightgbm as lgb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from village_credit.models.additive import AdditiveExplainer, NotAdditiveError, TreeContributions
from village_credit.models.blend import BlendCoefficients, logistic_fit
from village_credit.models.scaling import PointsScaling, sigmoid

# ----------------------------------------------------------------------------- scaling


def test_default_scaling_anchor() -> None:
    s = PointsScaling.from_pdo(20, 60, 49)
    assert s.points(np.log(1 / 49)) == pytest.approx(60.0)
    # doubling the good:bad odds adds PDO points
    assert s.points(np.log(1 / 98)) - s.points(np.log(1 / 49)) == pytest.approx(20.0)
    assert s.pd(60.0) == pytest.approx(0.02)
    assert PointsScaling.from_dict(json.loads(json.dumps(s.to_dict()))) == s


@given(st.floats(min_value=-30, max_value=30, allow_nan=False))
def test_points_and_pd_agree(z: float) -> None:
    s = PointsScaling.from_pdo(20, 60, 49)
    assert s.pd(s.points(z)) == pytest.approx(sigmoid(z), rel=1e-12, abs=1e-300)
    assert s.logit(s.points(z)) == pytest.approx(z, abs=1e-12)


@given(st.floats(1, 100), st.floats(-500, 500), st.floats(0.01, 1000))
def test_points_pd_agree_any_scaling(pdo: float, base: float, odds: float) -> None:
    s = PointsScaling.from_pdo(pdo, base, odds)
    z = np.linspace(-10, 10, 21)
    np.testing.assert_allclose(s.pd(s.points(z)), sigmoid(z), rtol=1e-10)
    assert np.all(np.diff(s.points(z)) < 0)  # higher risk, fewer points


def test_logistic_fit_recovers_coefficients() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(20000, 2))
    y = rng.random(20000) < sigmoid(-1.0 + 0.8 * x[:, 0] - 0.5 * x[:, 1])
    w = logistic_fit(x, y)
    np.testing.assert_allclose(w, [-1.0, 0.8, -0.5], atol=0.08)
    # weights = repeated rows
    w2 = logistic_fit(np.repeat(x[:500], 2, axis=0), np.repeat(y[:500], 2))
    w3 = logistic_fit(x[:500], y[:500], sample_weight=np.full(500, 2.0))
    np.testing.assert_allclose(w2, w3, rtol=1e-8)


def test_coefficients_round_trip() -> None:
    c = BlendCoefficients("stacking", -3.0, -0.01, 1.1, {"a": -3.0})
    assert BlendCoefficients.from_dict(json.loads(json.dumps(c.to_dict()))) == c


# ----------------------------------------------------------------------------- explainer


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    X[:, 1] = rng.integers(0, 5, n)  # categorical-like integer codes
    X[:, 2] = np.where(rng.random(n) < 0.3, 0.0, X[:, 2])  # many exact zeros
    X[rng.random(n) < 0.15, 3] = np.nan  # missing values seen in training
    X[:, 4] = np.where(rng.random(n) < 0.5, 0.0, rng.exponential(size=n))
    X[:, 5] = rng.integers(0, 36, n)  # counts
    z = X[:, 0] + 0.4 * X[:, 1] - np.nan_to_num(X[:, 3], nan=1.0) + 0.05 * X[:, 5]
    y = (rng.random(n) < sigmoid(z - 1)).astype(int)
    return X, y


def _booster(additive: bool, zero_as_missing: bool = False, depth: int = 3, trees: int = 80) -> lgb.Booster:
    X, y = _data(4000, 0)
    params = {"objective": "binary", "num_leaves": 8, "max_depth": depth, "learning_rate": 0.1,
              "verbose": -1, "seed": 1, "deterministic": True, "num_threads": 1,
              "zero_as_missing": zero_as_missing, "min_data_in_leaf": 20}
    if additive:
        params["interaction_constraints"] = [[i] for i in range(X.shape[1])]
    return lgb.train(params, lgb.Dataset(X, y), trees)


@pytest.fixture(scope="module")
def additive_boosters() -> dict[bool, lgb.Booster]:
    return {z: _booster(True, zero_as_missing=z) for z in (False, True)}


def _edge_rows(X: np.ndarray) -> np.ndarray:
    X = X.copy()
    X[:40] = np.nan
    X[40:50] = 0.0
    X[50:60] = -0.0
    X[60:70] = 1e-36
    X[70:80] = np.inf
    X[80:90] = -np.inf
    X[90:100] = 1e-35
    return X


@pytest.mark.parametrize("zero_as_missing", [False, True])
def test_additive_matches_pred_contrib(additive_boosters: dict, zero_as_missing: bool) -> None:
    b = additive_boosters[zero_as_missing]
    X = _edge_rows(_data(5000, 1)[0])
    ex = AdditiveExplainer.from_booster(b)
    ours = ex.contributions(X)
    ref = b.predict(X, pred_contrib=True)
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.sum(axis=1), b.predict(X, raw_score=True), rtol=1e-9, atol=1e-12)


def test_additive_matches_shap(additive_boosters: dict) -> None:
    import shap

    b = additive_boosters[False]
    X = _edge_rows(_data(3000, 2)[0])[:, :]
    X = X[~np.isinf(X).any(axis=1)]
    ours = AdditiveExplainer.from_booster(b).contributions(X)
    te = shap.TreeExplainer(b)
    sv = np.asarray(te.shap_values(X))
    np.testing.assert_allclose(ours[:, :-1], sv, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours[:, -1], np.ravel(te.expected_value)[0], rtol=1e-9)


_X_ROW = hnp.arrays(
    np.float64, st.tuples(st.integers(1, 32), st.just(6)),
    elements=st.one_of(st.floats(-5, 40, allow_nan=False), st.just(np.nan), st.just(0.0),
                       st.integers(0, 36).map(float)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(X=_X_ROW)
def test_additive_exact_property(additive_boosters: dict, X: np.ndarray) -> None:
    for b in additive_boosters.values():
        if not hasattr(b, "_vc_explainer"):
            b._vc_explainer = AdditiveExplainer.from_booster(b)  # tabulate once, not per example
        np.testing.assert_allclose(b._vc_explainer.contributions(X),
                                   b.predict(X, pred_contrib=True), rtol=1e-9, atol=1e-12)


def test_general_trees_fall_back_to_pred_contrib() -> None:
    b = _booster(False, depth=4, trees=30)
    with pytest.raises(NotAdditiveError):
        AdditiveExplainer.from_booster(b)
    tc = TreeContributions.from_booster(b)
    assert not tc.is_fast and "splits on" in tc.fallback_reason
    X = _data(500, 3)[0]
    np.testing.assert_allclose(tc.contributions(X), b.predict(X, pred_contrib=True))


def test_stumps_are_additive() -> None:
    X, y = _data(2000, 4)
    b = lgb.train({"objective": "binary", "num_leaves": 2, "verbose": -1, "seed": 0}, lgb.Dataset(X, y), 50)
    tc = TreeContributions.from_booster(b)
    assert tc.is_fast
    np.testing.assert_allclose(tc.contributions(X), b.predict(X, pred_contrib=True), rtol=1e-9, atol=1e-12)
