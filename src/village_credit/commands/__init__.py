"""CLI commands, one module per workflow step; cli.py's ``COMMANDS`` names each command's
function and loads its module only when the command runs.

Commands are thin: parse arguments, call the public API, print a summary.

``--help`` groups the commands by workflow, one Typer help panel each, in the order an
analyst meets them (:data:`PANELS`).
"""

DATA = "Data"
RULES = "Rules"
TRAIN = "Train"
EXPLAIN_AUDIT = "Explain and audit"
VALIDATE = "Validate"
REGISTRY = "Registry"
SCORE = "Score"
PANELS: tuple[str, ...] = (DATA, RULES, TRAIN, EXPLAIN_AUDIT, VALIDATE, REGISTRY, SCORE)
