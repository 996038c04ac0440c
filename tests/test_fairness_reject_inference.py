"""Reject inference on a small generated population: the selection bias exists, a remedy helps."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from village_credit.fairness import selection_bias_study
from village_credit.fairness.groups import FairnessInputError


@pytest.fixture(scope="module")
def study():
    from village_credit.data.generator import GeneratorConfig, generate_households
    from village_credit.models.features import build_household_features

    hh = generate_households(GeneratorConfig(n_households=6000, seed=3))
    X = build_household_features(hh, include_protected=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = selection_bias_study(hh, X, observed_mask=hh.outcome_observed, y=hh.default_12m,
                                   true_pd=hh.true_pd, seed=0)
    return hh, X, res


def test_study_shape(study) -> None:
    _, _, res = study
    assert set(res.remedy) == {"none", "reweighting", "fuzzy_augmentation", "parcelling"}
    assert {"all", "granted", "not_granted", "elderly_60plus", "formerly_poor"} <= set(res.group)
    assert res[["mean_pred_pd", "mean_true_pd", "mae_true_pd"]].notna().all().all()


def test_observed_only_model_underestimates_excluded_groups(study) -> None:
    _, _, res = study
    r = res[res.remedy == "none"].set_index("group")
    # the rules never granted the elderly above the cutoff: their risk is extrapolated
    assert r.loc["not_granted", "bias"] < -0.01
    assert r.loc["not_granted", "bias"] < r.loc["granted", "bias"]
    assert r.loc["elderly_60plus", "bias"] / r.loc["elderly_60plus", "mean_true_pd"] < -0.2


def test_a_remedy_reduces_error_for_the_excluded(study) -> None:
    _, _, res = study
    ng = res[res.group == "not_granted"].set_index("remedy")
    best = ng.drop(index="none")["bias"].abs().min()
    assert best < abs(ng.loc["none", "bias"]) * 0.75


def test_truth_columns_rejected_as_features(study) -> None:
    hh, X, _ = study
    with pytest.raises(FairnessInputError, match="ground-truth"):
        selection_bias_study(hh, X.assign(true_pd=hh.true_pd.to_numpy()), observed_mask=hh.outcome_observed,
                             y=hh.default_12m, true_pd=hh.true_pd, remedies=("none",))
    with pytest.raises(FairnessInputError, match="unknown"):
        selection_bias_study(hh, X, observed_mask=hh.outcome_observed, y=hh.default_12m,
                             true_pd=hh.true_pd, remedies=("magic",))
    assert np.isfinite(hh.true_pd).all()
