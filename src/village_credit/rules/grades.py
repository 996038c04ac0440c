"""Grade order and policy-set grades: the one definition every grade table uses.

The rank-ordering table, the per-grade back-test, the migration matrix, the
pipeline and the validation kit all order grades and separate households whose
grade the *policy* sets (vetoed: E2 whatever their PD) through these functions,
so a fix in one table cannot miss another copy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from village_credit.data.groups import ELDERLY_AGE
from village_credit.rules.policy import GRADE_BANDS

__all__ = ["POLICY_GRADED", "grade_order", "model_graded", "policy_age_ceiling", "policy_age_max"]

POLICY_GRADED = "vetoed (graded by policy)"
"""Row label for households whose grade the policy sets regardless of their PD."""


def grade_order() -> list[str]:
    """Grades best first (A1 ... E2), as every table lists them."""
    return list(GRADE_BANDS)


def model_graded(n: int, policy_graded: Any = None) -> np.ndarray:
    """Boolean mask of the households graded by the model's PD (not set by the policy).

    ``policy_graded``: bool per household (e.g. the decisions' ``vetoed`` column) or
    ``None`` (every household graded by the model).
    """
    if policy_graded is None:
        return np.ones(int(n), dtype=bool)
    mask = np.asarray(policy_graded, dtype=bool)
    if mask.shape != (int(n),):
        raise ValueError(f"policy_graded: {mask.shape[0] if mask.ndim else 1} values "
                         f"for {n} households")
    return ~mask


def policy_age_max(policy: Any) -> int | None:
    """The policy's upper age limit for a head of household (``None`` without one).

    The fairness audit's ``policy_age`` groups split there; :func:`policy_age_ceiling`
    is the same with the one fallback every caller uses.
    """
    for attr in ("age_max", "base_age_max"):
        if policy is not None and getattr(policy, attr, None) is not None:
            return int(getattr(policy, attr))
    return None


def policy_age_ceiling(policy: Any) -> int:
    """The policy's upper age limit, or :data:`~village_credit.data.groups.ELDERLY_AGE` without one.

    >>> policy_age_ceiling(None)
    60
    """
    age_max = policy_age_max(policy)
    return ELDERLY_AGE if age_max is None else age_max
