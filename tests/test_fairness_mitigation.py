"""Mitigation options: fairlearn ThresholdOptimizer / ExponentiatedGradient and the trade-off table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from village_credit.fairness import (
    DecisionSystem,
    sensitive_frame,
    threshold_optimizer_system,
    tradeoff_table,
)
from village_credit.fairness.groups import FairnessInputError
from village_credit.fairness.mitigation import reduction_system


@pytest.fixture(scope="module")
def biased() -> dict:
    rng = np.random.default_rng(11)
    n = 4000
    hh = pd.DataFrame({"head_age": rng.integers(20, 85, n), "formerly_poor": rng.random(n) < 0.2})
    elderly = hh.head_age.to_numpy() >= 60
    tp = np.clip(rng.beta(1.2, 14, n), 0.001, 0.9)
    y = rng.random(n) < tp
    biased_pd = np.clip(tp + 0.10 * elderly, 0, 1)  # the scorer over-states elderly risk
    base = DecisionSystem("biased", approved=biased_pd < 0.1, credit_line=np.full(n, 5e4), pd=biased_pd)
    return dict(hh=hh, sens=sensitive_frame(hh), tp=tp, y=y, biased_pd=biased_pd, base=base, elderly=elderly)


def _dp_gap(approved: np.ndarray, elderly: np.ndarray) -> float:
    return abs(approved[elderly].mean() - approved[~elderly].mean())


def test_threshold_optimizer_reduces_parity_gap(biased: dict) -> None:
    before = _dp_gap(biased["base"].approved, biased["elderly"])
    to = threshold_optimizer_system("to_dp", biased["sens"]["elderly"], biased["y"],
                                    score=1 - biased["biased_pd"], constraint="demographic_parity",
                                    credit_line=np.full(len(biased["y"]), 5e4), pd_=biased["biased_pd"], seed=0)
    after = _dp_gap(to.approved, biased["elderly"])
    assert before > 0.3
    assert after < before / 3
    assert to.meta["method"] == "ThresholdOptimizer"
    again = threshold_optimizer_system("to_dp", biased["sens"]["elderly"], biased["y"],
                                       score=1 - biased["biased_pd"], seed=0)
    np.testing.assert_array_equal(to.approved, again.approved)  # seeded randomisation
    table = tradeoff_table([biased["base"], to], biased["sens"], biased["y"], true_pd=biased["tp"])
    row = table.set_index("option")
    assert row.loc["to_dp", "approval_gap_elderly"] < row.loc["biased", "approval_gap_elderly"]
    assert {"auc_pd", "auc_decision", "default_rate_approved", "true_pd_approved",
            "er_max_gap_approval", "er_max_gap_line", "mean_line_gap_elderly"} <= set(table.columns)
    assert row.loc["biased", "auc_pd"] == pytest.approx(row.loc["to_dp", "auc_pd"])


def test_threshold_optimizer_with_fitted_estimator(biased: dict) -> None:
    X = pd.DataFrame({"risk": biased["biased_pd"]})
    est = LogisticRegression().fit(X, (~biased["y"]).astype(int))
    to = threshold_optimizer_system("to_eo", biased["sens"]["elderly"], biased["y"], estimator=est, X=X,
                                    constraint="equalized_odds")
    assert _dp_gap(to.approved, biased["elderly"]) < _dp_gap(biased["base"].approved, biased["elderly"])


def test_threshold_optimizer_needs_one_source(biased: dict) -> None:
    with pytest.raises(FairnessInputError):
        threshold_optimizer_system("x", biased["sens"]["elderly"], biased["y"])


def test_exponentiated_gradient_reduces_parity_gap(biased: dict) -> None:
    n = 1500
    X = pd.DataFrame({"risk": biased["biased_pd"][:n]})
    # balanced classes: with ~8 % defaults a plain accuracy learner approves everyone
    est = LogisticRegression(class_weight="balanced")
    eg = reduction_system("eg", X, biased["y"][:n], biased["sens"]["elderly"][:n], est,
                          difference_bound=0.02, max_iter=20)
    plain = est.fit(X, (~biased["y"][:n]).astype(int)).predict(X).astype(bool)
    el = biased["elderly"][:n]
    assert 0.1 < plain.mean() < 0.95 and 0.1 < eg.approved.mean() < 0.99
    assert _dp_gap(eg.approved, el) < _dp_gap(plain, el) / 2
