"""House metrics for issue 18: function-level imports, public names, largest units.

Usage: python scripts/house_metrics.py [PACKAGE_DIR]   (default src/village_credit)

Reads the source with ``ast`` (nothing is imported). Duplicated blocks are counted by
the ``duplicates`` tool, not here.
"""

from __future__ import annotations

import ast
import sys
from collections import Counter
from pathlib import Path


def _all_names(tree: ast.Module) -> list[str] | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__"
                                                for t in node.targets):
            try:
                return list(ast.literal_eval(node.value))
            except ValueError:  # computed, e.g. sorted(_EXPORTS): count the dict it sorts
                for n in tree.body:
                    if (isinstance(n, (ast.Assign, ast.AnnAssign)) and isinstance(n.value, ast.Dict)
                            and "EXPORTS" in ast.unparse(n.targets[0] if isinstance(n, ast.Assign) else n.target)):
                        return [ast.literal_eval(k) for k in n.value.keys]
                return None
    return None


def main(root: Path) -> None:
    lazy: set[tuple[str, int]] = set()
    by_file: Counter[str] = Counter()
    funcs: list[tuple[int, str]] = []
    modules: list[tuple[int, str]] = []
    public: dict[str, int] = {}
    for path in sorted(root.rglob("*.py")):
        rel = str(path.relative_to(root))
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        modules.append((len(text.splitlines()), rel))
        for f in ast.walk(tree):
            if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
                funcs.append((f.end_lineno - f.lineno + 1, f"{rel}:{f.name}"))
                for n in ast.walk(f):
                    if isinstance(n, (ast.Import, ast.ImportFrom)) and (rel, n.lineno) not in lazy:
                        lazy.add((rel, n.lineno))
                        by_file[rel] += 1
        if path.name == "__init__.py" and path.parent.parent in (root, root.parent):
            names = _all_names(tree)
            public[str(path.parent.relative_to(root)).replace(".", "(root)")] = len(names or [])
    funcs.sort(reverse=True)
    modules.sort(reverse=True)
    print(f"function-level imports: {len(lazy)} in {len(by_file)} files")
    for rel, n in by_file.most_common(8):
        print(f"  {n:4d}  {rel}")
    print(f"public names (root + subpackage __all__): {sum(public.values())}")
    for pkg, n in sorted(public.items()):
        print(f"  {n:4d}  {pkg}")
    print("largest functions:")
    for n, name in funcs[:5]:
        print(f"  {n:4d}  {name}")
    print("largest modules:")
    for n, name in modules[:5]:
        print(f"  {n:4d}  {name}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "src/village_credit"))
