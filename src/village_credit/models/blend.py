"""The blend: rule points and a LightGBM model in one additive log-odds score.

Why one form for every strategy: each strategy ends in

    L(x) = k0 + k_rule * rule_points(x) + k_gbm * trees(x)

with ``rule_points = sum of item points`` (``RuleScores.items``) and
``trees = phi_0 + sum_f phi_f`` (exact SHAP of the trees, raw score without any init
score). So every household's log-odds is an *exact* sum of a base value, one term
per rule item (``k_rule * item points``) and one per model feature
(``k_gbm * phi_f``); points scaling is affine, so the same holds in points.

Strategies (``ModelConfig.strategy``):

* ``stacking``: ``r = a + b * rule_points`` (logistic fit on the calibration split),
  ``g`` = GBM raw score (trained on the training split without the rules),
  ``L = c0 + c1 * r + c2 * g`` (logistic regression on the calibration split).
  ``k0 = c0 + c1 * a``, ``k_rule = c1 * b``, ``k_gbm = c2``.
* ``boost_from_rules``: the GBM is trained with ``init_score = r`` so its trees learn
  only what the rules miss; ``L = alpha + beta * (r + trees)`` (Platt on the
  calibration split). ``k0 = alpha + beta * a``, ``k_rule = beta * b``, ``k_gbm = beta``.
* ``additive_points``: as ``boost_from_rules`` with one feature per tree
  (``interaction_constraints="additive"``) and shallow trees, so each feature's term
  is a 1-D step function: exact SHAP by table look-up (:mod:`~village_credit.models.additive`).
* ``gbm_only``: no rules in the score (blend off; bring-your-own data):
  ``L = alpha + beta * g``. Policy vetoes and eligibility still apply when a
  policy is given.

Why Platt and not isotonic here: only an affine map of the log-odds keeps the
contributions additive; isotonic calibration would break the exact decomposition.
The 2-3 coefficient logistic fits use a small deterministic Newton solver
(:func:`logistic_fit`) with optional sample weights (reject-inference reuse).

Features: the blend does not pass rule outputs to the feature transformer (the rule
term already carries them), so a rule item's effect is never split across two terms.
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from village_credit.errors import ConfigError, SchemaError
from village_credit.models.coefficients import STRATEGIES, BlendCoefficients
from village_credit.models.decision import DecisionModel
from village_credit.models.features import HouseholdFeatures
from village_credit.models.gbm import LGBMDefaultModel
from village_credit.models.scaling import PointsScaling
from village_credit.models.support import NEUTRALISED_KEY, constant_items, neutralise_items
from village_credit.rules.engine import score_rules
from village_credit.rules.policy import load_policy

DEFAULT_GBM_PARAMS: dict[str, Any] = {
    "n_estimators": 300, "learning_rate": 0.05, "num_leaves": 8, "min_child_samples": 40,
}
ADDITIVE_MAX_DEPTH = 3
"""Depth cap of ``additive_points`` trees unless ``gbm_params`` sets ``max_depth``."""


def logistic_fit(Z: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None,
                 ridge: float = 1e-6, max_iter: int = 100, tol: float = 1e-10) -> NDArray[np.float64]:
    """Weighted logistic regression ``P(y=1) = sigmoid(w0 + Z @ w)`` by damped Newton.

    Returns ``[w0, w...]``. A tiny ridge (not on the intercept) keeps separable or
    constant columns finite. Deterministic: no random start, no threads.

    Examples
    --------
    >>> import numpy as np
    >>> from village_credit.models import logistic_fit
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(500, 1))
    >>> y = (rng.random(500) < 1 / (1 + np.exp(2 - 1.5 * z[:, 0]))).astype(int)
    >>> logistic_fit(z, y).round(2)  # [w0, w1], close to the true [-2, 1.5]
    array([-2.12,  1.89])
    """
    Zm = np.asarray(Z, dtype=np.float64)
    if Zm.ndim == 1:
        Zm = Zm[:, None]
    yv = np.asarray(y, dtype=np.float64).ravel()
    n, d = Zm.shape
    if yv.shape[0] != n:
        raise SchemaError(f"logistic fit: {n} rows of inputs but {yv.shape[0]} outcomes")
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64).ravel()
    if not (np.all(np.isfinite(Zm)) and np.all(np.isfinite(yv))):
        raise SchemaError("logistic fit: inputs or outcomes contain NaN or inf")
    if w.sum() <= 0:
        raise SchemaError("logistic fit: sample weights sum to zero")
    X = np.column_stack([np.ones(n), Zm])
    # scale columns for conditioning; map coefficients back at the end
    scale = np.ones(d + 1)
    sd = Zm.std(axis=0)
    scale[1:] = np.where(sd > 0, sd, 1.0)
    Xs = X / scale
    pen = np.full(d + 1, ridge * w.sum())
    pen[0] = 0.0
    ybar = np.clip(np.average(yv, weights=w), 1e-9, 1 - 1e-9)
    beta = np.zeros(d + 1)
    beta[0] = np.log(ybar / (1 - ybar))

    def loss(b: NDArray[np.float64]) -> float:
        z = Xs @ b
        return float(np.sum(w * (np.logaddexp(0.0, z) - yv * z)) + 0.5 * np.sum(pen * b * b))

    cur = loss(beta)
    for _ in range(max_iter):
        z = Xs @ beta
        p = 0.5 * (1.0 + np.tanh(0.5 * z))
        grad = Xs.T @ (w * (p - yv)) + pen * beta
        H = (Xs * (w * p * (1 - p))[:, None]).T @ Xs + np.diag(pen + 1e-12)
        step = np.linalg.solve(H, grad)
        t = 1.0
        while True:
            cand = beta - t * step
            new = loss(cand)
            if new <= cur + 1e-12 or t < 1e-8:
                break
            t *= 0.5
        beta, done = cand, abs(cur - new) <= tol * max(1.0, abs(cur))
        cur = new
        if done and np.max(np.abs(step)) * t < 1e-9:
            break
    return beta / scale


def _gbm_for(strategy: str, gbm_params: dict[str, Any] | None, features: Any, seed: int) -> Any:
    params = {**DEFAULT_GBM_PARAMS, **(gbm_params or {})}
    params.setdefault("random_state", seed)
    if "monotone_constraints" not in params and hasattr(features, "monotone_constraints"):
        params["monotone_constraints"] = list(features.monotone_constraints())
    if strategy == "additive_points":
        params["interaction_constraints"] = "additive"
        if int(params.get("max_depth", -1)) <= 0:
            params["max_depth"] = ADDITIVE_MAX_DEPTH
    known = LGBMDefaultModel().get_params()
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ConfigError(f"gbm params: unknown key(s) {unknown}; known: {sorted(known)}")
    return LGBMDefaultModel(**params)


def _rule_points(households: pd.DataFrame, policy: Any, eval_date: Any,
                 neutral: dict[str, dict[str, Any]] | None = None) -> NDArray[np.float64]:
    rs = score_rules(households, policy, eval_date)
    return neutralise_items(rs.items, neutral).to_numpy(dtype=np.float64).sum(axis=1)


def _policy_and_features(strategy: str, policy: Any, features: Any) -> tuple[Any, Any]:
    """The checked strategy, the loaded policy (or None) and the feature transformer."""
    if strategy not in STRATEGIES:
        raise ConfigError(f"blend strategy {strategy!r} is not one of {', '.join(STRATEGIES)}")
    if policy is None and strategy != "gbm_only":
        raise ConfigError(f"blend strategy {strategy!r} needs a policy (use 'gbm_only' without rules)")
    pol = None
    if policy is not None:
        pol = load_policy(policy)
    if features is None:
        features = HouseholdFeatures()
    return pol, features


def _neutral_spec(option: bool | dict[str, dict[str, Any]], items: pd.DataFrame,
                  households: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """The items to neutralise: as given (a dict), found in the data (``True``), or none."""
    if isinstance(option, dict):
        return dict(option)
    return _neutral_items(items, households) if option else {}


def _neutral_items(items: pd.DataFrame, households: pd.DataFrame) -> dict[str, dict[str, Any]]:
    observed = households["outcome_observed"].to_numpy(bool) if "outcome_observed" in households else None
    return constant_items(items, observed)


def _y(y: Any, n: int, what: str) -> NDArray[np.float64]:
    arr = np.asarray(y, dtype=np.float64).ravel()
    if arr.shape[0] != n:
        raise SchemaError(f"{what}: {arr.shape[0]} outcomes for {n} households")
    if not np.all(np.isin(arr, (0.0, 1.0))):
        raise SchemaError(f"{what}: outcomes must be 0/1 (default flag)")
    return arr



def rule_term(strategy: str, R: NDArray[np.float64] | None, y: NDArray[np.float64], w: Any = None
              ) -> tuple[float, float, dict[str, float]]:
    """``r = a + b * rule_points`` by a logistic fit (``b`` forced to 0 if more points would raise risk)."""
    detail: dict[str, float] = {}
    if strategy == "gbm_only" or R is None:
        return 0.0, 0.0, detail
    a, b = logistic_fit(R, y, w)
    if b > 0:  # rule points are "more is better": never let them raise the risk
        (a,) = logistic_fit(np.zeros((len(R), 0)), y, w)
        b = 0.0
        detail["rule_term_dropped"] = 1.0
    detail.update(a=a, b=b)
    return float(a), float(b), detail


def blend_coefficients(strategy: str, a: float, b: float, detail: dict[str, float],
                       R: NDArray[np.float64] | None, trees: NDArray[np.float64], y: NDArray[np.float64],
                       w: Any = None) -> BlendCoefficients:
    """The strategy's final logistic fit of rule term and tree scores (see module docstring).

    ``trees`` are the GBM raw scores of rows the trees did not see: the calibration split
    (:func:`fit_blend`) or out-of-fold scores (:func:`fit_blend_cv`).
    """
    detail = dict(detail)
    if strategy == "gbm_only":
        alpha, beta = logistic_fit(trees, y, w)
        detail.update(alpha=alpha, beta=beta)
        return BlendCoefficients(strategy, float(alpha), 0.0, float(beta), detail)
    r = a + b * np.asarray(R, dtype=np.float64)
    if strategy == "stacking":
        c0, c1, c2 = logistic_fit(np.column_stack([r, trees]), y, w)
        if c1 * b > 0:  # more rule points would raise the risk: drop the rule term
            c0, c2 = logistic_fit(trees, y, w)
            c1 = 0.0
            detail["rule_term_dropped"] = 1.0
        detail.update(c0=c0, c1=c1, c2=c2)
        return BlendCoefficients(strategy, float(c0 + c1 * a), float(c1 * b), float(c2), detail)
    alpha, beta = logistic_fit(r + trees, y, w)
    detail.update(alpha=alpha, beta=beta)
    return BlendCoefficients(strategy, float(alpha + beta * a), float(beta * b), float(beta), detail)

def fit_blend(
    households_train: pd.DataFrame,
    y_train: ArrayLike,
    households_calib: pd.DataFrame,
    y_calib: ArrayLike,
    *,
    policy: Any = None,
    strategy: str = "additive_points",
    gbm_params: dict[str, Any] | None = None,
    features: Any = None,
    eval_date: Any = None,
    seed: int = 0,
    sample_weight_train: ArrayLike | None = None,
    sample_weight_calib: ArrayLike | None = None,
    scaling: PointsScaling | None = None,
    metadata: dict[str, Any] | None = None,
    neutralise_constant_items: bool | dict[str, dict[str, Any]] = False,
) -> Any:
    """Fit a blend and return the :class:`~village_credit.models.decision.DecisionModel`.

    ``policy``: a ``Policy``, a shipped name or a path (required unless ``gbm_only``).
    ``features``: an unfitted feature transformer (default ``HouseholdFeatures()``).
    ``scaling``: default ``PointsScaling.from_pdo(20, 60, 49)`` (see :mod:`scaling`).
    ``metadata``: stored as-is with the model (e.g. the training reference profile).
    ``neutralise_constant_items``: ``True``: rule items that never varied among the
    training rows with an observed outcome (``outcome_observed`` when present) are not
    applied; a dict (from :func:`~village_credit.models.support.neutral_items_for` over
    the whole population): exactly those items. See :mod:`village_credit.models.support`;
    recorded in ``metadata["neutralised_items"]``.

    Examples
    --------
    >>> from village_credit.data import GeneratorConfig, generate_households
    >>> from village_credit.models import fit_blend, split_by_village
    >>> hh = generate_households(GeneratorConfig(n_households=300, seed=7))
    >>> train, calib, holdout = split_by_village(hh, seed=0).frames(hh)
    >>> model = fit_blend(train, train["default_12m"], calib, calib["default_12m"], policy="jinxiang_2022",
    ...                   strategy="additive_points", gbm_params={"n_estimators": 20}, seed=0)
    >>> model.coefficients.strategy
    'additive_points'
    >>> pd_ = model.predict_pd(holdout)
    >>> len(pd_) == len(holdout), bool(pd_.between(0, 1).all())
    (True, True)
    """
    pol, features = _policy_and_features(strategy, policy, features)
    y_tr = _y(y_train, len(households_train), "training split")
    y_ca = _y(y_calib, len(households_calib), "calibration split")
    X_tr = features.fit_transform(households_train)
    X_ca = features.transform(households_calib)
    gbm = _gbm_for(strategy, gbm_params, features, seed)

    item_means: dict[str, float] | None = None
    R_tr = R_ca = None
    if strategy != "gbm_only":
        items_tr = score_rules(households_train, pol, eval_date).items
        neutral = _neutral_spec(neutralise_constant_items, items_tr, households_train)
        items_tr = neutralise_items(items_tr, neutral)
        # the reference household for rule reasons: training means (as SHAP's background)
        item_means = {str(c): float(v) for c, v in items_tr.mean(axis=0).items()}
        R_tr = items_tr.to_numpy(dtype=np.float64).sum(axis=1)
        R_ca = _rule_points(households_calib, pol, eval_date, neutral)
    a, b, detail = rule_term(strategy, R_ca, y_ca, sample_weight_calib)
    init = None if strategy in ("gbm_only", "stacking") else a + b * R_tr
    gbm.fit(X_tr, y_tr, init_score=init, sample_weight=sample_weight_train)
    coef = blend_coefficients(strategy, a, b, detail, R_ca, gbm.raw_score(X_ca), y_ca, sample_weight_calib)

    booster = lgb.Booster(model_str=gbm.booster_.model_to_string(num_iteration=gbm.best_iteration_))
    meta = dict(metadata or {})
    if strategy != "gbm_only" and neutralise_constant_items:
        meta[NEUTRALISED_KEY] = neutral
    meta.setdefault("seed", int(seed))
    meta.setdefault("gbm_params", {k: v for k, v in gbm.get_params().items()
                                   if isinstance(v, (int, float, str, bool, type(None), list))})
    meta.setdefault("n_train", int(len(households_train)))
    meta.setdefault("n_calib", int(len(households_calib)))
    meta.setdefault("eval_date", None if eval_date is None else str(pd.Timestamp(eval_date).date()))
    return DecisionModel(
        policy=pol,
        features=features,
        booster=booster,
        coefficients=coef,
        scaling=scaling or PointsScaling.from_pdo(),
        item_means=item_means,
        metadata=meta,
    )


def cv_folds(y: NDArray[np.float64], n_splits: int, seed: int, groups: Any = None) -> list[tuple[Any, Any]]:
    """Stratified (and, with ``groups``, group-disjoint) folds; fewer when a class is rare."""
    n_min = int(min(np.sum(y == 0), np.sum(y == 1)))
    k = int(min(n_splits, n_min))
    if k < 2:
        raise ValueError(f"cross-fitted calibration needs at least 2 rows of each class; got {n_min}")
    dummy = np.zeros(len(y))
    if groups is not None and len(pd.unique(np.asarray(groups, dtype=object))) >= k:
        return list(StratifiedGroupKFold(k, shuffle=True, random_state=seed).split(dummy, y, groups))
    return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(dummy, y))


def tree_weights(sample_weight: Any, power: float) -> NDArray[np.float64] | None:
    """The trees' weights: ``sample_weight ** power``; rows of weight 0 stay 0 (``power`` 0: 0/1).

    Why: design weights of 20 on a few hundred rows make the trees' splits high-variance;
    tempering them for the trees alone keeps the map (which carries the calibration)
    weighted in full.

    >>> from village_credit.models.blend import tree_weights
    >>> tree_weights([1.0, 4.0, 0.0], 0.5).tolist(), tree_weights([1.0, 4.0, 0.0], 0).tolist()
    ([1.0, 2.0, 0.0], [1.0, 1.0, 0.0])
    """
    if not 0.0 <= float(power) <= 1.0:
        raise ValueError(f"tree_weight_power must be within [0, 1], got {power!r}")
    if sample_weight is None or float(power) == 0.0:
        return None if sample_weight is None else np.where(np.asarray(sample_weight) > 0, 1.0, 0.0)
    w = np.asarray(sample_weight, dtype=np.float64)
    return w if float(power) == 1.0 else w ** float(power)


def fit_blend_cv(
    households: pd.DataFrame,
    y: ArrayLike,
    *,
    policy: Any = None,
    strategy: str = "gbm_only",
    gbm_params: dict[str, Any] | None = None,
    features: Any = None,
    eval_date: Any = None,
    seed: int = 0,
    cv: int = 5,
    groups: Any = None,
    sample_weight: ArrayLike | None = None,
    scaling: PointsScaling | None = None,
    metadata: dict[str, Any] | None = None,
    neutralise_constant_items: bool | dict[str, dict[str, Any]] = False,
    tree_weight_power: float = 1.0,
) -> tuple[Any, NDArray[np.float64]]:
    """Fit a blend on *all* rows, calibrated by cross-fitting; ``(DecisionModel, out-of-fold logit)``.

    Why: a held-out calibration split leaves a fifth of the rows out of the trees. Here
    each of ``cv`` folds' trees score the rows they did not see, the strategy's logistic
    fit (:func:`blend_coefficients`) runs on those out-of-fold scores, and the final
    trees are refitted on every row with the same parameters. The out-of-fold log-odds
    returned are honest (no row scored by trees that saw it) for grade edges and CV metrics.
    ``neutralise_constant_items``: as in :func:`fit_blend`. ``tree_weight_power``: the
    trees see ``sample_weight ** tree_weight_power`` (0: unweighted), the rule term and the
    Platt map ``sample_weight`` itself (design weights tempered where they cost variance).
    """
    pol, features = _policy_and_features(strategy, policy, features)
    yv = _y(y, len(households), "training rows")
    w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    w_tree = tree_weights(w, tree_weight_power)
    X = features.fit(households, yv).transform(households)
    item_means: dict[str, float] | None = None
    R = None
    if strategy != "gbm_only":
        items = score_rules(households, pol, eval_date).items
        neutral = _neutral_spec(neutralise_constant_items, items, households)
        items = neutralise_items(items, neutral)
        item_means = {str(c): float(v) for c, v in items.mean(axis=0).items()}
        R = items.to_numpy(dtype=np.float64).sum(axis=1)
    # the rule term has 2 coefficients and no trees: fitting it in-sample does not leak
    a, b, detail = rule_term(strategy, R, yv, w)
    init = None if strategy in ("gbm_only", "stacking") else a + b * np.asarray(R)
    oof = np.empty(len(yv))
    for tr, te in cv_folds(yv, cv, seed, groups):
        g = _gbm_for(strategy, gbm_params, features, seed)
        g.fit(X.iloc[tr], yv[tr], init_score=None if init is None else init[tr],
              sample_weight=None if w_tree is None else w_tree[tr])
        oof[te] = g.raw_score(X.iloc[te])
    coef = blend_coefficients(strategy, a, b, detail, R, oof, yv, w)
    gbm = _gbm_for(strategy, gbm_params, features, seed)
    gbm.fit(X, yv, init_score=init, sample_weight=w_tree)
    oof_logit = coef.logit(np.zeros(len(yv)) if R is None else R, oof)

    booster = lgb.Booster(model_str=gbm.booster_.model_to_string(num_iteration=gbm.best_iteration_))
    meta = dict(metadata or {})
    meta.setdefault("seed", int(seed))
    meta.setdefault("gbm_params", {k: v for k, v in gbm.get_params().items()
                                   if isinstance(v, (int, float, str, bool, type(None), list))})
    meta.setdefault("n_train", int(len(households)))
    meta.setdefault("calibration", f"cross-fitted Platt ({cv} folds, out-of-fold tree scores)")
    meta.setdefault("eval_date", None if eval_date is None else str(pd.Timestamp(eval_date).date()))
    if strategy != "gbm_only" and neutralise_constant_items:
        meta[NEUTRALISED_KEY] = neutral
    model = DecisionModel(policy=pol, features=features, booster=booster, coefficients=coef,
                          scaling=scaling or PointsScaling.from_pdo(), item_means=item_means, metadata=meta)
    return model, oof_logit
