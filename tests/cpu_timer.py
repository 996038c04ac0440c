"""A pytest plugin for timing the suite on a shared box: one JSON line per test with its
CPU seconds (user + system of this process and of the children it waited for), wall
seconds and the load average, appended to ``$CPU_TIMER_OUT`` (default ``cpu_timer.jsonl``).

Not loaded by the suite; pass it by name (docs/benchmarks.md, issue 31 item 5):
``PYTHONPATH=$PWD/src:$PWD/tests pytest -p no:xdist -p cpu_timer tests/test_x.py``.
CPU rather than wall: wall seconds on a box other jobs share move with their load.
A JVM that pyspark starts in the process is not waited for, so not counted.
"""

from __future__ import annotations

import json
import os
import resource
import time
from collections.abc import Iterator

import pytest


def _cpu() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Setup, call and teardown of one test (module fixtures land on the first test using them)."""
    cpu, wall = _cpu(), time.perf_counter()
    yield
    rec = {"id": item.nodeid, "cpu": round(_cpu() - cpu, 2), "wall": round(time.perf_counter() - wall, 2),
           "load": round(os.getloadavg()[0], 2)}
    with open(os.environ.get("CPU_TIMER_OUT", "cpu_timer.jsonl"), "a", encoding="utf-8") as f:
        f.write(json.dumps(rec) + "\n")
