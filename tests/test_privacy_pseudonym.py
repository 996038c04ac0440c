"""Keyed pseudonyms and key files."""

from __future__ import annotations

import os
import stat

import pandas as pd
import pytest

from village_credit.errors import VillageCreditError
from village_credit.privacy.pseudonym import generate_key, key_fingerprint, load_key, pseudonymise

IDS = pd.Series(["11010519491231002X", "440524188001010014", None])


def test_same_key_same_pseudonym_other_key_unlinkable(tmp_path) -> None:
    k1, k2 = load_key(generate_key(tmp_path / "a.key")), load_key(generate_key(tmp_path / "b.key"))
    a = pseudonymise(IDS, k1)
    assert a.iloc[0].startswith("HH") and len(a.iloc[0]) == 18
    assert a.tolist()[:2] == pseudonymise(IDS, k1).tolist()[:2]
    assert pd.isna(a.iloc[2])
    assert pseudonymise(pd.Series(["11010519491231002x "]), k1).iloc[0] == a.iloc[0]
    b = pseudonymise(IDS, k2)
    assert set(a.dropna()).isdisjoint(set(b.dropna()))
    assert pseudonymise(IDS, k1, context="other").iloc[0] != a.iloc[0]
    assert key_fingerprint(k1) != key_fingerprint(k2)


def test_key_file_is_private_and_not_overwritten(tmp_path) -> None:
    path = generate_key(tmp_path / "secret.key")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    key = load_key(path)
    assert len(key) == 32
    with pytest.raises(VillageCreditError, match="already exists"):
        generate_key(path)
    assert load_key(path) == key


def test_missing_or_short_key_errors_without_content(tmp_path) -> None:
    with pytest.raises(VillageCreditError, match="not found"):
        load_key(tmp_path / "nope.key")
    short = tmp_path / "short.key"
    short.write_text("abcd1234")
    os.chmod(short, 0o600)
    with pytest.raises(VillageCreditError, match="too short") as exc:
        load_key(short)
    assert "abcd1234" not in str(exc.value)
