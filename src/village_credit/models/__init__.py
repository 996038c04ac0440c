"""Models: features, LightGBM, tuning, calibration, scorecard, the blend and the decision model.

Public API (resolved lazily, PEP 562, so ``import village_credit.models`` stays cheap
and a module still being written never breaks the package):

* ``estimator``: :class:`CreditScoreClassifier` (the whole decision model, scikit-learn contract);
* ``scaling``: :class:`PointsScaling` (points <-> log-odds <-> PD), ``sigmoid``, ``logit``;
* ``blend``: :func:`fit_blend`, :class:`BlendCoefficients`, ``STRATEGIES``, ``logistic_fit``;
* ``decision``: :class:`DecisionModel` (``decide``, ``contributions``, ``reason_codes``,
  ``predict_pd``, ``save`` / ``load``), ``DECISION_COLUMNS``;
* ``features``: :class:`HouseholdFeatures`, :class:`GenericFeatures`, :class:`FeatureSpec`,
  ``FEATURE_SPECS``, ``spec_for``; ``gbm``: :class:`LGBMDefaultModel`;
  ``calibration``: :func:`fit_calibrator`, :class:`Calibrator`; ``splits``:
  :func:`split_by_village`, :func:`village_group_kfold`, :func:`out_of_time`;
  ``tuning``: :func:`tune`; ``scorecard``: :class:`ScorecardModel`.
"""

from __future__ import annotations


from village_credit._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "PointsScaling": "scaling",
    "sigmoid": "scaling",
    "logit": "scaling",
    "fit_blend": "blend",
    "BlendCoefficients": "coefficients",
    "STRATEGIES": "coefficients",
    "logistic_fit": "blend",
    "DecisionModel": "decision",
    "DECISION_COLUMNS": "decision",
    "FeatureSpec": "features",
    "FEATURE_SPECS": "features",
    "HouseholdFeatures": "features",
    "GenericFeatures": "features",
    "spec_for": "features",
    "specs_from_frame": "features",
    "load_feature_specs": "features",
    "LGBMDefaultModel": "gbm",
    "Calibrator": "calibration",
    "fit_calibrator": "calibration",
    "calibration_summary": "calibration",
    "split_by_village": "splits",
    "village_group_kfold": "splits",
    "out_of_time": "splits",
    "VillageSplit": "splits",
    "tune": "tuning",
    "TuningResult": "tuning",
    "ScorecardModel": "scorecard",
    "CreditScoreClassifier": "estimator",
    "fit_blend_cv": "blend",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
