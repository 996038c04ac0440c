"""JSON Schemas of the files people write by hand, for editors (and ``village-credit schemas``).

Why: the declared models that check a file at load (:mod:`village_credit.config`,
:mod:`village_credit.models.features`, :mod:`village_credit.rules.policy_format`) also
describe it. Written out as JSON Schema
(``schemas/*.schema.json``, committed; a test keeps them equal to the models), an
editor completes keys, shows each key's meaning and flags a wrong value as it is
typed: VS Code's YAML extension reads a first line such as
``# yaml-language-server: $schema=../schemas/experiment.schema.json``.

>>> sorted(FILE_FORMATS)
['experiment', 'feature_spec', 'policy']
>>> {"experiment", "feature_spec"} <= set(FILE_FORMATS)
True
>>> FILE_FORMATS["experiment"]()["$id"]
'https://village-credit.org/schemas/experiment.schema.json'
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from village_credit.config import ExperimentConfig
from village_credit.file_formats import json_schema, write_json_schema
from village_credit.models.features import FeatureSpecFile
from village_credit.rules.policy_format import policy_json_schema

__all__ = ["FILE_FORMATS", "SCHEMA_BASE_URL", "experiment_json_schema", "feature_spec_json_schema",
           "schema_id", "write_schemas"]

SCHEMA_BASE_URL = "https://village-credit.org/schemas/"


def schema_id(name: str) -> str:
    """The stable ``$id`` of a format's schema (also its file name under ``schemas/``).

    >>> schema_id("feature_spec")
    'https://village-credit.org/schemas/feature_spec.schema.json'
    """
    return f"{SCHEMA_BASE_URL}{name}.schema.json"


def experiment_json_schema() -> dict[str, Any]:
    """JSON Schema of an experiment file (``experiments/*.yaml``).

    >>> experiment_json_schema()["properties"]["seed"]["minimum"]
    0
    """
    return json_schema(ExperimentConfig, title="village-credit experiment", schema_id=schema_id("experiment"))


def feature_spec_json_schema() -> dict[str, Any]:
    """JSON Schema of a feature spec (``data.feature_spec``: a table of one's own).

    >>> feature_spec_json_schema()["title"]
    'village-credit feature spec'
    """
    return json_schema(FeatureSpecFile, title="village-credit feature spec", schema_id=schema_id("feature_spec"))


FILE_FORMATS: dict[str, Callable[[], dict[str, Any]]] = {
    "experiment": experiment_json_schema,
    "feature_spec": feature_spec_json_schema,
    "policy": policy_json_schema,
}
"""Every hand-written file format: name -> function returning its JSON Schema.

The name is the schema's file stem: ``schemas/<name>.schema.json``."""


def write_schemas(out_dir: str | Path) -> list[Path]:
    """Write every format's schema as ``<out_dir>/<name>.schema.json``; the paths written, sorted by name.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     names = [p.name for p in write_schemas(tmp)]
    >>> names[:2]
    ['experiment.schema.json', 'feature_spec.schema.json']
    """
    out = Path(out_dir)
    return [write_json_schema(FILE_FORMATS[name](), out / f"{name}.schema.json") for name in sorted(FILE_FORMATS)]
