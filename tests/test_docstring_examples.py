"""Every public example works pasted into a fresh notebook.

``--doctest-modules`` runs each ``>>>`` example with its module's globals, so an example
may use a name it never imports and still pass; pasted into a fresh notebook it raises
``NameError``. Here each public function's and class's example is checked against an
empty namespace: every name it reads is imported or assigned in the example itself (or
is a builtin), and no example leans on a private helper (``_examples``, ``_name``).
The analyst's root names are also run for real, each in a fresh namespace.
"""

from __future__ import annotations

import ast
import builtins
import doctest
import importlib
import inspect

import pytest

import village_credit

SUBPACKAGES = ["", "data", "rules", "models", "explain", "fairness", "validation", "registry",
               "scoring", "privacy", "reporting"]
_PARSER = doctest.DocTestParser()


def _examples() -> list[tuple[str, str]]:
    out, seen = [], set()
    for package in SUBPACKAGES:
        mod = importlib.import_module(f"village_credit.{package}" if package else "village_credit")
        for name in mod.__all__:
            obj = getattr(mod, name)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)) or id(obj) in seen:
                continue
            if not getattr(obj, "__module__", "").startswith("village_credit"):
                continue
            seen.add(id(obj))
            examples = _PARSER.get_examples(inspect.getdoc(obj) or "")
            if examples:
                out.append((f"{mod.__name__}.{name}", "".join(e.source for e in examples)))
    return out


EXAMPLES = _examples()


def _unbound_names(source: str) -> set[str]:
    tree = ast.parse(source)
    bound: set[str] = set(dir(builtins))
    loaded: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (bound if isinstance(node.ctx, (ast.Store, ast.Del)) else loaded).add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return loaded - bound


@pytest.mark.parametrize(("where", "source"), EXAMPLES, ids=[w for w, _ in EXAMPLES])
def test_example_needs_nothing_it_does_not_import(where: str, source: str) -> None:
    assert not _unbound_names(source), f"{where}: the example uses {sorted(_unbound_names(source))} " \
                                       "without importing or defining them (NameError in a fresh notebook)"
    private = [m for m in ast.walk(ast.parse(source)) if isinstance(m, ast.ImportFrom)
               and any(part.startswith("_") for part in (m.module or "").split("."))]
    assert not private, f"{where}: the example imports from a private module ({private[0].module})"


ROOT_FUNCTIONS = [n for n in village_credit.__all__ if inspect.isfunction(getattr(village_credit, n, None))]


@pytest.mark.slow
@pytest.mark.parametrize("name", ROOT_FUNCTIONS)
def test_root_example_runs_in_a_fresh_namespace(name: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    obj = getattr(village_credit, name)
    test = _PARSER.get_doctest(inspect.getdoc(obj) or "", {"__name__": "__main__"}, name, None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0, f"{name}: its example fails in a fresh namespace (output above)"
