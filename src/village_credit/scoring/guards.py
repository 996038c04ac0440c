"""Guards around a scoring run: content-keyed resume, one writer per folder, duplicates.

Why a module apart from the scoring loop: these are facts about the *run* (is the
input the one the finished chunks were made from? is another process writing the
same folder? does a household id come back in a later chunk?), checked once per
file, whatever engine reads and decides the rows.

* :func:`input_digest`: a SHA-256 digest of the input bytes. Size and mtime are not
  enough: ``cp -p`` and ``rsync -t`` restore the mtime of a file whose values changed.
  SHA-256 runs on the CPU's SHA instructions (650 MB/s on the shared build box,
  2.2x BLAKE2b there); see ``bench/bench_guards.py`` for its cost next to scoring.
* :class:`OutputLock`: ``_lock.json`` created with ``O_EXCL`` names the run that
  holds the folder (pid, host, start time, input). A lock whose process is gone on
  this host is stale and taken over; one from another host is reported with the
  path to delete once that run is known to be dead.
* :func:`duplicate_ids`: household ids seen more than once in the whole file, from
  two passes over the id column only: 8 bytes per row (a 64-bit hash computed
  from the Arrow buffers), then the actual ids of the few rows whose hash repeats (so a hash collision never
  quarantines a row). :func:`quarantine_duplicates` moves every copy into the
  quarantine naming the other rows that hold the id, in whichever chunk they lie
  (local and Spark engines alike).
"""

from __future__ import annotations

import datetime
import errno
import hashlib
import json
import os
import socket
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from village_credit.data.io import check_output_dir, iter_column, read_header
from village_credit.errors import DataReadError, VillageCreditError

__all__ = ["OutputBusy", "OutputLock", "check_delimiter", "check_output", "duplicate_ids", "input_digest",
           "quarantine_duplicates"]

LOCK_NAME = "_lock.json"
_BLOCK = 8 << 20


class OutputBusy(VillageCreditError):
    """Another run is writing the same output folder."""


