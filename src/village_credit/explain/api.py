"""``explain(model, households)``: reason codes for every household, the public entry point.

Why a thin layer: the exact, fast reason codes live in
:meth:`village_credit.models.decision.DecisionModel.reason_codes` (rule items and model
features in points, decisive veto / eligibility reasons first). Notebooks and the CLI
need two more things only -- loading the model from wherever it lives (an object, a
saved directory, an MLflow URI) and a choice of table shape -- so that is all this adds.

Two forms
---------
``form="long"`` (default): one row per reason, ordered by input row, direction
(``down`` then ``up``) and rank. Columns:

* the id column, named as in the model's decisions (``household_id`` for households; a
  table model's own id column as the user named it, or ``row_id``): from the input (the
  row position as text when there is none);
* ``row``: position of the row in the input (0-based);
* ``rank``: 1 = most important within its direction; decisive reasons take the first
  ``down`` ranks;
* ``direction``: ``down`` = took points away (raised the risk), ``up`` = added points;
* ``kind``: ``veto`` / ``eligibility`` (decisive, no points), ``rule`` or ``model``;
* ``code``: ``veto:<code>``, ``ineligible:<code>``, ``rule:<item>``, ``model:<feature>``;
* ``label_en``, ``label_zh``: labels from the policy and the feature spec;
* ``points``: the factor's exact contribution in points (NaN for decisive reasons).

A household gets at most ``top_k`` factors per direction (fewer when fewer factors
moved its score) plus its decisive reasons; quarantined (invalid) rows get none.

``form="wide"``: one row per input row, same order, columns

* the id column (as in the long form), ``row``;
* ``n_decisive``, ``decisive_codes``, ``decisive_label_en``, ``decisive_label_zh``
  (``"; "``-joined, empty when nothing decisive);
* for ``d`` in ``down``, ``up`` and ``i`` in ``1..top_k``: ``{d}_{i}_code``,
  ``{d}_{i}_label_en``, ``{d}_{i}_label_zh``, ``{d}_{i}_points`` (``i`` counts factors
  only; empty strings / NaN where there is no such factor).

The wide columns are fixed by ``top_k``, so files written chunk by chunk share one
schema (:func:`reasons_arrow_schema`).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any, Literal

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa

from village_credit.errors import ConfigError, SchemaError
from village_credit.models.decision import DecisionModel
from village_credit.models.recalibrated import load_saved_model
from village_credit.models.saved_folder import DECISION_MODEL_ARTIFACT, find_saved_model

Form = Literal["long", "wide"]

LONG_COLUMNS = ["household_id", "row", "rank", "direction", "kind", "code", "label_en", "label_zh", "points"]
DECISIVE_KINDS = ("veto", "eligibility")

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+:/")  # scheme of 2+ chars: not a Windows drive letter

__all__ = [
    "DECISION_MODEL_ARTIFACT",
    "LONG_COLUMNS",
    "explain",
    "load_decision_model",
    "long_columns",
    "reasons_arrow_schema",
    "wide_columns",
]


# ----------------------------------------------------------------------------- loading
def _find_decision_dir(root: Path) -> Path:
    """The saved DecisionModel directory under ``root`` (``models.saved_folder.find_saved_model``)."""
    found = find_saved_model(root)
    if found is None:
        raise ConfigError(
            f"{root}: no saved decision model found (expected model.json written by DecisionModel.save, "
            f"or an MLflow model with a {DECISION_MODEL_ARTIFACT!r} artifact)"
        )
    return found


def load_decision_model(model: Any) -> Any:
    """A ``DecisionModel`` from an instance, a saved directory, or an artifact URI.

    A folder holding a recalibrated model loads as one (``models.recalibrated.
    load_saved_model``). Artifact URIs (``runs:/<id>/model`` or any URI mlflow
    understands) are downloaded with ``mlflow.artifacts.download_artifacts`` and read
    from the ``decision_model`` artifact directory; plain files only (no pickles, no
    pyfunc code). A registered version is loaded, with its promotion record checked, by
    the one loader, ``village_credit.registry.load_decision_model`` (what the
    ``explain`` command uses for ``models:/`` and ``runs:/`` URIs).

    Examples
    --------
    >>> from village_credit.models.examples import example_model
    >>> model, holdout = example_model()  # fit_blend's example: 300 households, 20 trees
    >>> import tempfile
    >>> from village_credit.explain import load_decision_model
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     loaded = load_decision_model(model.save(f"{tmp}/model"))  # or "models:/name@champion"
    ...     print(type(loaded).__name__, loaded.decide(holdout).equals(model.decide(holdout)))
    DecisionModel True
    """
    if isinstance(model, DecisionModel) or (hasattr(model, "reason_codes") and hasattr(model, "codes")):
        return model
    if not isinstance(model, (str, Path)):
        raise ConfigError(f"explain: model must be a DecisionModel, a directory or an MLflow URI, "
                          f"got {type(model).__name__}")
    text = str(model)
    if isinstance(model, str) and _URI.match(text) and not text.startswith("file:"):
        with tempfile.TemporaryDirectory(prefix="vc-explain-") as tmp:
            try:
                local = Path(mlflow.artifacts.download_artifacts(artifact_uri=text, dst_path=tmp))
            except Exception as exc:  # MlflowException and friends carry the useful message
                raise ConfigError(f"cannot download model {text}: {exc}") from exc
            return load_saved_model(_find_decision_dir(local))
    path = Path(text.removeprefix("file://"))
    if not path.is_dir():
        raise ConfigError(f"decision model directory not found: {path}")
    return load_saved_model(_find_decision_dir(path))


# ----------------------------------------------------------------------------- shapes
def long_columns(id_column: str = "household_id") -> list[str]:
    """Column names of the long form; ``id_column``: the model's (``output_id_column``).

    >>> long_columns("loan_ref")[:3]
    ['loan_ref', 'row', 'rank']
    """
    return [id_column, *LONG_COLUMNS[1:]]


def wide_columns(top_k: int, id_column: str = "household_id") -> list[str]:
    """Column names of the wide form for a given ``top_k``; ``id_column``: the model's."""
    cols = [id_column, "row", "n_decisive", "decisive_codes", "decisive_label_en", "decisive_label_zh"]
    for d in ("down", "up"):
        for i in range(1, top_k + 1):
            cols += [f"{d}_{i}_code", f"{d}_{i}_label_en", f"{d}_{i}_label_zh", f"{d}_{i}_points"]
    return cols


