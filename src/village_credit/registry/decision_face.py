"""The decision pyfunc's own logic, without MLflow: what ``DecisionPyfunc`` does around
``DecisionModel.decide``, and the input contract a logged model declares.

Why a module of its own: ``village-credit score`` decides in a process that never
imports MLflow (~1.2 CPU s of its serial start-up: its GenAI, gateway and tracing
modules; docs/benchmarks.md, "CLI fixed cost (issue 31 item 4), seventh pass"). The
models-from-code script ``decision_pyfunc.py`` subclasses MLflow's ``PythonModel`` with
:class:`DecisionFace`, so MLflow's load and :func:`registry.loading.load_model`'s
MLflow-free path (:class:`DecisionPyfuncFace`) run this same code. Imports only pandas.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["DEFAULT_DECISION_CLASS", "INPUT_SCHEMA_KEY", "DecisionFace", "DecisionPyfuncFace",
           "LoggedModelMeta", "coerce_serving_input", "in_serving", "input_columns_of", "json_safe"]

DEFAULT_DECISION_CLASS = "village_credit.models.decision:DecisionModel"
# set to "true" by MLflow's scoring server (``mlflow models serve``, ``scoring_server.init``)
# in its own process: the only caller that writes the frame with ``json.dump``
SERVING_ENV = "_MLFLOW_IS_IN_SERVING_ENVIRONMENT"

#: MLmodel ``metadata`` key holding the input contract ``[{name, type, required}]``.
INPUT_SCHEMA_KEY = "village_credit.input_schema"


def in_serving() -> bool:
    """True inside MLflow's scoring server, whose JSON needs ``null`` for missing numbers."""
    return os.environ.get(SERVING_ENV, "").strip().lower() in ("true", "1")


def _import_class(path: str) -> Any:
    module, _, attr = path.partition(":")
    if not module or not attr:
        raise ValueError(f"decision_class must look like 'package.module:Class', got {path!r}")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


_MISSING_TOKENS = {"", "NaT", "nat", "NaN", "nan", "None", "null"}


def coerce_serving_input(df: pd.DataFrame, input_types: dict[str, str]) -> pd.DataFrame:
    """Undo JSON transport for date columns (``mlflow models predict``, serving).

    Over JSON a date arrives as an ISO string and a missing one as the string
    ``"NaT"``. A column declared ``datetime`` at logging time whose cells are all
    missing tokens or ISO dates becomes ``datetime64``; a column with any other
    string is only cleaned of missing tokens and left for ``decide`` to quarantine
    the bad rows (never coerced to NaT, which would hide a bad date).
    """
    out = df
    for col, kind in input_types.items():
        if kind != "datetime" or col not in df.columns:
            continue
        s = df[col]
        if pd.api.types.is_datetime64_any_dtype(s) or not (
            s.dtype == object or pd.api.types.is_string_dtype(s)
        ):
            continue
        cleaned = s.astype(object).where(~s.astype(object).isin(_MISSING_TOKENS), None)
        parsed = pd.to_datetime(cleaned, errors="coerce", format="ISO8601")
        bad = parsed.isna() & cleaned.notna()
        if out is df:
            out = df.copy(deep=False)
        out[col] = cleaned if bool(bad.any()) else parsed
    return out


def json_safe(out: pd.DataFrame) -> pd.DataFrame:
    """Missing numbers as ``None`` so that MLflow's serving answers ``null``, not ``NaN``.

    MLflow's scoring server writes ``DataFrame.to_dict("records")`` with ``json.dump``:
    a float NaN (the PD, points and line of a quarantined row) becomes the bare token
    ``NaN``, which is not JSON (``JSON.parse`` fails). Only columns holding a missing
    value change (to object, ``None`` for the missing cells). Used only inside the
    scoring server (:func:`in_serving`): everywhere else the float dtypes stay.
    """
    fixes = {}
    for col in out.columns:
        s = out[col]
        if bool(s.isna().any()):  # float NaN, NaT, pd.NA, or NaN inside an object column
            fixes[col] = s.astype(object).where(s.notna(), None)
    return out.assign(**fixes) if fixes else out


def input_columns_of(model_meta: Any) -> list[dict[str, Any]] | None:
    """Named input columns of a logged model (``mlflow.models.Model``): signature, else metadata.

    New decision models keep their input contract in ``metadata[INPUT_SCHEMA_KEY]``
    (MLflow does not enforce it); models with a named signature report that.
    """
    sig = getattr(model_meta, "signature", None)
    if sig is not None and sig.inputs is not None:
        cols = sig.inputs.to_dict()
        if cols and all(isinstance(c, dict) and c.get("name") for c in cols):
            return [{"name": c["name"], "type": c.get("type"), "required": c.get("required", True)}
                    for c in cols]
        return None
    cols = (getattr(model_meta, "metadata", None) or {}).get(INPUT_SCHEMA_KEY)
    if isinstance(cols, list) and cols and all(isinstance(c, dict) and c.get("name") for c in cols):
        return [{"name": str(c["name"]), "type": c.get("type"), "required": bool(c.get("required", True))}
                for c in cols]
    return None


