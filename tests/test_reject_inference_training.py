"""``split.reject_inference`` in the main job, and the ``infer_rejects`` building block."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from village_credit.config import load_config
from village_credit.errors import ConfigError
from village_credit.fairness import infer_rejects
from village_credit.fairness.groups import FairnessInputError

SEED = 1
N_TREES = 80


# --------------------------------------------------------------------------- infer_rejects
@pytest.fixture
def toy():
    rng = np.random.default_rng(0)
    n = 400
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    observed = rng.random(n) < 0.6
    y = (rng.random(n) < 0.2).astype(int)
    base = np.clip(rng.beta(2, 20, size=n), 1e-3, 0.9)
    sel = np.clip(rng.random(n), 0.001, 1.0)
    return X, observed, y, base, sel


def test_none_returns_observed_rows_unweighted(toy) -> None:
    X, obs, y, _, _ = toy
    rows, lab, w = infer_rejects(X, obs, y, "none")
    np.testing.assert_array_equal(rows, np.flatnonzero(obs))
    np.testing.assert_array_equal(lab, y[obs])
    np.testing.assert_array_equal(w, 1.0)


@pytest.mark.parametrize("method", ["none", "reweighting", "fuzzy_augmentation", "parcelling"])
def test_shapes_and_positive_weights(toy, method) -> None:
    X, obs, y, base, sel = toy
    rows, lab, w = infer_rejects(X, obs, y, method, base_proba=base, selection_proba=sel)
    assert len(rows) == len(lab) == len(w)
    assert rows.min() >= 0 and rows.max() < len(X)
    assert set(np.unique(lab)) <= {0, 1}
    assert np.all(w > 0) and np.all(np.isfinite(w))
    # observed rows come first, with their own labels
    k = int(obs.sum())
    np.testing.assert_array_equal(rows[:k], np.flatnonzero(obs))
    np.testing.assert_array_equal(lab[:k], y[obs])


def test_labels_may_be_given_for_observed_rows_only(toy) -> None:
    X, obs, y, base, _ = toy
    full = infer_rejects(X, obs, y, "parcelling", base_proba=base, seed=4)
    y_nan = np.where(obs, y, np.nan)  # unobserved outcomes unknown
    for yy in (y[obs], y_nan):
        for a, b in zip(full, infer_rejects(X, obs, yy, "parcelling", base_proba=base, seed=4)):
            np.testing.assert_array_equal(a, b)


def test_reweighting_is_inverse_selection_probability(toy) -> None:
    X, obs, y, _, sel = toy
    rows, _, w = infer_rejects(X, obs, y, "reweighting", selection_proba=sel, min_selection_prob=0.05)
    assert len(rows) == obs.sum()
    assert w.mean() == pytest.approx(1.0)
    raw = 1.0 / np.clip(sel[obs], 0.05, 1.0)
    np.testing.assert_allclose(w, raw / raw.mean())


def test_fuzzy_doubles_the_rejects(toy) -> None:
    X, obs, y, base, _ = toy
    rows, lab, w = infer_rejects(X, obs, y, "fuzzy_augmentation", base_proba=base)
    k, rej = int(obs.sum()), np.flatnonzero(~obs)
    assert len(rows) == k + 2 * len(rej)
    np.testing.assert_array_equal(rows[k:], np.concatenate([rej, rej]))
    np.testing.assert_array_equal(lab[k:], np.r_[np.ones(len(rej)), np.zeros(len(rej))])
    np.testing.assert_allclose(w[k:k + len(rej)], base[rej])
    np.testing.assert_allclose(w[k:k + len(rej)] + w[k + len(rej):], 1.0)
    np.testing.assert_array_equal(w[:k], 1.0)


def test_parcelling_is_seeded_and_deterministic(toy) -> None:
    X, obs, y, base, _ = toy
    a = infer_rejects(X, obs, y, "parcelling", base_proba=base, seed=7)
    b = infer_rejects(X, obs, y, "parcelling", base_proba=base, seed=7)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    c = infer_rejects(X, obs, y, "parcelling", base_proba=base, seed=8)
    assert not np.array_equal(a[1], c[1])
    k = int(obs.sum())
    assert len(a[0]) == len(X) and sorted(a[0][k:]) == list(np.flatnonzero(~obs))


def test_parcel_factor_raises_inferred_default_rate(toy) -> None:
    X, obs, y, base, _ = toy
    k = int(obs.sum())
    lo = infer_rejects(X, obs, y, "parcelling", base_proba=base, seed=1, parcel_factor=1.0)[1][k:].mean()
    hi = infer_rejects(X, obs, y, "parcelling", base_proba=base, seed=1, parcel_factor=3.0)[1][k:].mean()
    assert hi > lo


def test_missing_inputs_are_rejected(toy) -> None:
    X, obs, y, base, _ = toy
    with pytest.raises(FairnessInputError, match="unknown"):
        infer_rejects(X, obs, y, "magic")
    with pytest.raises(FairnessInputError, match="base_proba"):
        infer_rejects(X, obs, y, "parcelling")
    with pytest.raises(FairnessInputError, match="selection_proba"):
        infer_rejects(X, obs, y, "reweighting")
    with pytest.raises(FairnessInputError, match="base_proba"):
        infer_rejects(X, obs, y, "fuzzy_augmentation", base_proba=np.where(obs, base, np.nan))


# --------------------------------------------------------------------------- the main job
@pytest.fixture(scope="module")
def fitted():
    from village_credit import pipeline
    from village_credit.data import GeneratorConfig, generate_households
    from village_credit.models.splits import split_by_village

    hh = generate_households(GeneratorConfig(n_households=6000, seed=SEED))
    train, calib, holdout = split_by_village(hh, seed=SEED).frames(hh)
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for method in ("none", "parcelling"):
            cfg = load_config(None, {"split.reject_inference": method, "model.gbm.n_estimators": N_TREES,
                                     "seed": SEED})
            out[method] = pipeline.fit_models(train, calib, cfg, None)
    return train, holdout, out


def test_metadata_records_the_method(fitted) -> None:
    train, _, out = fitted
    for method, models in out.items():
        assert models["blend"].metadata["reject_inference"] == method
        assert models["gbm"].metadata["reject_inference"] == method
    n_obs = int(train.outcome_observed.sum())
    assert out["none"]["blend"].metadata["n_train"] == n_obs
    assert out["parcelling"]["blend"].metadata["n_train"] == len(train)
    assert out["parcelling"]["blend"].metadata["n_train_observed"] == n_obs


def test_parcelling_reduces_the_bias_for_households_never_granted(fitted) -> None:
    """Scored on ALL hold-out households; the truth is the generator's ``true_pd``.

    Caveat (measured when this test was written, seeds 1-5 of the generator and split,
    80 trees): the observed-only blend underestimates the never-granted households on
    every seed, but parcelling brings the mean closer on seeds 1, 2 and 4 only; on
    seeds 3 and 5 it moves it further away (under- resp. over-shoots). The remedy rests
    on an assumption (``parcel_factor``) and on 6,000 households the result is noisy.
    """
    _, holdout, out = fitted
    ng = ~holdout["granted_hist"].to_numpy(dtype=bool)
    truth = float(holdout["true_pd"].to_numpy()[ng].mean())
    pred = {m: float(out[m]["blend"].predict_pd(holdout).to_numpy()[ng].mean()) for m in out}
    assert pred["none"] < truth  # the documented bias: risk of the excluded is underestimated
    assert abs(pred["parcelling"] - truth) < abs(pred["none"] - truth)


def test_unknown_method_is_a_config_error(fitted) -> None:
    from village_credit import pipeline

    train, _, _ = fitted
    with pytest.raises(ConfigError, match="split.reject_inference"):  # refused at load
        load_config(None, {"split.reject_inference": "magic"})
    cfg = load_config(None)
    cfg.split.reject_inference = "magic"  # and by the trainer, for configs built in code
    with pytest.raises(ConfigError, match="reject_inference"):
        pipeline.fit_models(train, train, cfg, None)


@pytest.mark.parametrize("method", ["reweighting", "fuzzy_augmentation"])
def test_other_methods_fit(fitted, method) -> None:
    from village_credit import pipeline

    train, holdout, _ = fitted
    calib = holdout  # any observed-only calibration split will do for a smoke test
    cfg = load_config(None, {"split.reject_inference": method, "model.gbm.n_estimators": 30, "seed": SEED})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models = pipeline.fit_models(train, calib, cfg, None)
    p = models["blend"].predict_pd(holdout).to_numpy()
    assert np.isfinite(p).all() and ((p > 0) & (p < 1)).all()
    assert models["blend"].metadata["reject_inference"] == method
    n_rej = int((~train.outcome_observed.to_numpy(bool)).sum())
    expected = len(train) + n_rej if method == "fuzzy_augmentation" else len(train) - n_rej
    assert models["blend"].metadata["n_train"] == expected
