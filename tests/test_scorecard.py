"""Scorecard baseline: points agree with PD, PDO relation holds, points table is usable."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from village_credit.models.features import HouseholdFeatures
from village_credit.models.scorecard import ScorecardModel


@pytest.fixture(scope="module")
def fitted(tiny_households):
    df = tiny_households(2500, seed=4)
    X = HouseholdFeatures().fit_transform(df)
    m = ScorecardModel(pdo=20, base_points=600, base_odds=50).fit(X, df.default_12m)
    return m, X, df.default_12m.to_numpy()


def test_points_agree_with_pd(fitted):
    m, X, y = fitted
    pts = m.points(X)
    pd_points = m.predict_proba(X)[:, 1]
    pd_model = m.predict_proba_estimator(X)[:, 1]  # optbinning's logistic model, independently
    np.testing.assert_allclose(pd_points, pd_model, rtol=1e-9, atol=1e-12)
    order = np.argsort(pd_model)
    assert np.all(np.diff(pts[order]) <= 1e-9)  # points monotone decreasing in PD
    assert roc_auc_score(y, pd_points) > 0.7


def test_pdo_relation(fitted):
    m, X, _ = fitted
    # base_points at good:bad odds base_odds, and +pdo points halve the odds of default
    assert m.points_from_pd(1 / 51)[()] == pytest.approx(600.0)
    p = m.predict_proba(X)[:, 1]
    odds = p / (1 - p)
    pts = m.points(X)
    i, j = np.argmin(pts), np.argmax(pts)
    assert pts[j] - pts[i] == pytest.approx(20 * np.log2(odds[i] / odds[j]), rel=1e-9)
    q = m.pd_from_points(np.array([600.0, 620.0]))
    assert (q[0] / (1 - q[0])) / (q[1] / (1 - q[1])) == pytest.approx(2.0)


def test_points_table_and_missing_values(fitted):
    m, X, _ = fitted
    t = m.points_table()
    assert {"Variable", "Bin", "Points", "label_zh", "label_en"} <= set(t.columns)
    assert set(t.Variable) == set(m.selected_features_)
    Xm = X.head(50).copy()
    Xm.loc[:, "ontime_ratio"] = np.nan
    np.testing.assert_allclose(m.predict_proba(Xm)[:, 1], m.predict_proba_estimator(Xm)[:, 1], rtol=1e-9)


def test_monotone_spec_respected(fitted):
    m, _, _ = fitted
    t = m.points_table()
    for var, direction in (("dpd_months", 1), ("ontime_count", -1)):
        rows = t[(t.Variable == var) & ~t.Bin.astype(str).isin(["Special", "Missing"])]
        er = rows["Event rate"].to_numpy()
        assert np.all(np.diff(er) * direction >= -1e-12)
