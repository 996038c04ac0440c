"""Logistic-regression scorecard baseline: optbinning WOE binning + PDO scaling.

Why a baseline: a WOE scorecard is what a credit committee already understands; the
GBM and the blend must beat it to earn their complexity. optbinning does the
binning (``BinningProcess``) and the scaling (``Scorecard(scaling_method="pdo_odds")``),
rather than hand-written binning.

Scale (the same convention as the rest of the toolkit)::

    points = offset - factor * ln(odds of default),  factor = pdo / ln 2,
    offset = base_points + factor * ln(1 / base_odds)

so ``base_points`` are scored at good:bad odds ``base_odds`` and every ``pdo`` points
halve the odds of default. optbinning's ``odds`` parameter is the good:bad odds at
``scorecard_points``; its scaled points sum to exactly this (``rounding=False``),
and :meth:`ScorecardModel.pd_from_points` inverts it. A test checks that PD from
points equals the logistic model's PD (peers' scorecards drift apart here).

optbinning's monotonic trend per variable comes from the feature spec's risk
direction (``+1`` -> event rate ascending, ``-1`` -> descending, ``0`` -> auto).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from optbinning import BinningProcess, Scorecard
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

from village_credit.errors import ConfigError, SchemaError
from village_credit.models.features import FeatureSpec, spec_for
from village_credit.models.scaling import PointsScaling

_TREND = {1: "ascending", -1: "descending", 0: "auto"}


class ScorecardModel(ClassifierMixin, BaseEstimator):
    """WOE-binned logistic scorecard over a feature frame; PD and points that agree exactly.

    Parameters
    ----------
    pdo, base_points, base_odds:
        Scaling: ``base_points`` at good:bad odds ``base_odds``; ``pdo`` points double
        the good:bad odds.
    max_n_bins, min_bin_size:
        optbinning binning limits per variable.
    min_iv:
        Variables with information value below this are dropped (0 keeps all).
    specs:
        Feature specs for monotone trends; default: looked up by column name
        (:func:`features.spec_for`), unknown columns unconstrained.
    C:
        Inverse L2 strength of the logistic regression.
    """

    def __init__(
        self,
        pdo: float = 20.0,
        base_points: float = 600.0,
        base_odds: float = 50.0,
        max_n_bins: int = 6,
        min_bin_size: float = 0.05,
        min_iv: float = 0.0,
        specs: Sequence[FeatureSpec] | None = None,
        C: float = 1.0,
        max_iter: int = 1000,
    ):
        self.pdo = pdo
        self.base_points = base_points
        self.base_odds = base_odds
        self.max_n_bins = max_n_bins
        self.min_bin_size = min_bin_size
        self.min_iv = min_iv
        self.specs = specs
        self.C = C
        self.max_iter = max_iter

    # -- scaling ---------------------------------------------------------------------
    @property
    def scaling(self) -> PointsScaling:
        """The points scale (the one :class:`~village_credit.models.scaling.PointsScaling` formula)."""
        return PointsScaling.from_pdo(float(self.pdo), float(self.base_points), float(self.base_odds))

    @property
    def factor(self) -> float:
        return self.scaling.factor

    @property
    def offset(self) -> float:
        return self.scaling.offset

    def pd_from_points(self, points: Any) -> np.ndarray:
        """Invert the scale: ``PD = sigmoid((offset - points) / factor)``."""
        return self.scaling.pd(points)

    def points_from_pd(self, pd_: Any) -> np.ndarray:
        """Points of a PD; PDs of exactly 0 or 1 are clipped to 1e-12 so points stay finite."""
        return self.scaling.points_from_pd(np.clip(np.asarray(pd_, dtype=np.float64), 1e-12, 1 - 1e-12))

    # -- fit / predict ---------------------------------------------------------------
    def _trend(self, name: str) -> str:
        if self.specs is not None:
            by = {s.name: s for s in self.specs}
            return _TREND[by[name].monotone] if name in by else "auto"
        try:
            return _TREND[spec_for(name).monotone]
        except KeyError:
            return "auto"

    def fit(self, X: pd.DataFrame, y: Any) -> ScorecardModel:
        if not isinstance(X, pd.DataFrame):
            raise SchemaError("ScorecardModel.fit: X must be a pandas DataFrame with named feature columns")
        if self.pdo <= 0 or self.base_odds <= 0:
            raise ConfigError(f"scorecard scaling: pdo and base_odds must be > 0, got {self.pdo}, {self.base_odds}")
        yy = np.asarray(y)
        self.classes_ = np.unique(yy)
        if len(self.classes_) != 2:
            raise ValueError(f"Only binary classification is supported; y has {len(self.classes_)} class(es)")
        target = (yy == self.classes_[1]).astype(int)
        names = [str(c) for c in X.columns]
        Xn = X.set_axis(names, axis=1).astype(np.float64)
        fit_params = {n: {"monotonic_trend": self._trend(n)} for n in names}
        selection = {"iv": {"min": float(self.min_iv)}} if self.min_iv > 0 else None
        bp = BinningProcess(
            variable_names=names, max_n_bins=self.max_n_bins, min_bin_size=self.min_bin_size,
            binning_fit_params=fit_params, selection_criteria=selection,
        )
        self.scorecard_ = Scorecard(
            binning_process=bp,
            estimator=LogisticRegression(C=self.C, max_iter=self.max_iter),
            scaling_method="pdo_odds",
            scaling_method_params={"pdo": float(self.pdo), "odds": float(self.base_odds),
                                   "scorecard_points": float(self.base_points)},
            rounding=False,
        )
        self.scorecard_.fit(Xn, target)
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.n_features_in_ = len(names)
        self.selected_features_ = list(self.scorecard_.binning_process_.get_support(names=True))
        return self

    def _Xn(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "scorecard_")
        missing = [c for c in self.feature_names_in_ if c not in X.columns]
        if missing:
            raise SchemaError(f"scorecard: feature frame lacks column(s) {missing}")
        return X[list(self.feature_names_in_)].astype(np.float64)

    def points(self, X: pd.DataFrame) -> np.ndarray:
        """Scorecard points (higher = safer), the sum of each variable's bin points."""
        return np.asarray(self.scorecard_.score(self._Xn(X)), dtype=np.float64)

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Log-odds of default implied by the points (exactly consistent with :meth:`points`)."""
        return (self.offset - self.points(X)) / self.factor

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """PD from the points, so PD and points can never disagree."""
        p = self.pd_from_points(self.points(X))
        return np.column_stack([1.0 - p, p])

    def predict_proba_estimator(self, X: pd.DataFrame) -> np.ndarray:
        """PD straight from optbinning's logistic model (for the agreement check)."""
        return self.scorecard_.predict_proba(self._Xn(X))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        positive = self.decision_function(X) > 0
        return self.classes_[positive.astype(int)]

    def points_table(self, style: str = "detailed") -> pd.DataFrame:
        """Points per variable and bin (optbinning's scorecard table), with zh/en labels when known."""
        check_is_fitted(self, "scorecard_")
        t = self.scorecard_.table(style=style).copy()
        by = {s.name: s for s in (self.specs or [])}

        def label(name: str, attr: str) -> str:
            s = by.get(name)
            if s is None:
                try:
                    s = spec_for(name)
                except KeyError:
                    return name
            return getattr(s, attr)

        t["label_en"] = t["Variable"].map(lambda n: label(n, "label_en"))
        t["label_zh"] = t["Variable"].map(lambda n: label(n, "label_zh"))
        return t

    def scaling_dict(self) -> dict[str, float]:
        """The scale, to store with the model."""
        return {"pdo": float(self.pdo), "base_points": float(self.base_points), "base_odds": float(self.base_odds),
                "factor": self.factor, "offset": self.offset}