def input_digest(path: str | os.PathLike[str]) -> str:
    """``sha256:<hex>`` of the file's bytes (streamed; memory: one 8 MiB block)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            h.update(block)
    return f"sha256:{h.hexdigest()}"


def check_output(output_dir: str | os.PathLike[str]) -> Path:
    """The output folder can be created and written (a clear error before any work)."""
    return check_output_dir(output_dir, "output directory")


def check_delimiter(input_path: str | os.PathLike[str], columns: list[str], n_required: int) -> None:
    """A CSV whose header reads as one column (an unknown delimiter) is named as such,
    rather than as "lacks 200 columns"."""
    if Path(input_path).suffix.lower() == ".csv" and len(columns) == 1 and n_required > 1:
        raise DataReadError(f"{input_path}: the header was read as one column {columns[0][:60]!r}; "
                            "is its delimiter something other than , ; tab or |? "
                            f"(the model needs {n_required} columns)")


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
                   "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
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

    def acquire(self) -> Self:
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

    def __enter__(self) -> Self:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


_P = np.uint64(0x100000001B3)  # FNV prime: per-byte multiplier
_MIX = (np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53))


def _hash_ids(arr: pa.Array) -> np.ndarray:
    """64-bit hash per id straight from the Arrow buffers (no Python objects; 0 = missing).

    A polynomial hash of the UTF-8 bytes plus the length, then a murmur finaliser.
    Collisions only make a row a *candidate*: :func:`duplicate_ids` compares the ids.
    """
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not pa.types.is_large_string(arr.type):
        arr = pc.cast(arr, pa.large_string())
    n = len(arr)
    _, off_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(off_buf, dtype=np.int64)[arr.offset: arr.offset + n + 1]
    lengths = np.diff(offsets)
    base = int(offsets[0]) if n else 0
    data = (np.frombuffer(data_buf, dtype=np.uint8)[base: int(offsets[-1])] if data_buf is not None and n
            else np.zeros(0, np.uint8))
    h = np.zeros(n, dtype=np.uint64)
    if len(data):
        starts = offsets[:-1] - base
        pos = np.arange(len(data), dtype=np.int64) - np.repeat(starts, lengths)
        with np.errstate(over="ignore"):
            powers = np.cumprod(np.full(int(lengths.max()), _P, dtype=np.uint64))
            contrib = data.astype(np.uint64) * powers[pos]
            nonempty = lengths > 0
            h[nonempty] = np.add.reduceat(contrib, starts[nonempty])
    with np.errstate(over="ignore"):
        h ^= lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        h ^= h >> np.uint64(33)
        h *= _MIX[0]
        h ^= h >> np.uint64(33)
        h *= _MIX[1]
        h ^= h >> np.uint64(33)
    h[h == 0] = 1
    if arr.null_count:
        h[~np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)] = 0
    return h


def duplicate_ids(path: str | os.PathLike[str], column: str = "household_id",
                  batch_rows: int = 1_000_000) -> dict[str, list[int]]:
    """``{id: [row numbers]}`` for every id that appears more than once in the file.

    Memory: 8 bytes per row plus the duplicated rows; missing ids are left to
    validation. An empty dict when the file has no such column.
    """
    if column not in read_header(path):
        return {}
    hashes = [_hash_ids(arr) for arr in iter_column(path, column, batch_rows)]
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
    for arr in iter_column(path, column, batch_rows):
        n = len(arr)
        local = cand[(cand >= offset) & (cand < offset + n)] - offset
        if len(local):
            picked = arr.take(pa.array(local)).to_pylist()
            for r, v in zip(local.tolist(), picked, strict=True):
                if v is not None:
                    rows.setdefault(str(v), []).append(r + offset)
        offset += n
    return {k: v for k, v in rows.items() if len(v) > 1}


def _dup_reason(rows_with_id: list[int], row: int, column: str = "household_id") -> str:
    others = [r for r in rows_with_id if r != row]
    shown = ", ".join(str(r) for r in others[:5]) + (", ..." if len(others) > 5 else "")
    return f"duplicate {column} (also at row {shown}; {len(rows_with_id)} rows have it)"


def quarantine_duplicates(decisions: pd.DataFrame, problems: pd.DataFrame, bad_rows: pd.DataFrame,
                          chunk: pd.DataFrame, first_row: int, dups: dict[str, list[int]],
                          as_text: Any, column: str = "household_id"
                          ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Move every copy of a duplicated id from the decisions to the quarantine.

    Which copy is the household's true record cannot be known from the file, so none
    is decided: every row holding the id, in this chunk or any other, gets a
    ``duplicate`` problem naming the rows that share it (the model's own in-chunk
    check may already have flagged the later copies). ``as_text``: how the engine
    writes quarantined input rows (so every quarantine part has one schema);
    ``column``: the id column (``household_id``, or a table model's own).
    """
    if not dups or column not in chunk.columns:
        return decisions, problems, bad_rows
    # one vectorised look-up for the whole chunk; Python only for the (few) copies
    hit = chunk[column].astype(str).isin(dups.keys()).to_numpy(bool) & chunk[column].notna().to_numpy(bool)
    if not hit.any():
        return decisions, problems, bad_rows
    pos = np.flatnonzero(hit)
    ids = np.array([str(v) for v in chunk[column].to_numpy(dtype=object)[pos]], dtype=object)
    rows = np.arange(first_row, first_row + len(chunk), dtype=np.int64)
    flagged = set(problems.loc[problems["check"] == "duplicate", "row_number"].tolist())
    keep = np.array([rows[p] not in flagged for p in pos], dtype=bool)
    new_pos, new_ids = pos[keep], ids[keep]
    if not len(new_pos):
        return decisions, problems, bad_rows
    string = pd.StringDtype()
    id_out = next((c for c in problems.columns if c not in ("row_number", "column", "value", "reason", "check")),
                  "household_id")
    extra = pd.DataFrame({
        "row_number": rows[new_pos],
        id_out: pd.Series(new_ids.tolist(), dtype=string),
        "column": pd.Series([column] * len(new_pos), dtype=string),
        "value": pd.Series(new_ids.tolist(), dtype=string),
        "reason": pd.Series([_dup_reason(dups[i], rows[p], column) for i, p in zip(new_ids, new_pos, strict=True)],
                            dtype=string),
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
