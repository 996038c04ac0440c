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
from numpy.typing import NDArray


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
    """
    n, m = values.shape
    k_eff = min(k, m)
    if k_eff == 0 or n == 0:
        return np.full((n, k), -1, dtype=np.int64), np.full((n, k), np.nan)
    v = np.where(values > 0, values, 0.0)  # NaN and non-positive -> 0 (never listed)
    rows = np.arange(n)
    idx = np.empty((n, k_eff), dtype=np.int64)
    pts = np.empty((n, k_eff), dtype=np.float64)
    for j in range(k_eff):
        col = v.argmax(axis=1)
        idx[:, j] = col
        pts[:, j] = v[rows, col]
        if j + 1 < k_eff:
            v[rows, col] = -1.0  # below every remaining candidate (all >= 0)
    keep = pts > 0
    idx = np.where(keep, idx, -1)
    pts = np.where(keep, pts, np.nan)
    if k_eff < k:
        idx = np.pad(idx, ((0, 0), (0, k - k_eff)), constant_values=-1)
        pts = np.pad(pts, ((0, 0), (0, k - k_eff)), constant_values=np.nan)
    return idx, pts


def top_reasons(contrib: NDArray[np.float64], top_k: int = 3) -> TopReasons:
    """Top-k down (negative) and up (positive) contributions per row of a points matrix."""
    c = np.asarray(contrib, dtype=np.float64)
    d_idx, d_pts = _top(-c, top_k)
    u_idx, u_pts = _top(c, top_k)
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
