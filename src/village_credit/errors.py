"""Errors with messages that name the file, row, column or key and the reason."""

from __future__ import annotations


class VillageCreditError(Exception):
    """Base class: every error the toolkit raises on purpose."""


class DataReadError(VillageCreditError):
    """A file could not be read at all (missing, unreadable, wrong format)."""


class SchemaError(VillageCreditError):
    """A table lacks columns a step needs, or has the wrong shape."""


class PolicyError(VillageCreditError):
    """A policy file is invalid: names the file, the key and the problem."""


class ConfigError(VillageCreditError):
    """An experiment or run configuration is invalid."""


class GateFailure(VillageCreditError):
    """A model failed a promotion gate and was not promoted."""


class FairnessInputError(SchemaError):
    """Inputs to a fairness step are unusable: missing columns or values, misaligned arrays.

    Defined here, beside the other errors, because the protected groups are formed in
    ``data.groups`` (below the fairness layer) and raise it there too.
    """
