"""Calibration within each protected group: predicted against observed (and true) defaults.

Why per group: a model can be calibrated overall while it under-predicts the young and
over-predicts the elderly; the equal-risk gaps then follow from the miscalibration, not
from the decision rule. This module answers "is the PD right *for this group*" in two ways:

* against **observed outcomes** (any labelled sample): mean PD, observed default rate with
  a Jeffreys interval, predicted / observed ratio, and a two-sided calibration-in-the-large
  p-value (Poisson-binomial normal approximation) per group;
* against the **true PD** when the data carry it (synthetic data only): predicted / true.

Per-group figures are :class:`~fairlearn.metrics.MetricFrame`'s, value for value, one table
per sensitive column (:func:`~village_credit.fairness.audit.group_metrics`, without its
slow slicing); the groups are what the caller declares (households: the five age bands and
formerly-poor status, :func:`calibration_groups`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import count
from scipy import stats

from village_credit.data.groups import (
    FORMERLY_POOR,
    NOT_FORMERLY_POOR,
    age_band,
    bool_column,
    require_column,
)
from village_credit.fairness.audit import _arr, group_metrics
from village_credit.fairness.groups import FairnessInputError, check_sensitive

__all__ = ["calibration_groups", "group_calibration"]

ALL = "all"
COLUMNS = ["feature", "group", "n", "defaults", "mean_pd", "observed_rate", "observed_ci_low",
           "observed_ci_high", "pred_observed_ratio", "citl_p", "mean_true_pd", "pred_true_ratio"]


def calibration_groups(households: pd.DataFrame) -> pd.DataFrame:
    """``age_band`` (the one set, :data:`~village_credit.data.groups.AGE_BANDS`) and
    ``formerly_poor`` labels per household.

    >>> import pandas as pd
    >>> calibration_groups(pd.DataFrame({"head_age": [30, 45, 62, 66, 75], "formerly_poor": [0, 1, 0, 0, 1]}))
      age_band      formerly_poor
    0    18-40  not formerly poor
    1    41-59      formerly_poor
    2    60-64  not formerly poor
    3    65-69  not formerly poor
    4      70+      formerly_poor
    """
    age = require_column(households, "head_age").to_numpy(dtype=float)
    poor = bool_column(require_column(households, "formerly_poor"), "formerly_poor")
    return pd.DataFrame({"age_band": age_band(age),
                         "formerly_poor": np.where(poor, FORMERLY_POOR, NOT_FORMERLY_POOR).astype(object)},
                        index=households.index)


def _defaults(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.sum(y))


def _mean(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(p)) if len(p) else math.nan


def _mean_of(y: np.ndarray, p: np.ndarray, values: np.ndarray) -> float:
    return float(np.mean(values)) if len(values) else math.nan


def _citl_p(y: np.ndarray, p: np.ndarray) -> float:
    """Two-sided p of observed vs expected defaults; NaN when the variance is 0."""
    var = float(np.sum(p * (1.0 - p)))
    if var <= 0:
        return math.nan
    z = (float(np.sum(y)) - float(np.sum(p))) / math.sqrt(var)
    return float(2.0 * stats.norm.sf(abs(z)))


def checked_pd_and_outcome(pd_pred: Any, y: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The PD and the 0/1 outcome as float arrays of ``n`` values; a missing value or an
    outcome other than 0/1 is refused (what :func:`group_calibration` accepts)."""
    p = _arr(pd_pred, "pd", n)
    yy = _arr(y, "y", n)
    assert p is not None and yy is not None
    if np.isnan(p).any() or np.isnan(yy).any():
        raise FairnessInputError(f"pd has {int(np.isnan(p).sum())} and y {int(np.isnan(yy).sum())} missing "
                                 "value(s); score or quarantine them before the audit")
    if not np.isin(yy, (0.0, 1.0)).all():
        raise FairnessInputError("y must be 0/1 (1 = defaulted)")
    return p, yy


def calibration_metrics() -> dict[str, Any]:
    """fairlearn metrics of the calibration within groups, for a frame whose ``y_true`` and
    ``y_pred`` are something else (the approval frame of
    :func:`~village_credit.fairness.observed.observed_outcome_evidence`): the outcome and
    the PD come as sample parameters (:func:`calibration_params`). The same functions on
    the same slices as :func:`group_calibration`'s own frame, so the same numbers. The
    defaults per group are the caller's (that frame counts them already: ``n`` times its
    default rate, an exact integer); a fairlearn metric costs ~7 ms per frame."""
    return {"mean_pd": lambda yt, yp, pd: _mean(yt, pd),
            "citl_p": lambda yt, yp, outcome, pd: _citl_p(outcome, pd)}


