"""Named, timed stages of a long job, shown as a Rich progress bar when asked.

Used by the main job and the bring-your-own-data job: each records how long every
stage took (for the summary) and, at a terminal, which stage is running.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn


@dataclass
class Stage:
    """A named step with its wall seconds and the CPU seconds this process spent in it.

    CPU time is what a busy machine distorts least (the benchmarks compare it).
    """

    name: str
    seconds: float
    cpu_seconds: float = 0.0


class StageTimer:
    """Runs stages, appends a :class:`Stage` to ``stages`` for each, shows progress if ``show``.

    The bar goes to stderr (stdout carries a command's summary) and is transient, like
    every bar of the toolkit. ``total`` is the number of stages planned; a stage that turns
    out not to apply (the population is scored only when the model is promoted) is taken
    off the count when the job ends, so the bar never stops short of its total.

    >>> timer = StageTimer([], show=False, total=3)
    >>> timer.run("one", lambda: 1), timer.run("two", lambda: 2)
    (1, 2)
    >>> timer.close(); [s.name for s in timer.stages], timer.total
    (['one', 'two'], 2)
    """

    def __init__(self, stages: list[Stage], show: bool, total: int) -> None:
        self.stages = stages
        self.total = total
        self.progress = None
        if show:
            self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                                     TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                                     console=Console(stderr=True), transient=True)
            self.progress.start()
            self.task = self.progress.add_task("starting", total=total)

    def run(self, name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if self.progress is not None:
            self.progress.update(self.task, description=name)
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn(*args, **kwargs)
        self.stages.append(Stage(name, time.perf_counter() - t0, time.process_time() - c0))
        if self.progress is not None:
            self.progress.advance(self.task)
        return out

    def close(self) -> None:
        self.total = len(self.stages)
        if self.progress is not None:
            self.progress.update(self.task, total=self.total, completed=self.total, description="done")
            self.progress.stop()
