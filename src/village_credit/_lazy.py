"""Lazy re-exports for package ``__init__`` modules, and the collector paused while a
large stack is imported.

Why: importing a package should not pay for LightGBM, SHAP or MLflow it may not use,
and a package re-exporting from a lower layer should not import it until asked; what
must be imported should not pay for the garbage collector walking it as it loads.
"""

from __future__ import annotations

import gc
import importlib
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
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


_PROGRAM = False


def mark_program() -> None:
    """Record that this process is the ``village-credit`` program (arguments from
    ``sys.argv``), not a library caller, a script or a test's ``CliRunner``.

    Why: what only the program may do (fork a store process before the model loads,
    ``registry.store_process``) asks :func:`is_program`; a caller keeps its process as it was.
    """
    global _PROGRAM
    _PROGRAM = True


def is_program() -> bool:
    """Whether :func:`mark_program` was called in this process."""
    return _PROGRAM


_GC_LOCK = threading.Lock()
_GC_DEPTH = 0
_GC_WAS_ENABLED = False
_GC_FREEZE = False


def freeze_after_imports() -> None:
    """From now on, the end of each :func:`paused_gc` block also freezes what is alive
    (``gc.freeze``): the collector never walks the imported stacks again.

    For a process that is the CLI and nothing else (the ``village-credit`` program): the
    first full collection after start-up walked ~360,000 objects (0.2-0.3 CPU s), and
    Python recommends freezing before ``fork`` so that the workers' collections do not
    touch, and copy, the parent's pages. Garbage still alive at a freeze is never
    collected, which is why a library caller (a notebook, a test) never turns this on.
    """
    global _GC_FREEZE
    _GC_FREEZE = True


@contextmanager
def paused_gc() -> Iterator[None]:
    """Python's cyclic garbage collector off for the block (imports of large stacks).

    Why: importing MLflow's store, LightGBM -> scikit-learn -> SciPy and pandas allocates
    ~360,000 objects that nearly all stay alive, and the collector traverses the growing heap
    again and again while they load: ~0.75 CPU s of ``village-credit score``'s fixed cost
    (docs/benchmarks.md, "CLI fixed cost (issue 31 item 4), fifth pass"). Nothing is lost:
    garbage made in the block is collected by the first collection after it.
    Blocks that overlap (nested, or in threads) share one switch: the first in turns
    the collector off, the last out turns it back on if it was on before.
    """
    global _GC_DEPTH, _GC_WAS_ENABLED
    with _GC_LOCK:
        if _GC_DEPTH == 0:
            _GC_WAS_ENABLED = gc.isenabled()
            gc.disable()
        _GC_DEPTH += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _GC_DEPTH -= 1
            if _GC_DEPTH == 0:
                if _GC_FREEZE:
                    gc.freeze()
                if _GC_WAS_ENABLED:
                    gc.enable()


_FROZEN_DEPTH = 0
_FROZEN_BY_US = False


@contextmanager
def frozen_gc() -> Iterator[None]:
    """The objects alive when a long run starts (imports, the loaded model: ~350k of them)
    are left out of the collector's full passes while it lasts (``gc.freeze``).

    Why: ``score_file``'s chunks allocate enough containers to trigger full collections,
    and each one walked every object of the process (~0.19 CPU s per pass, a pass or more
    per 1M rows and per worker); the chunks' own objects are still collected. Forked
    workers inherit the frozen set, so their collections do not write to (and copy) the
    parent's pages either. Overlapping runs share it: the last one out unfreezes, and only
    when the first one in found nothing frozen (the program's :func:`freeze_after_imports`
    or a caller's own ``gc.freeze`` stays as it was).
    """
    global _FROZEN_DEPTH, _FROZEN_BY_US
    with _GC_LOCK:
        if _FROZEN_DEPTH == 0:
            _FROZEN_BY_US = gc.get_freeze_count() == 0
            gc.freeze()
        _FROZEN_DEPTH += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _FROZEN_DEPTH -= 1
            if _FROZEN_DEPTH == 0 and _FROZEN_BY_US:
                gc.unfreeze()