def reasons_arrow_schema(form: Form = "long", top_k: int = 3, id_column: str = "household_id") -> Any:
    """Fixed Arrow schema of either form, so chunked Parquet output has one schema.

    ``id_column``: the model's id column name (``DecisionModel.output_id_column``).

    Examples
    --------
    >>> from village_credit.explain import reasons_arrow_schema
    >>> reasons_arrow_schema("long").names
    ['household_id', 'row', 'rank', 'direction', 'kind', 'code', 'label_en', 'label_zh', 'points']
    >>> reasons_arrow_schema("wide", top_k=1).names[-4:]
    ['up_1_code', 'up_1_label_en', 'up_1_label_zh', 'up_1_points']
    >>> reasons_arrow_schema("long", id_column="loan_ref").names[0]  # a table model's own id column
    'loan_ref'
    """
    if form == "long":
        return pa.schema([(id_column, pa.string()), ("row", pa.int64()), ("rank", pa.int64()),
                          ("direction", pa.string()), ("kind", pa.string()), ("code", pa.string()),
                          ("label_en", pa.string()), ("label_zh", pa.string()), ("points", pa.float64())])
    if form == "wide":
        fields = []
        for c in wide_columns(top_k, id_column):
            if c in ("row", "n_decisive"):
                fields.append((c, pa.int64()))
            elif c.endswith("_points"):
                fields.append((c, pa.float64()))
            else:
                fields.append((c, pa.string()))
        return pa.schema(fields)
    raise ConfigError(f"form must be 'long' or 'wide', got {form!r}")


def _input_ids(households: pd.DataFrame, column: str = "household_id") -> np.ndarray:
    if column in households.columns:
        return households[column].astype(object).to_numpy(dtype=object)
    return np.arange(len(households)).astype(str).astype(object)


