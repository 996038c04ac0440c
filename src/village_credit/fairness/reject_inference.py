"""Reject inference: the selection bias of training on granted households only, and remedies.

Why: outcomes exist only for households the old rules granted (``outcome_observed``).
A model trained on them never sees the elderly cut off by the age rule or the
formerly poor left without a file, so its risk estimates for exactly those groups are
extrapolations. The synthetic data carries the true PD of *every* household, so the
bias, and what each remedy does about it, can be measured instead of argued.

Remedies (``remedies=`` names):

* ``none``: fit on observed outcomes only (the biased baseline).
* ``reweighting``: inverse probability of selection. A selection model (same factory,
  target = observed) gives P(observed | x); observed households are weighted
  ``1 / P`` (P clipped at ``min_selection_prob``, weights normalised to mean 1) so the
  training sample resembles the whole population. Works only where selection is
  explained by the features and every kind of household had *some* chance of being
  granted (positivity); a hard age cutoff breaks positivity for ages above it.
* ``fuzzy_augmentation``: each rejected household is added twice, once as a default
  with weight p and once as a non-default with weight 1 - p, where p is the baseline
  model's PD; the model is refitted on observed + fuzzy rejects.
* ``parcelling``: rejected households are binned into bands of the baseline PD
  (quantiles, ``n_bands``); each band's observed default rate among accepted
  households is multiplied by ``parcel_factor`` (rejects are assumed riskier than
  accepted households of the same score) and labels are drawn from it (seeded).
* ``oracle`` (reference only, not a remedy): fit on the outcomes of *all* households,
  which no lender has; shows the best the features allow.

:func:`infer_rejects` builds the training sample of each remedy (row positions,
labels, weights) for any model: the study below and the main job
(``split.reject_inference``) both use it.

Every model is scored on **all** households of a held-out part (granted or not) and
compared with the truth, per group
(``all``, ``granted``, ``not_granted``, ``elderly_60plus``, ``formerly_poor``):
``mean_pred_pd`` vs ``mean_true_pd`` and their difference ``bias`` (negative = risk
underestimated), ``mae_true_pd`` (mean absolute error against the true PD),
``kl_true_pd`` (mean Bernoulli KL divergence from the true PD, 0 = perfect),
``corr_true_pd`` (Pearson) and ``auc_default`` (AUC against the drawn default flag).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from village_credit.data.groups import ELDERLY_AGE
from village_credit.fairness.audit import _arr
from village_credit.data.groups import bool_column, require_column
from village_credit.errors import FairnessInputError

REMEDIES: tuple[str, ...] = ("none", "reweighting", "fuzzy_augmentation", "parcelling")
KNOWN_REMEDIES: tuple[str, ...] = (*REMEDIES, "oracle")
_EPS = 1e-6


def default_model_factory(seed: int = 0) -> Callable[[], Any]:
    """A small, single-threaded LightGBM classifier (the machine is shared)."""
    def make() -> Any:
        return LGBMClassifier(n_estimators=150, learning_rate=0.05, num_leaves=15,
                              min_child_samples=40, subsample=0.8, subsample_freq=1,
                              colsample_bytree=0.8, reg_lambda=1.0, random_state=seed,
                              n_jobs=1, verbose=-1)

    return make


def default_groups(households: pd.DataFrame, observed_mask: np.ndarray) -> dict[str, np.ndarray]:
    """Groups the historical rules left out, plus ``all`` and ``granted`` for reference."""
    age = require_column(households, "head_age").to_numpy(dtype=float)
    poor = bool_column(require_column(households, "formerly_poor"), "formerly_poor")
    return {
        "all": np.ones(len(households), bool),
        "granted": observed_mask,
        "not_granted": ~observed_mask,
        "elderly_60plus": age >= ELDERLY_AGE,
        "formerly_poor": poor,
    }


def _fit(factory: Callable[[], Any], X: pd.DataFrame, y: np.ndarray, w: np.ndarray | None = None) -> Any:
    model = factory()
    model = clone(model) if hasattr(model, "get_params") else model
    if w is None:
        model.fit(X, y)
    else:
        model.fit(X, y, sample_weight=w)
    return model


def _proba(model: Any, X: pd.DataFrame) -> np.ndarray:
    return np.clip(np.asarray(model.predict_proba(X))[:, 1], _EPS, 1 - _EPS)


def _evaluate(remedy: str, p: np.ndarray, y: np.ndarray, tp: np.ndarray,
              groups: Mapping[str, np.ndarray], n_train: float) -> list[dict[str, Any]]:
    t = np.clip(tp, _EPS, 1 - _EPS)
    kl = t * np.log(t / p) + (1 - t) * np.log((1 - t) / (1 - p))
    rows = []
    for g, m in groups.items():
        k = int(m.sum())
        if k == 0:
            continue
        yy, pp, tt = y[m], p[m], tp[m]
        auc = float(roc_auc_score(yy, pp)) if 0 < yy.sum() < k else math.nan
        corr = float(np.corrcoef(pp, tt)[0, 1]) if k > 2 and pp.std() > 0 and tt.std() > 0 else math.nan
        rows.append(dict(remedy=remedy, group=g, n=k, n_train=n_train,
                         mean_pred_pd=float(pp.mean()), mean_true_pd=float(tt.mean()),
                         bias=float(pp.mean() - tt.mean()), mae_true_pd=float(np.abs(pp - tt).mean()),
                         kl_true_pd=float(kl[m].mean()), corr_true_pd=corr, auc_default=auc))
    return rows


def infer_rejects(
    X: pd.DataFrame,
    observed: Any,
    y: Any,
    method: str,
    *,
    base_proba: Any = None,
    selection_proba: Any = None,
    seed: int | np.random.Generator = 0,
    parcel_factor: float = 1.5,
    n_bands: int = 10,
    min_selection_prob: float = 0.02,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The training sample of a reject-inference remedy: ``(row_index, labels, weights)``.

    ``X``: one row per training household, observed or not (only its length is used
    here; the caller fits on ``X.iloc[row_index]``). ``observed``: boolean mask of the
    households with an outcome. ``y``: their outcomes, either one per row of ``X``
    (values at unobserved rows are ignored and may be NaN) or one per observed row.
    ``base_proba``: PD of a first model fitted on the observed rows, one per row of
    ``X`` (needed by ``fuzzy_augmentation`` and ``parcelling``); ``selection_proba``:
    P(observed | x), one per row of ``X`` or per observed row (needed by
    ``reweighting``). ``seed``: an int or a ``numpy`` Generator (parcelling draws).

    Returns integer positions into ``X`` (observed rows first, in order; rows may
    repeat: fuzzy augmentation lists every reject twice, first as a default), 0/1
    labels and positive sample weights, all of one length. See the module docstring
    for what each method (``none``, ``reweighting``, ``fuzzy_augmentation``,
    ``parcelling``) does.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from village_credit.fairness import infer_rejects
    >>> X = pd.DataFrame(index=range(5))  # five households, the last two were refused
    >>> observed = np.array([True, True, True, False, False])
    >>> y = np.array([0, 1, 0, np.nan, np.nan])
    >>> rows, labels, weights = infer_rejects(X, observed, y, "fuzzy_augmentation",
    ...                                       base_proba=np.array([0.1, 0.6, 0.2, 0.3, 0.05]))
    >>> rows.tolist(), labels.tolist(), weights.round(2).tolist()
    ([0, 1, 2, 3, 4, 3, 4], [0, 1, 0, 1, 1, 0, 0], [1.0, 1.0, 1.0, 0.3, 0.05, 0.7, 0.95])
    """
    if method not in REMEDIES:
        raise FairnessInputError(f"unknown reject-inference method {method!r}; known: {list(REMEDIES)}")
    n = len(X)
    obs = _arr(observed, "observed", n, bool)
    assert obs is not None
    n_obs = int(obs.sum())
    y_raw = np.asarray(y.to_numpy() if isinstance(y, (pd.Series, pd.Index)) else y)
    if y_raw.ndim != 1 or len(y_raw) not in (n, n_obs):
        raise FairnessInputError(f"y has shape {y_raw.shape}; expected {n} (all rows) or {n_obs} (observed rows) values")
    yo = _arr(y_raw[obs] if len(y_raw) == n and n != n_obs else y_raw, "y (observed rows)", n_obs, bool)
    assert yo is not None
    yo = yo.astype(int)
    if n_obs == 0 or not (0 < yo.sum() < n_obs):
        raise FairnessInputError("observed outcomes are empty or contain a single class")
    pos_obs = np.flatnonzero(obs)
    pos_rej = np.flatnonzero(~obs)
    ones = np.ones(n_obs)
    if method == "none":
        return pos_obs, yo, ones
    if method == "reweighting":
        if selection_proba is None:
            raise FairnessInputError("reweighting needs selection_proba (P(observed | x))")
        sp = np.asarray(selection_proba.to_numpy() if isinstance(selection_proba, pd.Series) else selection_proba,
                        dtype=float)
        sp = _arr(sp[obs] if len(sp) == n and n != n_obs else sp, "selection_proba", n_obs)
        assert sp is not None
        if not np.all(np.isfinite(sp)):
            raise FairnessInputError("selection_proba has NaN or inf at observed rows")
        w = 1.0 / np.clip(sp, min_selection_prob, 1.0)
        return pos_obs, yo, w / w.mean()
    if base_proba is None:
        raise FairnessInputError(f"{method} needs base_proba (PD of a model fitted on the observed rows)")
    pb = _arr(base_proba, "base_proba", n)
    assert pb is not None
    if not np.all(np.isfinite(pb)):
        raise FairnessInputError("base_proba has NaN or inf values")
    pb = np.clip(pb, _EPS, 1 - _EPS)
    n_rej = len(pos_rej)
    if method == "fuzzy_augmentation":
        pr = pb[pos_rej]
        idx = np.concatenate([pos_obs, pos_rej, pos_rej])
        lab = np.concatenate([yo, np.ones(n_rej, int), np.zeros(n_rej, int)])
        return idx, lab, np.concatenate([ones, pr, 1.0 - pr])
    # parcelling: bands of the base PD over all rows, observed default rate per band
    rng = np.random.default_rng(seed)
    edges = np.unique(np.quantile(pb, np.linspace(0, 1, n_bands + 1)))
    band = np.clip(np.searchsorted(edges, pb, side="right") - 1, 0, max(len(edges) - 2, 0))
    nb = int(band.max()) + 1
    cnt = np.bincount(band[obs], minlength=nb)
    bad = np.bincount(band[obs], weights=yo, minlength=nb)
    rate = np.where(cnt > 0, bad / np.maximum(cnt, 1), yo.mean())
    r_rate = np.clip(rate[band[pos_rej]] * parcel_factor, 0.0, 1.0)
    y_rej = (rng.random(n_rej) < r_rate).astype(int)
    return (np.concatenate([pos_obs, pos_rej]), np.concatenate([yo, y_rej]),
            np.ones(n_obs + n_rej))


