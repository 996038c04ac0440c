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
    """Indices of the k largest positive values per row, largest first (ties: lower column first)."""
    n, m = values.shape
    k_eff = min(k, m)
    if k_eff == 0 or n == 0:
        return np.full((n, k), -1, dtype=np.int64), np.full((n, k), np.nan)
    v = np.where(values > 0, values, 0.0)
    if k_eff < m:
        # k-th largest value per row, then an exact tie-break at that value: lower column first
        kth = -np.partition(-v, k_eff - 1, axis=1)[:, k_eff - 1:k_eff]
        above = v > kth
        at = v == kth
        need = k_eff - above.sum(axis=1, keepdims=True)
        chosen = above | (at & (np.cumsum(at, axis=1) <= need))
        part = np.nonzero(chosen)[1].reshape(n, k_eff)  # exactly k per row, column order
    else:
        part = np.broadcast_to(np.arange(m), (n, m)).copy()
    pv = np.take_along_axis(v, part, axis=1)
    order = np.argsort(-pv, axis=1, kind="stable")  # by value; ties keep column order
    idx = np.take_along_axis(part, order, axis=1).astype(np.int64)
    pts = np.take_along_axis(pv, order, axis=1)
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


def compact_strings(idx: NDArray[np.int64], pts: NDArray[np.float64], codes: Sequence[str],
                    decimals: int = 1) -> NDArray[np.object_]:
    """``"code:+1.2;code:-3.4"`` per row, vectorised over rows (a loop over k only)."""
    n, k = idx.shape
    code_arr = np.asarray(list(codes) + [""], dtype=object)  # index -1 -> ""
    out = np.full(n, "", dtype=object)
    fmt = f"{{:+.{decimals}f}}".format
    for j in range(k):
        has = idx[:, j] >= 0
        if not has.any():
            continue
        piece = code_arr[idx[has, j]] + ":" + np.array([fmt(x) for x in pts[has, j]], dtype=object)
        prev = out[has]
        out[has] = np.where(prev == "", piece, prev + ";" + piece)
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
