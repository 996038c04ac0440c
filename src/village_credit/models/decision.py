"""The decision model: validated households in, one policy decision per household out.

Why one object: scoring, the MLflow pyfunc, batch and Spark scoring all need the
same chain -- validate, score the rules, build features, blend, scale to points,
apply the policy (vetoes and eligibility always win), explain. Keeping it here means
the chain cannot differ between training, the registry and production.

Persistence is plain files only (never pickles), so ``DecisionModel.load(dir)``
needs nothing but this package and the directory:

* ``booster.txt``      LightGBM text model (17 significant digits: exact round trip)
* ``policy.yaml``      the resolved policy (``Policy.to_yaml_text``)
* ``model.json``       format, strategy coefficients, points scaling, feature
                       transformer class and parameters, feature names and labels,
                       metadata (incl. the training reference profile, if given)
"""

from __future__ import annotations

import importlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray
from pandas.arrays import ArrowStringArray

from village_credit.data.generator import GeneratorConfig, generate_households
from village_credit.data.io import table_to_frame
from village_credit.data.schema import SCHEMA, TRUTH_COLUMNS
from village_credit.data.validation import validate_households
from village_credit.errors import ConfigError, SchemaError
from village_credit.models.additive import PREDICT_OPTIONS, TreeContributions
from village_credit.models.coefficients import BlendCoefficients
from village_credit.models.features import FeatureSpec, HouseholdFeatures, spec_for
from village_credit.models.reasons import join_present, reason_strings, reasons_long, top_reasons
from village_credit.models.saved_folder import FORMAT
from village_credit.models.scaling import PointsScaling, sigmoid
from village_credit.models.support import NEUTRALISED_KEY, neutralise_items
from village_credit.rules.engine import score_rules
from village_credit.rules.policy import Policy

RULE_PREFIX = "rule:"
MODEL_PREFIX = "model:"
VETO_PREFIX = "veto:"
INELIGIBLE_PREFIX = "ineligible:"
INPUT_EXAMPLE_SEED = 20250630

DECISION_COLUMNS = [
    "household_id", "status", "quarantine_reason", "pd", "points", "grade", "credit_line", "rate",
    "eligible", "vetoed", "approved", "veto_reasons", "ineligible_reasons", "reason_codes",
    "reasons_down", "reasons_up",
]


_STR = pd.StringDtype("pyarrow", na_value=np.nan)  # pandas' ``str``: what object text columns became
_EMPTY = pa.scalar("", pa.large_string())


def _str_series(arr: pa.Array | pa.ChunkedArray, index: pd.Index) -> pd.Series:
    """An Arrow text array as a pandas ``str`` column, without a Python string per row."""
    if isinstance(arr, pa.Array):
        arr = pa.chunked_array([arr])
    return pd.Series(ArrowStringArray(arr, dtype=_STR), index=index, copy=False)


def _texts(values: Any) -> pa.Array:
    """Codes / texts (object array, ``None`` or "" where none) as Arrow ``large_string``, "" for none."""
    arr = pa.array(np.asarray(values, dtype=object), type=pa.large_string(), from_pandas=True)
    return pc.fill_null(arr, _EMPTY) if arr.null_count else arr


def _arrow_texts(col: pd.Series) -> pa.Array:
    """A text column as Arrow ``large_string``, "" for none: straight from the Arrow buffers
    of a pandas ``str`` column (the rules' codes), without a Python string per row."""
    if isinstance(col.dtype, pd.StringDtype) and col.dtype.storage == "pyarrow":
        arr = pa.array(col.array)
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        arr = arr.cast(pa.large_string())
        return pc.fill_null(arr, _EMPTY) if arr.null_count else arr
    return _texts(col.to_numpy(dtype=object))


def _scatter(values: pa.Array, where: NDArray[np.int64] | None, fill: pa.Scalar) -> pa.Array:
    """Values of the valid rows placed at their input rows (``where``: -1 for the others)."""
    if where is None:
        return values
    return pc.fill_null(values.take(pa.array(where, mask=where < 0)), fill)


def _columns_frame(cols: dict[str, Any], index: pd.Index) -> pd.DataFrame:
    """The decisions as pandas: Arrow texts as ``str`` columns (no Python string per row)."""
    return pd.DataFrame({name: _str_series(v, index) if isinstance(v, (pa.Array, pa.ChunkedArray)) else v
                         for name, v in cols.items()}, index=index)


