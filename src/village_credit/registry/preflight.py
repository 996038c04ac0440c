"""Check a tracking URI before MLflow touches it: a clear error instead of a driver's.

Why: ``--tracking-uri sqlite:///x.db`` where ``x.db`` is a spreadsheet, a folder or in
a folder we cannot write surfaces deep inside MLflow as ``sqlite3.DatabaseError`` or
an SQLAlchemy traceback, after work was already done. The sqlite file's header is
read instead (16 bytes); other schemes are left to MLflow.
"""

from __future__ import annotations

import os
from pathlib import Path

from village_credit.errors import ConfigError

__all__ = ["check_tracking_uri"]

_SQLITE_MAGIC = b"SQLite format 3\x00"
_KNOWN = ("sqlite", "http", "https", "databricks", "postgresql", "mysql", "mssql", "file")


def check_tracking_uri(uri: str) -> str:
    """Return ``uri`` when usable; :class:`ConfigError` naming it and the problem otherwise."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        if uri.startswith("databricks"):
            return uri
        raise ConfigError(f"tracking URI {uri!r}: expected a URI such as sqlite:///path/mlflow.db "
                          "or http://host:5000")
    base = scheme.split("+", 1)[0].lower()
    if base not in _KNOWN:
        raise ConfigError(f"tracking URI {uri!r}: unknown scheme {scheme!r} "
                          f"(known: {', '.join(_KNOWN)})")
    if base != "sqlite":
        return uri
    if not rest.startswith("/") or rest == "/":
        raise ConfigError(f"tracking URI {uri!r}: a sqlite URI needs a file path, "
                          "e.g. sqlite:///mlruns/mlflow.db")
    db = Path(rest[1:])
    if db.is_dir():
        raise ConfigError(f"tracking URI {uri!r}: {db} is a directory, not a sqlite database file")
    if db.exists():
        try:
            with db.open("rb") as fh:
                head = fh.read(16)
        except OSError as exc:
            raise ConfigError(f"tracking URI {uri!r}: cannot read {db}: {exc.strerror or exc}") from exc
        if head and head != _SQLITE_MAGIC:
            raise ConfigError(f"tracking URI {uri!r}: {db} exists but is not a sqlite database")
        if not os.access(db, os.W_OK):
            raise ConfigError(f"tracking URI {uri!r}: {db} is not writable")
        return uri
    base_dir = db.absolute().parent
    while not base_dir.exists() and base_dir != base_dir.parent:
        base_dir = base_dir.parent
    if not base_dir.is_dir():
        raise ConfigError(f"tracking URI {uri!r}: {base_dir} is a file, not a directory")
    if not os.access(base_dir, os.W_OK | os.X_OK):
        raise ConfigError(f"tracking URI {uri!r}: cannot create {db} (no write permission in {base_dir})")
    return uri
