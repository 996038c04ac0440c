"""MLflow layer: store set-up, run context, the decision pyfunc, gates and promotion.

Sits on top of ``models`` / ``validation`` / ``fairness``; nothing below imports it.
Here: what the pipeline, the CLI, the notebooks and a calibrator use; the rest is
reached through its module (``registry.store``, ``.tracking``, ``.gates``,
``.promotion``, ``.loading``, ``.pyfunc_model``). Every name is imported on first use:
importing a module of this package (``registry.loading``, ``registry.decision_face``)
must not import MLflow, which ``village-credit score``'s own process never does
(``registry.store_process``).
"""

from village_credit._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "FAIRNESS_KEYS": "gates",
    "evaluate_gates": "gates",
    "ModelLoadError": "loading",
    "UngatedModelError": "loading",
    "load_decision_model": "loading",
    "load_model": "loading",
    "RegistryError": "promotion",
    "champion_version": "promotion",
    "list_versions": "promotion",
    "log_evidence": "promotion",
    "promote": "promotion",
    "recorded_evidence": "promotion",
    "rollback": "promotion",
    "configure": "store",
    "get_client": "store",
    "data_fingerprint": "tracking",
    "log_run_context": "tracking",
}

__all__ = ["FAIRNESS_KEYS", "ModelLoadError", "RegistryError", "UngatedModelError",
           "champion_version", "configure", "data_fingerprint", "evaluate_gates", "get_client",
           "list_versions", "load_decision_model", "load_model", "log_evidence", "log_run_context",
           "promote", "recorded_evidence", "rollback"]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
