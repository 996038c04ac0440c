"""Exact SHAP contributions of LightGBM models, fast when the model is additive.

Why: the credit centre needs reason codes for *every* household, and TreeSHAP
(``booster.predict(X, pred_contrib=True)``) costs tens to hundreds of plain
predictions. When every tree splits on a single feature (depth-1 stumps, or
``interaction_constraints`` with one feature per set), the model is a sum of 1-D
step functions ``F(x) = sum_f g_f(x_f)``; path-dependent TreeSHAP then gives each
feature exactly ``g_f(x_f) - E[g_f]`` (``E`` = the cover-weighted mean of the leaves,
as LightGBM's ``Tree::ExpectedValue``) and the bias column ``sum of E``. We merge the
thresholds of all trees on a feature once, tabulate ``g_f`` per interval, and
explain with one ``np.searchsorted`` per feature: the cost is close to a plain
prediction.

Missing values follow LightGBM's ``NumericalDecision`` exactly, per node: NaN is
sent down the default branch when ``missing_type`` is NaN, turned into 0.0
otherwise, and with ``missing_type`` Zero every ``|x| <= 1e-35f`` goes the default
way; the Zero band's edges are added as breakpoints so the tables stay exact.

:class:`TreeContributions` picks the table explainer when the booster qualifies and
falls back to ``pred_contrib`` otherwise (exact but ~35-250x a prediction for deep
trees: measured in ``docs/benchmarks.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from village_credit.errors import VillageCreditError

PREDICT_OPTIONS: dict[str, int] = {}
"""Extra ``Booster.predict`` options of this process (every prediction of the models
layer passes them): empty, LightGBM's default of every core; ``{"num_threads": 1}`` in
a scoring worker process (``scoring.batch``), which is forked from a parent whose
OpenMP pool it cannot use (libgomp hangs in a forked child that starts a parallel
region) and which shares the cores with the other workers anyway."""

# LightGBM: ``const double kZeroThreshold = 1e-35f;`` (a float literal widened to double).
K_ZERO_THRESHOLD = float(np.float32(1e-35))


class NotAdditiveError(VillageCreditError):
    """The booster has a tree that is not a 1-D numerical step function."""


def _as_matrix(X: Any, n_features: int) -> NDArray[np.float64]:
    """Float64 matrix of the booster's feature columns (LightGBM compares in double)."""
    if isinstance(X, pd.DataFrame):
        arr = X.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != n_features:
        raise VillageCreditError(
            f"explainer expects a 2-D table with {n_features} feature columns, got shape {arr.shape}"
        )
    return arr


def _tree_features(node: dict[str, Any], acc: set[int]) -> set[int]:
    if "leaf_value" in node and "split_feature" not in node:
        return acc
    acc.add(int(node["split_feature"]))
    _tree_features(node["left_child"], acc)
    _tree_features(node["right_child"], acc)
    return acc


def _check_numerical(node: dict[str, Any], tree_index: int) -> None:
    if "split_feature" not in node:
        return
    if node.get("decision_type", "<=") != "<=":
        raise NotAdditiveError(f"tree {tree_index} has a categorical split ({node.get('decision_type')!r})")
    _check_numerical(node["left_child"], tree_index)
    _check_numerical(node["right_child"], tree_index)


def _collect_thresholds(node: dict[str, Any], acc: list[float], missing: set[str]) -> None:
    if "split_feature" not in node:
        return
    acc.append(float(node["threshold"]))
    missing.add(str(node.get("missing_type", "None")))
    _collect_thresholds(node["left_child"], acc, missing)
    _collect_thresholds(node["right_child"], acc, missing)


def _evaluate(node: dict[str, Any], v: NDArray[np.float64]) -> NDArray[np.float64]:
    """Leaf value reached by each probe value ``v`` (LightGBM's ``NumericalDecision``)."""
    if "split_feature" not in node:
        return np.full(v.shape, float(node["leaf_value"]))
    missing_type = str(node.get("missing_type", "None"))
    default_left = bool(node.get("default_left", True))
    isnan = np.isnan(v)
    fval = np.where(isnan & (missing_type != "NaN"), 0.0, v)
    if missing_type == "Zero":
        to_default = (fval >= -K_ZERO_THRESHOLD) & (fval <= K_ZERO_THRESHOLD)
    elif missing_type == "NaN":
        to_default = isnan
    else:
        to_default = np.zeros(v.shape, dtype=bool)
    go_left = np.where(to_default, default_left, fval <= float(node["threshold"]))
    return np.where(go_left, _evaluate(node["left_child"], v), _evaluate(node["right_child"], v))


def _expected_value(node: dict[str, Any]) -> float:
    """Cover-weighted mean leaf value (LightGBM ``Tree::ExpectedValue``)."""
    if "split_feature" not in node:
        return float(node["leaf_value"])
    total = float(node["internal_count"])
    acc = 0.0

    def walk(n: dict[str, Any]) -> None:
        nonlocal acc
        if "split_feature" not in n:
            acc += float(n["leaf_count"]) / total * float(n["leaf_value"])
        else:
            walk(n["left_child"])
            walk(n["right_child"])

    walk(node)
    return acc


