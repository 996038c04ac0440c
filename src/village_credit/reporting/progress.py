"""Progress of long calls: a plain callback for the library, Rich bars for the shell.

Library functions (the fairness report, the validation report, the drift monitor)
take an optional ``progress`` callback, called as ``progress(step, done, total)``
before each named step and once more at the end with ``done == total``. They never
draw anything themselves, so notebooks and tests stay quiet; the commands pass
:func:`step_bar`'s callback, a Rich bar on stderr (stdout carries the summary JSON).
Row-streaming jobs (scoring, reason codes) advance a :func:`row_bar` by rows instead.

The bars are transient: they draw only while the work runs, at a terminal, and leave
nothing behind (redirected to a file or a pipe, stderr receives nothing). A bar's own
rate and times would otherwise stay on screen beside the command's summary, a second
source for the same figures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.text import Text

ProgressCallback = Callable[[str, int, int], None]
"""``progress(step, done, total)``: ``step`` is about to run, ``done`` steps of ``total`` are finished."""


class Steps:
    """Reports the named steps of one call to an optional :data:`ProgressCallback`.

    >>> seen = []
    >>> steps = Steps(lambda step, done, total: seen.append((step, done, total)), total=2)
    >>> steps("read"); steps("write"); steps.finish()
    >>> seen
    [('read', 0, 2), ('write', 1, 2), ('done', 2, 2)]
    """

    def __init__(self, callback: ProgressCallback | None, total: int) -> None:
        self.callback = callback
        self.total = total
        self.done = -1

    def __call__(self, step: str) -> None:
        """``step`` starts: the previous one (if any) is finished."""
        self.done = min(self.done + 1, self.total)
        if self.callback is not None:
            self.callback(step, self.done, self.total)

    def finish(self) -> None:
        """Every step is finished."""
        self.done = self.total
        if self.callback is not None:
            self.callback("done", self.total, self.total)


class Bar(Protocol):
    """What a row-streaming job needs of a bar."""

    def advance(self, n: int) -> None: ...

    def close(self) -> None: ...


class NoBar:
    """A bar that shows nothing (``--no-progress``, library use)."""

    def advance(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


class _RowsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0:,.0f} rows/s")


class RowBar:
    """A Rich bar counting rows, with rows/s, on stderr.

    It leaves no figure of its own when it closes (transient): the command prints the
    run's summary, the one source of its figures.
    """

    def __init__(self, total: int | None, label: str, console: Console | None = None) -> None:
        self._p = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), _RowsPerSecond(),
                           TimeElapsedColumn(), TimeRemainingColumn(),
                           console=console or Console(stderr=True), transient=True)
        self._p.start()
        self._task = self._p.add_task(label, total=total)

    def advance(self, n: int) -> None:
        self._p.advance(self._task, n)

    def close(self) -> None:
        self._p.stop()


def row_bar(total: int | None, enabled: bool, label: str = "scoring",
            console: Console | None = None) -> RowBar | NoBar:
    """A :class:`RowBar` when ``enabled``, else a :class:`NoBar`.

    >>> bar = row_bar(10, enabled=False)
    >>> bar.advance(10); bar.close()
    """
    return RowBar(total, label, console) if enabled else NoBar()


@contextmanager
def step_bar(label: str, enabled: bool = True,
             console: Console | None = None) -> Iterator[ProgressCallback | None]:
    """A Rich bar of named steps on stderr, as a :data:`ProgressCallback` (``None`` when disabled).

    >>> with step_bar("auditing", enabled=False) as progress:
    ...     progress is None
    True
    """
    if not enabled:
        yield None
        return
    bar = Progress(TextColumn(f"{label}:"), TextColumn("[bold]{task.description}"), BarColumn(),
                   MofNCompleteColumn(), TimeElapsedColumn(), console=console or Console(stderr=True),
                   transient=True)
    task = bar.add_task("starting", total=None)

    def callback(step: str, done: int, total: int) -> None:
        bar.update(task, description=step, completed=done, total=total)

    with bar:
        yield callback
