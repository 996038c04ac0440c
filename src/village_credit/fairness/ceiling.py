"""The information ceiling: how much of an equal-risk gap no model on these columns can avoid.

Why: at equal *true* risk, households with thin files (elderly, formerly poor) differ from
others in what the columns reveal about them, so even the best PD the columns allow
regresses their risk towards their group's mean and treats them differently from others
of the same true risk. That part of a gap is closed only by more information (exploration,
dynamic records), never by another model. The synthetic generator knows the truth, so
the ceiling can be measured:

* :func:`ceiling_pd`: the best PD the columns allow, a LightGBM fitted to the true PD
  itself (cross-entropy on the probability, so its prediction estimates E[true PD | x]),
  **cross-fitted** (each row predicted by a model that never saw it; village-grouped
  folds when ``groups`` is given);
* the ceiling system decides with that PD through the model's own policy (same vetoes,
  eligibility, scale and lines), built by the caller (the runner's ``fairness_stage``):
  :func:`ceiling_system` = :func:`household_ceiling_pd` (the PD on the model's inputs)
  + :func:`ceiling_decisions` (that PD through a policy, given eligibility and vetoes);
  the policy lab reuses both pieces under each trial's parameters, and for a rule
  standard (no PD scale) :func:`ranked_points` hands the standard's own points out in
  the ceiling's order;
* :func:`split_gaps`: per true-PD decile and comparison, each system's equal-risk gap
  = ``ceiling`` (the ceiling system's gap) + ``excess`` (the system's own part). The
  gated figure, ``max_excess_*``, is per comparison the excess averaged over the checked
  deciles (weighted by the protected households in each), the largest in absolute value
  over comparisons (both signs; limits 0.02 in approval, 0.05 in line). One decile of 50
  elderly households moves by 0.02 when one household's decision changes, so the
  cell-by-cell maximum (``max_cell_excess_*``, shown) is mostly noise at that scale. The
  ceiling's largest |gap| beside the system's is what the report's headline says only
  more data can close.

Available on synthetic data only (it needs ``true_pd``).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from lightgbm import LGBMRegressor
from sklearn.model_selection import GroupKFold, KFold, cross_val_predict

from village_credit.fairness.audit import DecisionSystem, _arr
from village_credit.fairness.equal_risk import EqualRiskResult
from village_credit.fairness.groups import FairnessInputError
from village_credit.models.features import HouseholdFeatures
from village_credit.rules.engine import score_rules

__all__ = ["CEILING_SYSTEM", "EXCESS_LIMITS", "CeilingSplit", "ceiling_decisions", "ceiling_pd", "ceiling_system",
           "household_ceiling_pd", "ranked_points", "split_gaps"]

CEILING_SYSTEM = "ceiling"
"""Name of the ceiling's decision system in the equal-risk tables."""

EXCESS_LIMITS: dict[str, float] = {"approval": 0.02, "line": 0.05}
"""The issue's limits on a model's own excess over the ceiling (both signs)."""

_PARAMS: dict[str, Any] = {"objective": "cross_entropy", "n_estimators": 300, "learning_rate": 0.05,
                           "num_leaves": 15, "min_child_samples": 20, "subsample": 0.8, "subsample_freq": 1,
                           "colsample_bytree": 0.8, "verbose": -1, "n_jobs": 1}