def _columns_table(cols: dict[str, Any]) -> pa.Table:
    """The decisions as Arrow, each column as ``pa.Table.from_pandas`` converts the frame of
    :func:`_columns_frame` (texts ``large_string``, NaN as null, numbers and flags as they are)."""
    out: dict[str, Any] = {}
    for name, v in cols.items():
        if isinstance(v, (pa.Array, pa.ChunkedArray)):
            out[name] = v if v.type == pa.large_string() else v.cast(pa.large_string())
        elif isinstance(v, np.ndarray) and v.dtype != object:
            out[name] = pa.array(v, from_pandas=True)  # NaN -> null, as from_pandas writes it
        else:  # ids as the input held them: what pandas makes of them, as from_pandas converts it
            out[name] = pa.Array.from_pandas(pd.Series(v, copy=False).array)
    return pa.table(out)


def _class_path(obj: Any) -> str:
    return f"{type(obj).__module__}:{type(obj).__qualname__}"


def _import(path: str) -> Any:
    module, _, attr = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if hasattr(v, "to_dict") and callable(v.to_dict):
        return _jsonable(v.to_dict())
    if isinstance(v, (pd.Timestamp,)):
        return v.isoformat()
    return v


def _feature_config(features: Any) -> dict[str, Any]:
    """Class and JSON parameters of a feature transformer (fitted specs for generic tables)."""
    params = features.get_params(deep=False)
    if "specs" in params and hasattr(features, "specs_"):
        params["specs"] = [s.to_dict() for s in features.specs_]
    return {"class": _class_path(features), "params": _jsonable(params)}


def _feature_from_config(cfg: dict[str, Any]) -> Any:
    cls = _import(cfg["class"])
    params = dict(cfg.get("params", {}))
    if params.get("specs") is not None:
        params["specs"] = [FeatureSpec(**{**d, "categories": tuple(d.get("categories", ()))})
                           for d in params["specs"]]
        obj = cls(**params)
        if all(getattr(s, "kind", "") for s in params["specs"]):
            # every column's kind and categories were fixed at training: restore the fitted
            # transformer without looking at any scoring data (never re-guess a kind)
            obj.fit(pd.DataFrame())
        return obj
    return cls(**params)


@dataclass
class _Scored:
    """Internals of one scoring pass over the valid rows."""

    positions: NDArray[np.int64]  # positions of valid rows in the input
    logit_contrib: NDArray[np.float64]  # (n_valid, 1 + items + features) in log-odds
    eligible: NDArray[np.bool_]
    vetoed: NDArray[np.bool_]
    veto_codes: pa.Array  # ";"-joined codes, "" where none (Arrow ``large_string``)
    ineligible_codes: pa.Array
    valid: pd.DataFrame


