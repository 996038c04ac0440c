"""The store's side of ``village-credit score`` in a second process, while the first
imports the model's code.

Why: before its workers start, ``score`` used to do in turn, on one core, what needs
the MLflow store (importing SQLAlchemy and alembic, opening the sqlite store, the
experiment look-up, resolving ``models:/NAME@alias``, downloading and hashing the model,
reading its promotion record: ~1.3-1.7 CPU s) and what needs the model's code (LightGBM
-> scikit-learn -> SciPy: ~1-1.4 CPU s), while the second core idled (docs/benchmarks.md,
"CLI fixed cost (issue 31 item 4), sixth pass"). A process forked right after the
command's imports does the first, the command the second; the command then loads the
pyfunc from the checked download, and never imports the store's stack itself.

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
import pickle
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow

from village_credit._lazy import is_program, paused_gc
from village_credit.errors import VillageCreditError
from village_credit.registry import loading
from village_credit.registry.store import configure, point_at

__all__ = ["StoreProcess", "store_process"]

_REDO = "redo here"
"""What the store process sends for an error it cannot hand over faithfully."""


def _portable(exc: BaseException) -> BaseException | str:
    """``exc`` when it is the toolkit's own and survives pickling with its message; else :data:`_REDO`."""
    if not isinstance(exc, VillageCreditError):
        return _REDO
    try:
        back = pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - any failure: the command redoes the step
        return _REDO
    return back if type(back) is type(exc) and str(back) == str(exc) else _REDO


def _store_side(conn: Any, tracking_uri: str | None, model_uri: str, dst: str) -> None:
    """The store process: ``configure``, then fetch the model into ``dst``; each result sent."""
    try:
        with paused_gc():  # the store's stack (SQLAlchemy's ORM, alembic), as configure did
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


class StoreProcess:
    """The store process of one ``score`` run (or, where it cannot run, nothing)."""

    def __init__(self, tracking_uri: str | None, model_uri: str) -> None:
        self.tracking_uri, self.model_uri = tracking_uri, model_uri
        self._proc: Any = None
        self._conn: Any = None
        self._dst: Path | None = None
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
        self._conn, child = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_store_side, args=(child, self.tracking_uri, self.model_uri,
                                                           str(self._dst)),
                                 name="village-credit-store", daemon=True)
        self._proc.start()
        child.close()

    def _receive(self, step: str) -> Any:
        try:
            got, value = self._conn.recv()
        except (EOFError, OSError):  # the process died: the command does the step itself
            return _REDO
        return value if got == step else _REDO

    def configured(self) -> None:
        """What ``configure(tracking_uri)`` did, or its error: the store process's, else done here."""
        if self._proc is None:
            with paused_gc():  # opening the store imports SQLAlchemy's ORM and alembic
                configure(self.tracking_uri)
            return
        value = self._receive("configure")
        self._configured = True
        if isinstance(value, BaseException):
            raise value
        if value == _REDO:
            self._abandon()
            with paused_gc():
                configure(self.tracking_uri)
            return
        point_at(value)  # this process uses the store's URIs too; the store itself stays closed here
        loading._STORE_SIDE[self.model_uri] = self._fetched

    def _fetched(self) -> tuple[loading.FetchedModel | None, Path]:
        """For ``load_model``: the fetch's result and folder (``None``: redo it there), or its error."""
        assert self._dst is not None
        value = self._receive("fetch")
        if isinstance(value, BaseException):
            raise value
        if not isinstance(value, loading.FetchedModel):
            return None, self._dst
        self._taken = True  # the load owns the folder now (removed with its model)
        return value, self._dst

    def _abandon(self) -> None:
        loading._STORE_SIDE.pop(self.model_uri, None)
        if self._proc is not None and self._proc.is_alive():
            self._proc.terminate()  # only ever in the fetch (reads and its own download)
        if self._proc is not None:
            self._proc.join()
        if self._conn is not None:
            self._conn.close()
        if self._dst is not None and not self._taken:
            shutil.rmtree(self._dst, ignore_errors=True)
        self._proc = self._conn = None

    def close(self) -> None:
        """Stop and reap the store process; remove its download unless a load took it."""
        if self._proc is not None and not self._configured:
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
