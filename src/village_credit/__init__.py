"""village-credit: credit scoring for rural whole-village credit programmes.

Rule-based points standards as declarative policies, blended with gradient-boosted
default prediction, explained, checked for fairness towards elderly and formerly
poor households, and promoted through MLflow gates.

The root holds the names an analyst needs first (resolved lazily, PEP 562, so
``import village_credit`` imports no pandas, LightGBM or MLflow); everything else is
reached through its subpackage (``village_credit.data``, ``.rules``, ``.models``,
``.explain``, ``.fairness``, ``.validation``, ``.registry``, ``.scoring``,
``.privacy``, ``.reporting``), and modules inside a subpackage are implementation.
"""

from __future__ import annotations

from village_credit._lazy import lazy_exports

__version__ = "0.1.0"

# name -> where it is public (a subpackage's ``__all__``, or a top-level module)
_EXPORTS: dict[str, str] = {
    # data
    "GeneratorConfig": "village_credit.data",
    "generate_households": "village_credit.data",
    "read_table": "village_credit.data",
    "validate_households": "village_credit.data",
    # rules
    "load_policy": "village_credit.rules",
    "score_rules": "village_credit.rules",
    # the estimator and the one runner
    "CreditScoreClassifier": "village_credit.models",
    "load_config": "village_credit.config",
    "run_experiment": "village_credit.pipeline",
    # audit and validation
    "fairness_audit": "village_credit.fairness",
    "validation_report": "village_credit.validation",
    # registry and scoring
    "promote": "village_credit.registry",
    "load_model": "village_credit.registry",
    "score_file": "village_credit.scoring",
}

__all__ = [
    "CreditScoreClassifier",
    "GeneratorConfig",
    "__version__",
    "fairness_audit",
    "generate_households",
    "load_config",
    "load_model",
    "load_policy",
    "promote",
    "read_table",
    "run_experiment",
    "score_file",
    "score_rules",
    "validate_households",
    "validation_report",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