def ceiling_pd(X: pd.DataFrame, true_pd: Any, *, groups: Any = None, n_splits: int = 5, seed: int = 0,
               params: dict[str, Any] | None = None, X_new: pd.DataFrame | None = None) -> np.ndarray:
    """E[true PD | columns]: the best PD a model on these columns can give each row.

    ``X``: the model's inputs (features and rule items) with their ``true_pd``. Without
    ``X_new``: cross-fitted predictions for the rows of ``X`` (``groups``, e.g. village
    codes: no group split across folds; at least ``n_splits`` rows and groups). With
    ``X_new``: one fit on ``X`` (e.g. the training population, larger than the audited
    sample, so nearer the true ceiling) predicts ``X_new``. The result lies in (0, 1).

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"seen": rng.normal(size=2000), "noise": rng.normal(size=2000)})
    >>> hidden = rng.normal(size=2000)
    >>> true_pd = 1 / (1 + np.exp(-(-3 + X["seen"] + hidden)))
    >>> p = ceiling_pd(X, true_pd, seed=0)
    >>> bool(np.corrcoef(p, X["seen"])[0, 1] > 0.7), bool(abs(np.corrcoef(p, X["noise"])[0, 1]) < 0.1)
    (True, True)
    >>> round(float(p.mean() / true_pd.mean()), 1)
    1.0
    """
    n = len(X)
    tp = _arr(true_pd, "true_pd", n)
    assert tp is not None
    if np.isnan(tp).any() or (tp < 0).any() or (tp > 1).any():
        raise FairnessInputError("true_pd must be probabilities in [0, 1] without missing values")
    if n < 2 * n_splits:
        raise FairnessInputError(f"the information ceiling needs at least {2 * n_splits} rows, got {n}")
    est = LGBMRegressor(**{**_PARAMS, "random_state": seed, **(params or {})})
    if X_new is not None:
        return np.clip(np.asarray(est.fit(X, tp).predict(X_new[list(X.columns)]), dtype=float), 1e-6, 1 - 1e-6)
    if groups is not None:
        g = np.asarray(groups)
        if len(np.unique(g)) < n_splits:
            raise FairnessInputError(f"the information ceiling needs at least {n_splits} groups "
                                     f"(villages), got {len(np.unique(g))}")
        cv: Any = GroupKFold(n_splits=n_splits)
    else:
        g, cv = None, KFold(n_splits=n_splits, shuffle=True, random_state=seed)
    p = cross_val_predict(est, X, tp, groups=g, cv=cv)
    return np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)


def model_inputs(model: Any, households: pd.DataFrame, eval_date: Any = None, *,
                 policy: Any = None) -> pd.DataFrame:
    """What ``model`` reads of each household: its features and, with a policy, the rule
    items (before any neutralisation: the ceiling may use all the columns carry).

    ``model`` None (a rule standard decides): the toolkit's household features with the
    protected columns (the standard itself reads ``head_age``) and every rule item of
    ``policy``.
    """
    if model is None:
        if policy is None:
            raise FairnessInputError("the information ceiling of a rule standard needs its policy")
        X = HouseholdFeatures(include_protected=True).fit_transform(households).reset_index(drop=True)
        items = score_rules(households, policy, eval_date).items.reset_index(drop=True)
        return pd.concat([X, items.add_prefix("rule_")], axis=1)
    X = model.features.transform(households).reset_index(drop=True)
    if getattr(model, "policy", None) is not None and getattr(model, "item_codes", None):
        items = score_rules(households, model.policy, eval_date).items.reset_index(drop=True)
        X = pd.concat([X, items[list(model.item_codes)].add_prefix("rule_")], axis=1)
    return X


def household_ceiling_pd(households: pd.DataFrame, model: Any = None, *, policy: Any = None,
                         reference: pd.DataFrame | None = None, eval_date: Any = None, seed: int = 0,
                         group_column: str | None = "village_code") -> np.ndarray:
    """:func:`ceiling_pd` of each household on :func:`model_inputs` (``model``'s, or with
    ``model`` None the rule standard ``policy``'s): fitted on ``reference`` when given,
    else cross-fitted on ``households`` (folds keep ``group_column``'s groups whole).

    >>> from village_credit.data import GeneratorConfig, generate_households
    >>> from village_credit.rules import load_policy
    >>> hh = generate_households(GeneratorConfig(n_households=600, seed=3))
    >>> p = household_ceiling_pd(hh, policy=load_policy("jinxiang_2022"), seed=0)
    >>> len(p) == len(hh), bool(np.corrcoef(p, hh["true_pd"])[0, 1] > 0.5)
    (True, True)
    """
    if "true_pd" not in households.columns:
        raise FairnessInputError("the information ceiling needs 'true_pd' (synthetic data only)")
    X = model_inputs(model, households, eval_date, policy=policy)
    if reference is not None:
        if "true_pd" not in reference.columns:
            raise FairnessInputError("the ceiling's reference sample needs 'true_pd'")
        return ceiling_pd(model_inputs(model, reference, eval_date, policy=policy),
                          reference["true_pd"].to_numpy(float), seed=seed, X_new=X)
    groups = (households[group_column].to_numpy() if group_column and group_column in households.columns
              else None)
    return ceiling_pd(X, households["true_pd"].to_numpy(float), groups=groups, seed=seed)


def ceiling_decisions(model: Any, households: pd.DataFrame, pd_values: Any, eligible: Any, vetoed: Any, *,
                      eval_date: Any = None, name: str = CEILING_SYSTEM) -> DecisionSystem:
    """The ceiling PD decided by ``model``'s policy (its points scale, grades, lines) with the
    given eligibility and vetoes: only the PD differs from the model's own decision.
    (:func:`ceiling_system` shows it at work.)"""
    p = np.asarray(pd_values, dtype=float)
    out = model.policy_decisions(model.scaling.points_from_pd(p), np.asarray(eligible, bool),
                                 np.asarray(vetoed, bool), households=households, eval_date=eval_date)
    line = out["credit_line"].to_numpy(float)
    return DecisionSystem(name=name, approved=np.nan_to_num(line) > 0, credit_line=line,
                          rate=out["rate"].to_numpy(float), pd=p)


