"""One trial's decision and its figures, fast: what a parameter does not touch is computed once.

Why a separate evaluator: a search runs hundreds of policies on the same households.
The features, the model's contributions and every rule condition a parameter cannot
change (bonuses, deductions, eligibility gates other than the age limit) are the same
in every trial, so :class:`PolicyEvaluator` computes them once and keeps each rule
condition's result keyed by the condition as written; a trial evaluates only the
conditions its parameters rewrote (an age limit, a veto window) and the arithmetic
after them. The decision is the one the toolkit makes anyway: the rule standard
(``rules.engine.score_rules``) or, with a model, the blend
(``DecisionModel.decide``); tests check that both give the same lines exactly.

What it knows (:attr:`PolicyEvaluator.basis`):

* ``truth``: generated households carry ``true_pd``; expected loss is
  sum(true PD x line x LGD) and the fairness gaps are the equal-risk gaps within
  true-PD deciles (:func:`village_credit.fairness.equal_risk_gaps`), each split into the
  **information ceiling** and the policy's own **excess**
  (:func:`village_credit.fairness.split_gaps`): the ceiling is the same decision with
  the best PD these columns allow (``fairness.ceiling``: cross-fitted once on the
  households; for the rule standard on the features, ``head_age`` included, and the rule
  items with the age limit lifted, so what the columns reveal is the same for every
  variant of the policy and an exported policy meets the same ceiling) in place of
  the model's, under the trial's own parameters -- for the blend through its policy and
  points scale (``ceiling_decisions``), for the rule standard the standard's own points
  handed out again in the ceiling's order (``ranked_points``); the same exploration
  share reaches the same draw of refused households in both.
* ``observed``: a real labelled sample (no ``true_pd``) has only the outcomes of
  households once lent to. Loss is the observed defaults' (default x line x LGD over
  approved households *with* an outcome; the lines granted to households without one
  are counted apart as ``line_without_outcome_yuan``), and the gaps compare groups
  within each observed outcome (repaid / defaulted). A protected group with fewer than
  ``min_observed`` observed outcomes has **no outcome support**: its gaps are NaN and
  it is not an objective (:func:`village_credit.fairness.support_diagnostics`).
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from village_credit.data.groups import ELDERLY_AGE, FORMERLY_POOR
from village_credit.errors import ConfigError
from village_credit.fairness import (
    DecisionSystem,
    equal_risk_gaps,
    expected_loss,
    sensitive_frame,
    split_gaps,
    support_diagnostics,
)
from village_credit.fairness.ceiling import (
    CEILING_SYSTEM,
    ceiling_decisions,
    household_ceiling_pd,
    ranked_points,
)
from village_credit.fairness.support import DEFAULT_LGD, EXPLORATION_LINE
from village_credit.models.decision import DecisionModel
from village_credit.models.support import NEUTRALISED_KEY, neutralise_items
from village_credit.policy_lab.parameters import without_age_limit
from village_credit.rules.conditions import EvalContext, check_columns, eval_dates
from village_credit.rules.policy import GRADE_BANDS, Policy

COMPARISONS: dict[str, tuple[str, str]] = {
    "elderly": ("elderly", f"{ELDERLY_AGE}+"),
    "formerly_poor": ("formerly_poor", FORMERLY_POOR),
}
"""Comparison name -> (sensitive column, label of the protected group): the equal-risk defaults."""

BASIS_TEXT = {
    "truth": "on the ground truth of generated households (true PD known): a synthetic frontier",
    "observed": ("on observed outcomes only (no true PD): loss and gaps count only households "
                 "once lent to; groups without outcome support are marked"),
}
BASIS_LABEL = {
    "truth": "SYNTHETIC (generated households, true PD)",
    "observed": "MEASURED (observed outcomes only)",
}
"""What every table row, chart and command line says its figures rest on."""

GAP_KINDS = ("approval", "line")
GAP_PARTS = ("gap", "gap_ceiling", "gap_excess")
"""``<comparison>_<kind>_gap`` = ``..._gap_ceiling`` + ``..._gap_excess`` (the worst checked cell)."""


@dataclass
class LabDecision:
    """Per-household arrays of one trial's decision (aligned with the lab's households)."""

    points: np.ndarray
    credit_line: np.ndarray
    approved: np.ndarray
    vetoed: np.ndarray
    eligible: np.ndarray
    explored: np.ndarray
    grade_index: np.ndarray
    ceiling_line: np.ndarray | None = None
    """The information ceiling's lines under the same parameters (truth only)."""


def _key(spec: Any) -> str:
    return json.dumps(spec, sort_keys=True, default=str)


