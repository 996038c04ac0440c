"""Log the decision model as an MLflow pyfunc from code, ready to register and serve.

How the model loads in a fresh environment (decided here, documented once):

* The ``village_credit`` package travels **inside the model** as ``code_paths``
  (MLflow copies the package folder to ``<model>/code/village_credit`` and puts it
  first on ``sys.path`` at load time). A model is then pinned to the exact code that
  produced it, needs no private package index, and loads the same under
  ``mlflow models predict`` and ``spark_udf``. (The alternative, a wheel in the
  artifacts listed in ``requirements.txt``, needs a build step and a path that pip
  resolves relative to its working directory; code_paths avoids both.)
* Third-party requirements are the package's own declared runtime dependencies
  pinned to the versions installed at logging time (``default_pip_requirements``),
  so "what trained it" is also "what serves it". Pass ``pip_requirements`` to
  narrow them.
"""

from __future__ import annotations

import functools
import re
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import ModelSignature, infer_signature
from mlflow.models.model import Model, ModelInfo
from mlflow.types.schema import AnyType, ColSpec, Schema

import village_credit
from village_credit.errors import ConfigError, SchemaError
from village_credit.models.saved_folder import DECISION_MODEL_ARTIFACT
from village_credit.registry.decision_face import (  # INPUT_SCHEMA_KEY, input_columns_of: re-exported
    DEFAULT_DECISION_CLASS,
    INPUT_SCHEMA_KEY,
    _import_class,
    input_columns_of,
)
from village_credit.registry.tracking import personal_columns, strip_personal_columns

#: The models-from-code script logged as ``python_model``.
DECISION_PYFUNC_PATH = Path(__file__).with_name("decision_pyfunc.py")

# Used only when the package metadata is unavailable (running from a bare source tree).
_FALLBACK_REQUIREMENTS = ("mlflow", "numpy", "pandas", "pyarrow", "scipy", "scikit-learn", "lightgbm", "pyyaml")


def package_dir() -> Path:
    """The ``village_credit`` package folder shipped with each model as ``code_paths``."""
    return Path(village_credit.__file__).resolve().parent


def _pin(dist: str) -> str:
    try:
        return f"{dist}=={metadata.version(dist)}"
    except metadata.PackageNotFoundError:
        return dist


SCORING_REQUIREMENTS = ("mlflow", "numpy", "pandas", "pyarrow", "scipy", "scikit-learn", "lightgbm", "pyyaml",
                        "pydantic")
"""What loading and running the decision model imports (pydantic: the policy file's declared
format, checked when the model's policy loads); training-only libraries
(optuna, shap, fairlearn, optbinning, statsmodels, matplotlib) are not needed to score."""


def default_pip_requirements() -> list[str]:
    """The scoring subset of village-credit's dependencies, pinned to the installed versions.

    Extras (test, notebooks, spark) and training-only libraries are skipped; the
    fresh-virtualenv test proves this list is enough to load and score. Read once per
    process (package metadata lookups scan site-packages).

    >>> any(r.startswith("mlflow==") for r in default_pip_requirements())
    True
    """
    return list(_pinned_requirements())


@functools.cache
def _pinned_requirements() -> tuple[str, ...]:
    try:
        reqs = metadata.requires("village-credit") or []
    except metadata.PackageNotFoundError:
        reqs = []
    names: list[str] = []
    for req in reqs:
        if "extra ==" in req or "extra==" in req:
            continue
        m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
        if m:
            names.append(m.group(1))
    if not names:
        names = list(_FALLBACK_REQUIREMENTS)
    names = [n for n in names if n.lower() in SCORING_REQUIREMENTS]
    if "mlflow" not in {n.lower() for n in names}:
        names.insert(0, "mlflow")
    return tuple(_pin(n) for n in dict.fromkeys(names))


_INT_HINT = "Hint: Inferred schema contains integer column"
"""MLflow's hint about integer columns and missing values: moot here, the model reads
integers that arrive as floats (or text) itself and quarantines what does not parse."""


