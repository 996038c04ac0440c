"""Guards around a scoring run: content-keyed resume, one writer per folder, duplicates.

Why a module apart from the scoring loop: these are facts about the *run* (is the
input the one the finished chunks were made from? is another process writing the
same folder? does a household id come back in a later chunk?), checked once per
file, whatever engine reads and decides the rows.

* :func:`input_digest`: a BLAKE2b digest of the input bytes. Size and mtime are not
  enough: ``cp -p`` and ``rsync -t`` restore the mtime of a file whose values changed.
  Hashing reads the file once at disk speed (about 1 GB/s; a 10M-row Parquet file is
  a few GB at most), far below the cost of scoring it.
* :class:`OutputLock`: ``_lock.json`` created with ``O_EXCL`` names the run that
  holds the folder (pid, host, start time, input). A lock whose process is gone on
  this host is stale and taken over; one from another host is reported with the
  path to delete once that run is known to be dead.
* :func:`duplicate_ids`: household ids seen more than once in the whole file, from
  two passes over the id column only: 8 bytes per row (a 64-bit hash), then the
  actual ids of the few rows whose hash repeats (so a hash collision never
  quarantines a row). :func:`quarantine_duplicates` moves every later copy into the
  quarantine with the row of the first one, in whichever chunk it lies.
"""

from __future__ import annotations

import datetime
import errno
import hashlib
import json
import os
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from village_credit.data.io import check_output_dir, iter_column, read_header
from village_credit.errors import VillageCreditError

__all__ = ["OutputBusy", "OutputLock", "check_output", "duplicate_ids", "input_digest",
           "quarantine_duplicates"]

LOCK_NAME = "_lock.json"
_BLOCK = 8 << 20


class OutputBusy(VillageCreditError):
    """Another run is writing the same output folder."""


def input_digest(path: str | os.PathLike[str]) -> str:
    """``blake2b:<hex>`` of the file's bytes (streamed; memory: one 8 MiB block)."""
    h = hashlib.blake2b(digest_size=20)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            h.update(block)
    return f"blake2b:{h.hexdigest()}"


def check_output(output_dir: str | os.PathLike[str]) -> Path:
    """The output folder can be created and written (a clear error before any work)."""
    return check_output_dir(output_dir, "output directory")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM  # exists, owned by someone else
    return True


class OutputLock:
    """Hold ``output_dir/_lock.json`` while a run writes there (a context manager)."""

    def __init__(self, output_dir: str | os.PathLike[str], input_path: str | os.PathLike[str] = "") -> None:
        self.path = Path(output_dir) / LOCK_NAME
        self.me = {"pid": os.getpid(), "host": socket.gethostname(),
                   "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                   "input": str(input_path)}
        self.held = False

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(self.me, fh)
        return True

    def acquire(self) -> OutputLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            if self._create():
                self.held = True
                return self
            try:
                other: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                continue  # released meanwhile: try again
            except (OSError, ValueError):
                other = {}
            same_host = other.get("host") == self.me["host"]
            pid = other.get("pid")
            if same_host and isinstance(pid, int) and not _alive(pid):
                self.path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            if not other:
                raise OutputBusy(f"{self.path.parent} is locked by {self.path} (unreadable); "
                                 "if no run is writing there, delete that file")
            raise OutputBusy(
                f"{self.path.parent} is being written by another scoring run (pid {pid} on "
                f"{other.get('host')}, started {other.get('started')}, input {other.get('input')}); "
                f"wait for it or use another output directory"
                + ("" if same_host else f"; if that run is dead, delete {self.path}"))
        raise OutputBusy(f"{self.path.parent}: could not take the lock {self.path}")

    def release(self) -> None:
        if not self.held:
            return
        try:
            mine = json.loads(self.path.read_text(encoding="utf-8")).get("pid") == self.me["pid"]
        except (OSError, ValueError):
            mine = False
        if mine:
            self.path.unlink(missing_ok=True)
        self.held = False

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _hash(values: np.ndarray) -> np.ndarray:
    return pd.util.hash_array(values.astype(object), categorize=False)


def duplicate_ids(path: str | os.PathLike[str], column: str = "household_id",
                  batch_rows: int = 1_000_000) -> dict[str, list[int]]:
    """``{id: [row numbers]}`` for every id that appears more than once in the file.

    Memory: 8 bytes per row plus the duplicated rows; missing ids are left to
    validation. An empty dict when the file has no such column.
    """
    if column not in read_header(path):
        return {}
    hashes = []
    for arr in iter_column(path, column, batch_rows):
        vals = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=object)
        h = _hash(vals.astype(str))
        h[pd.isna(vals)] = 0  # missing ids never count as duplicates of each other
        hashes.append(h)
    if not hashes:
        return {}
    allh = np.concatenate(hashes)
    del hashes
    s = np.sort(allh)
    rep = np.unique(s[1:][s[1:] == s[:-1]])
    rep = rep[rep != 0]
    if not len(rep):
        return {}
    rows: dict[str, list[int]] = {}
    cand = np.flatnonzero(np.isin(allh, rep))
    del allh, s
    offset = 0
    want = set(cand.tolist())
    for arr in iter_column(path, column, batch_rows):
        n = len(arr)
        local = [r - offset for r in cand[(cand >= offset) & (cand < offset + n)]]
        if local:
            picked = arr.take(local).to_pylist()
            for r, v in zip(local, picked, strict=True):
                if v is not None and (r + offset) in want:
                    rows.setdefault(str(v), []).append(int(r + offset))
        offset += n
    return {k: v for k, v in rows.items() if len(v) > 1}


