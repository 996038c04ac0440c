"""Errors of the privacy layer. Messages name file, row and column, never personal data."""

from __future__ import annotations

from village_credit.errors import DataReadError, SchemaError, VillageCreditError


class PrivacyError(VillageCreditError):
    """Base class of the anonymiser's and scanner's errors.

    >>> import tempfile
    >>> from pathlib import Path
    >>> from village_credit.privacy import PrivacyError, load_privacy_config
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = Path(tmp, "privacy.yaml").write_text("k: 10\\nkk: 1\\n")
    ...     try:
    ...         load_privacy_config(Path(tmp, "privacy.yaml"))
    ...     except PrivacyError as exc:
    ...         print(type(exc).__name__, str(exc).split(": ", 1)[1])
    PrivacyConfigError kk: unknown setting (allowed: attackers, hierarchies, holder_k, k, ...)
    """


class PseudonymKeyError(PrivacyError):
    """The pseudonymisation key file is missing, unreadable or too short."""


class RawEncodingError(PrivacyError, DataReadError):
    """A raw file is in none of the encodings village files use (UTF-8, GB18030/GBK)."""


class RawSchemaError(PrivacyError, SchemaError):
    """A raw file lacks columns the anonymiser needs (all of them are listed)."""


class KAnonymityError(PrivacyError):
    """k-anonymity cannot be reached (e.g. bad k or unknown quasi-identifier)."""
