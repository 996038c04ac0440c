"""Discrimination: does the score rank defaulters above non-defaulters?

Convention everywhere in this module: ``y`` is 1 for a default and ``score`` is
*risk-oriented* (higher = more likely to default, e.g. a PD). Pass ``-points``
for a points scale where higher points mean a safer household.

DeLong's variance uses the fast O(n log n) midrank algorithm of Sun & Xu (2014,
IEEE Signal Processing Letters 21(11)), which gives exactly the structural
components of DeLong, DeLong & Clarke-Pearson (1988) without the O(n^2) kernel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from village_credit.validation._checks import (
    ValidationInputError,
    as_binary,
    as_float,
    as_grades,
    both_classes,
)

__all__ = [
    "auc_delong",
    "cap_points",
    "delong_components",
    "delong_paired",
    "delong_test",
    "gini",
    "ks_statistic",
    "rank_ordering",
    "roc_points",
]


def delong_components(y: Any, scores: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUCs and DeLong structural components for one or more scores.

    ``scores`` is 1-D (one score) or 2-D with one row per score. Returns
    ``(aucs, v10, v01)`` with ``v10`` of shape (k, n_defaults) and ``v01`` of
    shape (k, n_non_defaults); ties count one half, as in the Mann-Whitney U.
    """
    yb = as_binary(y)
    both_classes(yb)
    s = np.atleast_2d(np.asarray(scores, dtype=float))
    if s.shape[1] != yb.size:
        raise ValidationInputError(f"scores: length {s.shape[1]} does not match y length {yb.size}")
    if not np.isfinite(s).all():
        raise ValidationInputError("scores: missing or infinite values")
    pos = s[:, yb == 1]
    neg = s[:, yb == 0]
    m, n = pos.shape[1], neg.shape[1]
    tx = stats.rankdata(pos, axis=1)  # midranks within defaults
    ty = stats.rankdata(neg, axis=1)  # midranks within non-defaults
    tz = stats.rankdata(np.hstack([pos, neg]), axis=1)  # midranks overall
    aucs = (tz[:, :m].sum(axis=1) - m * (m + 1) / 2.0) / (m * n)
    v10 = (tz[:, :m] - tx) / n
    v01 = 1.0 - (tz[:, m:] - ty) / m
    return aucs, v10, v01


def _delong_cov(v10: np.ndarray, v01: np.ndarray) -> np.ndarray:
    """Covariance matrix of the AUC estimates (DeLong 1988, eq. for S).

    With a single default (or a single non-default) the sample covariance of that
    class's components is undefined: the matrix is NaN (no standard error, no CI,
    no test), never a zero that would make the AUC look exact.
    """
    m, n = v10.shape[1], v01.shape[1]
    k = v10.shape[0]
    if m < 2 or n < 2:
        return np.full((k, k), np.nan)
    return np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n


def auc_delong(y: Any, score: Any, alpha: float = 0.05) -> tuple[float, float, float, float]:
    """AUC with DeLong standard error and a normal ``1 - alpha`` CI clipped to [0, 1].

    A single default or non-default gives ``(auc, nan, nan, nan)``: no standard error.

    >>> import numpy as np
    >>> from village_credit.validation import auc_delong
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.02, 0.4, 400)
    >>> y = (rng.random(400) < p).astype(int)
    >>> auc, se, lo, hi = auc_delong(y, p)
    >>> round(auc, 3), round(se, 3), (round(lo, 3), round(hi, 3))
    (0.707, 0.029, (0.651, 0.764))
    """
    yb = as_binary(y)
    sc = as_float(score, yb.size, "score")
    aucs, v10, v01 = delong_components(yb, sc)
    auc = float(aucs[0])
    var = float(_delong_cov(v10, v01)[0, 0])
    if not np.isfinite(var):  # one default or one non-default: no DeLong variance
        return auc, float("nan"), float("nan"), float("nan")
    se = float(np.sqrt(max(var, 0.0)))
    half = stats.norm.ppf(1.0 - alpha / 2.0) * se
    return auc, se, float(max(auc - half, 0.0)), float(min(auc + half, 1.0))