def quarantine_duplicates(decisions: pd.DataFrame, problems: pd.DataFrame, bad_rows: pd.DataFrame,
                          chunk: pd.DataFrame, first_row: int, dups: dict[str, list[int]],
                          as_text: Any) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Move every copy after the first of a duplicated id from the decisions to the quarantine.

    The first row holding the id keeps its decision, as within one chunk (and in
    ``check-data``); later copies, in this chunk or any later one, get a
    ``duplicate`` problem naming that first row. ``as_text``: how the engine writes
    quarantined input rows (so every quarantine part has one schema).
    """
    if not dups or "household_id" not in chunk.columns:
        return decisions, problems, bad_rows
    ids = np.array(["" if pd.isna(i) else str(i) for i in chunk["household_id"].astype(object)], dtype=object)
    rows = np.arange(first_row, first_row + len(chunk), dtype=np.int64)
    first = np.array([dups[i][0] if i in dups else -1 for i in ids], dtype=np.int64)
    later = (first >= 0) & (first != rows)
    if not later.any():
        return decisions, problems, bad_rows
    pos = np.flatnonzero(later)
    flagged = set(problems.loc[problems["check"] == "duplicate", "row_number"].tolist())
    new_pos = np.array([p for p in pos if rows[p] not in flagged], dtype=np.int64)
    if not len(new_pos):
        return decisions, problems, bad_rows
    string = pd.StringDtype()
    extra = pd.DataFrame({
        "row_number": rows[new_pos],
        "household_id": pd.Series([str(ids[p]) for p in new_pos], dtype=string),
        "column": pd.Series(["household_id"] * len(new_pos), dtype=string),
        "value": pd.Series([str(ids[p]) for p in new_pos], dtype=string),
        "reason": pd.Series([f"duplicate household_id (first at row {first[p]}; "
                             f"{len(dups[ids[p]])} rows have it)" for p in new_pos], dtype=string),
        "check": pd.Series(["duplicate"] * len(new_pos), dtype=string),
    })
    problems = (pd.concat([problems, extra[problems.columns]], ignore_index=True)
                .sort_values(["row_number", "column"], kind="stable", ignore_index=True))
    moving = decisions["row_number"].isin(rows[new_pos]).to_numpy()
    moved_rows = decisions.loc[moving, "row_number"].to_numpy()
    if len(moved_rows):
        text = as_text(chunk.reset_index(drop=True).iloc[moved_rows - first_row])
        text.insert(0, "row_number", moved_rows)
        bad_rows = (pd.concat([bad_rows, text.reset_index(drop=True)], ignore_index=True)
                    .sort_values("row_number", kind="stable", ignore_index=True))
        decisions = decisions.loc[~moving].reset_index(drop=True)
    return decisions, problems, bad_rows
