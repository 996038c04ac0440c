"""MLflow layer: store set-up, run context, the decision pyfunc, gates and promotion.

Sits on top of ``models`` / ``validation`` / ``fairness``; nothing below imports it.
Here: what the pipeline, the CLI, the notebooks and a calibrator use; the rest is
reached through its module (``registry.store``, ``.tracking``, ``.gates``,
``.promotion``, ``.loading``, ``.pyfunc_model``). ``pyfunc_model`` is not imported
eagerly (it imports the package for ``code_paths``).
"""

from village_credit.registry.gates import FAIRNESS_KEYS, evaluate_gates
from village_credit.registry.loading import (
    ModelLoadError,
    UngatedModelError,
    load_decision_model,
    load_model,
)
from village_credit.registry.promotion import (
    RegistryError,
    champion_version,
    list_versions,
    log_evidence,
    promote,
    recorded_evidence,
    rollback,
)
from village_credit.registry.store import configure, get_client
from village_credit.registry.tracking import data_fingerprint, log_run_context

__all__ = ["FAIRNESS_KEYS", "ModelLoadError", "RegistryError", "UngatedModelError",
           "champion_version", "configure", "data_fingerprint", "evaluate_gates", "get_client",
           "list_versions", "load_decision_model", "load_model", "log_evidence", "log_run_context",
           "promote", "recorded_evidence", "rollback"]
