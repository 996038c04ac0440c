"""Calibration: do predicted PDs match observed default rates?

``y`` is 1 for a default, ``p`` the predicted PD. The per-grade back-test is
one-sided by default: for a lender (and a regulator) the risk is that defaults
run *above* the predicted PD, so ``alternative="greater"`` tests H0: PD <=
predicted against H1: PD > predicted. Pass ``alternative="two-sided"`` to flag
over-prediction too.

References: Hosmer & Lemeshow (2013) *Applied Logistic Regression* 3rd ed.
sec. 5.2.2; Spiegelhalter (1986) Stat. Med. 5:421-433; Jeffreys test as in the
ECB instructions for IRB validation reporting (2019), sec. 2.5.3.1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import brier_score_loss

from village_credit.binning import bin_index
from village_credit.validation._checks import (
    ValidationInputError,
    as_binary,
    as_float,
    as_grades,
)

__all__ = [
    "HL_DDOF_FITTED",
    "HL_DDOF_INDEPENDENT",
    "HL_GROUPS",
    "brier",
    "calibration_in_the_large",
    "expected_calibration_error",
    "grade_calibration",
    "hosmer_lemeshow",
    "jeffreys_p_value",
    "reliability_table",
    "spiegelhalter",
    "traffic_light",
]

Alternative = Literal["greater", "two-sided", "less"]


def _yp(y: Any, p: Any) -> tuple[np.ndarray, np.ndarray]:
    yb = as_binary(y)
    return yb, as_float(p, yb.size, "p", prob=True)


def brier(y: Any, p: Any) -> float:
    """Brier score: mean squared error of the PD (lower is better).

    >>> from village_credit.validation import brier
    >>> round(brier([0, 1, 1, 0], [0.1, 0.8, 0.6, 0.3]), 4)
    0.075
    """
    yb, pp = _yp(y, p)
    return float(brier_score_loss(yb, pp))


def _bin_index(p: np.ndarray, n_bins: int, strategy: str) -> np.ndarray:
    """Bin number per row (:func:`village_credit.binning.bin_index`, the one binning rule)."""
    if n_bins < 1:
        raise ValidationInputError(f"n_bins must be >= 1, got {n_bins}")
    if strategy not in ("quantile", "uniform"):
        raise ValidationInputError(f"strategy must be 'quantile' or 'uniform', got {strategy!r}")
    return bin_index(p, n_bins, strategy)


def reliability_table(y: Any, p: Any, n_bins: int = 10,
                      strategy: Literal["quantile", "uniform"] = "quantile",
                      true_pd: Any = None) -> pd.DataFrame:
    """Per PD bin: ``bin, p_min, p_max, n, defaults, mean_predicted, observed_rate, gap``.

    Empty bins are dropped. ``gap = observed_rate - mean_predicted``. With ``true_pd``
    (synthetic data), ``mean_true_pd`` is averaged over the **same** bins.
    """
    yb, pp = _yp(y, p)
    b = _bin_index(pp, n_bins, strategy)
    t = None if true_pd is None else as_float(true_pd, yb.size, "true_pd", prob=True)
    # counts and sums per bin with bincount (a pandas named aggregation cost ~10 ms a call
    # on 200 rows, and the report computes this table twice): same table, empty bins dropped
    n_all = np.bincount(b, minlength=n_bins)
    present = np.flatnonzero(n_all)
    n = n_all[present].astype(np.int64)
    defaults = np.rint(np.bincount(b, weights=yb, minlength=n_bins)[present]).astype(np.int64)
    order = np.argsort(b, kind="stable")
    starts = np.searchsorted(b[order], present)
    out = pd.DataFrame({
        "bin": present.astype(np.int64),
        "p_min": np.minimum.reduceat(pp[order], starts),
        "p_max": np.maximum.reduceat(pp[order], starts),
        "n": n, "defaults": defaults,
        "mean_predicted": np.bincount(b, weights=pp, minlength=n_bins)[present] / n,
        "observed_rate": defaults / n,
    })
    if t is not None:
        out["mean_true_pd"] = np.bincount(b, weights=t, minlength=n_bins)[present] / n
    out["gap"] = out["observed_rate"] - out["mean_predicted"]
    return out


def expected_calibration_error(y: Any, p: Any, n_bins: int = 10,
                               strategy: Literal["quantile", "uniform"] = "quantile") -> float:
    """ECE = sum over bins of (share of rows) * |observed rate - mean predicted PD|.

    >>> import numpy as np
    >>> from village_credit.validation import expected_calibration_error
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.02, 0.4, 400)
    >>> y = (rng.random(400) < p).astype(int)  # outcomes drawn from the PDs: well calibrated
    >>> round(expected_calibration_error(y, p, n_bins=5), 3)
    0.028
    """
    tab = reliability_table(y, p, n_bins=n_bins, strategy=strategy)
    w = tab["n"].to_numpy(dtype=float)
    return float(np.sum(w * tab["gap"].abs().to_numpy()) / w.sum())


HL_GROUPS = 10
"""Hosmer-Lemeshow groups (quantile groups of PD) used by every report of the toolkit."""
HL_DDOF_INDEPENDENT = 0
"""The toolkit's Hosmer-Lemeshow convention: PDs judged on households they were not
fitted on (the hold-out of a run, the calibrator's own sample) use ``dof = G``
(Hosmer & Lemeshow 2013, sec. 5.2.2). ``pipeline.evaluate``, the validation report
and the validation kit all use it, so one model on one sample gives one p-value."""
HL_DDOF_FITTED = 2
"""``dof = G - 2``: only for PDs fitted on the very sample tested (the recalibration
report's "after" figures on the calibrator's sample)."""


def calibration_in_the_large(y: Any, p: Any) -> dict[str, float]:
    """Two-sided test that the total number of defaults matches the sum of the PDs.

    ``z = (O - E) / sqrt(sum p (1 - p))`` (normal approximation of the Poisson-binomial
    count of defaults). Two-sided on purpose: over-prediction in every grade (observed
    below predicted everywhere) must fail as loudly as under-prediction. Returns
    ``observed, expected, ratio (O/E), z, p_value``; NaN z and p when the variance is 0.
    """
    yb, pp = _yp(y, p)
    o, e = float(yb.sum()), float(pp.sum())
    var = float(np.sum(pp * (1.0 - pp)))
    if var <= 0:
        z = pv = float("nan")
    else:
        z = (o - e) / np.sqrt(var)
        pv = float(2.0 * stats.norm.sf(abs(z)))
    return {"observed": o, "expected": e, "ratio": (o / e) if e > 0 else float("nan"),
            "z": float(z), "p_value": pv}


def hosmer_lemeshow(y: Any, p: Any, groups: int = HL_GROUPS,
                    ddof: int = HL_DDOF_INDEPENDENT) -> tuple[float, int, float]:
    """Hosmer-Lemeshow goodness-of-fit over ``groups`` quantile groups of PD.

    ``stat = sum_g (O_g - E_g)^2 / (E_g (1 - E_g / n_g))`` with ``dof = G - ddof``
    (G = non-empty groups; tied PDs stay in one group). The default ``ddof=0``
    (``HL_DDOF_INDEPENDENT``) is the toolkit's convention and what every report
    uses: the PDs are validated on a sample they were not fitted on, for which
    Hosmer & Lemeshow (2013, sec. 5.2.2) give ``G`` degrees of freedom. Pass
    ``ddof=HL_DDOF_FITTED`` (2) for the in-sample test of a model fitted on the
    same data. Returns ``(stat, dof, p_value)``; a small p-value means miscalibration.

    >>> import numpy as np
    >>> from village_credit.validation import hosmer_lemeshow
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.02, 0.4, 400)
    >>> y = (rng.random(400) < p).astype(int)
    >>> stat, dof, p_value = hosmer_lemeshow(y, p, groups=10, ddof=0)
    >>> round(stat, 2), dof, round(p_value, 2)
    (3.87, 10, 0.95)
    """
    yb, pp = _yp(y, p)
    b = _bin_index(pp, groups, "quantile")
    n_g = np.bincount(b).astype(float)
    o_g = np.bincount(b, weights=yb).astype(float)
    e_g = np.bincount(b, weights=pp)
    keep = n_g > 0
    n_g, o_g, e_g = n_g[keep], o_g[keep], e_g[keep]
    var = e_g * (1.0 - e_g / n_g)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(var > 0, (o_g - e_g) ** 2 / np.where(var > 0, var, 1.0),
                         np.where(np.isclose(o_g, e_g), 0.0, np.inf))
    stat = float(terms.sum())
    dof = int(keep.sum() - ddof)
    if dof < 1:
        raise ValidationInputError(
            f"hosmer_lemeshow: only {int(keep.sum())} distinct PD groups, need more than {ddof}")
    return stat, dof, float(stats.chi2.sf(stat, dof))


def spiegelhalter(y: Any, p: Any) -> tuple[float, float]:
    """Spiegelhalter's z-test that the Brier score is what calibration implies.

    ``z = sum((y - p)(1 - 2p)) / sqrt(sum((1 - 2p)^2 p (1 - p)))``; two-sided
    p-value from the standard normal. Returns ``(z, p_value)``.
    """
    yb, pp = _yp(y, p)
    num = np.sum((yb - pp) * (1.0 - 2.0 * pp))
    den = np.sqrt(np.sum((1.0 - 2.0 * pp) ** 2 * pp * (1.0 - pp)))
    if den == 0:
        raise ValidationInputError("spiegelhalter: variance is zero (all PDs are 0, 0.5 or 1)")
    z = float(num / den)
    return z, float(2.0 * stats.norm.sf(abs(z)))


def jeffreys_p_value(defaults: Any, n: Any, pd_pred: Any,
                     alternative: Alternative = "greater") -> np.ndarray:
    """Jeffreys test p-values (vectorised over grades).

    Posterior of the grade's PD under the Jeffreys prior Beta(1/2, 1/2) is
    Beta(d + 1/2, n - d + 1/2). For ``"greater"`` the p-value is the posterior
    probability that PD <= predicted: small when defaults exceed the prediction.
    ``"less"`` is the complement, ``"two-sided"`` twice the smaller tail. At zero
    defaults the lower tail, at all defaulted the upper tail, is 1 (the interval's
    bound is 0, resp. 1): a PD of 0 with no default, or 1 with all defaulted, passes.
    """
    d = np.asarray(defaults, dtype=float)
    nn = np.asarray(n, dtype=float)
    cdf = stats.beta.cdf(np.asarray(pd_pred, dtype=float), d + 0.5, nn - d + 0.5)
    # The Jeffreys interval's boundary modification of Brown, Cai & DasGupta (2001,
    # Statistical Science 16:101-133, sec. 4.1.2): with no default the lower bound is
    # 0, with all defaulted the upper bound is 1. So no default is never evidence that
    # the PD is *too low*, and all defaulted never evidence that it is *too high*.
    # statsmodels' proportion_confint(method="jeffreys") does NOT apply it (0.15: the
    # 99 % lower bound at 0 of 100 is 7.8e-7); tests/test_validation_stats.py checks
    # both facts, so this comment cannot drift from what the references do.
    lower_tail = np.where(d <= 0, 1.0, cdf)         # P(PD <= predicted), pinned at d = 0
    upper_tail = np.where(d >= nn, 1.0, 1.0 - cdf)  # P(PD >= predicted), pinned at d = n
    if alternative == "greater":
        return lower_tail
    if alternative == "less":
        return upper_tail
    if alternative == "two-sided":
        return np.minimum(1.0, 2.0 * np.minimum(lower_tail, upper_tail))
    raise ValidationInputError(f"alternative must be greater, less or two-sided: {alternative!r}")


def traffic_light(p_value: Any, green_p: float = 0.05, red_p: float = 0.01) -> np.ndarray:
    """``green`` if p >= green_p, ``red`` if p < red_p, else ``amber``; NaN -> ``n/a``."""
    if not 0.0 <= red_p <= green_p <= 1.0:
        raise ValidationInputError(f"need 0 <= red_p <= green_p <= 1, got {red_p}, {green_p}")
    pv = np.asarray(p_value, dtype=float)
    out = np.where(pv >= green_p, "green", np.where(pv < red_p, "red", "amber")).astype(object)
    out[np.isnan(pv)] = "n/a"
    return out


def grade_calibration(grades: Any, y: Any, pd_pred: Any, grade_order: Sequence[Any],
                      green_p: float = 0.05, red_p: float = 0.01,
                      alternative: Alternative = "greater",
                      light_test: Literal["jeffreys", "binomial", "min"] = "jeffreys",
                      ) -> pd.DataFrame:
    """Per-grade PD back-test with binomial and Jeffreys tests and a traffic light.

    Columns: ``grade, n, defaults, predicted_pd`` (mean PD of the grade),
    ``observed_rate, binomial_p`` (``scipy.stats.binomtest`` of the defaults
    against the mean PD; this treats the grade as homogeneous, which is slightly
    conservative when PDs vary inside it), ``jeffreys_p``, ``light``.
    The light uses ``light_test`` (``"min"`` = the stricter of both). Empty
    grades get NaN and ``n/a``.
    """
    yb = as_binary(y)
    pp = as_float(pd_pred, yb.size, "pd", prob=True)
    g = as_grades(grades, yb.size, grade_order)
    # per grade with bincount over the grade codes (every grade is in grade_order: as_grades)
    k = len(grade_order)
    codes = pd.Categorical(g, categories=list(grade_order)).codes.astype(np.intp)
    n = np.bincount(codes, minlength=k).astype(np.int64)
    d = np.rint(np.bincount(codes, weights=yb, minlength=k)).astype(np.int64)
    has = n > 0
    pred = np.full(k, np.nan)
    pred[has] = np.bincount(codes, weights=pp, minlength=k)[has] / n[has]
    observed = np.where(has, d / np.maximum(n, 1), np.nan)
    binom_p = np.full(n.size, np.nan)
    for i in np.flatnonzero(has):  # one call per grade (about ten), not per household
        binom_p[i] = stats.binomtest(int(d[i]), int(n[i]), float(pred[i]),
                                     alternative=alternative).pvalue
    jeff_p = np.full(n.size, np.nan)
    jeff_p[has] = jeffreys_p_value(d[has], n[has], pred[has], alternative)
    if light_test == "jeffreys":
        light_p = jeff_p
    elif light_test == "binomial":
        light_p = binom_p
    elif light_test == "min":
        light_p = np.fmin(jeff_p, binom_p)
    else:
        raise ValidationInputError(f"light_test must be jeffreys, binomial or min: {light_test!r}")
    return pd.DataFrame({
        "grade": list(grade_order),
        "n": n,
        "defaults": d,
        "predicted_pd": pred,
        "observed_rate": observed,
        "binomial_p": binom_p,
        "jeffreys_p": jeff_p,
        "light": traffic_light(light_p, green_p, red_p),
    })
