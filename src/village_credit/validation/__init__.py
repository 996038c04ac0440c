"""Validation layer: discrimination, calibration and stability statistics and the
third-party validation report.

Pure functions on arrays / DataFrames (no models, no MLflow), so that promotion
gates, the monitor and an independent calibrator compute identical numbers.
Convention: ``y`` is 1 for a default; discrimination scores are risk-oriented
(higher = riskier; pass ``-points`` for a points scale). Here: what callers outside
the package use; every other statistic is reached through its module
(``validation.calibration``, ``.discrimination``, ``.stability``, ``.report``); the
calibrator's workflow is ``validation.kit`` and ``validation.recalibration``.
"""

from village_credit.validation._checks import ValidationInputError
from village_credit.validation.calibration import (
    HL_DDOF_INDEPENDENT,
    HL_GROUPS,
    brier,
    expected_calibration_error,
    hosmer_lemeshow,
)
from village_credit.validation.discrimination import auc_delong, ks_statistic, roc_points
from village_credit.validation.report import (
    ValidationConfig,
    validation_report,
    write_validation_report,
)
from village_credit.validation.stability import psi, reference_profile

__all__ = ["HL_DDOF_INDEPENDENT", "HL_GROUPS", "ValidationConfig", "ValidationInputError",
           "auc_delong", "brier", "expected_calibration_error", "hosmer_lemeshow", "ks_statistic",
           "psi", "reference_profile", "roc_points", "validation_report", "write_validation_report"]