def ranked_points(points: Any, ceiling_pd_values: Any, decided: Any) -> np.ndarray:
    """A rule standard's ceiling points: the standard's own points among the ``decided``
    households (eligible, not vetoed) handed out again in the ceiling's order, the highest
    to the lowest ceiling PD. The standard's grades, lines and approval count stay; only
    the ranking becomes the best the columns allow. Other households keep their points.

    >>> ranked_points(np.array([10.0, 30.0, 20.0, 99.0]), np.array([0.1, 0.3, 0.2, 0.01]),
    ...               np.array([True, True, True, False]))
    array([30., 10., 20., 99.])
    """
    pts = np.asarray(points, dtype=float)
    p = np.asarray(ceiling_pd_values, dtype=float)
    idx = np.flatnonzero(np.asarray(decided, dtype=bool))
    out = pts.copy()
    order = idx[np.argsort(p[idx], kind="stable")]  # lowest ceiling PD first
    out[order] = np.sort(pts[idx], kind="stable")[::-1]
    return out


def ceiling_system(model: Any, households: pd.DataFrame, *, reference: pd.DataFrame | None = None,
                   eval_date: Any = None, seed: int = 0, group_column: str | None = "village_code",
                   name: str = CEILING_SYSTEM) -> DecisionSystem:
    """The ceiling's decisions: :func:`ceiling_pd` on ``model``'s inputs, decided by ``model``'s
    own policy (vetoes, eligibility, points scale, lines), so only the PD differs.

    ``households`` need ``true_pd`` and must all be scored by ``model`` (a quarantined row
    has no decision to compare). ``reference``: households with ``true_pd`` (e.g. the
    training population, every household, observed or not) the ceiling is fitted on;
    without it the ceiling is cross-fitted on ``households`` (``group_column``: folds keep
    its groups whole).

    >>> from village_credit.fairness import ceiling_system
    >>> from village_credit.data import GeneratorConfig, generate_households
    >>> from village_credit.models import fit_blend, split_by_village
    >>> hh = generate_households(GeneratorConfig(n_households=1500, seed=3))
    >>> train, calib, holdout = split_by_village(hh, seed=0).frames(hh)
    >>> model = fit_blend(train, train["default_12m"], calib, calib["default_12m"], policy="jinxiang_2022",
    ...                   gbm_params={"n_estimators": 30}, seed=0)
    >>> system = ceiling_system(model, holdout, seed=0)
    >>> system.name, len(system) == len(holdout), bool(0 < system.pd.mean() < 0.5)
    ('ceiling', True, True)
    """
    if "true_pd" not in households.columns:
        raise FairnessInputError("the information ceiling needs 'true_pd' (synthetic data only)")
    dec = model.decide(households, top_k=1, eval_date=eval_date)
    bad = int((dec["status"] != "scored").sum())
    if bad:
        raise FairnessInputError(f"the information ceiling needs every household scored; {bad} quarantined")
    p = household_ceiling_pd(households, model, reference=reference, eval_date=eval_date, seed=seed,
                             group_column=group_column)
    return ceiling_decisions(model, households, p, dec["eligible"].to_numpy(bool), dec["vetoed"].to_numpy(bool),
                             eval_date=eval_date, name=name)


class CeilingSplit(NamedTuple):
    """``table``: per system x comparison x decile, ``gap``, ``ceiling``, ``excess`` for
    approval and line; ``summary``: per system, the largest |excess|, the ceiling's and
    the system's largest |gap|, and the worst cell's split."""

    table: pd.DataFrame
    summary: dict[str, dict[str, Any]]


def _worst(t: pd.DataFrame, col: str) -> dict[str, Any]:
    t = t[t[col].notna()]
    if t.empty:
        return {}
    r = t.loc[t[col].abs().idxmax()]
    kind = col.split("_")[-1]
    return {"comparison": r["comparison"], "decile": int(r["decile"]), "gap": float(r[f"gap_{kind}"]),
            "ceiling": float(r[f"ceiling_{kind}"]), "excess": float(r[f"excess_{kind}"])}


def _absmax(v: pd.Series) -> float:
    v = v.dropna()
    return float(v.abs().max()) if len(v) else math.nan


