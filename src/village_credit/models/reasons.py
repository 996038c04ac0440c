"""Top-k reason codes from an exact contributions matrix, vectorised.

Why a separate step: the contributions (rule items and model features, in *points*)
already add up exactly to the score; a reason code is only a ranking of them. Using
``np.partition`` on the whole matrix keeps this O(n * m) with no Python loop per
household, so reasons for every household cost little more than the scores.

Direction is in points: ``down`` = the factor took points away (raised the risk),
``up`` = it added points (lowered the risk). Only factors with a strictly negative
(down) or positive (up) contribution are listed, so a household may get fewer than
``top_k``. Decisive reasons (vetoes, failed eligibility) are not contributions:
the caller puts them first (see ``DecisionModel.reason_codes``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

_BLOCK_ROWS = 2048
"""Rows per block of the top-k passes: a block's working copy stays in the CPU cache."""


@dataclass
class TopReasons:
    """Column indices and points of the top-k factors per row; ``-1`` / NaN where none."""

    down_idx: NDArray[np.int64]
    down_pts: NDArray[np.float64]
    up_idx: NDArray[np.int64]
    up_pts: NDArray[np.float64]


def _top(values: NDArray[np.float64], k: int) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Indices of the k largest positive values per row, largest first (ties: lower column first).

    For small k, k passes of ``argmax`` (which returns the lowest column among equal
    maxima) pick exactly the order "value descending, then column ascending"; each
    picked cell is then masked. Only positive values count (``-1`` / NaN where fewer).
    The passes run on blocks of ``_BLOCK_ROWS`` rows, so the masked copy of a block is
    still in cache for the next pass (same picks, row by row).
    """
    n, m = values.shape
    k_eff = min(k, m)
    if k_eff == 0 or n == 0:
        return np.full((n, k), -1, dtype=np.int64), np.full((n, k), np.nan)
    idx = np.empty((n, k_eff), dtype=np.int64)
    pts = np.empty((n, k_eff), dtype=np.float64)
    for start in range(0, n, _BLOCK_ROWS):
        stop = min(n, start + _BLOCK_ROWS)
        v = np.where(values[start:stop] > 0, values[start:stop], 0.0)  # NaN, <= 0 -> 0 (never listed)
        _pick(v, idx[start:stop], pts[start:stop])
    return _finish(idx, pts, k)


def _pick(v: NDArray[np.float64], idx: NDArray[np.int64], pts: NDArray[np.float64]) -> None:
    """The ``idx.shape[1]`` largest values of each row of ``v`` (all >= 0), in order, into
    ``idx`` / ``pts``; ``v`` is used up (each pick is pushed below every candidate left)."""
    rows = np.arange(v.shape[0])
    k_eff = idx.shape[1]
    for j in range(k_eff):
        col = v.argmax(axis=1)
        idx[:, j] = col
        pts[:, j] = v[rows, col]
        if j + 1 < k_eff:
            v[rows, col] = -1.0  # below every remaining candidate (all >= 0)


def _finish(idx: NDArray[np.int64], pts: NDArray[np.float64], k: int
            ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """``-1`` / NaN where no positive value was picked; padded to ``k`` columns."""
    keep = pts > 0
    idx = np.where(keep, idx, -1)
    pts = np.where(keep, pts, np.nan)
    if idx.shape[1] < k:
        idx = np.pad(idx, ((0, 0), (0, k - idx.shape[1])), constant_values=-1)
        pts = np.pad(pts, ((0, 0), (0, k - pts.shape[1])), constant_values=np.nan)
    return idx, pts


def _top_pair(c: NDArray[np.float64], k: int) -> tuple[NDArray[np.int64], NDArray[np.float64],
                                                       NDArray[np.int64], NDArray[np.float64]]:
    """``_top(-c, k)`` and ``_top(c, k)`` in one pass over ``c``'s row blocks.

    Why: each block is read once while it is in the CPU cache, and no negated copy of
    the whole matrix is made. The picks are those of :func:`_top`: ``-x`` where
    ``x < 0`` is exactly the positive part of ``-c``, and each direction's working copy
    is masked the same way.
    """
    n, m = c.shape
    k_eff = min(k, m)
    if k_eff == 0 or n == 0:
        empty = np.full((n, k), -1, dtype=np.int64), np.full((n, k), np.nan)
        return (*empty, *_top(c, k))
    out = [np.empty((n, k_eff), dtype=np.int64), np.empty((n, k_eff), dtype=np.float64),
           np.empty((n, k_eff), dtype=np.int64), np.empty((n, k_eff), dtype=np.float64)]
    for start in range(0, n, _BLOCK_ROWS):
        stop = min(n, start + _BLOCK_ROWS)
        x = c[start:stop]
        _pick(np.where(x < 0, -x, 0.0), out[0][start:stop], out[1][start:stop])  # NaN, >= 0 -> 0 (never listed)
        _pick(np.where(x > 0, x, 0.0), out[2][start:stop], out[3][start:stop])  # NaN, <= 0 -> 0
    return (*_finish(out[0], out[1], k), *_finish(out[2], out[3], k))


def top_reasons(contrib: NDArray[np.float64], top_k: int = 3) -> TopReasons:
    """Top-k down (negative) and up (positive) contributions per row of a points matrix."""
    c = np.asarray(contrib, dtype=np.float64)
    d_idx, d_pts, u_idx, u_pts = _top_pair(c, top_k)
    return TopReasons(d_idx, -d_pts, u_idx, u_pts)


def format_points(values: NDArray[np.float64], decimals: int = 1) -> NDArray[np.object_]:
    """``format(x, f"+.{decimals}f")`` for every element, exactly, without a call per element.

    Points take few distinct values once rounded, so each distinct rounded value is
    formatted once (by Python, so the text is the same) and looked up. Rounding is done
    on ``x * 10**decimals``; elements where that product is within 1e-6 of a rounding
    tie (where the float product and the exact decimal value could round apart), very
    large or non-finite ones are formatted one by one, so the result never differs.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    out = np.empty(x.shape[0], dtype=object)
    if x.shape[0] == 0:
        return out
    fmt = f"{{:+.{decimals}f}}".format
    if not 0 <= decimals <= 6:
        out[:] = [fmt(v) for v in x.tolist()]
        return out
    with np.errstate(invalid="ignore", over="ignore"):
        y = x * (10.0 ** decimals)
        r = np.rint(y)
        safe = np.isfinite(y) & (np.abs(y) < 1e9) & (np.abs(np.abs(y - r) - 0.5) > 1e-6)
    slow = np.flatnonzero(~safe)
    if len(slow):
        out[slow] = [fmt(v) for v in x[slow].tolist()]
    fast = np.flatnonzero(safe) if len(slow) else None
    xs = x if fast is None else x[fast]
    rs = r if fast is None else r[fast]
    key = np.abs(rs).astype(np.int64) * 2 + np.signbit(xs)
    uniq, inv = np.unique(key, return_inverse=True)
    scale = 10 ** decimals
    table = np.empty(len(uniq), dtype=object)
    for i, kv in enumerate(uniq.tolist()):
        q, rem = divmod(kv >> 1, scale)
        sign = "-" if kv & 1 else "+"
        table[i] = f"{sign}{q}.{rem:0{decimals}d}" if decimals else f"{sign}{q}"
    if fast is None:
        out[:] = table[inv.ravel()]
    else:
        out[fast] = table[inv.ravel()]
    return out


