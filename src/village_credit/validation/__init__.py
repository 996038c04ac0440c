"""Validation layer: discrimination, calibration and stability statistics and the
third-party validation report.

Pure functions on arrays / DataFrames (no models, no MLflow) so that promotion
gates, the monitor and an independent calibrator compute identical numbers.
Convention: ``y`` is 1 for a default; discrimination scores are risk-oriented
(higher = riskier; pass ``-points`` for a points scale).
"""

from village_credit.validation._checks import ValidationInputError
from village_credit.validation.calibration import (
    HL_DDOF_FITTED,
    HL_DDOF_INDEPENDENT,
    HL_GROUPS,
    brier,
    calibration_in_the_large,
    expected_calibration_error,
    grade_calibration,
    hosmer_lemeshow,
    jeffreys_p_value,
    reliability_table,
    spiegelhalter,
    traffic_light,
)
from village_credit.validation.discrimination import (
    auc_delong,
    cap_points,
    delong_components,
    delong_test,
    gini,
    ks_statistic,
    rank_ordering,
    roc_points,
)
from village_credit.validation.report import (
    overall_verdict,
    ValidationConfig,
    drift_report,
    validation_report,
    write_drift_report,
    write_validation_report,
)
from village_credit.validation.stability import (
    alert_level,
    csi_from_profile,
    csi_table,
    migration_matrix,
    migration_summary,
    profile_column,
    psi,
    psi_from_profile,
    psi_table,
    psi_table_from_profile,
    reference_profile,
)

__all__ = [
    "HL_DDOF_FITTED", "HL_DDOF_INDEPENDENT", "HL_GROUPS", "calibration_in_the_large", "overall_verdict",
    "ValidationConfig",
    "ValidationInputError",
    "alert_level",
    "auc_delong",
    "brier",
    "cap_points",
    "csi_from_profile",
    "csi_table",
    "delong_components",
    "delong_test",
    "drift_report",
    "expected_calibration_error",
    "gini",
    "grade_calibration",
    "hosmer_lemeshow",
    "jeffreys_p_value",
    "ks_statistic",
    "migration_matrix",
    "migration_summary",
    "profile_column",
    "psi",
    "psi_from_profile",
    "psi_table",
    "psi_table_from_profile",
    "rank_ordering",
    "reference_profile",
    "reliability_table",
    "roc_points",
    "spiegelhalter",
    "traffic_light",
    "validation_report",
    "write_drift_report",
    "write_validation_report",
]
