"""MLflow "models from code" script for the village-credit decision model.

MLflow copies this file into the logged model and executes it at load time, so the
logged model holds *code and plain files*, no pickle of a custom class. The decision
model itself is an artifact directory written by ``DecisionModel.save(dir)`` (LightGBM
text model, YAML policy, JSON scaling) and read back by ``DecisionModel.load(dir)``.

Which class to load comes from ``model_config["decision_class"]``
(``"module:Class"``, default ``village_credit.models.decision:DecisionModel``), so
this script imports nothing from village_credit at module level and the registry
layer stays above the models layer.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import mlflow
import pandas as pd
from mlflow.protos.databricks_pb2 import BAD_REQUEST
from mlflow.pyfunc import PythonModel

DEFAULT_DECISION_CLASS = "village_credit.models.decision:DecisionModel"
# set to "true" by MLflow's scoring server (``mlflow models serve``, ``scoring_server.init``)
# in its own process: the only caller that writes the frame with ``json.dump``
SERVING_ENV = "_MLFLOW_IS_IN_SERVING_ENVIRONMENT"


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


class MissingInputsError(mlflow.exceptions.MlflowException):
    """Required input columns are absent: the cause comes first in the message.

    MLflow's scoring server rewrites the message of any error raised while
    predicting to ``"Failed to predict data '<the whole request>'. Error: <cause>"``.
    This error keeps the cause as the first line and appends what the server adds,
    so a client reading the first line of ``message`` learns what to fix.
    """

    def __init__(self, missing: list[str]) -> None:
        shown = ", ".join(missing[:20]) + (f" ... ({len(missing)} in all)" if len(missing) > 20
                                            else "")
        self.cause = (f"Model is missing inputs {missing[:20]}: the request lacks "
                      f"{len(missing)} column(s) the model needs: {shown}")
        self._context = ""
        super().__init__(self.cause, error_code=BAD_REQUEST)

    @property
    def message(self) -> str:  # type: ignore[override]
        return self.cause + (f"\n{self._context}" if self._context else "")

    @message.setter
    def message(self, value: str) -> None:
        self._context = "" if value == getattr(self, "cause", None) else str(value)


class DecisionPyfunc(PythonModel):
    """pyfunc face of a DecisionModel: household table in, one decision per household out.

    Invalid rows come back with ``status="quarantined"`` and a reason (validation is
    inside ``DecisionModel.decide``), never silently dropped.
    """

    def load_context(self, context: Any) -> None:
        config = dict(context.model_config or {})
        cls = _import_class(str(config.get("decision_class", DEFAULT_DECISION_CLASS)))
        self.top_k = int(config.get("top_k", 3))
        self.input_types = {str(k): str(v) for k, v in (config.get("input_types") or {}).items()}
        self.required_inputs = [str(c) for c in (config.get("required_inputs") or [])]
        self.model = cls.load(context.artifacts["decision_model"])

    def _prepared(self, model_input: Any, params: dict | None) -> tuple[pd.DataFrame, int]:
        """The input as ``decide`` takes it (required columns present, dates back from JSON) and ``top_k``."""
        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input)
        missing = [c for c in getattr(self, "required_inputs", []) if c not in model_input.columns]
        if missing:
            raise MissingInputsError(missing)
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


mlflow.models.set_model(DecisionPyfunc())
