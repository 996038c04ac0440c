"""What an experiment file's model cannot check: the policy registry and the input files.

Why apart from :mod:`village_credit.config`: the declared models there check every
key's type, range and choice from the file alone; these checks look outside it (a
shipped policy name or a policy YAML, the data file and the feature spec on disk).
They run right after the model, before any data or MLflow run exists, and raise
:class:`ConfigError` naming the file and the dotted key.

>>> check_inputs(policy="jinxiang_2022", data_source=None, feature_spec=None, source="exp.yaml")
>>> check_inputs(policy="jinxiang_2022", data_source="nowhere/loans.csv", feature_spec=None,
...              source="exp.yaml")
Traceback (most recent call last):
...
village_credit.errors.ConfigError: exp.yaml: data.source 'nowhere/loans.csv': file not found
"""

from __future__ import annotations

from pathlib import Path

from village_credit.errors import ConfigError, VillageCreditError
from village_credit.models.features import load_feature_specs
from village_credit.rules import load_policy

__all__ = ["DATA_SUFFIXES", "SPEC_SUFFIXES", "check_inputs"]

DATA_SUFFIXES = (".parquet", ".pq", ".csv")
SPEC_SUFFIXES = (".yaml", ".yml", ".json")


def _file(source: str, key: str, value: str | None, suffixes: tuple[str, ...]) -> None:
    """A file the run will read, relative to the working directory as the pipeline reads it."""
    if value is None:
        return
    p = Path(value)
    if p.suffix.lower() not in suffixes:
        raise ConfigError(f"{source}: {key} {value!r}: expected a {' or '.join(suffixes)} file")
    if not p.exists():
        raise ConfigError(f"{source}: {key} {value!r}: file not found")
    if not p.is_file():
        raise ConfigError(f"{source}: {key} {value!r}: not a file")


def check_inputs(*, policy: str, data_source: str | None, feature_spec: str | None, source: str) -> None:
    """The data file (``None``: generated), the feature spec and the policy exist and load."""
    _file(source, "data.source", data_source, DATA_SUFFIXES)
    _file(source, "data.feature_spec", feature_spec, SPEC_SUFFIXES)
    if feature_spec is not None:
        try:
            load_feature_specs(feature_spec)  # its own errors name the spec file and key
        except ConfigError as exc:
            raise ConfigError(f"{source}: data.feature_spec: {exc}") from exc
    try:
        load_policy(policy)  # a shipped name or a YAML path, loaded (and so fully checked) now
    except VillageCreditError as exc:
        raise ConfigError(f"{source}: policy {policy!r}: {exc}") from exc
