"""Models: features, LightGBM, tuning, calibration, scorecard, the blend and the decision model.

Public API (resolved lazily, PEP 562, so ``import village_credit.models`` stays cheap
and a module still being written never breaks the package):

* ``estimator``: :class:`CreditScoreClassifier` (the whole decision model, scikit-learn contract);
* ``decision``: :class:`DecisionModel` (``decide``, ``contributions``, ``reason_codes``,
  ``predict_pd``, ``save`` / ``load``);
* ``blend``: :func:`fit_blend`, :func:`logistic_fit`; ``scaling``: :class:`PointsScaling`
  (points <-> log-odds <-> PD);
* ``features``: :class:`HouseholdFeatures`, :func:`spec_for`, :func:`load_feature_specs`;
* ``calibration``: :func:`fit_calibrator`, :class:`Calibrator`; ``splits``:
  :func:`split_by_village`; ``tuning``: :func:`tune`.

Everything else (``gbm.LGBMDefaultModel``, ``scorecard.ScorecardModel``,
``blend.fit_blend_cv``, ``coefficients.BlendCoefficients``, ``additive``, ``reasons``,
``splits.village_group_kfold``, ...) is used inside this package or by tests and is
reached through its module.
"""

from __future__ import annotations

from village_credit._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "CreditScoreClassifier": "estimator",
    "DecisionModel": "decision",
    "fit_blend": "blend",
    "logistic_fit": "blend",
    "PointsScaling": "scaling",
    "HouseholdFeatures": "features",
    "spec_for": "features",
    "load_feature_specs": "features",
    "Calibrator": "calibration",
    "fit_calibrator": "calibration",
    "split_by_village": "splits",
    "tune": "tuning",
}

__all__ = [
    "Calibrator",
    "CreditScoreClassifier",
    "DecisionModel",
    "HouseholdFeatures",
    "PointsScaling",
    "fit_blend",
    "fit_calibrator",
    "load_feature_specs",
    "logistic_fit",
    "spec_for",
    "split_by_village",
    "tune",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
