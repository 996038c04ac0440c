"""The order ``make test`` hands files to its workers (tests/conftest.py): longest first,
by the committed table of seconds per file (tests/durations.json).

Why it matters: with ``--dist loadfile`` a file is one unit; a long file handed out last
keeps one worker busy while the other idles (issue 31 item 5).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import DURATIONS, file_weights, longest_first

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class _Item:
    """What the ordering reads of a collected test: its node id and its markers."""

    nodeid: str
    markers: tuple[str, ...] = field(default=())

    def get_closest_marker(self, name: str) -> object | None:
        return name if name in self.markers else None


def _files(items: list[_Item]) -> list[str]:
    return list(dict.fromkeys(it.nodeid.split("::", 1)[0] for it in items))


def test_files_run_longest_first_and_keep_their_tests_together_in_order() -> None:
    items = [_Item("tests/a.py::t1"), _Item("tests/a.py::t2"), _Item("tests/b.py::t1"),
             _Item("tests/c.py::t1"), _Item("tests/c.py::t2"), _Item("tests/c.py::t3")]
    longest_first(items, {"tests/a.py": 5.0, "tests/b.py": 60.0, "tests/c.py": 20.0})
    assert [it.nodeid for it in items] == ["tests/b.py::t1", "tests/c.py::t1", "tests/c.py::t2",
                                           "tests/c.py::t3", "tests/a.py::t1", "tests/a.py::t2"]


def test_a_file_not_in_the_table_counts_as_median_and_a_new_slow_one_starts_first() -> None:
    weights = {"tests/long.py": 100.0, "tests/mid.py": 10.0, "tests/short.py": 1.0}
    items = [_Item("tests/short.py::t"), _Item("tests/new.py::t"), _Item("tests/mid.py::t"),
             _Item("tests/new_e2e.py::t", ("slow",)), _Item("tests/long.py::t")]
    longest_first(items, weights)
    # new.py ties with mid.py (the median, 10 s) and keeps its place before it (stable)
    assert _files(items) == ["tests/new_e2e.py", "tests/long.py", "tests/new.py", "tests/mid.py",
                             "tests/short.py"]


def test_no_table_keeps_the_collection_order_but_starts_the_slow_files() -> None:
    items = [_Item("tests/a.py::t"), _Item("tests/b.py::t", ("slow",)), _Item("tests/c.py::t")]
    longest_first(items, {})
    assert _files(items) == ["tests/b.py", "tests/a.py", "tests/c.py"]


def test_an_unreadable_table_means_no_weights(tmp_path: Path) -> None:
    bad = tmp_path / "durations.json"
    bad.write_text("{not json", encoding="utf-8")
    assert file_weights(bad) == {}
    assert file_weights(tmp_path / "missing.json") == {}


def test_the_committed_table_names_files_that_exist_with_positive_seconds() -> None:
    """A renamed or deleted test file must leave the table (else its weight is dead)."""
    table = json.loads(DURATIONS.read_text(encoding="utf-8"))
    weights = file_weights()
    assert weights and weights == {f: float(s) for f, s in table["seconds"].items()}
    missing = [f for f in weights if not (ROOT / f).is_file()]
    assert not missing, f"tests/durations.json names files that do not exist: {missing}"
    assert all(s > 0 for s in weights.values())


@pytest.mark.parametrize("name", ["tests/test_notebooks.py", "tests/test_registry_pyfunc.py"])
def test_the_known_long_files_are_weighed_among_the_longest(name: str) -> None:
    """The table is a measured run's, not a stub: the notebooks and the fresh virtualenv
    are among the ten longest files of the suite."""
    weights = file_weights()
    top = sorted(weights, key=lambda f: -weights[f])[:10]
    assert name in top, (name, top)


def test_the_unused_nbmake_plugin_is_not_loaded(pytestconfig: pytest.Config) -> None:
    """Every pytest process of ``make test`` (the controller, each worker) would import
    nbformat and jsonschema for it before its first test (~2.5 CPU s each); the
    notebooks run through nbclient (tests/test_notebooks.py)."""
    assert not pytestconfig.pluginmanager.has_plugin("nbmake")
    assert "--nbmake" not in (pytestconfig.invocation_params.args or ())
