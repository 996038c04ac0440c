"""CLI command groups. Each module defines ``register(app)``; cli.py wires them.

Commands are thin: parse arguments, call the public API, print a summary.

``--help`` groups the commands by workflow, one Typer help panel each, in the order an
analyst meets them (:data:`PANELS`); cli.py registers the modules in that order.
"""

DATA = "Data"
RULES = "Rules"
TRAIN = "Train"
EXPLAIN_AUDIT = "Explain and audit"
VALIDATE = "Validate"
REGISTRY = "Registry"
SCORE = "Score"
PANELS: tuple[str, ...] = (DATA, RULES, TRAIN, EXPLAIN_AUDIT, VALIDATE, REGISTRY, SCORE)

MODULE_ORDER: tuple[str, ...] = (
    "data", "privacy", "rules", "policy_lab", "pipeline", "formats", "explain", "fairness", "validation", "registry", "scoring",
)
"""Command modules in workflow order (Typer lists panels in the order commands are added)."""