class PolicyEvaluator:
    """Decides for the same households under many variants of one policy.

    ``households``: valid household rows (``validate_households`` first for a file of
    one's own), with ``true_pd`` (truth) or ``default_12m`` and ``outcome_observed``
    (observed). ``model``: a ``DecisionModel`` built on the policy's items (None: the
    rule standard decides). ``seed`` draws which refused households an exploration
    share reaches (the same draw in every trial, so shares nest) and seeds the ceiling's
    fit (cross-fitted on ``households``, folds by village).

    >>> from village_credit.data import GeneratorConfig, generate_households
    >>> from village_credit.rules import load_policy
    >>> hh = generate_households(GeneratorConfig(n_households=300, seed=7))
    >>> lab = PolicyEvaluator(hh, load_policy("jinxiang_2022"), min_count=10)
    >>> f = lab.figures(lab.decide(lab.policy))
    >>> lab.basis, round(f["approval_rate"], 3), f["expected_loss_yuan"] > 0
    ('truth', 0.783, True)
    >>> [round(f[f"elderly_approval_{p}"], 2) for p in ("gap", "gap_ceiling", "gap_excess")]  # = ceiling + own
    [-0.25, 0.0, -0.25]
    """

    def __init__(self, households: pd.DataFrame, policy: Policy, *, model: DecisionModel | None = None,
                 eval_date: Any = None, seed: int = 0, lgd: float = DEFAULT_LGD, min_count: int = 50,
                 min_observed: int = 300) -> None:
        self.policy = policy
        self.households = households.reset_index(drop=True)
        hh = self.households
        n = len(hh)
        if n == 0:
            raise ConfigError("policy lab: no households to decide for")
        self.eval_date = eval_date
        self.lgd, self.min_count, self.min_observed = lgd, min_count, min_observed
        check_columns(hh, policy.required_columns + (["snapshot_date"] if eval_date is None else []),
                      what=f"policy lab with policy '{policy.name}'")
        self.basis = self._basis(hh)
        self.true_pd = hh["true_pd"].to_numpy(dtype=float) if self.basis == "truth" else None
        self.observed = (hh["outcome_observed"].to_numpy(dtype=bool) if "outcome_observed" in hh
                         else np.ones(n, dtype=bool))
        self.default = (hh["default_12m"].to_numpy(dtype=float) if "default_12m" in hh
                        else np.full(n, np.nan))
        self.sensitive = sensitive_frame(hh)
        self.members = {c: self.sensitive[col].to_numpy() == lbl for c, (col, lbl) in COMPARISONS.items()}
        self.support = (support_diagnostics(hh, self.observed, min_observed=min_observed)
                        if "default_12m" in hh else None)
        # on truth every group's gaps are measured; on observed outcomes only a group with enough
        self.supported = {c: self.basis == "truth" or bool(int((m & self.observed).sum()) >= min_observed)
                          for c, m in self.members.items()}
        self._draw = np.random.default_rng(seed).random(n)  # exploration: one draw, every trial
        self._dates = eval_dates(hh, eval_date)
        self._ctx_cache: dict[str, Any] = {"_dates": {}, "_cutoffs": {}}
        self._tests: dict[str, np.ndarray] = {}
        self._items: dict[str, np.ndarray] = {}
        self.model = model
        self._contrib: np.ndarray | None = None
        if model is not None:
            self._prepare_model(model)
        # the best PD the columns allow, once: a trial changes the decision, not what the columns reveal
        self.ceiling_pd = (household_ceiling_pd(hh, model, policy=without_age_limit(policy),
                                                eval_date=eval_date, seed=seed)
                           if self.basis == "truth" else None)

    # ------------------------------------------------------------------ set-up
    def _basis(self, hh: pd.DataFrame) -> str:
        if "true_pd" in hh and hh["true_pd"].notna().all():
            return "truth"
        missing = [c for c in ("default_12m", "outcome_observed") if c not in hh]
        if missing:
            raise ConfigError(f"policy lab: households have no true_pd and no {' and '.join(missing)}: "
                              "nothing to measure loss or fairness on")
        return "observed"

    def _prepare_model(self, model: DecisionModel) -> None:
        if model.policy is None or list(model.item_codes) != [c for c in self.policy.item_codes
                                                              if c in model.item_codes]:
            raise ConfigError("policy lab: the model was not built on this policy's items")
        scored, reasons, _ = model._score(self.households, self.eval_date)  # features and GBM terms, once
        if len(scored.positions) != len(self.households):
            bad = int((reasons != "").sum())
            raise ConfigError(f"policy lab: {bad} household row(s) fail the model's checks; "
                              "validate_households first and pass the valid rows")
        self._contrib = scored.logit_contrib.copy()

    # ------------------------------------------------------------------ cached pieces
    def _test(self, condition: Any, ctx: EvalContext) -> np.ndarray:
        key = _key(condition.spec)
        if key not in self._tests:
            self._tests[key] = condition.test(ctx)
        return self._tests[key]

    def _context(self, policy: Policy) -> EvalContext:
        return EvalContext(self.households, self._dates, policy, **self._ctx_cache)

    def items(self, policy: Policy, ctx: EvalContext | None = None) -> pd.DataFrame:
        """Rule item points under ``policy`` (as ``score_rules(...).items``), cached per item."""
        ctx = ctx or self._context(policy)
        data = policy.to_dict()
        n = len(self.households)
        ok = np.ones(n, dtype=bool)
        for r in policy.base_conditions:
            ok &= self._test(r.condition, ctx)
        cols: dict[str, np.ndarray] = {"base": np.where(ok, policy.base_points, 0.0)}
        for b in policy.bonuses:
            key = _key(["bonus", data["bonuses"][b.family]])
            if key not in self._items:
                parts = [c.points(ctx) for c in b.components]
                acc = parts[0].astype("float64", copy=True)
                for p in parts[1:]:
                    acc = acc + p if b.combine == "sum" else np.maximum(acc, p)
                self._items[key] = acc
            cols[b.code] = self._items[key]
        for d in policy.deductions:
            cols[d.code] = np.where(self._test(d.condition, ctx), d.points, 0.0)
        return pd.DataFrame(cols, index=self.households.index, dtype="float64")

    # ------------------------------------------------------------------ one decision
    def decide(self, policy: Policy, exploration_share: float | None = None) -> LabDecision:
        """The decision under ``policy`` (a variant of the lab's policy): rule standard or
        blend, then the exploration share (default: the policy's declared current share)."""
        ctx = self._context(policy)
        items = self.items(policy, ctx)
        n = len(self.households)
        eligible = np.ones(n, dtype=bool)
        for r in policy.eligibility_rules:
            eligible &= self._test(r.condition, ctx)
        vetoed = np.zeros(n, dtype=bool)
        for r in policy.veto_rules:
            vetoed |= self._test(r.condition, ctx)
        if self.model is None:
            points = items.to_numpy().sum(axis=1) if items.shape[1] else np.zeros(n)
            line = policy.credit_line(points, eligible, vetoed, households=self.households, _ctx=ctx)
            gidx = policy.grade_index(points)
            if policy.vetoed_grade is not None:
                gidx = np.where(vetoed, GRADE_BANDS.index(policy.vetoed_grade), gidx)
        else:
            points = self._blend_points(items)
            model = copy.copy(self.model)
            model.policy = policy
            dec = model.policy_decisions(points, eligible, vetoed, households=self.households,
                                         eval_date=self.eval_date)
            line = dec["credit_line"].to_numpy(dtype=np.float64)
            gidx = pd.Index(GRADE_BANDS).get_indexer(dec["grade"].to_numpy(dtype=object))
        share = _exploration(policy) if exploration_share is None else float(exploration_share)
        line, explored = self._explore(np.asarray(line, dtype=np.float64), vetoed, share)
        ceiling = None
        if self.ceiling_pd is not None:
            ceiling, _ = self._explore(self._ceiling_line(policy, points, eligible, vetoed, ctx), vetoed, share)
        return LabDecision(points, line, line > 0, vetoed, eligible, explored, np.asarray(gidx), ceiling)

    def _explore(self, line: np.ndarray, vetoed: np.ndarray, share: float) -> tuple[np.ndarray, np.ndarray]:
        """Trial lines for the share of refused, not vetoed households the fixed draw reaches."""
        explored = (line <= 0) & ~vetoed & (self._draw < share)
        return np.where(explored, EXPLORATION_LINE, line), explored

    def _ceiling_line(self, policy: Policy, points: np.ndarray, eligible: np.ndarray, vetoed: np.ndarray,
                      ctx: EvalContext) -> np.ndarray:
        """The information ceiling's lines under ``policy`` (see the module docstring)."""
        assert self.ceiling_pd is not None
        if self.model is None:
            pts = ranked_points(points, self.ceiling_pd, eligible & ~vetoed)
            line = policy.credit_line(pts, eligible, vetoed, households=self.households, _ctx=ctx)
            return np.asarray(line, dtype=np.float64)
        model = copy.copy(self.model)
        model.policy = policy
        system = ceiling_decisions(model, self.households, self.ceiling_pd, eligible, vetoed,
                                   eval_date=self.eval_date)
        assert system.credit_line is not None
        return np.asarray(system.credit_line, dtype=np.float64)

    def _blend_points(self, items: pd.DataFrame) -> np.ndarray:
        """The model's points with this policy's rule items (``DecisionModel.decide``'s arithmetic)."""
        model = self.model
        assert model is not None and self._contrib is not None
        contrib = self._contrib.copy()
        codes = model.item_codes
        if codes:
            coef = model.coefficients
            it = neutralise_items(items[codes], model.metadata.get(NEUTRALISED_KEY)).to_numpy(dtype=np.float64)
            means = np.array([model.item_means[c] for c in codes])
            contrib[:, 1:1 + len(codes)] = coef.k_rule * (it - means)
        pts = model.scaling.contribution_points(contrib)
        pts[:, 0] += model.scaling.offset
        return pts.sum(axis=1)

    # ------------------------------------------------------------------ figures
    def figures(self, d: LabDecision) -> dict[str, float]:
        """Approval, loss, grades and the group gaps of one decision (see module docstring)."""
        a, line = d.approved, d.credit_line
        out: dict[str, float] = {
            "approval_rate": float(a.mean()),
            "total_line_yuan": float(line.sum()),
            "explored_share": float(d.explored.mean()),
            "vetoed_share": float(d.vetoed.mean()),
            "a_or_above_share": float(np.isin(d.grade_index, [GRADE_BANDS.index(g)
                                                            for g in self.policy.a_or_above]).mean()),
        }
        if self.basis == "truth":
            assert self.true_pd is not None
            out["expected_loss_yuan"] = expected_loss(self.true_pd, line, a, lgd=self.lgd)
        else:
            seen = a & self.observed
            out["expected_loss_yuan"] = expected_loss(self.default, line, seen, lgd=self.lgd)
            out["line_without_outcome_yuan"] = float(line[a & ~self.observed].sum())
        groups = {**self.members, "others": ~np.logical_or.reduce(list(self.members.values()))}
        for g, m in groups.items():
            out[f"approval_{g}"] = float(a[m].mean()) if m.any() else math.nan
            out[f"mean_line_{g}"] = float(line[m].mean()) if m.any() else math.nan
        out.update(self.gaps(d))
        return out

    def gaps(self, d: LabDecision) -> dict[str, float]:
        """Signed worst approval and line gap per comparison (negative: the protected group gets less).

        The one place the lab computes fairness gaps. On truth: the equal-risk gaps, the
        worst checked cell's gap split as ``_gap_ceiling`` + ``_gap_excess``
        (:func:`~village_credit.fairness.split_gaps` against the ceiling's decision).
        On observed outcomes: the within-outcome gaps; no ceiling (it needs the truth),
        so its parts are NaN.
        """
        out: dict[str, float] = {f"{c}_{k}_{part}": math.nan for c in COMPARISONS for k in GAP_KINDS
                                 for part in GAP_PARTS}
        if self.basis == "truth":
            assert d.ceiling_line is not None
            systems = [DecisionSystem("trial", d.approved, d.credit_line),
                       DecisionSystem(CEILING_SYSTEM, d.ceiling_line > 0, d.ceiling_line)]
            res = equal_risk_gaps(systems, self.sensitive, self.true_pd, min_count=self.min_count,
                                  comparisons=COMPARISONS)
            by_comp = split_gaps(res).summary["trial"]["by_comparison"]
            for c in COMPARISONS:
                for k in GAP_KINDS:
                    worst = by_comp.get(c, {}).get(f"worst_{k}") or {}
                    out[f"{c}_{k}_gap"] = worst.get("gap", math.nan)
                    out[f"{c}_{k}_gap_ceiling"] = worst.get("ceiling", math.nan)
                    out[f"{c}_{k}_gap_excess"] = worst.get("excess", math.nan)
            return out
        for c, prot in self.members.items():
            if not self.supported[c]:
                continue
            ga, gl = [], []
            for outcome in (0.0, 1.0):
                cell = self.observed & (self.default == outcome)
                p, o = cell & prot, cell & ~prot
                if p.sum() < self.min_count or o.sum() < self.min_count:
                    continue
                ga.append(d.approved[p].mean() - d.approved[o].mean())
                lp, lo = d.credit_line[p].mean(), d.credit_line[o].mean()
                den = lo if lo > 0 else lp
                gl.append((lp - lo) / den if den > 0 else 0.0)
            out[f"{c}_approval_gap"] = _worst(np.asarray(ga, dtype=float))
            out[f"{c}_line_gap"] = _worst(np.asarray(gl, dtype=float))
        return out


def _worst(gaps: np.ndarray) -> float:
    """The gap of largest size, sign kept; NaN when no cell could be checked."""
    g = gaps[np.isfinite(gaps)]
    return float(g[np.argmax(np.abs(g))]) if g.size else math.nan


def _exploration(policy: Policy) -> float:
    par = policy.parameters
    return float(par.exploration_share.current) if par is not None and par.exploration_share is not None else 0.0
