"""MLflow layer: store set-up, run context, the decision pyfunc, gates and promotion.

Sits on top of ``models`` / ``validation`` / ``fairness``; nothing below imports it.
``pyfunc_model`` is not imported eagerly (it imports the package for ``code_paths``).
"""

from village_credit.registry.gates import (
    DEFAULT_THRESHOLDS,
    FAIRNESS_KEYS,
    Gate,
    GateReport,
    evaluate_gates,
)
from village_credit.registry.promotion import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS,
    PromotionResult,
    RegistryError,
    RollbackResult,
    champion_version,
    find_evidence,
    list_versions,
    load_evidence,
    log_evidence,
    model_thresholds,
    promote,
    record_thresholds,
    recorded_evidence,
    rollback,
)
from village_credit.registry.loading import (
    LoadedModel,
    ModelLoadError,
    UngatedModelError,
    load_decision_model,
    load_model,
    resolve_uri,
)
from village_credit.registry.store import (
    DEFAULT_EXPERIMENT,
    DEFAULT_MODEL_NAME,
    configure,
    default_tracking_uri,
    get_client,
    model_name_from_config,
)
from village_credit.registry.tracking import (
    data_fingerprint,
    git_commit,
    library_versions,
    log_run_context,
    strip_personal_columns,
)

__all__ = [
    "CHALLENGER", "CHAMPION", "PREVIOUS", "DEFAULT_EXPERIMENT", "DEFAULT_MODEL_NAME",
    "DEFAULT_THRESHOLDS", "FAIRNESS_KEYS", "Gate", "GateReport", "PromotionResult",
    "RegistryError", "RollbackResult", "champion_version", "configure", "data_fingerprint",
    "default_tracking_uri", "evaluate_gates", "get_client", "git_commit", "library_versions",
    "list_versions", "load_evidence", "log_evidence", "log_run_context",
    "model_name_from_config", "promote", "recorded_evidence", "rollback",
    "strip_personal_columns", "find_evidence", "model_thresholds", "record_thresholds",
    "LoadedModel", "ModelLoadError", "UngatedModelError", "load_decision_model", "load_model",
    "resolve_uri",
]