class DecisionFace:
    """pyfunc face of a DecisionModel: household table in, one decision per household out.

    Invalid rows come back with ``status="quarantined"`` and a reason (validation is
    inside ``DecisionModel.decide``), never silently dropped.
    """

    model: Any

    def configure(self, model_config: Mapping[str, Any] | None, artifacts: Mapping[str, str]) -> None:
        """What ``load_context`` does: the decision class, ``top_k`` and input rules from the
        model's configuration, the DecisionModel from its ``decision_model`` artifact."""
        config = dict(model_config or {})
        cls = _import_class(str(config.get("decision_class", DEFAULT_DECISION_CLASS)))
        self.top_k = int(config.get("top_k", 3))
        self.input_types = {str(k): str(v) for k, v in (config.get("input_types") or {}).items()}
        self.required_inputs = [str(c) for c in (config.get("required_inputs") or [])]
        self.model = cls.load(artifacts["decision_model"])

    def _missing_inputs(self, missing: list[str]) -> Exception:
        """The error for absent required columns (``decision_pyfunc.MissingInputsError``, an
        MLflow exception, in the script's subclass and in ``registry.loading``'s face)."""
        raise NotImplementedError

    def _prepared(self, model_input: Any, params: dict | None) -> tuple[pd.DataFrame, int]:
        """The input as ``decide`` takes it (required columns present, dates back from JSON) and ``top_k``."""
        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input)
        missing = [c for c in getattr(self, "required_inputs", []) if c not in model_input.columns]
        if missing:
            raise self._missing_inputs(missing)
        top_k = int((params or {}).get("top_k", self.top_k))
        return coerce_serving_input(model_input, self.input_types), top_k

    def predict_arrow(self, model_input: pd.DataFrame, params: dict | None = None) -> Any:
        """:meth:`predict`'s decisions as an Arrow table (``DecisionModel.decide_arrow``): the
        batch scorer's path, the same checks and values without a pandas frame of the decisions."""
        model_input, top_k = self._prepared(model_input, params)
        return self.model.decide_arrow(model_input, top_k=top_k)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None
                ) -> pd.DataFrame:
        model_input, top_k = self._prepared(model_input, params)
        out = self.model.decide(model_input, top_k=top_k)
        # ``pyfunc.predict``, ``spark_udf`` (Arrow turns NaN into null) and the batch
        # scorer keep float columns with NaN for quarantined rows, so ``np.log(p["pd"])``
        # works; only the scoring server's JSON needs None (``null``, not ``NaN``)
        return json_safe(out) if in_serving() else out


class LoggedModelMeta:
    """What the batch scorer reads of a logged model's ``MLmodel`` (``mlflow.models.Model``):
    its ``metadata`` (the input contract); no input signature (the MLflow-free load is
    only taken for a model without one)."""

    signature = None

    def __init__(self, metadata: Mapping[str, Any] | None) -> None:
        self.metadata = dict(metadata or {})

    def get_input_schema(self) -> None:
        return None


class DecisionPyfuncFace:
    """A decision pyfunc loaded without MLflow: what the batch scorer calls of MLflow's
    ``PyFuncModel`` (``metadata``, ``unwrap_python_model``, ``predict``) over a
    :class:`DecisionFace` configured as MLflow's load configures ``DecisionPyfunc``.

    Built only by ``registry.loading`` for a model whose pyfunc script is this toolkit's
    ``decision_pyfunc.py``, byte for byte, and which has no input signature: then
    MLflow's ``predict`` adds nothing (no schema to enforce, ``top_k`` the model's own
    default) and the script's class is :class:`DecisionFace` under MLflow's base class.
    """

    def __init__(self, model_dir: Path, face: DecisionFace, model_config: Mapping[str, Any],
                 artifacts: Mapping[str, str], metadata: Mapping[str, Any] | None) -> None:
        self.model_dir = model_dir
        self.metadata = LoggedModelMeta(metadata)
        self._face = face
        self._face.configure(model_config, artifacts)

    def unwrap_python_model(self) -> DecisionFace:
        return self._face

    def predict(self, data: Any, params: dict | None = None) -> Any:
        return self._face.predict(None, data, params)