def _to_wide(long: pd.DataFrame, households: pd.DataFrame, top_k: int, dm: Any) -> pd.DataFrame:
    """One row per input row from the long table (vectorised per (direction, rank) slot)."""
    n = len(households)
    rows = long["row"].to_numpy(dtype=np.int64)
    decisive = long["kind"].isin(DECISIVE_KINDS).to_numpy()
    out: dict[str, Any] = {dm.output_id_column: _input_ids(households, dm.id_column),
                           "row": np.arange(n, dtype=np.int64)}

    n_dec = np.bincount(rows[decisive], minlength=n).astype(np.int64) if n else np.zeros(0, np.int64)
    out["n_decisive"] = n_dec
    dec = long.loc[decisive, ["row", "code", "label_en", "label_zh"]]
    for col, name in (("code", "decisive_codes"), ("label_en", "decisive_label_en"),
                      ("label_zh", "decisive_label_zh")):
        arr = np.full(n, "", dtype=object)
        if len(dec):
            joined = dec.groupby("row", sort=True)[col].agg(lambda s: "; ".join(map(str, s)))
            arr[joined.index.to_numpy(dtype=np.int64)] = joined.to_numpy(dtype=object)
        out[name] = arr

    factors = long.loc[~decisive]
    f_rows = factors["row"].to_numpy(dtype=np.int64)
    f_dir = factors["direction"].to_numpy(dtype=object)
    # factor rank: decisive reasons take the first "down" ranks, so shift them out
    f_rank = factors["rank"].to_numpy(dtype=np.int64) - np.where(f_dir == "down", n_dec[f_rows], 0)
    values = {c: factors[c].to_numpy(dtype=object) for c in ("code", "label_en", "label_zh")}
    points = factors["points"].to_numpy(dtype=np.float64)
    for d in ("down", "up"):
        for i in range(1, top_k + 1):
            sel = (f_dir == d) & (f_rank == i)
            r = f_rows[sel]
            for c in ("code", "label_en", "label_zh"):
                arr = np.full(n, "", dtype=object)
                arr[r] = values[c][sel]
                out[f"{d}_{i}_{c}"] = arr
            pts = np.full(n, np.nan)
            pts[r] = points[sel]
            out[f"{d}_{i}_points"] = pts
    return pd.DataFrame(out, index=households.index)[wide_columns(top_k, dm.output_id_column)]


# ----------------------------------------------------------------------------- API
def explain(model: Any, households: pd.DataFrame, top_k: int = 3, form: Form = "long",
            eval_date: Any = None) -> pd.DataFrame:
    """Reason codes for every household (see the module docstring for both forms).

    ``model``: a ``DecisionModel``, a directory written by ``DecisionModel.save`` or an
    MLflow model URI (``models:/...``, ``runs:/...``); load once with
    :func:`load_decision_model` when calling repeatedly. Delegates to
    ``DecisionModel.reason_codes`` (exact contributions; no logic duplicated here).

    Examples
    --------
    >>> from village_credit.models.examples import example_model
    >>> model, holdout = example_model()  # fit_blend's example: 300 households, 20 trees
    >>> from village_credit.explain import explain
    >>> reasons = explain(model, holdout.head(2), top_k=2)  # long form: one row per reason
    >>> list(reasons.columns)
    ['household_id', 'row', 'rank', 'direction', 'kind', 'code', 'label_en', 'label_zh', 'points']
    >>> sorted(set(reasons["direction"])), reasons["household_id"].nunique()
    (['down', 'up'], 2)
    """
    if form not in ("long", "wide"):
        raise ConfigError(f"form must be 'long' or 'wide', got {form!r}")
    if int(top_k) < 1:
        raise ConfigError(f"top_k must be >= 1, got {top_k}")
    if not isinstance(households, pd.DataFrame):
        raise SchemaError(f"explain expects a pandas DataFrame of households, got {type(households).__name__}")
    dm = load_decision_model(model)
    long = dm.reason_codes(households, top_k=int(top_k), eval_date=eval_date)
    if form == "long":
        return long[long_columns(dm.output_id_column)].reset_index(drop=True)
    return _to_wide(long, households, int(top_k), dm)
