"""Named, timed stages of a long job, shown as a Rich progress bar when asked.

Used by the main job and the bring-your-own-data job: each records how long every
stage took (for the summary) and, at a terminal, which stage is running.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn


@dataclass
class Stage:
    """A named step with a duration."""

    name: str
    seconds: float


class StageTimer:
    """Runs stages, appends a :class:`Stage` to ``stages`` for each, shows progress if ``show``."""

    def __init__(self, stages: list[Stage], show: bool, total: int) -> None:
        self.stages = stages
        self.progress = None
        if show:
            self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                                     TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn())
            self.progress.start()
            self.task = self.progress.add_task("starting", total=total)

    def run(self, name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if self.progress is not None:
            self.progress.update(self.task, description=name)
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        self.stages.append(Stage(name, time.perf_counter() - t0))
        if self.progress is not None:
            self.progress.advance(self.task)
        return out

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