def calibration_params(p: np.ndarray, yy: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """The sample parameters of :func:`calibration_metrics` (PD and 0/1 outcome per row)."""
    return {"mean_pd": {"pd": p}, "citl_p": {"outcome": yy, "pd": p}}


def observed_columns(out: pd.DataFrame, alpha: float, defaults: str = "defaults") -> pd.DataFrame:
    """Add ``observed_rate``, its Jeffreys ``observed_ci_low/high`` and ``pred_observed_ratio``
    to a per-group frame with ``n``, ``defaults`` (column named by ``defaults``) and ``mean_pd``."""
    d, cnt = out[defaults].to_numpy(float), out["n"].to_numpy(float)
    out["observed_rate"] = d / cnt
    # Jeffreys interval: Beta(d + 1/2, n - d + 1/2) quantiles, clipped to 0 / 1 at the ends
    lo = stats.beta.ppf(alpha / 2, d + 0.5, cnt - d + 0.5)
    hi = stats.beta.ppf(1 - alpha / 2, d + 0.5, cnt - d + 0.5)
    out["observed_ci_low"] = np.where(d == 0, 0.0, lo)
    out["observed_ci_high"] = np.where(d == cnt, 1.0, hi)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["pred_observed_ratio"] = np.where(d > 0, out["mean_pd"] / out["observed_rate"], np.nan)
    return out


def group_calibration(groups: pd.DataFrame, pd_pred: Any, y: Any, true_pd: Any = None,
                      alpha: float = 0.05) -> pd.DataFrame:
    """Per group of each column of ``groups`` (plus ``all``): predicted vs observed (vs true) PD.

    ``y``: observed default (1) or not (0), one per row; ``pd_pred``: the model's PD.
    Columns: ``feature, group, n, defaults, mean_pd, observed_rate`` with its Jeffreys
    ``observed_ci_low/high`` (level ``1 - alpha``), ``pred_observed_ratio``, ``citl_p``
    (two-sided, observed vs predicted count of defaults), and with ``true_pd``:
    ``mean_true_pd``, ``pred_true_ratio`` (NaN columns otherwise). A group with no
    defaults has ratio NaN (never a plausible number); an empty sample raises.

    >>> from village_credit.fairness import group_calibration
    >>> import numpy as np, pandas as pd
    >>> groups = pd.DataFrame({"sex": ["f", "f", "m", "m"]})
    >>> t = group_calibration(groups, [0.1, 0.3, 0.2, 0.2], [0, 1, 0, 1], true_pd=[0.2, 0.2, 0.4, 0.4])
    >>> t[["group", "n", "mean_pd", "observed_rate", "pred_true_ratio"]].round(2)
      group  n  mean_pd  observed_rate  pred_true_ratio
    0     f  2     0.20            0.5              1.0
    1     m  2     0.20            0.5              0.5
    2   all  4     0.20            0.5              0.67
    """
    n = len(groups)
    if n == 0:
        raise FairnessInputError("group_calibration needs at least one row")
    sens = check_sensitive(groups, n)
    p, yy = checked_pd_and_outcome(pd_pred, y, n)
    tp = _arr(true_pd, "true_pd", n)
    metrics: dict[str, Any] = {"n": count, "defaults": _defaults, "mean_pd": _mean, "citl_p": _citl_p}
    params: dict[str, Any] = {}
    if tp is not None:
        metrics["mean_true_pd"] = _mean_of
        params["mean_true_pd"] = {"values": tp}
    frames = []
    overall: pd.Series | None = None
    for col in sens.columns:
        by, overall = group_metrics(metrics, yy, p, sens[col].to_numpy(), params)
        frames.append(by.reset_index(names="group").assign(feature=col))
    if overall is None:  # no attribute: the whole sample is the one group
        _, overall = group_metrics(metrics, yy, p, np.zeros(n), params)
    # every frame holds the whole sample's figures: not computed again
    frames.append(pd.DataFrame([{**overall.to_dict(), "group": ALL, "feature": ALL}]))
    out = pd.concat(frames, ignore_index=True)
    out["n"] = out["n"].astype(int)
    observed_columns(out, alpha)
    if tp is not None:
        out["mean_true_pd"] = out["mean_true_pd"].astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["pred_true_ratio"] = np.where(out["mean_true_pd"] > 0, out["mean_pd"] / out["mean_true_pd"], np.nan)
    else:
        out["mean_true_pd"] = np.nan
        out["pred_true_ratio"] = np.nan
    return out[COLUMNS]