def delong_test(y: Any, score_a: Any, score_b: Any) -> tuple[float, float, float, float, float]:
    """Two-sided DeLong test of equal AUC for two correlated scores on one sample.

    Returns ``(auc_a, auc_b, diff = auc_a - auc_b, z, p_value)``. When the two
    scores rank everyone identically the variance of the difference is zero and
    the test returns ``z = 0, p = 1`` rather than dividing by zero. With a single
    default or a single non-default there is no DeLong variance: ``z`` and ``p`` are NaN.
    """
    yb = as_binary(y)
    a = as_float(score_a, yb.size, "score_a")
    b = as_float(score_b, yb.size, "score_b")
    aucs, v10, v01 = delong_components(yb, np.vstack([a, b]))
    cov = _delong_cov(v10, v01)
    diff = float(aucs[0] - aucs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    if not np.isfinite(var):  # one default or one non-default: no test
        z, p = float("nan"), float("nan")
    elif var <= 1e-15:
        z, p = 0.0, 1.0
    else:
        z = diff / np.sqrt(var)
        p = float(2.0 * stats.norm.sf(abs(z)))
    return float(aucs[0]), float(aucs[1]), diff, float(z), p


def delong_paired(y: Any, score_a: Any, score_b: Any, alpha: float = 0.05) -> dict[str, float]:
    """Paired DeLong comparison of two scores **on one sample**: the difference and its CI.

    What a champion/challenger gate needs: both models scored on the same households,
    so the covariance of the two AUCs enters the variance of their difference
    (a difference of AUCs from two samples ignores it and is not comparable).
    Returns ``auc_a``, ``auc_b``, ``diff`` (a - b), ``se``, ``ci_low``/``ci_high``
    (normal ``1 - alpha``), ``z``, ``p_value`` and ``n``. Identical rankings give
    ``se = 0`` (CI a point, p = 1); a single default or non-default gives NaN
    for ``se``, the CI, ``z`` and ``p`` (no variance, never a plausible number).

    >>> import numpy as np
    >>> from village_credit.validation.discrimination import delong_paired
    >>> rng = np.random.default_rng(0)
    >>> risk = rng.normal(size=500)
    >>> y = (rng.random(500) < 1 / (1 + np.exp(-risk))).astype(int)
    >>> out = delong_paired(y, risk, risk + rng.normal(scale=1.0, size=500))
    >>> round(out["diff"], 3), round(out["ci_low"], 3), round(out["ci_high"], 3), out["p_value"] < 0.05
    (0.087, 0.049, 0.125, True)
    """
    a_auc, b_auc, diff, z, p = delong_test(y, score_a, score_b)
    yb = as_binary(y)
    _, v10, v01 = delong_components(yb, np.vstack([as_float(score_a, yb.size, "score_a"),
                                                      as_float(score_b, yb.size, "score_b")]))
    cov = _delong_cov(v10, v01)
    var = float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    if not np.isfinite(var):
        se = lo = hi = float("nan")
    else:
        se = float(np.sqrt(max(var, 0.0)))
        half = float(stats.norm.ppf(1.0 - alpha / 2.0)) * se
        lo, hi = diff - half, diff + half
    return {"auc_a": a_auc, "auc_b": b_auc, "diff": diff, "se": se, "ci_low": float(lo),
            "ci_high": float(hi), "z": z, "p_value": p, "alpha": float(alpha), "n": int(yb.size)}


def gini(y: Any, score: Any) -> float:
    """Gini coefficient (accuracy ratio) = 2 * AUC - 1."""
    yb = as_binary(y)
    aucs, _, _ = delong_components(yb, as_float(score, yb.size, "score"))
    return float(2.0 * aucs[0] - 1.0)


def _class_cdfs(yb: np.ndarray, sc: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct scores and the empirical CDFs of both classes at them."""
    thresholds = np.unique(sc)
    pos = np.sort(sc[yb == 1])
    neg = np.sort(sc[yb == 0])
    f1 = np.searchsorted(pos, thresholds, side="right") / pos.size
    f0 = np.searchsorted(neg, thresholds, side="right") / neg.size
    return thresholds, f1, f0


def ks_statistic(y: Any, score: Any) -> tuple[float, float]:
    """Kolmogorov-Smirnov distance between the classes' score distributions.

    Returns ``(ks, threshold)``: the largest gap between the two empirical CDFs
    and the score at which it occurs (households with ``score <= threshold`` on
    one side). Equals ``scipy.stats.ks_2samp(score[y==1], score[y==0]).statistic``.

    >>> from village_credit.validation import ks_statistic
    >>> ks_statistic([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    (0.5, 0.1)
    """
    yb = as_binary(y)
    both_classes(yb)
    sc = as_float(score, yb.size, "score")
    thresholds, f1, f0 = _class_cdfs(yb, sc)
    gap = np.abs(f0 - f1)
    i = int(np.argmax(gap))
    return float(gap[i]), float(thresholds[i])


def _thin(df: pd.DataFrame, max_points: int | None) -> pd.DataFrame:
    """Keep at most ``max_points`` rows, evenly spaced, always with both ends."""
    if max_points is None or len(df) <= max_points:
        return df.reset_index(drop=True)
    idx = np.unique(np.linspace(0, len(df) - 1, max(max_points, 2)).round().astype(int))
    return df.iloc[idx].reset_index(drop=True)


def roc_points(y: Any, score: Any, max_points: int | None = 1000) -> pd.DataFrame:
    """ROC curve as ``threshold, fpr, tpr`` rows from (0, 0) to (1, 1).

    A household is flagged when ``score >= threshold``; tied scores move
    together (one step per distinct score). ``max_points`` thins the curve for
    plots and JSON without changing its ends.

    >>> from village_credit.validation import roc_points
    >>> roc_points([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
       threshold  fpr  tpr
    0        inf  0.0  0.0
    1       0.80  0.0  0.5
    2       0.40  0.5  0.5
    3       0.35  0.5  1.0
    4       0.10  1.0  1.0
    """
    yb = as_binary(y)
    both_classes(yb)
    sc = as_float(score, yb.size, "score")
    thresholds, f1, f0 = _class_cdfs(yb, sc)
    # flagged share at threshold t_k is P(score >= t_k) = 1 - F(t_{k-1})
    prev_f1 = np.concatenate([[0.0], f1[:-1]])
    prev_f0 = np.concatenate([[0.0], f0[:-1]])
    df = pd.DataFrame({
        "threshold": np.concatenate([[np.inf], thresholds[::-1]]),
        "fpr": np.concatenate([[0.0], (1.0 - prev_f0)[::-1]]),
        "tpr": np.concatenate([[0.0], (1.0 - prev_f1)[::-1]]),
    })
    return _thin(df, max_points)


def cap_points(y: Any, score: Any, max_points: int | None = 1000) -> pd.DataFrame:
    """Cumulative accuracy profile: ``threshold, population_share, defaults_share``.

    Households are taken from riskiest to safest; tied scores enter together.
    The area between this curve and the diagonal, relative to the perfect
    model's, is the accuracy ratio (= Gini).
    """
    yb = as_binary(y)
    both_classes(yb)
    sc = as_float(score, yb.size, "score")
    thresholds, f1, _ = _class_cdfs(yb, sc)
    f_all = np.searchsorted(np.sort(sc), thresholds, side="right") / sc.size
    prev_f1 = np.concatenate([[0.0], f1[:-1]])
    prev_all = np.concatenate([[0.0], f_all[:-1]])
    df = pd.DataFrame({
        "threshold": np.concatenate([[np.inf], thresholds[::-1]]),
        "population_share": np.concatenate([[0.0], (1.0 - prev_all)[::-1]]),
        "defaults_share": np.concatenate([[0.0], (1.0 - prev_f1)[::-1]]),
    })
    return _thin(df, max_points)


def rank_ordering(grades: Any, y: Any, grade_order: Sequence[Any]) -> pd.DataFrame:
    """Default rate per grade in ``grade_order`` (best grade first).

    Columns: ``grade, n, defaults, default_rate, monotone``. ``monotone`` is
    False on a grade whose default rate is *below* that of the nearest better
    grade with households (rank order broken there); empty grades have NaN rate
    and count as monotone. The table's overall verdict is ``table.monotone.all()``.
    """
    yb = as_binary(y)
    g = as_grades(grades, yb.size, grade_order)
    frame = pd.DataFrame({"grade": pd.Categorical(g, categories=list(grade_order)), "y": yb})
    agg = frame.groupby("grade", observed=False)["y"].agg(["size", "sum"])
    n = agg["size"].to_numpy(dtype=np.int64)
    d = agg["sum"].to_numpy(dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(n > 0, d / np.maximum(n, 1), np.nan)
    prev_best = pd.Series(rate).ffill().shift(1).to_numpy()
    monotone = ~(np.isfinite(rate) & np.isfinite(prev_best) & (rate < prev_best - 1e-12))
    return pd.DataFrame({
        "grade": list(grade_order),
        "n": n,
        "defaults": d,
        "default_rate": rate,
        "monotone": monotone.astype(bool),
    })
