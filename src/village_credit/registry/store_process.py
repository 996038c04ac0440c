"""The store's side of ``village-credit score`` in a second process, while the first
imports the model's code.

Why: before its workers start, ``score`` used to do in turn, on one core, what needs
the MLflow store (importing SQLAlchemy and alembic, opening the sqlite store, the
experiment look-up, resolving ``models:/NAME@alias``, downloading and hashing the model,
reading its promotion record: ~1.3-1.7 CPU s) and what needs the model's code (LightGBM
-> scikit-learn -> SciPy: ~1-1.4 CPU s), while the second core idled (docs/benchmarks.md,
"CLI fixed cost (issue 31 item 4), sixth pass"). A process forked once the command has
imported pandas (before MLflow, the scorer or the model's code) does the first, the
command the second; the command then loads the decision pyfunc from the checked download
without MLflow (``registry.loading._mlflow_free_pyfunc``), and never imports MLflow or
the store's stack itself (seventh pass). The store process imports MLflow and the store's
code at once, but opens the store only when the command says so (:meth:`StoreProcess.open`),
so that it may be forked before the command's own checks.

Same checks, same order of errors: the store process runs :func:`configure` and then
:func:`~village_credit.registry.loading.fetch_model` (resolve, download, digest,
promotion record), the very functions the command ran; the command raises
``configure``'s error where it called ``configure`` and the fetch's error (or the
refusal of an ungated version) inside the model load, as before. An error that is not
one of the toolkit's own (an SQLAlchemy or MLflow exception, which may not survive the
trip between processes intact) is not handed over: the command redoes that step itself
and raises it exactly as it did. Only for the program (``village-credit score``, not a
caller of the CLI's functions or a test's ``CliRunner``), only where ``fork`` exists and
this process has not opened an SQLAlchemy store yet (a forked child must not share a
live sqlite connection); otherwise :meth:`StoreProcess.configured` is ``configure``.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from village_credit._lazy import is_program, paused_gc
from village_credit.errors import VillageCreditError

# MLflow, the store module and ``registry.loading`` (pandas) are imported after the fork:
# by the store process for its side, by the command only for what it does itself

__all__ = ["StoreProcess", "store_process"]

_REDO = "redo here"
"""What the store process sends for an error it cannot hand over faithfully."""
_OPEN = "open"
"""What the command sends when the store may be opened (its own checks passed)."""


def _portable(exc: BaseException) -> BaseException | str:
    """``exc`` when it is the toolkit's own and survives pickling with its message; else :data:`_REDO`."""
    if not isinstance(exc, VillageCreditError):
        return _REDO
    try:
        back = pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - any failure: the command redoes the step
        return _REDO
    return back if type(back) is type(exc) and str(back) == str(exc) else _REDO


_DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
"""MLflow's SQLAlchemy stores' URI schemes (``mlflow.store.db.db_types``)."""


def _import_store_code(tracking_uri: str | None) -> None:
    """Import MLflow, the toolkit's store and loading modules and, for a database URI, MLflow's
    SQLAlchemy stores: only imports, so that the store process can do them before the
    command lets it open the store."""
    import mlflow

    from village_credit.registry import loading, store  # noqa: F401 - imported ahead, as MLflow

    uri = tracking_uri or store.default_tracking_uri()  # MLFLOW_TRACKING_URI if set
    if uri.partition(":")[0].split("+")[0] in _DATABASE_SCHEMES:
        try:
            import mlflow.store.model_registry.sqlalchemy_store
            import mlflow.store.tracking.sqlalchemy_store  # noqa: F401 - imported ahead
        except ImportError:  # configure then fails with its own message
            pass


def _store_side(conn: Any, tracking_uri: str | None, model_uri: str, dst: str) -> None:
    """The store process: the store's code imported, then (once the command says ``open``)
    ``configure`` and the fetch of the model into ``dst``; each result sent."""
    with paused_gc():  # MLflow and the store's stack (SQLAlchemy's ORM, alembic), as configure did
        _import_store_code(tracking_uri)
    try:
        go = conn.recv()
    except (EOFError, OSError):  # the command ended before it let the store be opened
        return
    if go != _OPEN:
        return
    import mlflow

    from village_credit.registry import loading
    from village_credit.registry.store import configure

    try:
        with paused_gc():
            configure(tracking_uri)
    except BaseException as exc:  # noqa: BLE001 - every outcome goes back to the command
        conn.send(("configure", _portable(exc)))
        return
    conn.send(("configure", mlflow.get_tracking_uri()))
    try:
        fetched: Any = loading.fetch_model(model_uri, Path(dst))
    except BaseException as exc:  # noqa: BLE001
        fetched = _portable(exc)
    conn.send(("fetch", fetched))


