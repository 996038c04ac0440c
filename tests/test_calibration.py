"""Calibration: lowers ECE on a miscalibrated model; Platt/isotonic chosen by a proper score; JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from village_credit.errors import ConfigError
from village_credit.models.calibration import Calibrator, calibration_summary, ece, fit_calibrator


def _sig(z):
    return 1 / (1 + np.exp(-z))


def _sample(n, seed, true_logit_fn):
    rng = np.random.default_rng(seed)
    z = rng.normal(-2.0, 1.2, n)  # the model's raw log-odds
    y = (rng.random(n) < _sig(true_logit_fn(z))).astype(int)
    return z, y


def test_platt_fixes_affine_miscalibration_and_is_chosen():
    # true log-odds are an affine map of the raw score: Platt is the right model
    f = lambda z: 0.6 * z - 0.5  # noqa: E731  overconfident and biased
    z, y = _sample(20_000, 0, f)
    cal = fit_calibrator(z, y, method="auto", seed=0)
    assert cal.method == "platt" and cal.kind == "logit" and cal.is_additive
    assert cal.a == pytest.approx(0.6, abs=0.05) and cal.b == pytest.approx(-0.5, abs=0.12)
    assert cal.cv_scores["platt"]["log_loss"] <= cal.cv_scores["isotonic"]["log_loss"]
    zt, yt = _sample(20_000, 1, f)
    s = calibration_summary(yt, _sig(zt), cal.transform(zt))
    assert s["ece_after"] < s["ece_before"] / 3 and s["ece_after"] < 0.01
    assert s["brier_after"] < s["brier_before"]
    # Platt keeps log-odds affine: calibrated logit = a * z + b exactly
    np.testing.assert_allclose(cal.transform_logit(zt), cal.a * zt + cal.b)


def test_isotonic_chosen_for_non_monotone_logit_shape():
    # a step-shaped truth that no affine map of the logit can match
    f = lambda z: np.where(z > -2.0, -0.5, -4.0)  # noqa: E731
    z, y = _sample(20_000, 2, f)
    cal = fit_calibrator(z, y, method="auto", seed=0)
    assert cal.method == "isotonic" and not cal.is_additive
    assert cal.cv_scores["isotonic"]["log_loss"] < cal.cv_scores["platt"]["log_loss"]
    by_brier = fit_calibrator(z, y, method="auto", seed=0, criterion="brier")
    assert by_brier.method == "isotonic"
    zt, yt = _sample(20_000, 3, f)
    s = calibration_summary(yt, _sig(zt), cal.transform(zt))
    assert s["ece_after"] < s["ece_before"]


def test_probability_input_and_json_round_trip():
    f = lambda z: 0.8 * z + 0.3  # noqa: E731
    z, y = _sample(5000, 4, f)
    p = _sig(z)
    for method in ("platt", "isotonic"):
        cal = fit_calibrator(p, y, method=method, seed=0)
        assert cal.kind == "proba" and cal.method == method
        back = Calibrator.from_dict(json.loads(json.dumps(cal.to_dict())))
        np.testing.assert_array_equal(back.transform(p), cal.transform(p))
        out = cal.transform(p)
        assert np.all((out > 0) & (out < 1))
        assert np.all(np.diff(out[np.argsort(p)]) >= -1e-15)  # monotone


def test_deterministic_and_validates():
    z, y = _sample(3000, 5, lambda z: z)
    a = fit_calibrator(z, y, seed=3).to_dict()
    assert a == fit_calibrator(z, y, seed=3).to_dict()
    with pytest.raises(ConfigError):
        fit_calibrator(z, np.zeros_like(y))
    with pytest.raises(ConfigError):
        Calibrator.from_dict({"method": "beta", "kind": "logit"})


def test_local_ece_matches_validation_layer():
    pytest.importorskip("village_credit.validation.calibration")
    from village_credit.validation.calibration import expected_calibration_error

    z, y = _sample(4000, 6, lambda z: 0.7 * z)
    p = np.round(_sig(z), 3)  # ties
    assert ece(y, p) == pytest.approx(expected_calibration_error(y, p), abs=1e-12)


def test_platt_converges_on_wide_range_scores_like_rule_points() -> None:
    """Undamped Newton diverged here (coefficients ~1e10); the fit must match sklearn's MLE."""
    from sklearn.linear_model import LogisticRegression

    from village_credit.models.calibration import _fit_platt

    rng = np.random.default_rng(4)
    z = rng.integers(-40, 260, size=6000).astype(float)
    y = (rng.random(6000) < 1 / (1 + np.exp(-(-1.5 - 0.012 * z)))).astype(float)
    a, b = _fit_platt(z, y)
    ref = LogisticRegression(penalty=None, tol=1e-10, max_iter=1000).fit(z.reshape(-1, 1), y)
    assert a == pytest.approx(ref.coef_[0, 0], rel=1e-4)
    assert b == pytest.approx(ref.intercept_[0], rel=1e-4)
