"""Keyed pseudonyms: HMAC-SHA256 of an identifier under a secret key.

Why keyed and not a plain hash: there are only about 10**9 plausible resident ID
numbers, so an unkeyed SHA-256 of an ID is reversed by brute force in minutes. With
a secret key the pseudonym is stable (same person + same key -> same pseudonym in
every file, so vintages and files join), but without the key nobody can reverse it
or link it to pseudonyms made under another key.

The key lives in a key file (64 hex characters, made by :func:`generate_key` with
owner-only permissions). It is never written to outputs, logs or MLflow: only the
:func:`key_fingerprint` (a one-way tag that says "same key or not") may be reported.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
import warnings
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from village_credit.privacy.errors import PseudonymKeyError

KEY_BYTES = 32
"""Length of a generated key (256 bits, the HMAC-SHA256 block-safe size)."""

MIN_KEY_BYTES = 32
"""Shorter keys are refused: a short key makes the pseudonyms guessable."""

PREFIX = "HH"
DIGEST_CHARS = 16
"""Hex characters kept: 64 bits, collision chance ~ n**2 / 2**65 (3e-8 for a million households)."""

__all__ = ["PseudonymKeyError", "generate_key", "key_fingerprint", "load_key", "pseudonymise", "release_context"]


def release_context(release: str | None) -> str:
    """HMAC context of household pseudonyms: scoped to one release (``household@<release>``),
    or ``household`` for pseudonyms linked across releases (an explicit choice).

    Why scoped by default: a pseudonym that is the same in every yearly release lets anyone
    holding two releases join them and re-identify from the joined table (issue 28).

    >>> release_context("2025"), release_context(None)
    ('household@2025', 'household')
    """
    return "household" if release is None else f"household@{release}"


def generate_key(path: str | Path, *, overwrite: bool = False) -> Path:
    """Write a new random key (hex text) readable by the owner only (0600).

    Refuses to overwrite an existing key: losing the old key breaks every link
    between pseudonyms already released and new files.

    >>> import tempfile
    >>> from village_credit.privacy import PrivacyError, generate_key
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     key = generate_key(f"{tmp}/secret.key")
    ...     print(oct(key.stat().st_mode & 0o777), len(key.read_text().strip()))
    ...     try:
    ...         generate_key(key)
    ...     except PrivacyError:
    ...         print("refused: the key exists")
    0o600 64
    refused: the key exists
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise PseudonymKeyError(
            f"{path}: key file already exists; refusing to overwrite it "
            "(a new key makes new pseudonyms unlinkable to old ones)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(path, flags, 0o600)
    try:
        os.write(fd, (secrets.token_hex(KEY_BYTES) + "\n").encode("ascii"))
    finally:
        os.close(fd)
    os.chmod(path, 0o600)  # in case the file existed with wider permissions
    return path


def load_key(path: str | Path) -> bytes:
    """Read a key file: hex text (as written by :func:`generate_key`) or raw bytes.

    Errors name the file and the problem, never the key's content.
    """
    path = Path(path)
    if not path.is_file():
        raise PseudonymKeyError(
            f"{path}: key file not found; create one with `village-credit make-key --output {path}` "
            "and keep it apart from the data"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PseudonymKeyError(f"{path}: key file unreadable ({exc.strerror})") from None
    text = data.strip()
    try:
        key = bytes.fromhex(text.decode("ascii")) if text else b""
    except (UnicodeDecodeError, ValueError):
        key = data  # binary key file
    if len(key) < MIN_KEY_BYTES:
        raise PseudonymKeyError(
            f"{path}: key too short ({len(key)} bytes, need at least {MIN_KEY_BYTES}); "
            f"create a new one with `village-credit make-key`"
        )
    mode = path.stat().st_mode
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        warnings.warn(f"{path}: key file is readable by group or others; chmod 600 it",
                      stacklevel=2)
    return key


def key_fingerprint(key: bytes) -> str:
    """A short one-way tag of the key, safe to report: equal tags mean the same key."""
    return hmac.new(key, b"village-credit key fingerprint", hashlib.sha256).hexdigest()[:12]


def pseudonymise(
    values: pd.Series | Iterable[str],
    key: bytes,
    *,
    prefix: str = PREFIX,
    context: str = "household",
    length: int = DIGEST_CHARS,
) -> pd.Series:
    """Keyed pseudonyms ``prefix + hex(HMAC-SHA256(key, context | value))[:length]``.

    Values are stripped and upper-cased first (``x`` and ``X`` check characters are the
    same person). ``context`` separates uses: pseudonyms made for another purpose with
    the same key do not match these. Missing values stay missing.
    """
    if not isinstance(key, bytes | bytearray) or len(key) < MIN_KEY_BYTES:
        raise PseudonymKeyError(f"pseudonymisation key must be at least {MIN_KEY_BYTES} bytes")
    s = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype="object")
    norm = s.astype("string").str.strip().str.upper()
    ctx = context.encode("utf-8") + b"\x1f"
    key = bytes(key)
    digest = hmac.digest
    out = [
        None if v is pd.NA else prefix + digest(key, ctx + v.encode("utf-8"), "sha256").hex()[:length]
        for v in norm.tolist()
    ]
    return pd.Series(out, index=s.index, dtype="string")
