"""``CreditScoreClassifier``: the whole decision model behind the scikit-learn contract.

Why one estimator: a household table with a policy and a table of one's own (any
columns + a feature spec) are trained the same way, so the path can be
cross-validated, grid-searched and put in a ``Pipeline`` like any classifier, and
every fit ends in the one model format, a :class:`~village_credit.models.decision.DecisionModel`
(plain files, no pickles) in ``model_``.

``fit(X, y)`` = features (household or spec-driven) -> optional Optuna tuning ->
:func:`~village_credit.models.blend.fit_blend_cv`: the strategy's calibration is fitted
on out-of-fold tree scores (``calibration_folds``-fold cross-fitting), and the final
trees are refitted on *every* row, so no fifth of the data sits out as a calibration
split. Grades without a policy are the deciles of the out-of-fold PD.

Labels: ``classes_`` are the sorted labels, as scikit-learn expects. The *default*
label is ``target_positive`` ("bad", "1", ...; default ``classes_[1]``). ``predict_proba``
columns follow ``classes_``; :meth:`predict_pd` is always the probability of default.

Points scaling (``points_scaling``): ``"auto"`` keeps the Jinxiang household convention
(60 points at PD 2 %, 20 points to double the odds; 10 points = 10,000 yuan on the
policy's scale) when a policy is given, and otherwise anchors 60 points at the
training base rate (:meth:`PointsScaling.from_base_rate`), so a table with a 30 % bad
rate does not give most applicants negative points.

scikit-learn tags set (see ``__sklearn_tags__``): ``allow_nan`` (LightGBM routes missing
values), ``string`` and ``categorical`` inputs (spec categories; a numpy object or string
array reads as the same DataFrame would), ``sparse`` (densified, up to
:data:`MAX_DENSE_CELLS`), ``multi_class=False`` (default / no default only).
:data:`EXPECTED_FAILED_CHECKS` lists the ``check_estimator`` checks that do not apply, with why.

As scikit-learn users expect: a category never seen in training is a missing value (as
in LightGBM and ``OneHotEncoder(handle_unknown=...)``), counted in one ``UserWarning`` per
call, never a NaN probability; a row the model cannot read (text in a number column)
makes ``predict``/``predict_proba`` raise a ``ValueError`` naming row, column and reason
(``decide`` keeps it as ``quarantined``); text labels without ``target_positive`` warn
which label is modelled as default.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from numbers import Number
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from village_credit.data.schema import months_in, personal_columns
from village_credit.errors import ConfigError
from village_credit.models.blend import DEFAULT_GBM_PARAMS, fit_blend, fit_blend_cv, tree_weights
from village_credit.models.features import (
    GenericFeatures,
    HouseholdFeatures,
    category_codes,
    load_feature_specs,
    specs_from_frame,
)
from village_credit.models.scaling import PointsScaling, logit, sigmoid
from village_credit.models.tuning import small_table_space, tune

__all__ = ["EXPECTED_FAILED_CHECKS", "MAX_CATEGORY_SHARE", "CreditScoreClassifier"]

MAX_CATEGORY_SHARE = 0.5
"""Text columns with more distinct values than this share of rows look like identifiers: not features."""

EXPECTED_FAILED_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data":
        "calibration folds are drawn over rows, so a row of weight 2 and the same row twice "
        "land in different folds; the fitted models differ slightly by design",
    "check_sample_weight_equivalence_on_sparse_data":
        "sparse input is densified; as on dense data, calibration folds are drawn over rows",
}
"""``check_estimator`` checks that do not apply to this estimator, and why."""


MAX_DENSE_CELLS = 50_000_000
"""Sparse input is densified up to this many cells (a table's rows x columns); larger is refused."""

SMALL_TABLE_ROWS = 10_000
"""Below this many training rows the estimator's default trees are shallow, slow and subsampled."""


def _default_gbm(n: int) -> dict[str, Any]:
    """Size-aware LightGBM defaults (any ``gbm_params`` given override them key by key).

    Leaf size scales with the data (``n // 50``, 5 to 40 rows). Small tables (fewer than
    ``SMALL_TABLE_ROWS`` rows, e.g. 1,000 loans) get 4-leaf trees, learning rate 0.1 x
    100 trees, 0.8 row / column subsampling and 63 histogram bins. Why: a fit is
    ``calibration_folds + 1`` boosters, and on a small table a LightGBM round costs about
    the same whatever the rows, so the tree count sets the fit time. On the 25 German
    credit folds of ``bench/bench_real_data.py`` 0.1 x 100 scores AUC 0.792 against 0.794
    for 0.02 x 600 at a quarter of the time (within 3x a plain ``LGBMClassifier`` fit),
    and both beat the household defaults (8 leaves, 0.05 x 300) by about 0.01; see
    ``docs/benchmarks.md``. Larger tables keep the household defaults
    (``blend.DEFAULT_GBM_PARAMS``).
    """
    params: dict[str, Any] = {"min_child_samples": int(np.clip(n // 50, 5, 40))}
    if n < SMALL_TABLE_ROWS:
        params.update(n_estimators=100, learning_rate=0.1, num_leaves=4, subsample=0.8, colsample_bytree=0.8,
                      max_bin=63)
    return params


def _spec_mapping(features: Any) -> dict[str, Any]:
    """A feature spec given as a path, a mapping or a list of feature entries -> the mapping."""
    if isinstance(features, (str, Path)):
        return load_feature_specs(features)
    if isinstance(features, Mapping):
        return dict(features)
    if isinstance(features, Sequence):
        return {"features": [dict(f) for f in features]}
    raise ConfigError(f"features must be None, 'household', a spec path, mapping or list, or a "
                      f"transformer; got {type(features).__name__}")


def _unseen_text(unseen: Mapping[str, Mapping[str, int]]) -> str:
    """``column: n cell(s) (values ...)`` per column, a few values each."""
    parts = []
    for col, counts in unseen.items():
        vals = list(counts)
        parts.append(f"{col}: {sum(counts.values())} cell(s) ({', '.join(map(repr, vals[:5]))}"
                     f"{' ...' if len(vals) > 5 else ''})")
    return "; ".join(parts)


class CreditScoreClassifier(ClassifierMixin, BaseEstimator):
    """Rules (optional) + LightGBM + calibration + points in one scikit-learn classifier.

    Parameters
    ----------
    strategy:
        ``gbm_only`` (no rules), ``stacking``, ``boost_from_rules`` or ``additive_points``
        (these three need ``policy``); see :mod:`village_credit.models.blend`.
    features:
        ``None`` (household features with a policy or a household table; otherwise every
        usable column), ``"household"``, a feature spec (path to YAML/JSON, mapping with
        ``features``/``exclude``/``protected``, or a list of feature entries), or an
        unfitted transformer (cloned at fit).
    policy:
        A ``Policy``, a shipped policy name or a YAML path; ``None`` for no rules.
    calibration_folds:
        Folds of the cross-fitted calibration (and of tuning).
    tuning_trials, tuning_timeout_s:
        Optuna budget (0 / ``None``: the given or default LightGBM parameters).
    gbm_params:
        LightGBM parameters (``LGBMDefaultModel``); unset ``min_child_samples`` scales with n.
    points_scaling:
        ``"auto"``, ``"base_rate"``, ``"jinxiang"``, a ``PointsScaling`` or a mapping with
        ``pdo``, ``base_points`` and ``base_odds`` (or ``base_rate``).
    target_positive:
        The label that means default (e.g. ``"bad"``); ``None``: ``classes_[1]``.
    id_column, group_column:
        Never features; groups keep whole groups in one calibration fold.
    include_protected, eval_date, top_k, seed, n_jobs:
        As in the experiment config.
    neutralise_rule_items:
        ``True``: rule items that never varied among the training rows with an observed
        outcome are not applied by the blend (their effect cannot be learned; see
        :mod:`village_credit.models.support`); a dict names them (``neutral_items_for``).
        Recorded in ``model_.metadata["neutralised_items"]``.
    tree_weight_power:
        The trees are fitted with ``sample_weight ** tree_weight_power``, the PD map (rule
        term and Platt) with ``sample_weight`` itself: 1 weighs both alike; 0 leaves the
        trees unweighted, so a few heavily weighted rows (design weights) cannot dominate
        their splits, while the map still recalibrates to the weighted population.
    elderly_pension_interaction:
        Household features only: add ``pension_head_60plus`` (a pension received by a
        head aged 60+; may only lower risk), so age enters only through its interaction
        with a pension. Recorded in ``model_.metadata["elderly_pension_interaction"]``.

    Examples
    --------
    Rules + 20 trees on 300 generated households (real fits use the defaults):

    >>> import numpy as np
    >>> from village_credit.data import GeneratorConfig, generate_households
    >>> from village_credit.models import CreditScoreClassifier
    >>> hh = generate_households(GeneratorConfig(n_households=300, seed=7))
    >>> clf = CreditScoreClassifier(strategy="additive_points", policy="jinxiang_2022", calibration_folds=2,
    ...                             gbm_params={"n_estimators": 20}, seed=0)
    >>> clf = clf.fit(hh, hh["default_12m"])
    >>> proba = clf.predict_proba(hh.head(3))
    >>> proba.shape, bool(np.allclose(proba.sum(axis=1), 1.0))
    ((3, 2), True)
    >>> decisions = clf.decide(hh.head(3))
    >>> list(decisions.columns[:7])
    ['household_id', 'status', 'quarantine_reason', 'pd', 'points', 'grade', 'credit_line']
    >>> decisions["status"].tolist()
    ['scored', 'scored', 'scored']
    """

    def __init__(self, strategy: str = "gbm_only", features: Any = None, policy: Any = None,
                 calibration_folds: int = 5, tuning_trials: int = 0, tuning_timeout_s: float | None = None,
                 gbm_params: dict[str, Any] | None = None, points_scaling: Any = "auto",
                 target_positive: Any = None, id_column: str | None = None, group_column: str | None = None,
                 include_protected: bool = False, eval_date: Any = None, top_k: int = 3, seed: int = 0,
                 n_jobs: int = 1, neutralise_rule_items: bool | dict[str, Any] = False,
                 tree_weight_power: float = 1.0, elderly_pension_interaction: bool = False) -> None:
        self.strategy = strategy
        self.features = features
        self.policy = policy
        self.calibration_folds = calibration_folds
        self.tuning_trials = tuning_trials
        self.tuning_timeout_s = tuning_timeout_s
        self.gbm_params = gbm_params
        self.points_scaling = points_scaling
        self.target_positive = target_positive
        self.id_column = id_column
        self.group_column = group_column
        self.include_protected = include_protected
        self.eval_date = eval_date
        self.top_k = top_k
        self.seed = seed
        self.n_jobs = n_jobs
        self.neutralise_rule_items = neutralise_rule_items
        self.tree_weight_power = tree_weight_power
        self.elderly_pension_interaction = elderly_pension_interaction

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        tags.input_tags.sparse = True  # densified (tables are small): see _frame
        tags.classifier_tags.multi_class = False
        return tags

    # ------------------------------------------------------------------ inputs
    def _frame(self, X: Any, reset: bool) -> pd.DataFrame:
        """A DataFrame of ``X`` (arrays get columns ``x0, x1, ...``), names checked as sklearn does.

        Object or string arrays keep their cells (text columns become categories, as the
        same columns of a DataFrame do); sparse matrices are densified (missing entries are
        zeros, as scikit-learn reads them) up to :data:`MAX_DENSE_CELLS` cells.
        """
        if sp.issparse(X):
            cells = int(X.shape[0]) * int(X.shape[1])
            if cells > MAX_DENSE_CELLS:
                raise ValueError(f"sparse input of shape {X.shape} ({cells:,} cells) is too large to densify "
                                 f"(limit {MAX_DENSE_CELLS:,}); CreditScoreClassifier reads tables: pass a "
                                 "DataFrame or a dense array")
            X = X.toarray()
        if isinstance(X, pd.DataFrame):
            validate_data(self, X, skip_check_array=True, reset=reset)
            if X.shape[0] < 1:
                raise ValueError(f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 is required.")
            if not all(isinstance(c, str) for c in X.columns):  # unnamed columns: as for an array
                return X.set_axis([f"x{i}" for i in range(X.shape[1])], axis=1)
            return X
        raw = X if hasattr(X, "dtype") else np.asarray(X)
        text = getattr(raw, "dtype", None) is not None and raw.dtype.kind in "OUS"
        arr = check_array(raw.astype(object) if text else raw, ensure_all_finite="allow-nan",
                          dtype=None if text else "numeric", ensure_2d=True)
        validate_data(self, arr, skip_check_array=True, reset=reset)
        names = (list(self.feature_names_in_) if hasattr(self, "feature_names_in_")
                 else [f"x{i}" for i in range(arr.shape[1])])
        return pd.DataFrame(arr, columns=names)

    def _labels(self, y: Any) -> np.ndarray:
        if y is None:
            raise ValueError("requires y to be passed, but the target y is None")
        yv = np.asarray(y)
        if yv.ndim == 2 and yv.shape[1] == 1:
            yv = column_or_1d(yv, warn=True)
        kind = type_of_target(yv, input_name="y", raise_unknown=True)
        self.classes_ = np.unique(yv)
        if len(self.classes_) < 2:
            raise ValueError(f"CreditScoreClassifier needs 2 classes (default / no default); the target has "
                             f"1 class only: {list(self.classes_)}")
        if kind != "binary":
            raise ValueError(f"Only binary classification is supported. The type of the target is {kind}.")
        pos = self.classes_[1] if self.target_positive is None else self.target_positive
        if self.target_positive is None and not all(isinstance(c, (Number, np.bool_)) for c in self.classes_):
            warnings.warn(f"y has text labels {[str(c) for c in self.classes_]} and target_positive is not set: "
                          f"{str(pos)!r} (classes_[1]) is treated as the default label, so predict_pd is "
                          f"P(y == {str(pos)!r}); set target_positive to the label that means default",
                          UserWarning, stacklevel=3)
        matches = [c for c in self.classes_ if c == pos or str(c) == str(pos)]
        if not matches:
            raise ConfigError(f"target_positive {pos!r} is not one of the labels {list(self.classes_)}")
        self.positive_class_ = matches[0]
        self._pos_index = int(np.flatnonzero(self.classes_ == self.positive_class_)[0])
        return (yv == self.positive_class_).astype(np.float64)

    # ------------------------------------------------------------------ features
    def _is_household(self, X: pd.DataFrame) -> bool:
        if isinstance(self.features, str) and self.features == "household":
            return True
        if self.features is not None:
            return False
        if self.policy is not None:
            return True
        return months_in([str(c) for c in X.columns]) > 0 and "education" in X.columns

    def _table_transformer(self, X: pd.DataFrame) -> Any:
        """Spec-driven features; every column left out is recorded in ``dropped_columns_`` with why."""
        spec = {} if self.features is None else _spec_mapping(self.features)
        listed = {str(f["name"]) for f in spec.get("features", []) or []}
        protected = [str(c) for c in spec.get("protected", []) or []]
        dropped: dict[str, str] = {}
        for c in (self.id_column, self.group_column):
            if c and c in X.columns:
                dropped[c] = "id column" if c == self.id_column else "group column (used for folds)"
        for c in spec.get("exclude", []) or []:
            if str(c) in X.columns:
                dropped[str(c)] = "excluded by the feature spec"
        for c in personal_columns(X.columns):  # names, phones, addresses are never features
            dropped.setdefault(c, "looks like personal data (name, phone, ID, address)")
        if not self.include_protected:
            for c in protected:
                if c in X.columns:
                    dropped.setdefault(c, "protected; include_protected is false")
        n = max(len(X), 1)
        for c in X.columns:
            s = X[c]
            if c in dropped or c in listed:
                continue
            if pd.api.types.is_datetime64_any_dtype(s):
                dropped[str(c)] = "a date (not a feature)"
            elif (not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s))
                  and s.nunique(dropna=True) > MAX_CATEGORY_SHARE * n and n >= 20
                  and pd.to_numeric(s.astype("string"), errors="coerce").isna().any()):
                dropped[str(c)] = "text with mostly distinct values (an identifier?)"
            elif s.notna().sum() == 0:
                dropped[str(c)] = "no values"
        bad = sorted((listed & set(dropped)) - set(protected))
        if bad:
            raise ConfigError("the feature spec lists column(s) that cannot be features: "
                              + ", ".join(f"{c} ({dropped[c]})" for c in bad))
        specs = specs_from_frame(X, exclude=sorted(dropped), protected=protected,
                                 overrides=[f for f in spec.get("features", []) or []
                                            if str(f["name"]) not in dropped])
        if not specs:
            raise ConfigError("no feature columns left after leaving out: "
                              + ", ".join(f"{c} ({r})" for c, r in dropped.items()))
        self.dropped_columns_ = dropped
        return GenericFeatures(specs)

    def _scaling(self, base_rate: float, household: bool) -> PointsScaling:
        s = self.points_scaling
        if isinstance(s, PointsScaling):
            return s
        if isinstance(s, Mapping):
            d = dict(s)
            if "base_rate" in d:
                return PointsScaling.from_base_rate(float(d["base_rate"]), float(d.get("pdo", 20.0)),
                                                    float(d.get("base_points", 60.0)))
            return PointsScaling.from_pdo(float(d.get("pdo", 20.0)), float(d.get("base_points", 60.0)),
                                          float(d.get("base_odds", 49.0)))
        if s == "jinxiang" or (s == "auto" and household):
            return PointsScaling.from_pdo()
        if s in ("auto", "base_rate"):
            return PointsScaling.from_base_rate(base_rate)
        raise ConfigError(f"points_scaling must be 'auto', 'base_rate', 'jinxiang', a PointsScaling or a "
                          f"mapping; got {s!r}")

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any, sample_weight: Any = None, *, calibration_data: tuple[Any, Any] | None = None,
            metadata: dict[str, Any] | None = None) -> CreditScoreClassifier:
        """Fit features, (tuning,) trees on all rows and the cross-fitted calibration.

        ``calibration_data=(X_calib, y_calib)``: calibrate on that held-out split instead
        of cross-fitting (the household runner's village-grouped calibration split; the
        trees then see only ``X``). ``metadata`` is stored with the model as given.
        """
        frame = self._frame(X, reset=True)
        yv = self._labels(y)
        if len(yv) != len(frame):
            raise ValueError(f"X has {len(frame)} rows but y has {len(yv)}")
        if sample_weight is not None:
            w = _check_sample_weight(sample_weight, frame, dtype=np.float64, ensure_non_negative=True)
            if not np.any(w > 0):
                raise ValueError("sample weights are all zero")
            sample_weight = w
            if len(np.unique(yv[w > 0])) < 2:
                raise ValueError("after sample weights, only 1 class has positive weight; "
                                 "2 classes (default / no default) are needed")
        household = self._is_household(frame)
        self.dropped_columns_ = {}
        if household:
            transformer: Any = HouseholdFeatures(include_protected=self.include_protected,
                                                 elderly_pension=bool(self.elderly_pension_interaction))
        elif self.elderly_pension_interaction:
            raise ConfigError("elderly_pension_interaction needs the household features (a table of one's "
                              "own has no pension / age columns the model knows)")
        elif self.features is not None and hasattr(self.features, "fit") and hasattr(self.features, "transform"):
            transformer = clone(self.features)
        else:
            transformer = self._table_transformer(frame)
        groups = (frame[self.group_column].astype("string").fillna("<missing>").to_numpy(dtype=object)
                  if self.group_column and self.group_column in frame.columns else None)
        defaults = _default_gbm(len(frame))
        if self.gbm_params is not None:  # given parameters replace the size-aware shape, key by key
            defaults = {k: v for k, v in defaults.items() if k == "min_child_samples"}
        params = {**defaults, "n_jobs": int(self.n_jobs), **(self.gbm_params or {})}
        self.tuning_best_cv_auc_ = self.tuning_baseline_cv_auc_ = self.tuning_selected_ = None
        if self.tuning_trials or self.tuning_timeout_s:
            params = self._tune(transformer, frame, yv, groups, params)
        self.base_rate_ = float(np.average(yv, weights=sample_weight))
        scaling = self._scaling(self.base_rate_, household)
        if calibration_data is not None:
            Xc, yc = calibration_data
            frame_c = self._frame(Xc, reset=False)
            yc_v = np.asarray([1.0 if (c == self.positive_class_ or str(c) == str(self.positive_class_)) else 0.0
                               for c in np.asarray(yc).ravel()])
            self.model_ = fit_blend(frame, yv, frame_c, yc_v, policy=self.policy, strategy=self.strategy,
                                    gbm_params=params, features=transformer, eval_date=self.eval_date,
                                    seed=int(self.seed), sample_weight_train=tree_weights(
                                        sample_weight, self.tree_weight_power), scaling=scaling,
                                    metadata={**(metadata or {}), **self._interaction_note()},
                                    neutralise_constant_items=self.neutralise_rule_items)
            self.oof_pd_ = None
            self._note_unseen_in_fit(self.model_)
            return self
        model, oof_logit = fit_blend_cv(
            frame, yv, policy=self.policy, strategy=self.strategy, gbm_params=params, features=transformer,
            eval_date=self.eval_date, seed=int(self.seed), cv=int(self.calibration_folds), groups=groups,
            sample_weight=sample_weight, scaling=scaling, tree_weight_power=float(self.tree_weight_power),
            neutralise_constant_items=self.neutralise_rule_items,
            metadata={**(metadata or {}), **self._tuning_note(), **self._interaction_note(),
                      "positive_class": str(self.positive_class_),
                      "base_rate": self.base_rate_, "dropped_columns": dict(self.dropped_columns_)})
        self.oof_pd_ = sigmoid(oof_logit)
        self._note_unseen_in_fit(model)
        if not model.validate and hasattr(transformer, "specs_"):  # a table: grades, ids, an example
            model.metadata["grade_edges_pd"] = [float(e) for e in np.unique(
                np.quantile(self.oof_pd_, np.linspace(0, 1, 11))[1:-1])]
            # ids travel into the decisions only when the training table had them (then the
            # signature carries the column, so every engine passes it to the model)
            has_id = bool(self.id_column) and self.id_column in frame.columns
            model.metadata["id_column"] = self.id_column if has_id else None
            model.metadata["input_columns"] = [*( [self.id_column] if self.id_column in frame.columns else []),
                                               *model.feature_names]
            example = self._example(frame, transformer, model.feature_names)
            if has_id:
                example = {self.id_column: ["example-1"], **example}
            model.metadata["input_example"] = example
        self.model_ = model
        return self

    def _interaction_note(self) -> dict[str, Any]:
        """The opt-in age x pension feature, for the model's metadata (nothing when off)."""
        if not self.elderly_pension_interaction:
            return {}
        return {"elderly_pension_interaction": True,
                "age_use": "age used only through its interaction with pension (pension_head_60plus, "
                           "monotone: lowers risk only)"}

    def _tuning_note(self) -> dict[str, Any]:
        """What tuning chose, for the model's metadata (nothing when it did not run)."""
        if self.tuning_selected_ is None:
            return {}
        return {"tuning": {"selected": self.tuning_selected_, "cv_auc": self.tuning_best_cv_auc_,
                           "baseline_cv_auc": self.tuning_baseline_cv_auc_}}

    def _note_unseen_in_fit(self, model: Any) -> None:
        """Training cells whose category is not in the spec's list were read as missing: say so, keep the count."""
        unseen = dict(getattr(model.features, "unseen_in_fit_", {}) or {})
        self.unseen_categories_in_fit_ = unseen
        if unseen:
            model.metadata["categories_read_as_missing_in_training"] = unseen
            warnings.warn(f"training rows hold categories outside the feature spec's list, read as missing "
                          f"(as at scoring): {_unseen_text(unseen)}", UserWarning, stacklevel=3)

    def _tune(self, transformer: Any, frame: pd.DataFrame, y: np.ndarray, groups: Any,
              params: dict[str, Any]) -> dict[str, Any]:
        t = clone(transformer)
        Xf = t.fit_transform(frame)
        base = {k: v for k, v in params.items() if k not in ("n_estimators",)}
        base.setdefault("monotone_constraints", list(t.monotone_constraints()))
        if self.strategy == "additive_points":
            base["interaction_constraints"] = "additive"
        if self.strategy != "gbm_only":
            raise ConfigError("tuning inside the estimator is for gbm_only; the household runner tunes "
                              "with the rule offset (pipeline.tune_params)")
        small = len(y) < SMALL_TABLE_ROWS  # shallow search, tree count searched, no early stopping
        res = tune(Xf, y, groups if groups is not None else np.arange(len(y)),
                   n_trials=int(self.tuning_trials) or None, timeout=self.tuning_timeout_s, seed=int(self.seed),
                   cv_folds=int(self.calibration_folds), base_params=base, n_jobs=int(self.n_jobs),
                   search_space=small_table_space(len(y)) if small else None,
                   early_stopping_rounds=None if small else 30,
                   # the untuned fit's parameters, as _gbm_for completes them
                   baseline={k: v for k, v in {**DEFAULT_GBM_PARAMS, **params}.items()
                             if k != "monotone_constraints"})
        self.tuning_best_cv_auc_ = float(res.best_value)
        self.tuning_selected_ = res.selected
        self.tuning_baseline_cv_auc_ = res.baseline_value
        return {**params, **res.best_params}

    @staticmethod
    def _example(frame: pd.DataFrame, transformer: Any, names: list[str]) -> dict[str, list[Any]]:
        """One typical row (medians, most frequent categories): an aggregate, no real row."""
        row: dict[str, list[Any]] = {}
        for s in transformer.specs_:
            col = frame[s.name]
            if s.kind == "categorical":
                row[s.name] = [s.categories[0] if s.categories else None]
                codes, keys = category_codes(col)
                if (codes >= 0).any():
                    row[s.name] = [str(keys[int(np.argmax(np.bincount(codes[codes >= 0])))])]
            else:
                med = pd.to_numeric(col.astype("string") if not pd.api.types.is_numeric_dtype(col) else col,
                                    errors="coerce").median()
                row[s.name] = [None if pd.isna(med) else float(med)]
        return row

    # ------------------------------------------------------------------ predict
    def _X(self, X: Any) -> pd.DataFrame:
        """The checked frame; categories never seen in training are counted and warned about once."""
        check_is_fitted(self, "model_")
        frame = self._frame(X, reset=False)
        count = getattr(self.model_.features, "unseen_categories", None)
        unseen = count(frame) if count is not None and hasattr(self.model_.features, "specs_") else {}
        if unseen:
            warnings.warn(f"categories not seen in training, read as missing (as LightGBM does): "
                          f"{_unseen_text(unseen)}", UserWarning, stacklevel=3)
        return frame

    def predict_pd(self, X: Any) -> np.ndarray:
        """Probability of default per row (NaN for rows the model quarantines; ``decide`` says why)."""
        frame = self._X(X)
        return self.model_.predict_pd(frame, eval_date=self.eval_date).to_numpy(dtype=np.float64)

    def _scored_pd(self, X: Any) -> np.ndarray:
        """PD of every row, or a ValueError naming the rows, columns and reasons the model cannot score.

        scikit-learn callers (``cross_val_score``, ``CalibratedClassifierCV``) need a number
        or a label for every row; a quarantined row has neither, so it is an error here
        (``decide`` keeps such rows, marked ``quarantined``, for batch scoring).
        """
        frame = self._X(X)
        p = self.model_.predict_pd(frame, eval_date=self.eval_date).to_numpy(dtype=np.float64)
        bad = np.flatnonzero(np.isnan(p))
        if len(bad):
            reasons = self.model_.decide(frame, top_k=0, eval_date=self.eval_date)["quarantine_reason"].to_numpy()
            shown = "; ".join(f"row {i}: {reasons[i] or 'not scored'}" for i in bad[:5])
            raise ValueError(f"{len(bad)} of {len(p)} row(s) cannot be scored ({shown}"
                             f"{' ...' if len(bad) > 5 else ''}); fix them, or use decide() to score the rest "
                             "and keep these as quarantined")
        return p

    def predict_proba(self, X: Any) -> np.ndarray:
        p = self._scored_pd(X)
        out = np.column_stack([1.0 - p, p]) if self._pos_index == 1 else np.column_stack([p, 1.0 - p])
        return out

    def decision_function(self, X: Any) -> np.ndarray:
        """Log-odds of ``classes_[1]`` (of default when that is the default label)."""
        z = logit(self._scored_pd(X))
        return z if self._pos_index == 1 else -z

    def predict(self, X: Any) -> np.ndarray:
        p = self._scored_pd(X)
        other = self.classes_[1 - self._pos_index]
        return np.where(p >= 0.5, self.positive_class_, other)

    def decide(self, X: Any, top_k: int | None = None) -> pd.DataFrame:
        """One decision per row: status, PD, points, grade, line, rate, reasons (``DECISION_COLUMNS``)."""
        return self.model_.decide(self._X(X), top_k=self.top_k if top_k is None else int(top_k),
                                  eval_date=self.eval_date)

    def points(self, X: Any) -> np.ndarray:
        """Points per row (higher = lower risk; see ``points_scaling``)."""
        return self.model_.scaling.points(logit(self.predict_pd(X)))

    def grade(self, X: Any) -> np.ndarray:
        """Policy grade (with a policy) or PD-decile grade ``G01``..``G10`` (without)."""
        return self.decide(X, top_k=0)["grade"].to_numpy(dtype=object)

    def credit_line(self, X: Any) -> np.ndarray:
        """Credit line per the policy (yuan); NaN without a policy."""
        return self.decide(X, top_k=0)["credit_line"].to_numpy(dtype=np.float64)

    def reason_codes(self, X: Any, top_k: int | None = None) -> pd.DataFrame:
        """Long table of reasons per row (decisive first, then top-k down and up factors)."""
        return self.model_.reason_codes(self._X(X), top_k=self.top_k if top_k is None else int(top_k),
                                        eval_date=self.eval_date)

    def contributions(self, X: Any) -> pd.DataFrame:
        """Exact additive points per row (``base``, ``rule:<item>``, ``model:<feature>``)."""
        return self.model_.contributions(self._X(X), eval_date=self.eval_date)

    def save(self, path: str | Path) -> Path:
        """Write the fitted DecisionModel (plain files) to ``path``."""
        check_is_fitted(self, "model_")
        return self.model_.save(path)