class DecisionModel:
    """Blended rules + LightGBM model that decides per the policy; see module docstring.

    Examples
    --------
    >>> from village_credit.models.examples import example_model
    >>> model, holdout = example_model()  # fit_blend's example: 300 households, 20 trees
    >>> import tempfile
    >>> from village_credit.models import DecisionModel
    >>> type(model).__name__, model.strategy
    ('DecisionModel', 'additive_points')
    >>> with tempfile.TemporaryDirectory() as tmp:  # plain files; the one model format
    ...     reloaded = DecisionModel.load(model.save(f"{tmp}/model"))
    ...     print(reloaded.decide(holdout).equals(model.decide(holdout)))
    True
    """

    def __init__(self, *, policy: Any, features: Any, booster: Any, coefficients: BlendCoefficients,
                 scaling: PointsScaling, metadata: dict[str, Any] | None = None,
                 feature_names: list[str] | None = None, labels: dict[str, dict[str, str]] | None = None,
                 validate: bool | None = None, item_means: dict[str, float] | None = None) -> None:
        self.policy = policy
        self.features = features
        self.booster = booster
        self.coefficients = coefficients
        self.scaling = scaling
        self.metadata = dict(metadata or {})
        self.feature_names = list(feature_names if feature_names is not None else booster.feature_name())
        self.item_codes: list[str] = list(policy.item_codes) if policy is not None else []
        if coefficients.strategy == "gbm_only":
            self.item_codes = []
        # rule item contributions are centred on these (training means), like SHAP values
        means = item_means or {}
        self.item_means = {c: float(means.get(c, 0.0)) for c in self.item_codes}
        self.labels = labels if labels is not None else self._build_labels()
        self.validate = isinstance(features, HouseholdFeatures) if validate is None else bool(validate)
        self._explainer: TreeContributions | None = None
        self.timings: dict[str, float] = {}

    def _tick(self, stage: str, since: float) -> float:
        """Add the seconds since ``since`` to ``timings[stage]`` (stage timer of batch scoring)."""
        now = time.perf_counter()
        timings = self.__dict__.setdefault("timings", {})
        timings[stage] = timings.get(stage, 0.0) + now - since
        return now

    # ------------------------------------------------------------------ metadata
    @property
    def strategy(self) -> str:
        return self.coefficients.strategy

    @property
    def codes(self) -> list[str]:
        """Contribution columns: ``base``, then rule items, then model features."""
        return (["base"] + [RULE_PREFIX + c for c in self.item_codes]
                + [MODEL_PREFIX + f for f in self.feature_names])

    def _build_labels(self) -> dict[str, dict[str, str]]:
        labels: dict[str, dict[str, str]] = {"base": {"en": "Base value", "zh": "基础值"}}
        pol_labels = getattr(self.policy, "labels", {}) if self.policy is not None else {}
        for c in self.item_codes:
            lab = pol_labels.get(c, {})
            labels[RULE_PREFIX + c] = {"en": lab.get("en", c), "zh": lab.get("zh", c)}
        for f in self.feature_names:
            try:
                s = self.features.spec_for(f)
            except Exception:  # unfitted transformer or unknown name: the shared specs
                try:
                    s = spec_for(f)
                except KeyError:
                    s = None
            labels[MODEL_PREFIX + f] = {"en": s.label_en if s else f, "zh": s.label_zh if s else f}
        if self.policy is not None:
            for c in list(self.policy.veto_codes):
                lab = pol_labels.get(c, {})
                labels[VETO_PREFIX + c] = {"en": lab.get("en", c), "zh": lab.get("zh", c)}
            for c in list(self.policy.ineligible_codes):
                lab = pol_labels.get(c, {})
                labels[INELIGIBLE_PREFIX + c] = {"en": lab.get("en", c), "zh": lab.get("zh", c)}
        return labels

    @property
    def input_columns(self) -> list[str]:
        """Columns a scoring input must have (schema input columns; ground truth excluded)."""
        if self.validate:
            return list(SCHEMA.input_columns)
        return list(self.metadata.get("input_columns", self.feature_names))

    def input_example(self, n: int = 5) -> pd.DataFrame:
        """Schema-complete synthetic rows (fixed seed, ground truth dropped): no real data.

        A model on a table of one's own has no generator: its rows are built from the
        saved ``metadata["input_example"]`` (typical values per column: medians and
        most frequent categories, no row of the training data).
        """
        if not self.validate and self.metadata.get("input_example"):
            ex = pd.DataFrame(self.metadata["input_example"])
            return pd.concat([ex] * (int(n) // len(ex) + 1), ignore_index=True).head(int(n))
        df = generate_households(GeneratorConfig(n_households=max(int(n), 200), seed=INPUT_EXAMPLE_SEED))
        df = df.drop(columns=[c for c in TRUTH_COLUMNS if c in df.columns]).head(int(n))
        return df.reset_index(drop=True)

    # ------------------------------------------------------------------ scoring
    @property
    def explainer(self) -> TreeContributions:
        if self._explainer is None:
            self._explainer = TreeContributions.from_booster(self.booster)
        return self._explainer

    def _transform(self, valid: pd.DataFrame) -> pd.DataFrame:
        if not hasattr(self.features, "feature_names_out_"):
            self.features.fit(valid)  # stateless transformers: fit only fixes the column list
        X = self.features.transform(valid)
        if list(X.columns) != self.feature_names:
            missing = sorted(set(self.feature_names) - set(X.columns))
            if missing:
                raise SchemaError(
                    "feature transformer produced columns that differ from the model's: "
                    f"missing {missing}, extra {sorted(set(X.columns) - set(self.feature_names))}"
                )
            # a model saved before a feature was added (income_per_head, issue 25) scores on
            # its own columns, in its own order: the same PDs it gave when it was trained
            X = X[self.feature_names]
        return X

    def _validate(self, households: pd.DataFrame) -> tuple[pd.DataFrame, NDArray[np.object_]]:
        """(valid rows with positional index, per-input-row quarantine reason or '')."""
        if not isinstance(households, pd.DataFrame):
            raise SchemaError(f"decide expects a pandas DataFrame, got {type(households).__name__}")
        df = households.reset_index(drop=True)
        reasons = np.full(len(df), "", dtype=object)
        if not self.validate:
            problems = getattr(self.features, "row_problems", None)
            if problems is None or not hasattr(self.features, "feature_names_out_"):
                return df, reasons
            reasons = np.asarray(problems(df), dtype=object)
            return df.loc[reasons == ""], reasons
        res = validate_households(df)
        valid = res.valid
        is_bad = np.ones(len(df), dtype=bool)
        is_bad[valid.index.to_numpy(dtype=np.int64)] = False
        bad = np.flatnonzero(is_bad)
        q = res.quarantine
        if len(bad):
            if len(q):
                rn = q["row_number"].to_numpy(dtype=np.int64)  # 0-based input position
                text = (q["column"].astype(str) + ": " + q["reason"].astype(str)).to_numpy(dtype=object)
                joined = pd.Series(text).groupby(rn, sort=True).agg("; ".join)
                idx = joined.index.to_numpy(dtype=np.int64)
                ok = (idx >= 0) & (idx < len(df))
                reasons[idx[ok]] = joined.to_numpy(dtype=object)[ok]
            reasons[bad] = np.where(reasons[bad] == "", "invalid row", reasons[bad])
        return valid, reasons

    def _gbm_terms(self, X: pd.DataFrame, contributions: bool) -> NDArray[np.float64]:
        """(n, features + 1) GBM log-odds terms: SHAP per feature + bias, or, when only
        the total is needed and the model is not additive, zeros with the plain raw
        score in the bias column (the same row sums without TreeSHAP, which costs tens
        of predictions for deep trees). Additive models keep their table explainer:
        one look-up per feature is cheaper than walking every tree."""
        if contributions or self.explainer.is_fast:
            return self.explainer.contributions(X)
        phi = np.zeros((len(X), len(self.feature_names) + 1))
        phi[:, -1] = self.booster.predict(X.to_numpy(dtype=np.float64, na_value=np.nan), raw_score=True,
                                          **PREDICT_OPTIONS)
        return phi

    def _score(self, households: pd.DataFrame, eval_date: Any = None, *, contributions: bool = True
               ) -> tuple[_Scored, NDArray[np.object_], int]:
        """Validate, rules, features, GBM. ``contributions=False``: per-row totals are
        exact but the per-feature GBM columns are zero (for PD only)."""
        t = time.perf_counter()
        valid, reasons = self._validate(households)
        t = self._tick("row_checks", t)
        n_in = len(households)
        positions = valid.index.to_numpy(dtype=np.int64)
        nv = len(valid)
        X = self._transform(valid) if nv else None
        t = self._tick("features", t)
        phi = (self._gbm_terms(X, contributions) if nv
               else np.zeros((0, len(self.feature_names) + 1)))
        t = self._tick("model", t)
        coef = self.coefficients
        n_items = len(self.item_codes)
        contrib = np.empty((nv, 1 + n_items + len(self.feature_names)))
        contrib[:, 0] = coef.k0 + coef.k_gbm * phi[:, -1]
        contrib[:, 1 + n_items:] = coef.k_gbm * phi[:, :-1]
        eligible = np.ones(nv, dtype=bool)
        vetoed = np.zeros(nv, dtype=bool)
        veto_codes = inel_codes = pa.array([""], type=pa.large_string()).take(np.zeros(nv, dtype=np.int64))
        if self.policy is not None and nv:
            rs = score_rules(valid, self.policy, eval_date)
            if n_items:
                items = neutralise_items(rs.items[self.item_codes], self.metadata.get(NEUTRALISED_KEY)
                                         ).to_numpy(dtype=np.float64)
                means = np.array([self.item_means[c] for c in self.item_codes])
                contrib[:, 1:1 + n_items] = coef.k_rule * (items - means)
                contrib[:, 0] += coef.k_rule * means.sum()
            d = rs.decisions
            eligible = d["eligible"].to_numpy(dtype=bool)
            vetoed = d["vetoed"].to_numpy(dtype=bool)
            veto_codes = _arrow_texts(d["veto_codes"])  # Arrow from the rules to the output
            inel_codes = _arrow_texts(d["ineligible_codes"])
        self._tick("rules", t)
        scored = _Scored(positions, contrib, eligible, vetoed, veto_codes, inel_codes, valid)
        return scored, reasons, n_in

    def _points_contrib(self, s: _Scored) -> NDArray[np.float64]:
        """Contributions in points: the base carries the offset, the rest only the slope."""
        pts = self.scaling.contribution_points(s.logit_contrib)
        pts[:, 0] += self.scaling.offset
        return pts

    def predict_pd(self, households: pd.DataFrame, eval_date: Any = None) -> pd.Series:
        """PD per input row (NaN for quarantined rows), index aligned to the input.

        PD only needs each row's total log-odds, so the GBM is a plain raw-score
        prediction here, not TreeSHAP (``decide`` and ``contributions`` explain).
        """
        s, _, n = self._score(households, eval_date, contributions=False)
        out = np.full(n, np.nan)
        out[s.positions] = sigmoid(s.logit_contrib.sum(axis=1))
        return pd.Series(out, index=households.index, name="pd")

    def contributions(self, households: pd.DataFrame, eval_date: Any = None) -> pd.DataFrame:
        """Exact additive points per input row: ``base``, ``rule:<item>``, ``model:<feature>``.

        Each row sums to the household's ``points`` (``decide``); quarantined rows are NaN.
        """
        s, _, n = self._score(households, eval_date)
        out = np.full((n, len(self.codes)), np.nan)
        out[s.positions] = self._points_contrib(s)
        return pd.DataFrame(out, index=households.index, columns=self.codes)

    def _decisive(self, s: _Scored) -> tuple[NDArray[np.object_], NDArray[np.int64]]:
        """Compact decisive codes (vetoes, failed gates) and their count per valid row."""
        def prefixed(codes: NDArray[np.object_], prefix: str) -> NDArray[np.object_]:
            ser = pd.Series(codes, dtype=object).fillna("").astype(str)
            out = (prefix + ser.str.replace(";", ";" + prefix, regex=False)).where(ser != "", "")
            return out.to_numpy(dtype=object)

        v = prefixed(s.veto_codes.to_numpy(zero_copy_only=False), VETO_PREFIX)
        e = prefixed(s.ineligible_codes.to_numpy(zero_copy_only=False), INELIGIBLE_PREFIX)
        both = np.where(v == "", e, np.where(e == "", v, v + ";" + e))
        bs = pd.Series(both, dtype=object).astype(str)
        count = (bs.str.count(";") + 1).where(bs != "", 0).to_numpy(dtype=np.int64)
        return both, count

    def policy_decisions(self, points: Any, eligible: Any, vetoed: Any,
                         households: pd.DataFrame | None = None, eval_date: Any = None) -> pd.DataFrame:
        """Line, rate and grade from policy-scale points: the policy decides, not the model.

        Vetoes and failed eligibility give a zero line (``Policy.credit_line``); the rate is
        quoted only where a line is granted (as the rules engine does); vetoed rows get
        the policy's ``vetoed_grade`` when it has one. Without a policy: NaN / None.
        """
        p = np.asarray(points, dtype=np.float64)
        n = p.shape[0]
        el = np.broadcast_to(np.asarray(eligible, dtype=bool), (n,))
        ve = np.broadcast_to(np.asarray(vetoed, dtype=bool), (n,))
        pol = self.policy
        if pol is None or n == 0:
            return pd.DataFrame({"credit_line": np.full(n, np.nan), "rate": np.full(n, np.nan),
                                 "grade": self.pd_grades(self.scaling.pd(p))})
        line = np.asarray(pol.credit_line(p, el, ve, households=households, eval_date=eval_date),
                          dtype=np.float64)
        grade = np.asarray(pol.grade(p), dtype=object)
        if getattr(pol, "vetoed_grade", None) is not None:
            grade = np.where(ve, pol.vetoed_grade, grade)
        rate = np.where(line > 0, np.asarray(pol.rate(p), dtype=np.float64), np.nan)
        return pd.DataFrame({"credit_line": line, "rate": rate, "grade": grade})

    def pd_grades(self, pd_values: Any) -> NDArray[np.object_]:
        """Grades of a model without a policy: PD bands from ``metadata["grade_edges_pd"]``.

        The edges are the deciles of the training rows' cross-validated PD, so ``G01`` is
        the lowest-risk tenth of the training population; ``None`` when no edges are stored.
        """
        p = np.asarray(pd_values, dtype=np.float64)
        edges = self.metadata.get("grade_edges_pd")
        if not edges:
            return np.full(p.shape[0], None, dtype=object)
        order = np.asarray([f"G{i + 1:02d}" for i in range(len(edges) + 1)], dtype=object)
        idx = np.searchsorted(np.asarray(edges, dtype=np.float64), p, side="right")
        return np.where(np.isfinite(p), order[np.minimum(idx, len(order) - 1)], None)

    @property
    def id_column(self) -> str:
        """The input column whose values identify each decision (row positions otherwise)."""
        return str(self.metadata.get("id_column") or "household_id")

    @property
    def output_id_column(self) -> str:
        """Name of the decisions' id column: ``household_id`` for households; for a table of
        one's own its id column as the user named it, or ``row_id`` (row positions) without one."""
        if self.validate:
            return "household_id"
        return str(self.metadata.get("id_column") or "row_id")

    @property
    def approval_max_pd(self) -> float | None:
        """A table model's own approval cut-off (PD at most this), if it records one."""
        v = self.metadata.get("approval_max_pd")
        return None if v is None else float(v)

    def decide(self, households: pd.DataFrame, top_k: int = 3, eval_date: Any = None) -> pd.DataFrame:
        """One decision per input row, same order (``DECISION_COLUMNS``).

        Invalid rows are not dropped: ``status="quarantined"`` with ``quarantine_reason``
        (``column: reason; ...``) and empty decisions (NaN PD/points/line/rate).
        ``reason_codes``: decisive reasons first (``veto:<code>``, ``ineligible:<code>``),
        then the top-k factors that took points away (``code:-x.x``), then those that
        added points (``code:+x.x``).
        """
        cols = self._decision_columns(households, top_k, eval_date)
        t = time.perf_counter()
        frame = _columns_frame(cols, households.index)
        self._tick("format", t)
        return frame

    def decide_arrow(self, households: pa.Table | pa.RecordBatch | pd.DataFrame, top_k: int = 3,
                     eval_date: Any = None) -> pa.Table:
        """:meth:`decide` as an Arrow table (the batch scorer's path): the same columns,
        values and the Arrow types ``pa.Table.from_pandas(decide(...))`` gives, without
        the pandas frame in between (texts stay Arrow from the rules and reasons to here).

        An Arrow input is read as :func:`village_credit.data.io.table_to_frame` reads a
        file's rows (dates as days, the toolkit's dtypes) for the row checks and rules.
        """
        if isinstance(households, pa.RecordBatch):
            households = pa.Table.from_batches([households])
        if isinstance(households, pa.Table):
            households = table_to_frame(households)
        cols = self._decision_columns(households, top_k, eval_date)
        t = time.perf_counter()
        table = _columns_table(cols)
        self._tick("format", t)
        return table

    def _decision_columns(self, households: pd.DataFrame, top_k: int, eval_date: Any) -> dict[str, Any]:
        """The decisions' columns, once for both faces (:meth:`decide`, :meth:`decide_arrow`)."""
        # without reasons only each row's total is needed: no TreeSHAP (the totals are the same)
        s, qreasons, n = self._score(households, eval_date, contributions=top_k > 0)
        t = time.perf_counter()
        pts = self._points_contrib(s)
        points_v = pts.sum(axis=1)
        pd_v = self.scaling.pd(points_v)
        pdec = self.policy_decisions(points_v, s.eligible, s.vetoed, households=s.valid, eval_date=eval_date)
        line_v = pdec["credit_line"].to_numpy(dtype=np.float64)
        grade_v = pdec["grade"].to_numpy(dtype=object)
        rate_v = pdec["rate"].to_numpy(dtype=np.float64)
        t = self._tick("blend", t)
        top = top_reasons(pts[:, 1:], top_k)  # the base value is not a reason
        codes = self.codes[1:]
        down = reason_strings(top.down_idx, top.down_pts, codes)
        up = reason_strings(top.up_idx, top.up_pts, codes)
        veto, inel = s.veto_codes, s.ineligible_codes
        allc = join_present(self._prefixed(veto, VETO_PREFIX), self._prefixed(inel, INELIGIBLE_PREFIX), down, up)
        t = self._tick("reasons", t)
        cols = self._columns(households, n, s, qreasons, pd_v, points_v, grade_v, line_v, rate_v,
                             {"veto_reasons": veto, "ineligible_reasons": inel, "reason_codes": allc,
                              "reasons_down": down, "reasons_up": up})
        self._tick("format", t)
        return cols

    @staticmethod
    def _prefixed(codes: pa.Array, prefix: str) -> pa.Array:
        """``a;b`` -> ``<prefix>a;<prefix>b`` ("" stays ""), on each distinct text once.

        Codes come from a few combinations of the policy's gates, so the texts are
        dictionary-encoded, the few distinct ones prefixed, and the rows taken back.
        """
        enc = pc.dictionary_encode(codes)
        return DecisionModel._prefix_each(enc.dictionary, prefix).take(enc.indices)

    @staticmethod
    def _prefix_each(codes: pa.Array, prefix: str) -> pa.Array:
        out = pc.binary_join_element_wise(pa.scalar(prefix, pa.large_string()),
                                          pc.replace_substring(codes, ";", ";" + prefix), _EMPTY)
        return pc.if_else(pc.equal(codes, _EMPTY), _EMPTY, out)

    def _columns(self, households: pd.DataFrame, n: int, s: _Scored, qreasons: NDArray[np.object_],
                 pd_v: NDArray[np.float64], points_v: NDArray[np.float64], grade_v: NDArray[np.object_],
                 line_v: NDArray[np.float64], rate_v: NDArray[np.float64], texts: dict[str, pa.Array]
                 ) -> dict[str, Any]:
        """The decisions' columns (``DECISION_COLUMNS``): texts as Arrow arrays, numbers as
        numpy, the ids as the input holds them (a pandas ``str`` array or numpy objects)."""
        all_valid = len(s.positions) == n
        where = None
        if not all_valid:
            where = np.full(n, -1, dtype=np.int64)
            where[s.positions] = np.arange(len(s.positions))

        def full(values: Any, fill: Any, dtype: Any) -> NDArray:
            if all_valid:
                return np.asarray(values, dtype=dtype)
            out = np.full(n, fill, dtype=dtype)
            out[s.positions] = values
            return out

        idc = self.id_column
        if idc in households.columns:
            col = households[idc]
            ids: Any = (col.array if col.dtype == _STR else col.to_numpy(dtype=object))
        else:
            ids = np.arange(n).astype(str).astype(object)
        status = pa.array(["scored", "quarantined"], type=pa.large_string()).take(
            pa.array((qreasons != "").astype(np.int8) if not all_valid else np.zeros(n, dtype=np.int8)))
        bad_pos = np.flatnonzero(qreasons != "") if not all_valid else np.zeros(0, np.int64)
        reason_at = np.zeros(n, dtype=np.int64)
        reason_at[bad_pos] = np.arange(1, len(bad_pos) + 1)
        qtext = pa.array(["", *qreasons[bad_pos].tolist()], type=pa.large_string()).take(pa.array(reason_at))
        # grades keep the type pandas gave them (Arrow ``string``, missing for quarantined rows)
        grade = pa.array(full(grade_v, None, object), type=pa.string(), from_pandas=True)
        line = full(line_v, np.nan, np.float64)
        cols: dict[str, Any] = {
            self.output_id_column: ids,
            "status": status,
            "quarantine_reason": qtext,
            "pd": full(pd_v, np.nan, np.float64),
            "points": full(points_v, np.nan, np.float64),
            "grade": grade,
            "credit_line": line,
            "rate": full(rate_v, np.nan, np.float64),
            "eligible": full(s.eligible, False, bool),
            "vetoed": full(s.vetoed, False, bool),
        }
        if self.policy is not None:
            cols["approved"] = full(line_v > 0, False, bool)
        elif self.approval_max_pd is not None:
            cols["approved"] = full(pd_v <= self.approval_max_pd, False, bool)
        for name, arr in texts.items():
            cols[name] = _scatter(arr, where, _EMPTY)
        return cols

    def _label_of(self, codes: NDArray[np.object_], lang: str) -> NDArray[np.object_]:
        ser = pd.Series(codes, dtype=object)
        mapped = ser.map({c: lab.get(lang, c) for c, lab in self.labels.items()})
        return mapped.where(mapped.notna(), ser).to_numpy(dtype=object)

    def reason_codes(self, households: pd.DataFrame, top_k: int = 3, eval_date: Any = None) -> pd.DataFrame:
        """Long table ``<id>, row, rank, direction, kind, code, label_en, label_zh, points``.

        Per row: decisive reasons first (kind ``veto`` / ``eligibility``, direction
        ``down``, no points), then the top-k down factors, then the top-k up factors.
        ``row`` is the input position. Quarantined rows have no reasons. The id column
        is named as in the decisions (:attr:`output_id_column`: ``household_id`` for
        households, a table's own id column as the user named it, else ``row_id``).
        """
        s, _, _ = self._score(households, eval_date)
        pc = self._points_contrib(s)
        codes = self.codes[1:]
        kinds = [c.partition(":")[0] for c in codes]  # rule, model (recalibration: a subclass's)
        top = top_reasons(pc[:, 1:], top_k)
        ids = (s.valid[self.id_column].to_numpy(dtype=object) if self.id_column in s.valid.columns
               else s.positions.astype(str).astype(object))
        decisive, count = self._decisive(s)
        body = reasons_long(ids, top, codes, self.labels, kinds, rank_offset_down=count)
        # decisive reasons, only for households whose outcome a veto or gate decides
        exploded = pd.Series(decisive, dtype=object).astype(str)
        exploded = exploded[exploded != ""].str.split(";").explode()
        rows_a = exploded.index.to_numpy(dtype=np.int64)
        ranks = exploded.groupby(level=0).cumcount().to_numpy(dtype=np.int64) + 1
        dc = exploded.to_numpy(dtype=object)
        head = pd.DataFrame({
            "row": rows_a, "household_id": ids[rows_a] if len(rows_a) else np.array([], dtype=object),
            "rank": ranks, "direction": "down",
            "kind": np.where(pd.Series(dc, dtype=object).str.startswith(VETO_PREFIX), "veto", "eligibility")
            if len(dc) else np.array([], dtype=object),
            "code": dc,
            "label_en": self._label_of(dc, "en"),
            "label_zh": self._label_of(dc, "zh"),
            "points": np.full(len(dc), np.nan),
        })
        out = pd.concat([head, body], ignore_index=True)
        out["row"] = s.positions[out["row"].to_numpy(dtype=np.int64)] if len(out) else out["row"]
        dir_order = out["direction"].map({"down": 0, "up": 1}).to_numpy()
        order = np.lexsort((out["rank"].to_numpy(), dir_order, out["row"].to_numpy()))
        cols = ["household_id", "row", "rank", "direction", "kind", "code", "label_en", "label_zh", "points"]
        out = out.iloc[order][cols].reset_index(drop=True)
        return out.rename(columns={"household_id": self.output_id_column})

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "strategy": self.strategy,
            "coefficients": self.coefficients.to_dict(),
            "scaling": self.scaling.to_dict(),
            "features": _feature_config(self.features),
            "feature_names": self.feature_names,
            "item_codes": self.item_codes,
            "item_means": self.item_means,
            "labels": self.labels,
            "validate": self.validate,
            "has_policy": self.policy is not None,
            "metadata": _jsonable(self.metadata),
        }

    def save(self, path: str | Path) -> Path:
        """Write ``booster.txt``, ``policy.yaml`` and ``model.json`` into directory ``path``."""
        d = Path(path)
        d.mkdir(parents=True, exist_ok=True)
        (d / "booster.txt").write_text(self.booster.model_to_string(), encoding="utf-8")
        if self.policy is not None:
            (d / "policy.yaml").write_text(self.policy.to_yaml_text(), encoding="utf-8")
        (d / "model.json").write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False, sort_keys=True),
                                      encoding="utf-8")
        return d

    @classmethod
    def load(cls, path: str | Path) -> DecisionModel:
        """Read a directory written by :meth:`save` (plain files; no pickles)."""
        d = Path(path)
        try:
            spec = json.loads((d / "model.json").read_text(encoding="utf-8"))
            booster_text = (d / "booster.txt").read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read decision model from {d}: {exc}") from exc
        if spec.get("format") != FORMAT:
            raise ConfigError(f"{d / 'model.json'}: unknown format {spec.get('format')!r}, expected {FORMAT!r}")
        if cls is DecisionModel and (d / "recalibration.json").exists():
            # Loading the parent alone would silently score without the calibrator's map.
            raise ConfigError(f"{d} holds a recalibrated model; load it with "
                              "village_credit.models.recalibrated.RecalibratedDecisionModel")
        policy = None
        if spec.get("has_policy"):
            policy = Policy.from_yaml_text((d / "policy.yaml").read_text(encoding="utf-8"),
                                           source=str(d / "policy.yaml"))
        model = cls(
            policy=policy,
            features=_feature_from_config(spec["features"]),
            booster=lgb.Booster(model_str=booster_text),
            coefficients=BlendCoefficients.from_dict(spec["coefficients"]),
            scaling=PointsScaling.from_dict(spec["scaling"]),
            metadata=spec.get("metadata", {}),
            feature_names=spec["feature_names"],
            labels=spec["labels"],
            validate=spec.get("validate"),
            item_means=spec.get("item_means"),
        )
        if model.item_codes != spec.get("item_codes", model.item_codes):
            raise ConfigError(f"{d}: policy items {model.item_codes} differ from the saved {spec['item_codes']}")
        return model
