"""The libyaml reader gives PyYAML's safe documents (``village_credit.yaml_io``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from village_credit import yaml_io

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted(p for d in ("experiments", "src/village_credit", "data") for p in (ROOT / d).rglob("*.y*ml"))


def test_libyaml_is_used_where_pyyaml_has_it() -> None:
    assert yaml_io.SAFE_LOADER is getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_yaml_reads_as_pyyaml_reads_it(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert yaml_io.safe_load(text) == yaml.safe_load(text)


def test_tags_a_safe_loader_refuses_are_refused() -> None:
    with pytest.raises(yaml.YAMLError):
        yaml_io.safe_load("!!python/object/apply:os.system ['true']")


def test_a_syntax_error_keeps_its_line() -> None:
    with pytest.raises(yaml.MarkedYAMLError) as err:
        yaml_io.safe_load("a: 1\nb: [unclosed\n")
    assert err.value.problem_mark is not None and err.value.problem_mark.line >= 1