def selection_bias_study(
    households: pd.DataFrame,
    feature_frame: pd.DataFrame,
    *,
    observed_mask: Any,
    y: Any,
    true_pd: Any,
    model_factory: Callable[[], Any] | None = None,
    remedies: Sequence[str] = REMEDIES,
    seed: int = 0,
    groups: Mapping[str, Any] | None = None,
    parcel_factor: float = 1.5,
    n_bands: int = 10,
    min_selection_prob: float = 0.02,
    eval_fraction: float = 0.4,
) -> pd.DataFrame:
    """Train on observed outcomes only and with each remedy; compare every model with the truth.

    ``y`` is the default flag for every household (only observed ones are used, except by
    ``oracle``); ``feature_frame`` must be numeric (e.g. ``build_household_features(...,
    include_protected=True)``) and must not contain truth columns. Households are split
    at random (seeded) into a training part and an evaluation part of ``eval_fraction``:
    every model, the selection model and the parcelling bands see only the training
    part, and every metric is computed on the evaluation part (all of it: granted or
    not), so the numbers are out-of-sample. Returns one row per remedy x group.

    Examples
    --------
    >>> from village_credit.data import GeneratorConfig, generate_households
    >>> from village_credit.fairness import selection_bias_study
    >>> from village_credit.models import HouseholdFeatures
    >>> hh = generate_households(GeneratorConfig(n_households=300, seed=7))
    >>> X = HouseholdFeatures(include_protected=True).fit_transform(hh)
    >>> study = selection_bias_study(hh, X, observed_mask=hh["outcome_observed"], y=hh["default_12m"],
    ...                              true_pd=hh["true_pd"], remedies=("none", "reweighting"), seed=0)
    >>> study.pivot(index="remedy", columns="group", values="n")
    group        all  elderly_60plus  formerly_poor  granted  not_granted
    remedy
    none         120              36             19       71           49
    reweighting  120              36             19       71           49
    >>> sorted(study.columns)[:4]
    ['auc_default', 'bias', 'corr_true_pd', 'group']
    """
    n = len(feature_frame)
    if len(households) != n:
        raise FairnessInputError(f"households ({len(households)}) and feature_frame ({n}) differ in length")
    bad = [r for r in remedies if r not in KNOWN_REMEDIES]
    if bad:
        raise FairnessInputError(f"unknown reject-inference remedies {bad}; known: {list(KNOWN_REMEDIES)}")
    leaked = [c for c in ("true_pd", "default_12m", "granted_hist", "outcome_observed") if c in feature_frame.columns]
    if leaked:
        raise FairnessInputError(f"feature_frame contains ground-truth columns {leaked}")
    obs = _arr(observed_mask, "observed_mask", n, bool)
    yy = _arr(y, "y", n, bool)
    tp = _arr(true_pd, "true_pd", n)
    assert obs is not None and yy is not None and tp is not None
    if obs.sum() < 50 or (~obs).sum() == 0:
        raise FairnessInputError(f"need >= 50 observed and >= 1 unobserved households, got {int(obs.sum())} / {int((~obs).sum())}")
    y_int = yy.astype(int)
    if not (0 < y_int[obs].sum() < obs.sum()):
        raise FairnessInputError("observed outcomes contain a single class; cannot train")
    factory = model_factory or default_model_factory(seed)
    grp = {k: _arr(v, f"group {k}", n, bool) for k, v in (groups or default_groups(households, obs)).items()}
    rng = np.random.default_rng(seed)
    is_eval = np.zeros(n, bool)
    is_eval[rng.permutation(n)[: int(round(eval_fraction * n))]] = True
    tr = ~is_eval
    X_all = feature_frame.reset_index(drop=True)
    X_ev = X_all[is_eval]
    y_ev, tp_ev = y_int[is_eval], tp[is_eval]
    grp_ev = {k: v[is_eval] for k, v in grp.items()}
    # training part only from here on
    X = X_all[tr].reset_index(drop=True)
    obs_t, y_t = obs[tr], y_int[tr]
    if obs_t.sum() < 50 or not (0 < y_t[obs_t].sum() < obs_t.sum()):
        raise FairnessInputError("too few observed outcomes (or one class) in the training part")
    Xo, yo = X[obs_t], y_t[obs_t]

    base = _fit(factory, Xo, yo)
    p_base = _proba(base, X)
    p_base_ev = _proba(base, X_ev)
    rows: list[dict[str, Any]] = []
    for remedy in remedies:
        if remedy == "none":
            p, n_train = p_base_ev, float(obs_t.sum())
        elif remedy == "oracle":
            p, n_train = _proba(_fit(factory, X, y_t), X_ev), float(len(X))
        else:
            p_sel = _proba(_fit(factory, X, obs_t.astype(int)), X) if remedy == "reweighting" else None
            # the study's generator (already used for the evaluation split) keeps its draws unchanged
            idx, ya, wa = infer_rejects(X, obs_t, yo, remedy, base_proba=p_base, selection_proba=p_sel,
                                        seed=rng, parcel_factor=parcel_factor, n_bands=n_bands,
                                        min_selection_prob=min_selection_prob)
            Xa = X.iloc[idx].reset_index(drop=True)
            p = _proba(_fit(factory, Xa, ya, None if remedy == "parcelling" else wa), X_ev)
            n_train = float(wa.sum()) if remedy == "fuzzy_augmentation" else float(len(ya))
        rows += _evaluate(remedy, p, y_ev, tp_ev, grp_ev, n_train)
    return pd.DataFrame(rows)


def bias_table(study: pd.DataFrame, metric: str = "bias") -> pd.DataFrame:
    """Wide view: remedies as rows, groups as columns, one metric (for reports)."""
    return study.pivot(index="remedy", columns="group", values=metric).reindex(
        [r for r in KNOWN_REMEDIES if r in set(study.remedy)])