def log_decision_model(
    decision_model_dir: str | Path,
    *,
    input_example: pd.DataFrame,
    name: str = "model",
    decision_class: str = DEFAULT_DECISION_CLASS,
    pip_requirements: list[str] | None = None,
    registered_model_name: str | None = None,
    top_k: int = 3,
    signature: ModelSignature | None = None,
    extra_code_paths: list[str | Path] | None = None,
    lenient_inputs: bool = True,
) -> ModelInfo:
    """Log a saved decision model (``DecisionModel.save(dir)``) as a pyfunc from code.

    The signature is inferred from ``input_example`` and the model's own output on
    it (``decision_class.load(dir).decide(example)``), so signature and example
    output always agree with the code being logged. The example must be anonymised:
    columns named like personal data are refused rather than silently logged.
    Logs into the active run, or starts (and ends) one when none is active so that
    promotion evidence has a run to live in.

    ``lenient_inputs`` (default) leaves the input schema out of the MLflow signature
    (outputs and the ``top_k`` param stay) and records it instead in the MLmodel
    metadata under :data:`INPUT_SCHEMA_KEY` (named columns, types, required): the
    model validates its input itself, row by row, and quarantines a bad row with a
    reason. Why not a typed or ``Any`` signature: MLflow rejects a *whole batch* for
    one non-numeric cell or a NaN in an integer column under typed columns, and
    checks ``Any`` columns one Python call per cell (about 12x the decision itself);
    see docs/architecture.md, "The pyfunc input contract". ``lenient_inputs=False``
    logs the typed signature that MLflow enforces (strict: a bad cell fails the batch).
    The required columns also go to ``model_config["required_inputs"]``: the model
    checks them itself, so a missing column is reported with its cause in the first
    line (MLflow's own message starts with the whole request).
    """
    model_dir = Path(decision_model_dir)
    if not model_dir.is_dir():
        raise ConfigError(f"decision model directory not found: {model_dir}")
    if not isinstance(input_example, pd.DataFrame) or input_example.empty:
        raise SchemaError("input_example must be a non-empty DataFrame of anonymised households")
    pii = personal_columns(input_example.columns)
    if pii:
        raise SchemaError(
            f"input_example has columns that look like personal data: {pii}; "
            "use DecisionModel.input_example() (anonymised rows)"
        )
    example = strip_personal_columns(input_example).reset_index(drop=True)

    served_here = signature is None  # the example goes through the model below (the signature's output)
    if signature is None:
        cls = _import_class(decision_class)
        output = cls.load(str(model_dir)).decide(example.copy(), top_k=top_k)
        with warnings.catch_warnings():  # MLflow does not enforce this schema (the model validates rows)
            warnings.filterwarnings("ignore", message=_INT_HINT)
            signature = infer_signature(example, output, params={"top_k": int(top_k)})
    input_types = {spec.name: _type_name(spec) for spec in (signature.inputs.inputs
                                                            if signature.inputs else [])
                   if spec.name}
    required_inputs = [spec.name for spec in (signature.inputs.inputs if signature.inputs else [])
                       if spec.name and spec.required]
    metadata = None
    if lenient_inputs and signature.inputs is not None:
        metadata = {INPUT_SCHEMA_KEY: input_contract(signature.inputs)}
        signature = ModelSignature(inputs=None, outputs=signature.outputs, params=signature.params)

    code_paths = [str(package_dir())] + [str(p) for p in (extra_code_paths or [])]
    reqs = list(pip_requirements) if pip_requirements is not None else default_pip_requirements()

    started = None
    if mlflow.active_run() is None:
        started = mlflow.start_run(run_name=f"log-{name}")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_INT_HINT)
            # mlflow.pyfunc.log_model is Model.log(flavor=mlflow.pyfunc); called directly so
            # that MLflow's serving check of the example (load the pyfunc back, score the
            # example again: ~0.5 s, a third of logging) can be skipped when the example has
            # just been scored by the model being logged (issue 26: train's fixed costs)
            info = Model.log(
                artifact_path=None, flavor=_PyfuncFlavor, flavor_name="pyfunc.ModelFromCode",
                validate_serving_input=not served_here,
                name=name,
                python_model=str(DECISION_PYFUNC_PATH),
                artifacts={DECISION_MODEL_ARTIFACT: str(model_dir)},
                model_config={"decision_class": decision_class, "top_k": int(top_k),
                              "input_types": input_types, "required_inputs": required_inputs},
                code_paths=code_paths,
                pip_requirements=reqs,
                signature=signature,
                input_example=example,
                registered_model_name=registered_model_name,
                metadata=metadata,
            )
        mlflow.set_tag("decision_class", decision_class)
    finally:
        if started is not None:
            mlflow.end_run()
    return info


class _PyfuncFlavor:
    """``mlflow.pyfunc`` as the flavor ``Model.log`` saves with, minus the one keyword
    (``validate_serving_input``) that ``Model.log`` reads and ``pyfunc.save_model`` refuses."""

    @staticmethod
    def save_model(validate_serving_input: bool = True, **kwargs: Any) -> Any:
        return mlflow.pyfunc.save_model(**kwargs)


def _type_name(spec: ColSpec) -> str:
    t = spec.type
    return str(getattr(t, "name", None) or t.to_dict().get("type", "any"))


def lenient_schema(schema: Schema) -> Schema:
    """Same named columns (and required flags), every type relaxed to ``Any``.

    Kept for models logged before the input contract moved to the metadata; MLflow
    checks ``Any`` columns one cell at a time, so new models do not use it.
    """
    if not schema.has_input_names():
        raise SchemaError("the decision model's input schema must have named columns")
    return Schema([ColSpec(AnyType(), spec.name, required=False) for spec in schema.inputs])


def input_contract(schema: Schema) -> list[dict[str, Any]]:
    """``[{name, type, required}]`` of a named input schema: what the model expects."""
    if not schema.has_input_names():
        raise SchemaError("the decision model's input schema must have named columns")
    return [{"name": spec.name, "type": _type_name(spec), "required": bool(spec.required)}
            for spec in schema.inputs]


def model_input_schema(model_uri: str) -> list[dict[str, Any]] | None:
    """The named input columns and types of a logged model (signature or metadata), or ``None``."""
    cols = input_columns_of(mlflow.models.get_model_info(model_uri))  # has .signature and .metadata
    return None if cols is None else [{"name": c["name"], "type": c["type"]} for c in cols]