def _wmean(v: pd.Series, w: pd.Series) -> float:
    ok = v.notna()
    return float(np.average(v[ok], weights=w[ok])) if ok.any() and w[ok].sum() > 0 else math.nan


def split_gaps(gaps: EqualRiskResult, ceiling_system: str = CEILING_SYSTEM,
               limits: dict[str, float] | None = None) -> CeilingSplit:
    """Each system's equal-risk gaps split into the ceiling's and the system's own excess.

    ``gaps`` must hold the ceiling system (same households, same deciles: the cells pair
    one to one); only cells checked in both count. ``limits``: :data:`EXCESS_LIMITS`.

    >>> from village_credit.fairness import split_gaps
    >>> import numpy as np, pandas as pd
    >>> from village_credit.fairness import DecisionSystem, equal_risk_gaps
    >>> rng = np.random.default_rng(1)
    >>> tp = rng.uniform(0.01, 0.2, 2000)
    >>> old = np.arange(2000) % 3 == 0
    >>> sens = pd.DataFrame({"elderly": np.where(old, "60+", "<60"), "formerly_poor": "other"})
    >>> ceiling = DecisionSystem("ceiling", approved=(tp < 0.12) & ~(old & (tp > 0.10)))
    >>> model = DecisionSystem("blend", approved=(tp < 0.12) & ~(old & (tp > 0.09)))
    >>> gaps = equal_risk_gaps([model, ceiling], sens, tp, min_count=20)
    >>> s = split_gaps(gaps).summary["blend"]
    >>> round(s["max_gap_approval"], 2), round(s["ceiling_max_gap_approval"], 2), round(s["max_excess_approval"], 2)
    (0.88, 0.88, 0.06)
    >>> s["excess_passes"]
    False
    """
    lim = {**EXCESS_LIMITS, **(limits or {})}
    t = gaps.table
    if ceiling_system not in set(t["system"]):
        raise FairnessInputError(f"equal-risk gaps lack the ceiling system {ceiling_system!r}")
    key = ["comparison", "decile"]
    ceil = t[t.system == ceiling_system].set_index(key)[["gap_approval", "gap_line", "checked"]]
    ceil.columns = ["ceiling_approval", "ceiling_line", "ceiling_checked"]
    frames, summary = [], {}
    for system, d in t[t.system != ceiling_system].groupby("system", sort=False):
        m = d.set_index(key)[["n_protected", "gap_approval", "gap_line", "checked"]].join(ceil, how="left").reset_index()
        m["checked"] = m["checked"].astype(bool) & m["ceiling_checked"].fillna(False).astype(bool)
        m["excess_approval"] = m["gap_approval"] - m["ceiling_approval"]
        m["excess_line"] = m["gap_line"] - m["ceiling_line"]
        m.insert(0, "system", system)
        frames.append(m.drop(columns="ceiling_checked"))
        c = m[m["checked"]]
        by_comp = {str(k): {**{f"mean_excess_{w}": _wmean(g[f"excess_{w}"], g["n_protected"])
                               for w in ("approval", "line")},
                            **{f"worst_{w}": _worst(g, f"gap_{w}") for w in ("approval", "line")}}
                   for k, g in c.groupby("comparison", sort=False)}
        s = {"max_gap_approval": _absmax(c["gap_approval"]), "max_gap_line": _absmax(c["gap_line"]),
             "ceiling_max_gap_approval": _absmax(c["ceiling_approval"]),
             "ceiling_max_gap_line": _absmax(c["ceiling_line"]),
             "max_excess_approval": _absmax(pd.Series([v["mean_excess_approval"] for v in by_comp.values()],
                                                      dtype=float)),
             "max_excess_line": _absmax(pd.Series([v["mean_excess_line"] for v in by_comp.values()], dtype=float)),
             "max_cell_excess_approval": _absmax(c["excess_approval"]),
             "max_cell_excess_line": _absmax(c["excess_line"]), "by_comparison": by_comp,
             "worst_approval": _worst(c, "gap_approval"), "worst_line": _worst(c, "gap_line"),
             "cells_checked": len(c), "excess_limits": dict(lim)}
        ok_a = not math.isnan(s["max_excess_approval"]) and s["max_excess_approval"] <= lim["approval"]
        ok_l = math.isnan(s["max_gap_line"]) or s["max_excess_line"] <= lim["line"]
        s["excess_passes"] = bool(len(c) > 0 and ok_a and ok_l)
        summary[str(system)] = s
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return CeilingSplit(table, summary)
