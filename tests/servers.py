"""A real server subprocess for the tests that need one (``mlflow server`` for the browser
check, MLflow's basic-auth server started by the docs' shell block): started on a free
port of 127.0.0.1, waited for on ``/health``, stopped with its whole process group.

One helper, so the two server tests cannot drift apart in how they start, wait and stop.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

START_TIMEOUT_S = 240
"""Bounded wait for ``/health``: a loaded CI machine starts an MLflow server in ~1 min."""

NO_JOB_WORKERS = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
"""MLflow 3's server starts job workers by default; none are needed on a busy test machine."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@contextmanager
def running_server(cmd: Sequence[str], url: str, log_path: Path, *, what: str,
                   env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Iterator[subprocess.Popen]:
    """Run ``cmd`` (which serves ``url``) until the block ends; its output goes to ``log_path``.

    Fails the test with the log's tail if the server exits or is not healthy within
    :data:`START_TIMEOUT_S`. The server runs in its own session, so stopping it (SIGTERM,
    SIGKILL after 30 s) also stops the workers it forked.
    """
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(list(cmd), cwd=cwd, env=dict(env if env is not None else os.environ),
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not _healthy(url):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(f"{what} did not start:\n"
                                + Path(log_path).read_text(errors="replace")[-3000:])
                time.sleep(0.1)
            yield proc
        finally:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:  # it already exited (and its group with it)
                pass
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