@dataclass
class FeatureTable:
    """One feature's summed step function, centred by its trees' expected values."""

    thresholds: NDArray[np.float64]  # sorted breakpoints t: interval k is (t[k-1], t[k]]
    values: NDArray[np.float64]  # len(t) + 1 centred contributions, one per interval
    nan_value: float  # centred contribution of a missing value
    n_trees: int


class AdditiveExplainer:
    """Exact TreeSHAP for boosters whose every tree splits on one numerical feature."""

    def __init__(self, tables: dict[int, FeatureTable], expected_value: float,
                 n_features: int, feature_names: list[str]) -> None:
        self.tables = tables
        self.expected_value = float(expected_value)
        self.n_features = n_features
        self.feature_names = feature_names

    @classmethod
    def from_booster(cls, booster: Any, num_iteration: int | None = None) -> "AdditiveExplainer":
        """Tabulate a booster; raises :class:`NotAdditiveError` if a tree mixes features."""
        dump = booster.dump_model(num_iteration=num_iteration)
        if int(dump.get("num_tree_per_iteration", 1)) != 1:
            raise NotAdditiveError("only single-output (binary / regression) boosters are supported")
        if dump.get("linear_tree"):
            raise NotAdditiveError("linear trees are not step functions")
        names = list(dump["feature_names"])
        n_features = len(names)
        by_feature: dict[int, list[dict[str, Any]]] = {}
        base = 0.0
        for i, tree in enumerate(dump["tree_info"]):
            root = tree["tree_structure"]
            feats = _tree_features(root, set())
            if len(feats) > 1:
                raise NotAdditiveError(
                    f"tree {i} splits on {len(feats)} features ({sorted(names[f] for f in feats)}); "
                    "use interaction_constraints with one feature per set or depth-1 trees"
                )
            _check_numerical(root, i)
            base += _expected_value(root)
            if feats:
                by_feature.setdefault(feats.pop(), []).append(root)
        tables: dict[int, FeatureTable] = {}
        for f, roots in by_feature.items():
            thr: list[float] = []
            missing: set[str] = set()
            for r in roots:
                _collect_thresholds(r, thr, missing)
            if "Zero" in missing:  # make the closed band [-k, k] a union of intervals
                thr += [float(np.nextafter(-K_ZERO_THRESHOLD, -np.inf)), K_ZERO_THRESHOLD]
            t = np.unique(np.asarray(thr, dtype=np.float64))
            probes = np.append(t, np.inf)  # t[k] lies in interval k; +inf in the last
            probes_nan = np.append(probes, np.nan)
            total = np.zeros(probes_nan.shape)
            expected = 0.0
            for r in roots:
                total += _evaluate(r, probes_nan)
                expected += _expected_value(r)
            centred = total - expected
            tables[f] = FeatureTable(thresholds=t, values=centred[:-1].copy(),
                                     nan_value=float(centred[-1]), n_trees=len(roots))
        return cls(tables, base, n_features, names)

    def contributions(self, X: Any) -> NDArray[np.float64]:
        """``(n, n_features + 1)`` SHAP values in raw score units; the last column is the bias."""
        arr = _as_matrix(X, self.n_features)
        out = np.zeros((arr.shape[0], self.n_features + 1), dtype=np.float64)
        for f, tab in self.tables.items():
            col = arr[:, f]
            out[:, f] = tab.values[np.searchsorted(tab.thresholds, col, side="left")]
            nan = np.isnan(col)
            if nan.any():
                out[nan, f] = tab.nan_value
        out[:, -1] = self.expected_value
        return out

    def raw_score(self, X: Any) -> NDArray[np.float64]:
        """The booster's raw score (sum of contributions), for consistency checks."""
        return self.contributions(X).sum(axis=1)


class TreeContributions:
    """Exact contributions for any LightGBM booster: tables when additive, else TreeSHAP.

    The fallback calls ``booster.predict(X, pred_contrib=True)``: exact, but its cost
    grows with depth (``O(trees * leaves * depth^2)`` per row) -- tens to hundreds of
    plain predictions for depth-6 models.
    """

    def __init__(self, booster: Any, num_iteration: int | None = None) -> None:
        self.booster = booster
        self.num_iteration = num_iteration
        try:
            self.additive: AdditiveExplainer | None = AdditiveExplainer.from_booster(booster, num_iteration)
            self.fallback_reason = ""
        except NotAdditiveError as exc:
            self.additive = None
            self.fallback_reason = str(exc)

    @classmethod
    def from_booster(cls, booster: Any, num_iteration: int | None = None) -> "TreeContributions":
        return cls(booster, num_iteration)

    @property
    def is_fast(self) -> bool:
        return self.additive is not None

    def contributions(self, X: Any) -> NDArray[np.float64]:
        if self.additive is not None:
            return self.additive.contributions(X)
        arr = _as_matrix(X, self.booster.num_feature())
        return np.asarray(self.booster.predict(arr, num_iteration=self.num_iteration, pred_contrib=True,
                                               **PREDICT_OPTIONS),
                          dtype=np.float64)
