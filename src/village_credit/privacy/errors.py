"""Errors of the privacy layer. Messages name file, row and column, never personal data."""

from __future__ import annotations

from village_credit.errors import DataReadError, SchemaError, VillageCreditError


class PrivacyError(VillageCreditError):
    """Base class of the anonymiser's and scanner's errors."""


class PseudonymKeyError(PrivacyError):
    """The pseudonymisation key file is missing, unreadable or too short."""


class RawEncodingError(PrivacyError, DataReadError):
    """A raw file is in none of the encodings village files use (UTF-8, GB18030/GBK)."""


class RawSchemaError(PrivacyError, SchemaError):
    """A raw file lacks columns the anonymiser needs (all of them are listed)."""


class KAnonymityError(PrivacyError):
    """k-anonymity cannot be reached (e.g. bad k or unknown quasi-identifier)."""
