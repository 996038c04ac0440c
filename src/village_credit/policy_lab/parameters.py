"""A policy's declared parameters: today's values, a trial's values, and the policy they make.

Why here and not in ``rules``: the ``parameters:`` block is declared and checked with the
rest of the file format (:class:`~village_credit.rules.policy_format.ParametersSpec`);
what a value *does* to a policy (which keys it rewrites) is the lab's business, in one
function, :func:`apply_parameters`, so a trial's policy and the exported YAML are the
same object.

Parameter names are flat: ``age_limit``, ``grade_shift``, ``line_per_point``,
``veto_window.<veto>``, ``exploration_share``, ``approval_min_points``.
"""

from __future__ import annotations

from typing import Any

from village_credit.errors import PolicyError
from village_credit.rules.policy import Policy
from village_credit.rules.policy_format import RangeSpec

VETO_PREFIX = "veto_window."
INTEGER_PARAMETERS = ("age_limit",)
"""Parameters written back as whole numbers (veto windows are always whole years)."""


def parameter_space(policy: Policy) -> dict[str, RangeSpec]:
    """Flat name -> range of every parameter the policy declares (empty when none).

    >>> from village_credit.rules import load_policy
    >>> sorted(parameter_space(load_policy("jinxiang_2022")))[:3]
    ['age_limit', 'approval_min_points', 'exploration_share']
    """
    par = policy.parameters
    if par is None:
        return {}
    out: dict[str, RangeSpec] = {}
    for key in ("age_limit", "grade_shift", "line_per_point", "exploration_share", "approval_min_points"):
        spec = getattr(par, key)
        if spec is not None:
            out[key] = spec
    for veto, spec in (par.veto_windows or {}).items():
        out[VETO_PREFIX + veto] = spec
    return out


def current_values(policy: Policy) -> dict[str, float]:
    """Today's value of every declared parameter, read from the policy itself.

    >>> from village_credit.rules import load_policy
    >>> v = current_values(load_policy("xx_county"))
    >>> v["age_limit"], v["approval_min_points"], v["line_per_point"], v["veto_window.crime"]
    (65.0, 30.0, 1000.0, 3.0)
    """
    space = parameter_space(policy)
    data = policy.to_dict()
    out: dict[str, float] = {}
    for name in space:
        if name == "age_limit":
            out[name] = float(_age_conditions(data)[0]["max"])
        elif name == "grade_shift":
            out[name] = 0.0
        elif name == "line_per_point":
            out[name] = float(policy.yuan_per_point)
        elif name == "exploration_share":
            out[name] = float(data["parameters"]["exploration_share"].get("current", 0.0))
        elif name == "approval_min_points":
            out[name] = float(policy.min_points)
        else:
            out[name] = float(data["vetoes"][name.removeprefix(VETO_PREFIX)]["window_years"])
    return out


def _age_conditions(data: dict[str, Any]) -> list[dict[str, Any]]:
    conds = list((data.get("base", {}).get("conditions") or {}).values())
    conds += list((data.get("eligibility") or {}).values())
    return [c for c in conds if isinstance(c, dict) and c.get("column") == "head_age" and "max" in c]


def without_age_limit(policy: Policy) -> Policy:
    """``policy`` with every ``head_age`` maximum lifted (to 200): what the information
    ceiling's rule items are computed under. The ceiling reads ``head_age`` itself, so an
    age limit adds no information; lifted, it is the same for every variant of a policy.

    Not a policy to search: its ``parameters`` block is dropped.

    >>> from village_credit.rules import load_policy
    >>> lifted = without_age_limit(load_policy("jinxiang_2022"))
    >>> [c["max"] for c in _age_conditions(lifted.to_dict())], lifted.parameters
    ([200], None)
    """
    data = policy.to_dict()
    data.pop("parameters", None)
    for cond in _age_conditions(data):
        cond["max"] = 200
    return Policy(data, policy.source)


def _clean(name: str, value: float) -> float | int:
    if name.startswith(VETO_PREFIX) or name in INTEGER_PARAMETERS:
        return round(value)
    return float(round(value, 9))


def apply_parameters(policy: Policy, values: dict[str, float], *, name: str | None = None) -> Policy:
    """``policy`` with ``values`` applied (names as :func:`parameter_space`); unknown names
    and values outside their declared range are a ``PolicyError``.

    ``grade_shift`` is relative to ``policy``'s cut-offs; every other value is absolute.

    >>> from village_credit.rules import load_policy
    >>> p = apply_parameters(load_policy("jinxiang_2022"), {"age_limit": 65, "line_per_point": 1200},
    ...                      name="pilot")
    >>> p.name, p.yuan_per_point, current_values(p)["age_limit"]
    ('pilot', 1200.0, 65.0)
    """
    space = parameter_space(policy)
    data = policy.to_dict()
    for key, raw in values.items():
        if key not in space:
            raise PolicyError(f"{policy.source}: parameters: '{key}' is not a declared parameter "
                              f"(declared: {', '.join(space) or 'none'})")
        value = _clean(key, float(raw))
        if key != "grade_shift" and not space[key].contains(float(value)):
            raise PolicyError(f"{policy.source}: parameters.{key}: {value} is not among the values tried "
                              f"({space[key].describe()})")
        if key == "age_limit":
            for cond in _age_conditions(data):
                cond["max"] = value
        elif key == "grade_shift":
            cut = data["grades"]["cutoffs"]
            for band in cut:
                cut[band] = _clean("grade_shift", cut[band] + value)
        elif key == "line_per_point":
            cl = data["credit_line"]
            cl["yuan_per_step"] = _clean(key, value * cl["points_per_step"])
        elif key == "exploration_share":
            data["parameters"]["exploration_share"]["current"] = value
        elif key == "approval_min_points":
            data["approval"] = {**(data.get("approval") or {}), "min_points": value}
        else:
            data["vetoes"][key.removeprefix(VETO_PREFIX)]["window_years"] = value
    if name is not None:
        data["name"] = name
    return Policy(data, policy.source if name is None else f"{policy.source} ({name})")


def suggest(trial: Any, space: dict[str, RangeSpec]) -> dict[str, float]:
    """One value per parameter from an Optuna trial (a grid when the range has a step).

    ``grade_shift`` values are shifts from the lab's base policy, so today's standard is
    the trial with every parameter at :func:`current_values`.
    """
    out: dict[str, float] = {}
    for name, spec in space.items():
        if spec.choices is not None:
            out[name] = float(trial.suggest_categorical(name, [float(c) for c in spec.choices]))
        else:
            assert spec.low is not None and spec.high is not None
            out[name] = float(trial.suggest_float(name, spec.low, spec.high, step=spec.step))
        out[name] = float(_clean(name, out[name]))
    return out
