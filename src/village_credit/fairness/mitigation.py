"""Mitigation options and their trade-off table.

Why options as decision systems: a policy change (drop the age cutoff), a fairlearn
post-processor or a reduction all end in per-household decisions, so the trade-off
table compares them with the same code as the audit: ranking quality (AUC), the
default rate of approved households (observed ``y`` and, on synthetic data, the mean
true PD), approval rate, and the approval / line gaps between groups.

Options offered:

* :func:`policy_change_systems`: decisions under ``jinxiang_2022`` vs
  ``jinxiang_2022_no_age_cutoff`` (calls the rules engine), or pass two decision
  frames to :meth:`DecisionSystem.from_decisions` yourself.
* :func:`threshold_optimizer_system`: fairlearn ``ThresholdOptimizer`` (post-processing,
  ``prefit=True``) on a fitted classifier, or on a precomputed score through
  :class:`PrecomputedScore` (the score is the estimator's decision function). Group-specific
  randomised thresholds that equalise approval rates (``demographic_parity``) or
  TPR and FPR (``equalized_odds``) while maximising ``objective``.
* :func:`reduction_system`: fairlearn ``ExponentiatedGradient`` (in-processing) with
  ``DemographicParity`` or ``EqualizedOdds`` constraints around any sklearn classifier.

Labels follow the audit's credit framing: positive label = good outcome (no default),
positive prediction = approved; scores passed to fairlearn are "higher = safer".
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import pandas as pd
from fairlearn.postprocessing import ThresholdOptimizer
from fairlearn.reductions import DemographicParity, EqualizedOdds, ExponentiatedGradient
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.metrics import roc_auc_score

from village_credit.fairness.audit import DecisionSystem, _arr
from village_credit.fairness.equal_risk import equal_risk_gaps
from village_credit.fairness.groups import FairnessInputError, check_sensitive
from village_credit.rules.engine import score_rules
from village_credit.rules.policy import load_policy

Constraint = Literal["demographic_parity", "equalized_odds", "true_positive_rate_parity",
                     "false_positive_rate_parity", "selection_rate_parity"]


class PrecomputedScore(ClassifierMixin, BaseEstimator):
    """A score already computed per household, exposed as a fitted sklearn classifier.

    Why: ThresholdOptimizer post-processes *scores*; the blend's score comes from a
    DecisionModel, not from ``X``. ``X`` is a one-column array holding the score
    (higher = more likely a good outcome), and ``decision_function`` returns it.
    """

    def fit(self, X: Any, y: Any = None) -> "PrecomputedScore":
        self.n_features_in_ = 1
        self.classes_ = np.array([0, 1])
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        return np.asarray(X, dtype=float).reshape(len(X), -1)[:, 0]

    def predict(self, X: Any) -> np.ndarray:
        return (self.decision_function(X) > 0).astype(int)


def combined_groups(sensitive: pd.DataFrame, features: tuple[str, ...] = ("elderly", "formerly_poor")) -> pd.Series:
    """One label per household joining several sensitive columns (``60+|formerly_poor``).

    Examples
    --------
    >>> import pandas as pd
    >>> from village_credit.fairness import combined_groups, sensitive_frame
    >>> sens = sensitive_frame(pd.DataFrame({"head_age": [45, 61, 70], "formerly_poor": [True, False, True]}))
    >>> combined_groups(sens).tolist()
    ['<60|formerly_poor', '60+|other', '60+|formerly_poor']
    """
    sens = check_sensitive(sensitive)
    missing = [f for f in features if f not in sens.columns]
    if missing:
        raise FairnessInputError(f"sensitive features {missing} not in the sensitive frame")
    out = sens[features[0]]
    for f in features[1:]:
        out = out + "|" + sens[f]
    return out.rename("|".join(features))


def policy_change_systems(
    households: pd.DataFrame,
    policies: tuple[str, ...] = ("jinxiang_2022", "jinxiang_2022_no_age_cutoff"),
    eval_date: Any = None,
) -> list[DecisionSystem]:
    """Decisions of the rules engine under each policy, as decision systems named by policy.

    Examples
    --------
    >>> from village_credit.data import GeneratorConfig, generate_households
    >>> hh = generate_households(GeneratorConfig(n_households=200, seed=7))
    >>> from village_credit.fairness import policy_change_systems
    >>> with_cut, without_cut = policy_change_systems(hh)
    >>> with_cut.name, f"{with_cut.approved.mean():.3f}"
    ('policy:jinxiang_2022', '0.770')
    >>> without_cut.name, f"{without_cut.approved.mean():.3f}"  # elderly households approved too
    ('policy:jinxiang_2022_no_age_cutoff', '0.855')
    """
    out = []
    for name in policies:
        dec = score_rules(households, load_policy(name), eval_date).decisions
        out.append(DecisionSystem.from_decisions(f"policy:{name}", dec))
    return out


def threshold_optimizer_system(
    name: str,
    sensitive_features: Any,
    y_true: Any,
    *,
    score: Any = None,
    estimator: Any = None,
    X: Any = None,
    constraint: Constraint = "demographic_parity",
    objective: str = "balanced_accuracy_score",
    fit_mask: Any = None,
    credit_line: Any = None,
    pd_: Any = None,
    seed: int = 0,
) -> DecisionSystem:
    """Approvals from fairlearn's ThresholdOptimizer, fitted on ``fit_mask`` (default: all).

    Give either ``score`` (higher = safer, e.g. ``1 - pd`` or points) or a fitted
    ``estimator`` with its feature matrix ``X`` (its ``predict_proba`` column 1 must be
    P(good)). ``y_true`` is the default flag (1 = defaulted). ``credit_line`` is the line a
    household gets if approved; rejected households get 0. The default objective is
    balanced accuracy: with defaults near 8 %, plain accuracy would approve everyone.

    Examples
    --------
    >>> from village_credit.data import GeneratorConfig, generate_households
    >>> hh = generate_households(GeneratorConfig(n_households=200, seed=7))
    >>> import pandas as pd
    >>> from village_credit.fairness import combined_groups, sensitive_frame, threshold_optimizer_system
    >>> sens = sensitive_frame(hh)
    >>> system = threshold_optimizer_system("true PD + ThresholdOptimizer", combined_groups(sens, ("elderly",)),
    ...                                     hh["default_12m"], score=1 - hh["true_pd"].to_numpy(), seed=0)
    >>> rates = pd.Series(system.approved).groupby(sens["elderly"].to_numpy()).mean()
    >>> bool(abs(rates["60+"] - rates["<60"]) < 0.05)  # demographic parity: equal approval rates
    True
    """
    sf = np.asarray(sensitive_features.to_numpy() if isinstance(sensitive_features, pd.Series)
                    else sensitive_features).astype(str)
    n = len(sf)
    y = _arr(y_true, "y_true", n, bool)
    assert y is not None
    y_good = (~y).astype(int)
    if (score is None) == (estimator is None):
        raise FairnessInputError("give exactly one of score= or estimator= (with X=)")
    if score is not None:
        Xs = _arr(score, "score", n).reshape(-1, 1)
        est, method = PrecomputedScore().fit(Xs), "decision_function"
    else:
        if X is None:
            raise FairnessInputError("estimator= needs its feature matrix X=")
        Xs, est, method = X, estimator, "predict_proba"
    m = np.ones(n, bool) if fit_mask is None else _arr(fit_mask, "fit_mask", n, bool)
    to = ThresholdOptimizer(estimator=est, constraints=constraint, objective=objective,
                            prefit=True, predict_method=method)
    sub = (lambda A: A.iloc[m] if isinstance(A, pd.DataFrame) else np.asarray(A)[m])  # noqa: E731
    to.fit(sub(Xs), y_good[m], sensitive_features=sf[m])
    approved = np.asarray(to.predict(Xs, sensitive_features=sf, random_state=seed)).astype(bool)
    line = None if credit_line is None else np.where(approved, _arr(credit_line, "credit_line", n), 0.0)
    risk = pd_
    return DecisionSystem(name=name, approved=approved, credit_line=line, pd=risk,
                          score=None if score is None else _arr(score, "score", n),
                          meta={"method": "ThresholdOptimizer", "constraint": constraint,
                                "objective": objective, "seed": seed})


def reduction_system(
    name: str,
    X: Any,
    y_true: Any,
    sensitive_features: Any,
    estimator: Any,
    *,
    constraint: Literal["demographic_parity", "equalized_odds"] = "demographic_parity",
    difference_bound: float = 0.02,
    fit_mask: Any = None,
    credit_line: Any = None,
    seed: int = 0,
    max_iter: int = 50,
) -> DecisionSystem:
    """Approvals from fairlearn's ExponentiatedGradient around ``estimator`` (cloned, refitted).

    The reduction's randomised classifier gives P(good) per household; ``pd`` is
    ``1 - P(good)`` and ``approved`` the seeded randomised prediction. With rare defaults
    give a cost-sensitive estimator (e.g. ``class_weight="balanced"``): the reduction
    minimises error, and an unweighted learner simply approves everyone.
    """
    sf = np.asarray(sensitive_features.to_numpy() if isinstance(sensitive_features, pd.Series)
                    else sensitive_features).astype(str)
    n = len(sf)
    y = _arr(y_true, "y_true", n, bool)
    assert y is not None
    y_good = (~y).astype(int)
    m = np.ones(n, bool) if fit_mask is None else _arr(fit_mask, "fit_mask", n, bool)
    cons = (DemographicParity if constraint == "demographic_parity" else EqualizedOdds)(
        difference_bound=difference_bound)
    eg = ExponentiatedGradient(clone(estimator), constraints=cons, max_iter=max_iter)
    Xm = X.iloc[m] if isinstance(X, pd.DataFrame) else np.asarray(X)[m]
    eg.fit(Xm, y_good[m], sensitive_features=sf[m])
    p_good = eg._pmf_predict(X)[:, 1]
    approved = np.asarray(eg.predict(X, random_state=seed)).astype(bool)
    line = None if credit_line is None else np.where(approved, _arr(credit_line, "credit_line", n), 0.0)
    return DecisionSystem(name=name, approved=approved, credit_line=line, pd=1.0 - p_good,
                          meta={"method": "ExponentiatedGradient", "constraint": constraint,
                                "difference_bound": difference_bound, "seed": seed})


def _safe_auc(y: np.ndarray, s: np.ndarray | None) -> float:
    if s is None or y.min() == y.max():
        return math.nan
    return float(roc_auc_score(y, s))


def tradeoff_table(
    options: list[DecisionSystem],
    sensitive: pd.DataFrame,
    y_true: Any,
    true_pd: Any = None,
    features: tuple[str, ...] = ("elderly", "formerly_poor"),
    n_deciles: int = 10,
    min_count: int = 50,
) -> pd.DataFrame:
    """One row per option: ranking quality, risk taken on, access, and gaps between groups.

    Columns: ``option, approval_rate, n_approved, auc_pd`` (AUC of the option's PD or
    ``-score`` for default), ``auc_decision`` (AUC of the approve/reject decision itself,
    = balanced accuracy; shows what randomised thresholds cost), ``default_rate_approved``
    (observed), ``true_pd_approved`` (mean true PD of approved; NaN without truth), per
    feature ``approval_gap_<f>`` (max - min group approval rate), ``dp_ratio_<f>``,
    ``mean_line_gap_<f>`` (relative gap of mean line, min vs max group) and, with truth,
    ``er_max_gap_approval``, ``er_max_gap_line``, ``er_passes_5pct`` from the equal-risk check.

    Examples
    --------
    >>> from village_credit.data import GeneratorConfig, generate_households
    >>> hh = generate_households(GeneratorConfig(n_households=200, seed=7))
    >>> from village_credit.fairness import policy_change_systems, sensitive_frame, tradeoff_table
    >>> table = tradeoff_table(policy_change_systems(hh), sensitive_frame(hh), hh["default_12m"], hh["true_pd"],
    ...                        min_count=10)
    >>> table[["option", "approval_rate", "approval_gap_elderly"]].round(2)
                                   option  approval_rate  approval_gap_elderly
    0                policy:jinxiang_2022           0.77                  0.36
    1  policy:jinxiang_2022_no_age_cutoff           0.86                  0.04
    """
    n = len(sensitive)
    sens = check_sensitive(sensitive, n)
    y = _arr(y_true, "y_true", n, bool)
    assert y is not None
    tp = _arr(true_pd, "true_pd", n)
    er = (equal_risk_gaps(options, sens, tp, n_deciles=n_deciles, min_count=min_count).summary
          if tp is not None else {})
    rows = []
    for o in options:
        if len(o) != n:
            raise FairnessInputError(f"option {o.name!r} has {len(o)} households, expected {n}")
        a = o.approved
        row: dict[str, Any] = {
            "option": o.name,
            "approval_rate": float(a.mean()),
            "n_approved": int(a.sum()),
            "auc_pd": _safe_auc(y.astype(int), o.risk),
            "auc_decision": _safe_auc((~y).astype(int), a.astype(float)),
            "default_rate_approved": float(y[a].mean()) if a.any() else math.nan,
            "true_pd_approved": float(tp[a].mean()) if (tp is not None and a.any()) else math.nan,
        }
        for f in features:
            g = sens[f].to_numpy()
            rates = pd.Series(a.astype(float)).groupby(g).mean()
            row[f"approval_gap_{f}"] = float(rates.max() - rates.min())
            row[f"dp_ratio_{f}"] = float(rates.min() / rates.max()) if rates.max() > 0 else math.nan
            if o.credit_line is not None:
                lines = pd.Series(o.credit_line).groupby(g).mean()
                row[f"mean_line_gap_{f}"] = float((lines.max() - lines.min()) / lines.max()) if lines.max() > 0 else 0.0
            else:
                row[f"mean_line_gap_{f}"] = math.nan
        if o.name in er:
            s = er[o.name]
            row.update(er_max_gap_approval=s["max_gap_approval"], er_max_gap_line=s["max_gap_line"],
                       er_passes_5pct=s["passes_5pct"])
        rows.append(row)
    return pd.DataFrame(rows)
