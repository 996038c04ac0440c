"""Lazy re-exports for package ``__init__`` modules.

Why: importing a package should not pay for LightGBM, SHAP or MLflow it may not use,
and a package re-exporting from a lower layer should not import it until asked.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str], namespace: dict[str, Any]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` resolving ``name`` from ``package.<exports[name]>`` on first use.

    A value with a dot is an absolute module name (a re-export from another package).
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        try:
            mod = importlib.import_module(module if "." in module else f"{package}.{module}")
        except ImportError as exc:
            raise AttributeError(f"{package}.{name} is unavailable: module {module!r} failed to import ({exc})") from exc
        value = getattr(mod, name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        # only the public face: ``__all__``, the lazy names and public subpackages, not
        # the helpers an ``__init__`` imports (``annotations``, ``lazy_exports``, ``_EXPORTS``)
        subpackages = {n for n, v in namespace.items() if isinstance(v, ModuleType) and not n.startswith("_")}
        return sorted(set(namespace.get("__all__", ())) | set(exports) | subpackages)

    return __getattr__, __dir__
