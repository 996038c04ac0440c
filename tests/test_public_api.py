"""The public face: a dozen names at the package root, each subpackage's ``__all__``
beside it, and every public function and class with a runnable ``>>>`` example.

The examples themselves run with the tests (``--doctest-modules`` on the package,
pyproject.toml); this file checks that they exist and that the face stays small.
"""

from __future__ import annotations

import importlib
import inspect

import pytest

import village_credit

SUBPACKAGES = ["data", "rules", "models", "explain", "fairness", "validation", "registry",
               "scoring", "privacy", "reporting", "policy_lab"]

# what an analyst needs first, at the root (issue 18)
ROOT_REQUIRED = {"CreditScoreClassifier", "run_experiment", "load_policy", "score_rules",
                 "generate_households", "fairness_audit", "validation_report"}
ROOT_MAX = 15
PUBLIC_MAX = 150  # root + every subpackage's __all__ (was 250: scripts/house_metrics.py)


def _public(package: str) -> list[tuple[str, object]]:
    mod = importlib.import_module(f"village_credit.{package}" if package else "village_credit")
    return [(name, getattr(mod, name)) for name in mod.__all__]


def test_root_exports_the_analysts_dozen() -> None:
    names = set(village_credit.__all__)
    assert ROOT_REQUIRED <= names
    assert len(names - {"__version__"}) <= ROOT_MAX
    assert set(dir(village_credit)) >= names


@pytest.mark.parametrize("package", ["", *SUBPACKAGES])
def test_dir_shows_only_public_names(package: str) -> None:
    """Tab completion in a notebook lists what may be used, not the ``__init__``'s helpers."""
    mod = importlib.import_module(f"village_credit.{package}" if package else "village_credit")
    shown = dir(mod)
    assert set(mod.__all__) <= set(shown)
    assert not {"annotations", "lazy_exports", "_EXPORTS", "importlib"} & set(shown), shown
    if not package:  # the root shows exactly its face (and its public modules once imported)
        extra = [n for n in shown if n not in mod.__all__ and not inspect.ismodule(getattr(mod, n))]
        assert extra == [], extra


def test_the_public_face_is_small() -> None:
    total = len(village_credit.__all__) + sum(
        len(importlib.import_module(f"village_credit.{p}").__all__) for p in SUBPACKAGES)
    assert total <= PUBLIC_MAX


@pytest.mark.parametrize("package", ["", *SUBPACKAGES])
def test_every_public_name_resolves(package: str) -> None:
    for name, obj in _public(package):
        assert obj is not None, name


@pytest.mark.parametrize("package", ["", *SUBPACKAGES])
def test_public_functions_and_classes_carry_a_runnable_example(package: str) -> None:
    missing = [name for name, obj in _public(package)
               if (inspect.isfunction(obj) or inspect.isclass(obj))
               and getattr(obj, "__module__", "").startswith("village_credit")
               and ">>>" not in (inspect.getdoc(obj) or "")]
    assert missing == []
