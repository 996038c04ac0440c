"""Imports flow one way: no module cycles, no import against the layer order.

The layer order is the one ``docs/architecture.md`` draws (data -> rules / models ->
explain / fairness / validation -> registry -> scoring; the runner, CLI and commands on
top; privacy beside data). The check reads the source as text (``ast``; nothing is
imported) and counts imports at module level *and* inside functions: a function-level
import still ties two modules together.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "src" / "village_credit"

# Rank of each part of the package, lowest first. A module may import modules of its own
# rank or lower; the longest matching prefix (relative to the package) decides the rank.
LAYERS: dict[str, int] = {
    # shared at the bottom
    "errors": 0,
    "_lazy": 0,
    "file_formats": 0,
    "binning": 0,
    "reporting": 0,
    "yaml_io": 0,
    # data, and privacy beside it
    "data": 1,
    "privacy": 1,
    # the rule standard, then the models that blend it
    "rules": 2,
    "models": 3,
    # above the models
    "explain": 4,
    "fairness": 4,
    "validation": 4,
    "registry": 5,
    # the policy lab decides with rules or a blend and measures with fairness (MLflow directly)
    "policy_lab": 5,
    # the third-party kit works from the registered model alone (docs/architecture.md)
    "validation.kit": 6,
    "validation.recalibration": 6,
    "scoring": 6,
    # the runner and its configuration
    "config_validation": 7,
    "config": 7,
    "sources": 7,
    "schemas": 7,
    "stages": 7,
    "pipeline": 8,
    # the CLI on top
    "commands": 9,
    "cli": 10,
    "": 10,  # the package root (re-exports for analysts)
}

# Deliberate exceptions: (importing module, imported module prefix) -> reason.
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("privacy.utility", "models"): "utility trains the default model on raw vs anonymised records",
    ("privacy.utility", "validation"): "utility states the cost in the validation statistics",
    ("privacy.utility", "fairness"): "utility states the cost in the fairness audit's terms",
    ("privacy.utility", "config"): "utility trains with the runner's default model configuration",
    ("privacy.precision", "rules"): "event bands follow the windows the shipped policies declare",
}


@dataclass(frozen=True)
class Edge:
    source: str  # module name relative to the package ("" for the root)
    target: str
    line: int
    in_function: bool


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _from_module(pkg: str, mod: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    """Absolute module of ``from X import ...`` in module ``mod`` (relative ``X`` resolved)."""
    if not node.level:
        return node.module or ""
    base = (mod.split(".") if is_pkg else mod.split(".")[:-1]) if mod else []
    base = base[: len(base) - (node.level - 1)]
    return ".".join([pkg, *base, *([node.module] if node.module else [])])


def import_edges(root: Path) -> list[Edge]:
    """Every import of one module of the package by another, top-level and in functions."""
    pkg = root.name
    modules = {_module_name(root, p): p for p in sorted(root.rglob("*.py"))}

    def known(name: str) -> str | None:
        while True:
            if name in modules:
                return name
            if not name:
                return None
            name = name.rpartition(".")[0]

    edges: list[Edge] = []
    for mod, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        in_function = {id(n) for f in ast.walk(tree)
                       if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in ast.walk(f)}
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                absolute = _from_module(pkg, mod, is_pkg, node)
                names = [f"{absolute}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                if name != pkg and not name.startswith(pkg + "."):
                    continue
                target = known(name[len(pkg) + 1:])
                # a module importing its own package (or itself) is not an edge
                if target is None or target == mod or (mod.startswith(target + ".") if target else True):
                    continue
                edges.append(Edge(mod, target, node.lineno, id(node) in in_function))
    return edges


def module_cycles(edges: list[Edge]) -> list[list[str]]:
    """Strongly connected sets of two or more modules (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        graph.setdefault(e.source, set()).add(e.target)
        graph.setdefault(e.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _rank(module: str, layers: dict[str, int]) -> int:
    name = module
    while True:
        if name in layers:
            return layers[name]
        if not name:
            raise KeyError(f"module {module!r} has no layer in the table")
        name = name.rpartition(".")[0]


def _excepted(e: Edge, exceptions: dict[tuple[str, str], str]) -> bool:
    return any(e.source == src and (e.target == tgt or e.target.startswith(tgt + "."))
               for src, tgt in exceptions)


def layer_violations(edges: list[Edge], layers: dict[str, int],
                     exceptions: dict[tuple[str, str], str]) -> list[str]:
    """Each import of a higher layer by a lower one, as 'source:line -> target'."""
    return [f"{e.source}:{e.line} ({_rank(e.source, layers)}) -> {e.target} ({_rank(e.target, layers)})"
            for e in edges
            if _rank(e.target, layers) > _rank(e.source, layers) and not _excepted(e, exceptions)]


# ----------------------------------------------------------------------------- the tree
@pytest.fixture(scope="module")
def edges() -> list[Edge]:
    return import_edges(PACKAGE_ROOT)


def test_no_module_cycles(edges: list[Edge]) -> None:
    assert module_cycles(edges) == []


def test_every_module_has_a_layer(edges: list[Edge]) -> None:
    for p in PACKAGE_ROOT.rglob("*.py"):
        _rank(_module_name(PACKAGE_ROOT, p), LAYERS)


def test_imports_follow_the_layer_order(edges: list[Edge]) -> None:
    assert layer_violations(edges, LAYERS, EXCEPTIONS) == []


def test_every_exception_is_still_needed(edges: list[Edge]) -> None:
    used = {(src, tgt) for src, tgt in EXCEPTIONS
            for e in edges if e.source == src and (e.target == tgt or e.target.startswith(tgt + "."))
            and _rank(e.target, LAYERS) > _rank(e.source, LAYERS)}
    assert set(EXCEPTIONS) - used == set()


# ----------------------------------------------------------------------------- function-level imports
# A module's dependencies read from its top: an import inside a function is allowed only
# for the entries below. A key is an imported module (``"pyspark"`` covers ``pyspark.sql``;
# the import then carries a ``# lazy: <reason>`` comment on its line or the line above) or a
# pair (importing module prefix, imported module prefix), likewise commented; a pair with
# ``""`` as the imported prefix covers every import of a whole layer, no comment needed.
# The commands need none: cli.LazyGroup imports a command module only when its command
# runs, so each module imports its stack at its top.
LAZY_IMPORTS: dict[str | tuple[str, str], str] = {
    "pyspark": "optional extra [spark]: local scoring and everything else work without it",
    "anonymeter": "optional, not a dependency: privacy.risk.anonymeter_available() checks for it",
    ("data.generator", "rich"): "progress bar only; rich is not a scoring requirement and the "
                                "logged model imports data/ (see test_the_logged_model_needs_only_...)",
    ("models.tuning", "mlflow"): "the models layer imports without MLflow (test_tuning); tune() "
                                 "loads it only to log trials",
    # issue 31 item 4, seventh pass: `village-credit score`'s process never imports MLflow
    # (test_cli_no_mlflow); the store process imports it, after the fork
    ("registry.loading", "mlflow"): "only where the store is used or MLflow's pyfunc loads",
    ("registry.loading", "village_credit.registry.store"): "imports MLflow: only where the store is used",
    ("registry.loading", "village_credit.registry.decision_pyfunc"): "MLflow's exception, only to raise it",
    ("commands.scoring", ""): "forks the store process before pandas, the scorer or the model's code import",
    ("registry.store_process", ""): "MLflow and the store in the store process, after the fork",
    ("registry.store", "mlflow.store"): "MLflow's sqlalchemy / alembic side (~1 CPU s of imports), "
                                        "needed only when a new sqlite store is made from the template",
}

# TEMPORARY (issue 18): files other helpers are cleaning on their own branches, with their
# current number of function-level imports. The lead deletes this block at merge.
PENDING_OTHER_BRANCHES: dict[str, int] = {}


@dataclass(frozen=True)
class FunctionImport:
    module: str    # importing module, relative to the package ("" for the root)
    line: int
    imported: str  # absolute name of the imported module (``from x import y``: x)
    commented: bool  # a ``# lazy:`` comment on the import's line or the line above


def function_imports(root: Path) -> list[FunctionImport]:
    """Every import statement inside a function (or method) of the package under ``root``."""
    out: list[FunctionImport] = []
    for path in sorted(root.rglob("*.py")):
        mod = _module_name(root, path)
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        tree = ast.parse(text, str(path))
        seen: set[int] = set()
        for f in ast.walk(tree):
            if not isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(f):
                if not isinstance(node, (ast.Import, ast.ImportFrom)) or id(node) in seen:
                    continue
                seen.add(id(node))
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                else:
                    module = _from_module(root.name, mod, path.name == "__init__.py", node)
                    # ``from . import x``: x is the module imported
                    names = [module] if node.module else [f"{module}.{a.name}" for a in node.names]
                near = lines[node.lineno - 1] + "\n" + (lines[node.lineno - 2] if node.lineno > 1 else "")
                for name in names:
                    out.append(FunctionImport(mod, node.lineno, name, "# lazy:" in near))
    return out


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def lazy_reason(imp: FunctionImport, table: dict[str | tuple[str, str], str]) -> str | None:
    """The table's reason for this function-level import, or None when it has none."""
    for key, reason in table.items():
        if isinstance(key, tuple):
            where, what = key
            if _under(imp.module, where) and (not what or (_under(imp.imported, what) and imp.commented)):
                return reason
        elif _under(imp.imported, key) and imp.commented:
            return reason
    return None


def unexplained_imports(imports: list[FunctionImport], table: dict[str | tuple[str, str], str],
                        pending: dict[str, int]) -> list[str]:
    """'module:line imported' for each function-level import with no reason (pending files:
    only beyond their count)."""
    bad = [i for i in imports if lazy_reason(i, table) is None]
    out = []
    for mod in sorted({i.module for i in bad}):
        mine = [i for i in bad if i.module == mod]
        if len(mine) > pending.get(mod, 0):
            out += [f"{i.module}:{i.line} {i.imported}" for i in mine]
    return out


def test_imports_sit_at_the_top_of_each_module() -> None:
    assert unexplained_imports(function_imports(PACKAGE_ROOT), LAZY_IMPORTS, PENDING_OTHER_BRANCHES) == []


def test_every_lazy_import_entry_is_still_needed() -> None:
    imports = function_imports(PACKAGE_ROOT)
    used = {key for key in LAZY_IMPORTS for i in imports if lazy_reason(i, {key: ""}) is not None}
    assert set(LAZY_IMPORTS) - used == set()


# ----------------------------------------------------------------------------- the scoring environment
def module_level_imports(root: Path) -> dict[str, set[str]]:
    """Absolute names each module imports when it is imported (not in functions, not under
    ``if TYPE_CHECKING``); ``from a import b`` gives both ``a`` and ``a.b``."""
    out: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        mod = _module_name(root, path)
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        skip = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                or (isinstance(f, ast.If) and "TYPE_CHECKING" in ast.unparse(f.test)) for n in ast.walk(f)}
        names: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                module = _from_module(root.name, mod, path.name == "__init__.py", node)
                names |= {module} | {f"{module}.{a.name}" for a in node.names}
        out[mod] = names
    return out


def third_party_at_import(root: Path, starts: list[str]) -> dict[str, str]:
    """Third-party top-level packages imported when ``starts`` are imported: name -> first importer."""
    pkg = root.name
    imports = module_level_imports(root)
    seen: set[str] = set()
    found: dict[str, str] = {}
    todo = list(starts)
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        seen.add(mod)
        parts = mod.split(".") if mod else []
        todo += [".".join(parts[:i]) for i in range(len(parts))]  # parent packages run first
        for name in sorted(imports[mod]):
            top = name.split(".")[0]
            if top == pkg:
                rel = name[len(pkg) + 1:]
                if rel in imports:
                    todo.append(rel)
            elif top not in sys.stdlib_module_names and top != "__future__":
                found.setdefault(top, mod)
    return found


IMPORT_NAMES = {"scikit-learn": "sklearn", "pyyaml": "yaml"}
PART_OF = {"pydantic_core": "pydantic", "packaging": "mlflow"}  # installed with (and pinned by) the package named


def test_the_logged_model_needs_only_the_scoring_requirements() -> None:
    """What loading the logged decision model imports is in its requirements.txt
    (``SCORING_REQUIREMENTS``); the fresh-virtualenv test in test_registry_pyfunc.py
    proves it end to end, this finds the offending import in a second."""
    from village_credit.registry.pyfunc_model import SCORING_REQUIREMENTS

    allowed = {IMPORT_NAMES.get(r, r) for r in SCORING_REQUIREMENTS}
    found = third_party_at_import(PACKAGE_ROOT, ["models.decision", "models.recalibrated",
                                                  "registry.decision_pyfunc"])
    assert {k: v for k, v in found.items() if PART_OF.get(k, k) not in allowed} == {}


def test_checker_follows_imports_to_third_party_packages(tmp_path: Path) -> None:
    root = _package(tmp_path, {
        "__init__.py": "",
        "sub/__init__.py": "import yaml\n",
        "sub/a.py": "from pkg.b import x\nimport numpy as np\n",
        "b.py": "import json\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import shap\n"
                "def f():\n    import rich\nx = 1\nimport lightgbm.sklearn\n",
        "c.py": "import matplotlib\n",
    })
    assert third_party_at_import(root, ["sub.a"]) == {"yaml": "sub", "numpy": "sub.a", "lightgbm": "b"}


# Facts with one home: the module that defines each (module level), every other module imports it.
ONE_HOME: dict[str, str] = {
    "ELDERLY_AGE": "data.groups",
    "AGE_BANDS": "data.groups",
    "AGE_BAND_EDGES": "data.groups",
    "AGE_BAND_RANGES": "data.groups",
    "NOT_FORMERLY_POOR": "data.groups",
    "group_order": "data.groups",
    "SUPPORT_AGE_BANDS": "data.groups",
    "SUPPORT_GROUPS": "data.groups",
    "PROTECTED_ATTRIBUTES": "data.groups",
    "age_band": "data.groups",
    "support_groups": "data.groups",
    "FairnessInputError": "errors",
    "RecalibratedDecisionModel": "models.recalibrated",
    "grade_order": "rules.grades",
    "policy_age_max": "rules.grades",
    "policy_age_ceiling": "rules.grades",
}


def definitions(root: Path, names: set[str]) -> dict[str, set[str]]:
    """Modules that define each name at module level (assignment, function or class)."""
    found: dict[str, set[str]] = {n: set() for n in names}
    for p in root.rglob("*.py"):
        for node in ast.parse(p.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defined = [node.name]
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                defined = [t.id for t in targets if isinstance(t, ast.Name)]
            else:
                continue
            for n in defined:
                if n in found:
                    found[n].add(_module_name(root, p))
    return found


def test_each_fact_is_defined_in_one_module() -> None:
    found = definitions(PACKAGE_ROOT, set(ONE_HOME))
    assert found == {n: {home} for n, home in ONE_HOME.items()}


def test_points_from_pd_has_one_formula() -> None:
    """The scorecard's points scale is the decision model's ``PointsScaling``, not a copy."""
    from village_credit.models.scaling import PointsScaling
    from village_credit.models.scorecard import ScorecardModel

    sc = ScorecardModel(pdo=20.0, base_points=600.0, base_odds=50.0)
    ref = PointsScaling.from_pdo(20.0, 600.0, 50.0)
    assert sc.scaling == ref
    pd_ = [0.01, 0.2, 0.7]
    assert sc.points_from_pd(pd_).tolist() == ref.points_from_pd(pd_).tolist()


# ----------------------------------------------------------------------------- the checker
def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return root


def test_checker_finds_a_cycle_hidden_in_a_function(tmp_path: Path) -> None:
    root = _package(tmp_path, {
        "__init__.py": "",
        "low/__init__.py": "",
        "low/a.py": "from pkg.low.b import thing\n",
        "low/b.py": "def thing():\n    from . import a\n    return a\n",
        "low/c.py": "import pkg.low.a\n",
    })
    edges = import_edges(root)
    assert Edge("low.b", "low.a", 2, True) in edges
    assert module_cycles(edges) == [["low.a", "low.b"]]


def test_checker_finds_an_import_against_the_layers(tmp_path: Path) -> None:
    root = _package(tmp_path, {
        "__init__.py": "",
        "low.py": "def f():\n    from pkg.high import g\n    return g\n",
        "high.py": "from pkg import low\ng = low.f\n",
        "peer.py": "from .high import g\n",
    })
    edges = import_edges(root)
    layers = {"": 2, "low": 0, "high": 1, "peer": 1}
    assert module_cycles(edges) == [["high", "low"]]
    assert layer_violations(edges, layers, {}) == ["low:2 (0) -> high (1)"]
    assert layer_violations(edges, layers, {("low", "high"): "test"}) == []


def test_definitions_finds_a_second_copy(tmp_path: Path) -> None:
    root = _package(tmp_path, {"__init__.py": "", "a.py": "LIMIT = 60\n",
                               "b.py": "from pkg.a import LIMIT\nLIMIT: int = 60\n"})
    assert definitions(root, {"LIMIT"}) == {"LIMIT": {"a", "b"}}


def test_checker_passes_a_clean_package(tmp_path: Path) -> None:
    root = _package(tmp_path, {
        "__init__.py": "from pkg.high import g\n",
        "low.py": "x = 1\n",
        "high.py": "from pkg.low import x\ng = x\n",
    })
    edges = import_edges(root)
    assert module_cycles(edges) == []
    assert layer_violations(edges, {"": 2, "low": 0, "high": 1}, {}) == []


def test_checker_finds_imports_inside_functions(tmp_path: Path) -> None:
    root = _package(tmp_path, {
        "__init__.py": "",
        "top.py": "import json\n\ndef f():\n    import os\n    return os, json\n",
        "spark.py": ("def g():\n    # lazy: optional\n    import pyspark.sql\n\n"
                     "def h():\n    import pyspark\n"),
        "cmd/__init__.py": "",
        "cmd/run.py": "def run():\n    from pkg.top import f\n    return f\n",
        "deep.py": "class K:\n    def m(self):\n        from . import top  # lazy: no reason listed\n",
    })
    imports = function_imports(root)
    assert FunctionImport("top", 4, "os", False) in imports
    assert FunctionImport("deep", 3, "pkg.top", True) in imports  # relative, in a method
    assert len(imports) == 5  # the module-level ``import json`` is not one
    table: dict[str | tuple[str, str], str] = {"pyspark": "optional", ("cmd", ""): "lazy CLI"}
    # pyspark without its ``# lazy:`` comment is flagged; the one with it is not
    assert unexplained_imports(imports, table, {}) == ["deep:3 pkg.top", "spark:6 pyspark", "top:4 os"]
    assert unexplained_imports(imports, table, {"top": 1, "deep": 0}) == ["deep:3 pkg.top", "spark:6 pyspark"]
    assert unexplained_imports(imports, table, {"top": 1, "deep": 1, "spark": 1}) == []
    # a (module, import) pair needs the comment too: top.py's ``import os`` has none
    assert "top:4 os" in unexplained_imports(imports, {("top", "os"): "reason"}, {})
    assert unexplained_imports(imports, {}, {}) == [
        "cmd.run:2 pkg.top", "deep:3 pkg.top", "spark:3 pyspark.sql", "spark:6 pyspark", "top:4 os"]
