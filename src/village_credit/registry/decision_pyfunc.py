"""MLflow "models from code" script for the village-credit decision model.

MLflow copies this file into the logged model and executes it at load time, so the
logged model holds *code and plain files*, no pickle of a custom class. The decision
model itself is an artifact directory written by ``DecisionModel.save(dir)`` (LightGBM
text model, YAML policy, JSON scaling) and read back by ``DecisionModel.load(dir)``.

Which class to load comes from ``model_config["decision_class"]``
(``"module:Class"``, default ``village_credit.models.decision:DecisionModel``), so
this script imports no model code at module level and the registry layer stays above
the models layer. Its logic is ``registry.decision_face.DecisionFace`` (pandas only),
which ``registry.loading`` also runs without MLflow for ``village-credit score``.
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
from mlflow.protos.databricks_pb2 import BAD_REQUEST
from mlflow.pyfunc import PythonModel

from village_credit.registry.decision_face import (  # noqa: F401 - this module's names, kept
    DEFAULT_DECISION_CLASS,
    SERVING_ENV,
    DecisionFace,
    _import_class,
    coerce_serving_input,
    in_serving,
    json_safe,
)


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


class DecisionPyfunc(DecisionFace, PythonModel):
    """pyfunc face of a DecisionModel: household table in, one decision per household out.

    Invalid rows come back with ``status="quarantined"`` and a reason (validation is
    inside ``DecisionModel.decide``), never silently dropped. The logic is
    :class:`DecisionFace`'s; MLflow's load calls :meth:`load_context`.
    """

    def load_context(self, context: Any) -> None:
        self.configure(context.model_config, context.artifacts)

    def _missing_inputs(self, missing: list[str]) -> Exception:
        return MissingInputsError(missing)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None
                ) -> pd.DataFrame:
        # defined here, not only inherited: MLflow wraps (and reads the type hints of) the
        # ``predict`` a PythonModel subclass defines itself
        return DecisionFace.predict(self, context, model_input, params)


mlflow.models.set_model(DecisionPyfunc())
