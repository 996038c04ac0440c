"""Vectorised rule scoring: one pass of numpy per item, never a loop per household.

Why this shape: a village panel, a calibrator and a regulator must all be able to
check a household's points, so every point is attributed to exactly one item column
(``base``, ``bonus_<family>``, ``ded_<item>``) and ``rule_points`` is *defined* as
their sum. Decisions (line, rate, grade, approval) come from the same ``Policy``
methods a model's points go through, so rules and models decide alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from village_credit.rules.conditions import EvalContext, check_columns, eval_dates, strings_from_lut
from village_credit.rules.policy import GRADE_BANDS, Policy, load_policy

DECISION_COLUMNS = ["rule_points", "eligible", "vetoed", "veto_codes", "ineligible_codes",
                    "credit_line", "rate", "grade", "approved"]


@dataclass(frozen=True)
class RuleScores:
    """Per-household rule results, index aligned to the input.

    ``items``: one float column per item, summing exactly to ``decisions.rule_points``.
    ``decisions``: ``rule_points, eligible, vetoed, veto_codes, ineligible_codes,
    credit_line, rate, grade, approved``.

    >>> from village_credit.rules import score_rules
    >>> from village_credit.data import GeneratorConfig, generate_households
    >>> scores = score_rules(generate_households(GeneratorConfig(n_households=3, seed=7)), "jinxiang_2022")
    >>> scores.items.sum(axis=1).equals(scores.points)
    True
    >>> scores.explain(0)
                item                                           label  points
    0           base                                     base points    30.0
    1  ded_pollution  livestock or business pollution, safety hazard   -20.0
    """

    items: pd.DataFrame
    decisions: pd.DataFrame
    policy: Policy

    @property
    def points(self) -> pd.Series:
        return self.decisions["rule_points"]

    def explain(self, row: Any, lang: str = "en") -> pd.DataFrame:
        """One household's non-zero items with labels (for a panel or a letter)."""
        r = self.items.loc[row]
        r = r[r != 0]
        return pd.DataFrame({"item": r.index, "label": [self.policy.labels[c][lang] for c in r.index],
                             "points": r.to_numpy()})


def item_points(households: pd.DataFrame, policy: Policy, ctx: EvalContext) -> pd.DataFrame:
    """Points per item; the base item needs every base condition to hold."""
    n = len(households)
    cols: dict[str, np.ndarray] = {}
    ok = np.ones(n, dtype=bool)
    for r in policy.base_conditions:
        ok &= r.condition.test(ctx)
    cols["base"] = np.where(ok, policy.base_points, 0.0)
    for b in policy.bonuses:
        parts = [c.points(ctx) for c in b.components]
        acc = parts[0].astype("float64", copy=True)
        for p in parts[1:]:
            acc = acc + p if b.combine == "sum" else np.maximum(acc, p)
        cols[b.code] = acc
    for d in policy.deductions:
        cols[d.code] = np.where(d.condition.test(ctx), d.points, 0.0)
    return pd.DataFrame(cols, index=households.index, dtype="float64")


def score_rules(households: pd.DataFrame, policy: Policy | str, eval_date: Any = None) -> RuleScores:
    """Score every household under ``policy`` (a ``Policy``, a shipped name or a path).

    ``eval_date=None`` evaluates each row at its own ``snapshot_date``; otherwise one
    date (str, date, Timestamp) for all rows. Event windows are measured back from it.
    Raises ``SchemaError`` listing all missing columns.

    >>> from village_credit import score_rules
    >>> from village_credit.data import GeneratorConfig, generate_households
    >>> households = generate_households(GeneratorConfig(n_households=3, seed=7))
    >>> scores = score_rules(households, "jinxiang_2022")
    >>> scores.decisions[["rule_points", "grade", "credit_line", "approved"]]
       rule_points grade  credit_line  approved
    0         10.0    B2      10000.0      True
    1         30.0    A2      30000.0      True
    2         10.0    B2      10000.0      True
    """
    pol = load_policy(policy)
    need = pol.required_columns + (["snapshot_date"] if eval_date is None else [])
    check_columns(households, need, what=f"score_rules with policy '{pol.name}'")
    ctx = EvalContext(households, eval_dates(households, eval_date), pol)

    items = item_points(households, pol, ctx)
    points = items.to_numpy().sum(axis=1) if items.shape[1] else np.zeros(len(households))
    eligible, inelig_codes = pol._eligibility_arrays(ctx)
    vetoed, veto_codes = pol._veto_arrays(ctx)
    line = pol.credit_line(points, eligible, vetoed, households=households, _ctx=ctx)
    approved = line > 0
    gidx = pol.grade_index(points)
    if pol.vetoed_grade is not None:
        gidx = np.where(vetoed, GRADE_BANDS.index(pol.vetoed_grade), gidx)
    grade = strings_from_lut(list(GRADE_BANDS), gidx)
    rate = np.where(approved, pol.rate(points), np.nan)
    decisions = pd.DataFrame({
        "rule_points": points,
        "eligible": eligible,
        "vetoed": vetoed,
        "veto_codes": veto_codes,
        "ineligible_codes": inelig_codes,
        "credit_line": line,
        "rate": rate,
        "grade": grade,
        "approved": approved,
    }, index=households.index)
    return RuleScores(items=items, decisions=decisions, policy=pol)