def compact_strings(idx: NDArray[np.int64], pts: NDArray[np.float64], codes: Sequence[str],
                    decimals: int = 1) -> NDArray[np.object_]:
    """``"code:+1.2;code:-3.4"`` per row, vectorised over rows (a loop over k only).

    The numbers are formatted once per distinct value (see :func:`format_points`).
    """
    n, k = idx.shape
    code_arr = np.asarray(list(codes) + [""], dtype=object)  # index -1 -> ""
    out = np.full(n, "", dtype=object)
    for j in range(k):
        has = np.flatnonzero(idx[:, j] >= 0)
        if not len(has):
            continue
        piece = code_arr[idx[has, j]] + ":" + format_points(pts[has, j], decimals)
        prev = out[has]
        empty = prev == ""
        if empty.all():
            out[has] = piece
        else:
            out[has] = np.where(empty, piece, prev + ";" + piece)
    return out


def _point_keys(x: NDArray[np.float64], decimals: int) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """(key, safe) per value: ``|round(x * 10**d)| * 2 + sign`` where rounding is unambiguous.

    Unsafe: non-finite, huge, or within 1e-6 of a rounding tie (where the float product
    and the exact decimal value could round apart): those are formatted by Python.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        y = x * (10.0 ** decimals)
        r = np.rint(y)
        safe = np.isfinite(y) & (np.abs(y) < 1e9) & (np.abs(np.abs(y - r) - 0.5) > 1e-6)
        key = np.where(safe, np.abs(np.where(safe, r, 0.0)), 0.0).astype(np.int64) * 2 + np.signbit(x)
    return key, safe


def _key_text(kv: int, decimals: int) -> str:
    q, rem = divmod(kv >> 1, 10 ** decimals)
    sign = "-" if kv & 1 else "+"
    return f"{sign}{q}.{rem:0{decimals}d}" if decimals else f"{sign}{q}"


def reason_strings(idx: NDArray[np.int64], pts: NDArray[np.float64], codes: Sequence[str],
                   decimals: int = 1) -> pa.Array:
    """``"code:+1.2;code:-3.4"`` per row as an Arrow ``large_string`` array ("" where none).

    Same text as :func:`compact_strings`, without a Python string per row: each distinct
    (code, rounded value) piece is formatted once, each rank's pieces are an Arrow
    ``take`` of those, and the ranks are joined by Arrow. A row's pieces are a prefix of
    its ranks (``_top`` lists positive values first), so the join of the first ``j``
    ranks, for the largest ``j`` without a missing piece, is the row's text.
    """
    n, k = idx.shape
    if n == 0 or k == 0:
        return pa.array([""] * n, type=pa.large_string())
    flat_idx = idx.ravel()
    has = flat_idx >= 0
    x = pts.ravel()
    key, safe = _point_keys(np.where(has, x, 0.0), decimals)
    fast = has & safe
    slow = np.flatnonzero(has & ~safe)
    combo = np.where(fast, flat_idx.astype(np.int64) * (1 << 32) + key, -1)
    inv, uniq = pd.factorize(combo[fast], sort=False)
    code_arr = list(codes)
    texts = [f"{code_arr[int(c) >> 32]}:{_key_text(int(c) & 0xFFFFFFFF, decimals)}" for c in uniq.tolist()]
    fmt = f"{{:+.{decimals}f}}".format
    texts += [f"{code_arr[int(flat_idx[i])]}:{fmt(float(x[i]))}" for i in slow.tolist()]
    where = np.full(n * k, -1, dtype=np.int64)
    where[fast] = inv
    where[slow] = len(uniq) + np.arange(len(slow))
    where = where.reshape(n, k)
    # a rank is used while every rank before it has a piece (a row's picks are a prefix
    # of its ranks); the unused ones point at "" and the separators go with the used ones
    used = np.logical_and.accumulate(where >= 0, axis=1)
    table = pa.array([*texts, ""], type=pa.large_string())
    pieces: list[pa.Array] = []
    for j in range(k):
        if j:
            pieces.append(_SEPS.take(pa.array(used[:, j].astype(np.int64))))
        pieces.append(table.take(pa.array(np.where(used[:, j], where[:, j], len(texts)))))
    return _concat(pieces)


_SEPS = pa.array(["", ";"], type=pa.large_string())
_NOTHING = pa.scalar("", pa.large_string())


def _concat(pieces: list[pa.Array]) -> pa.Array:
    """Row-wise concatenation of non-null texts: one Arrow kernel over every piece.

    Why: joining texts pairwise and coalescing the partial joins made a full copy of
    every row's text per step (~30 ms a 50k-row chunk for the reason codes); the
    separators are pieces of their own ("" or ";"), so one concatenation does it.
    """
    if len(pieces) == 1:
        return pieces[0]
    return pc.binary_join_element_wise(*pieces, _NOTHING)


def join_present(*parts: pa.Array) -> pa.Array:
    """Join the non-empty texts of each row with ``;`` ("" where all are empty, a missing
    text counts as empty), in Arrow: one concatenation, the separators as pieces."""
    if not parts:
        return None
    filled = [pc.fill_null(p, _NOTHING) if p.null_count else p for p in parts]
    pieces: list[pa.Array] = [filled[0]]
    seen = np.asarray(pc.binary_length(filled[0])) > 0
    for part in filled[1:]:
        has = np.asarray(pc.binary_length(part)) > 0
        pieces += [_SEPS.take(pa.array((has & seen).astype(np.int64))), part]
        seen |= has
    return _concat(pieces)


def reasons_long(household_ids: Sequence[str] | NDArray, top: TopReasons, codes: Sequence[str],
                 labels: Mapping[str, Mapping[str, str]], kinds: Sequence[str] | None = None,
                 rank_offset_down: NDArray[np.int64] | None = None) -> pd.DataFrame:
    """Long table: ``household_id, rank, direction, kind, code, label_en, label_zh, points``.

    ``rank_offset_down`` shifts the ranks of down reasons per row (decisive reasons
    placed before them by the caller take the first ranks).
    """
    ids = np.asarray(household_ids, dtype=object)
    n, k = top.down_idx.shape
    code_arr = np.asarray(list(codes), dtype=object)
    en = np.asarray([labels.get(c, {}).get("en", c) for c in codes], dtype=object)
    zh = np.asarray([labels.get(c, {}).get("zh", c) for c in codes], dtype=object)
    kind_arr = np.asarray(list(kinds) if kinds is not None else [""] * len(codes), dtype=object)
    frames = []
    for direction, idx, pts, offset in (
        ("down", top.down_idx, top.down_pts, rank_offset_down),
        ("up", top.up_idx, top.up_pts, None),
    ):
        rows, cols = np.nonzero(idx >= 0)
        j = idx[rows, cols]
        rank = cols + 1 + (offset[rows] if offset is not None else 0)
        frames.append(pd.DataFrame({
            "row": rows, "household_id": ids[rows], "rank": rank.astype(np.int64),
            "direction": direction, "kind": kind_arr[j], "code": code_arr[j],
            "label_en": en[j], "label_zh": zh[j], "points": pts[rows, cols],
        }))
    return pd.concat(frames, ignore_index=True)