def _configure_here(tracking_uri: str | None) -> None:
    """``configure`` in this process (where the store process cannot do it)."""
    with paused_gc():  # opening the store imports MLflow, SQLAlchemy's ORM and alembic
        from village_credit.registry.store import configure

        configure(tracking_uri)


def _point_here(uri: str) -> None:
    """What ``store.point_at(uri)`` does for this process, without importing MLflow when it is
    not imported: tracking and registry URIs in the environment, where MLflow (imported
    later here, or in a child) reads them, as ``mlflow.set_tracking_uri`` and
    ``set_registry_uri`` write them."""
    if "mlflow" in sys.modules:
        from village_credit.registry.store import point_at

        point_at(uri)
        return
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.environ["MLFLOW_REGISTRY_URI"] = uri


class StoreProcess:
    """The store process of one ``score`` run (or, where it cannot run, nothing)."""

    def __init__(self, tracking_uri: str | None, model_uri: str) -> None:
        self.tracking_uri, self.model_uri = tracking_uri, model_uri
        self._proc: Any = None
        self._conn: Any = None
        self._dst: Path | None = None
        self._opened = False
        self._configured = False
        self._taken = False

    @staticmethod
    def available() -> bool:
        """Whether a store process may be forked here (the program, ``fork``, no store opened yet)."""
        return (is_program() and "fork" in multiprocessing.get_all_start_methods()
                and "sqlalchemy" not in sys.modules)

    @property
    def forked(self) -> bool:
        """Whether the store process runs (else :meth:`configured` is ``configure`` here)."""
        return self._proc is not None

    def start(self) -> None:
        if not self.available():
            return
        ctx = multiprocessing.get_context("fork")
        self._dst = Path(tempfile.mkdtemp(prefix="vc-model-"))
        self._conn, child = ctx.Pipe(duplex=True)
        self._proc = ctx.Process(target=_store_side, args=(child, self.tracking_uri, self.model_uri,
                                                           str(self._dst)),
                                 name="village-credit-store", daemon=True)
        self._proc.start()
        child.close()

    def open(self) -> None:
        """Let the store process open the store (``configure``) and fetch the model: called
        once the command's own checks passed (the output folder), as ``configure`` was
        called only after them."""
        if self._proc is not None and not self._opened:
            self._opened = True
            try:
                self._conn.send(_OPEN)
            except OSError:  # the process died: configured() redoes the step here
                pass

    def _receive(self, step: str) -> Any:
        try:
            got, value = self._conn.recv()
        except (EOFError, OSError):  # the process died: the command does the step itself
            return _REDO
        return value if got == step else _REDO

    def configured(self) -> None:
        """What ``configure(tracking_uri)`` did, or its error: the store process's, else done here."""
        from village_credit.registry import loading

        if self._proc is None:
            _configure_here(self.tracking_uri)
            return
        self.open()
        value = self._receive("configure")
        self._configured = True
        if isinstance(value, BaseException):
            raise value
        if value == _REDO:
            self._abandon()
            _configure_here(self.tracking_uri)
            return
        _point_here(value)  # this process uses the store's URIs too; the store itself stays closed here
        loading._STORE_SIDE[self.model_uri] = self._fetched

    def _fetched(self) -> tuple[Any, Path]:
        """For ``load_model``: the fetch's result and folder (``None``: redo it there), or its error."""
        from village_credit.registry import loading

        assert self._dst is not None
        value = self._receive("fetch")
        if isinstance(value, BaseException):
            raise value
        if not isinstance(value, loading.FetchedModel):
            return None, self._dst
        self._taken = True  # the load owns the folder now (removed with its model)
        return value, self._dst

    def _abandon(self) -> None:
        loading = sys.modules.get("village_credit.registry.loading")
        if loading is not None:
            loading._STORE_SIDE.pop(self.model_uri, None)
        if self._proc is not None and self._proc.is_alive():
            self._proc.terminate()  # only in its imports, its wait, or the fetch (reads and its own download)
        if self._proc is not None:
            self._proc.join()
        if self._conn is not None:
            self._conn.close()
        if self._dst is not None and not self._taken:
            shutil.rmtree(self._dst, ignore_errors=True)
        self._proc = self._conn = None

    def close(self) -> None:
        """Stop and reap the store process; remove its download unless a load took it."""
        if self._proc is not None and self._opened and not self._configured:
            self._receive("configure")  # let a write to the store (the experiment) finish
            self._configured = True
        self._abandon()


@contextmanager
def store_process(tracking_uri: str | None, model_uri: str) -> Iterator[StoreProcess]:
    """A :class:`StoreProcess` started for the block (see the module's docstring)."""
    proc = StoreProcess(tracking_uri, model_uri)
    proc.start()
    try:
        yield proc
    finally:
        proc.close()
