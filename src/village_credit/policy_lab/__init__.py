"""The policy lab: the frontier of approval, loss and fair treatment over a policy's parameters.

A programme designer declares what may vary in the policy YAML (``parameters:``); the lab
searches those values with Optuna's multi-objective NSGA-II on the same households and
returns the Pareto set with today's standard marked (docs/policy-lab.md).
"""

from village_credit._lazy import lazy_exports

__all__ = ["PolicyEvaluator", "apply_parameters", "current_values", "run_policy_lab"]

__getattr__, __dir__ = lazy_exports(__name__, {
    "PolicyEvaluator": "evaluate",
    "apply_parameters": "parameters",
    "current_values": "parameters",
    "run_policy_lab": "search",
}, globals())
