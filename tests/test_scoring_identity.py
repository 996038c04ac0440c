"""Batch scoring after issue 31 writes what it wrote before, row for row, on a 200k-row file.

The oracle is the decision formatting of the code before issue 31 (commit ec85af0),
kept here verbatim and only here: object-array reason strings, ``np.where`` joins and a
frame pandas infers. It is fed with the model's own numbers (``DecisionModel._score``),
which issue 31 did not change, so what is compared is every step after them: top-k
selection, reason texts, decisive codes, the frame and its dtypes, the quarantine split,
the duplicate pass and the programme report (live sums vs the report read from the files).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from village_credit.data.io import iter_batches, write_parquet
from village_credit.models.decision import INELIGIBLE_PREFIX, VETO_PREFIX
from village_credit.scoring import score_file
from village_credit.scoring.batch import load_scoring_model
from village_credit.scoring.programme import write_programme_report

# MLflow on the scoring env's store in every test (conftest.scoring_store)
pytestmark = pytest.mark.usefixtures("scoring_store")

ROWS = 200_000
CHUNK = 50_000


# ----------------------------------------------------------------- oracle (code of ec85af0)
def _old_top(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    n, m = values.shape
    k_eff = min(k, m)
    if k_eff == 0 or n == 0:
        return np.full((n, k), -1, dtype=np.int64), np.full((n, k), np.nan)
    v = np.where(values > 0, values, 0.0)
    rows = np.arange(n)
    idx = np.empty((n, k_eff), dtype=np.int64)
    pts = np.empty((n, k_eff), dtype=np.float64)
    for j in range(k_eff):
        col = v.argmax(axis=1)
        idx[:, j] = col
        pts[:, j] = v[rows, col]
        if j + 1 < k_eff:
            v[rows, col] = -1.0
    keep = pts > 0
    idx = np.where(keep, idx, -1)
    pts = np.where(keep, pts, np.nan)
    if k_eff < k:
        idx = np.pad(idx, ((0, 0), (0, k - k_eff)), constant_values=-1)
        pts = np.pad(pts, ((0, 0), (0, k - k_eff)), constant_values=np.nan)
    return idx, pts


def _old_strings(idx: np.ndarray, pts: np.ndarray, codes: list[str]) -> np.ndarray:
    n, k = idx.shape
    code_arr = np.asarray(list(codes) + [""], dtype=object)
    out = np.full(n, "", dtype=object)
    for j in range(k):
        has = np.flatnonzero(idx[:, j] >= 0)
        if not len(has):
            continue
        piece = code_arr[idx[has, j]] + ":" + np.array([format(x, "+.1f") for x in pts[has, j].tolist()],
                                                         dtype=object)
        prev = out[has]
        empty = prev == ""
        out[has] = piece if empty.all() else np.where(empty, piece, prev + ";" + piece)
    return out


def _old_decisive(veto: np.ndarray, inel: np.ndarray) -> np.ndarray:
    def prefixed(codes: np.ndarray, prefix: str) -> np.ndarray:
        ser = pd.Series(codes, dtype=object).fillna("").astype(str)
        return (prefix + ser.str.replace(";", ";" + prefix, regex=False)).where(ser != "", "").to_numpy(object)

    v, e = prefixed(veto, VETO_PREFIX), prefixed(inel, INELIGIBLE_PREFIX)
    return np.where(v == "", e, np.where(e == "", v, v + ";" + e))


def _old_decide(dm: Any, households: pd.DataFrame, top_k: int = 3) -> pd.DataFrame:
    s, qreasons, n = dm._score(households)
    pc = dm._points_contrib(s)
    points_v = pc.sum(axis=1)
    pd_v = dm.scaling.pd(points_v)
    pdec = dm.policy_decisions(points_v, s.eligible, s.vetoed, households=s.valid)
    line_v = pdec["credit_line"].to_numpy(dtype=np.float64)
    d_idx, d_pts = _old_top(-pc[:, 1:], top_k)
    u_idx, u_pts = _old_top(pc[:, 1:], top_k)
    codes = dm.codes[1:]
    down, up = _old_strings(d_idx, -d_pts, codes), _old_strings(u_idx, u_pts, codes)
    allc = _old_decisive(s.veto_codes, s.ineligible_codes)
    for part in (down, up):
        allc = np.where(part == "", allc, np.where(allc == "", part, allc + ";" + part))

    def full(values: Any, fill: Any, dtype: Any) -> np.ndarray:
        out = np.full(n, fill, dtype=dtype)
        out[s.positions] = values
        return out

    return pd.DataFrame({
        "household_id": households["household_id"].to_numpy(dtype=object),
        "status": np.where(qreasons == "", "scored", "quarantined").astype(object),
        "quarantine_reason": qreasons,
        "pd": full(pd_v, np.nan, np.float64), "points": full(points_v, np.nan, np.float64),
        "grade": full(pdec["grade"].to_numpy(dtype=object), None, object),
        "credit_line": full(line_v, np.nan, np.float64),
        "rate": full(pdec["rate"].to_numpy(dtype=np.float64), np.nan, np.float64),
        "eligible": full(s.eligible, False, bool), "vetoed": full(s.vetoed, False, bool),
        "approved": full(line_v > 0, False, bool),
        "veto_reasons": full(s.veto_codes, "", object), "ineligible_reasons": full(s.ineligible_codes, "", object),
        "reason_codes": full(allc, "", object), "reasons_down": full(down, "", object),
        "reasons_up": full(up, "", object),
    }, index=households.index)


# ----------------------------------------------------------------- the 200k file
@pytest.fixture(scope="module")
def big_file(scoring_env: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scoring input (its bad rows included) tiled to 200k rows; ids unique per tile,
    except two ids repeated in other chunks (the duplicate pass across chunks)."""
    base = scoring_env.households
    reps = -(-ROWS // len(base))
    big = pd.concat([base] * reps, ignore_index=True).head(ROWS)
    tile = np.repeat(np.arange(reps), len(base))[:ROWS]
    ids = (big["household_id"].astype(str) + "-" + pd.Series(tile).astype(str)).to_numpy(dtype=object)
    ids[[123_456, 199_999]] = ids[[7, 60_001]]  # copies in another chunk
    big["household_id"] = ids
    return write_parquet(big, tmp_path_factory.mktemp("identity") / "big.parquet")


def test_score_file_outputs_and_report(scoring_env: Any, big_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "scores"
    s = score_file(scoring_env.model_uri, big_file, out, chunk_rows=CHUNK, progress=False)
    assert s.reconciled and s.rows_read == ROWS
    # every stage of the run is timed in the summary
    assert {"read", "row_checks", "features", "model", "reasons", "format", "write",
            "programme_report"} <= set(s.stages)
    # decisions: today's decide on the rows the duplicate pass left, plus row_number and codes
    model, _ = load_scoring_model(scoring_env.model_uri)
    dm = model.unwrap_python_model().model
    quarantined_rows = set(pq.read_table(out / "quarantine_rows").column("row_number").to_pylist())
    assert {123_456, 199_999, 7, 60_001} <= quarantined_rows
    assert len(quarantined_rows) > 300  # the bad rows of every tile were exercised
    for k, chunk in enumerate(iter_batches(big_file, CHUNK)):
        old = _old_decide(dm, chunk.reset_index(drop=True))
        if k == 0:  # decide itself, dtypes included, before the batch layer
            pd.testing.assert_frame_equal(dm.decide(chunk.reset_index(drop=True)), old, check_exact=True)
        old.insert(0, "row_number", np.arange(k * CHUNK, k * CHUNK + len(chunk), dtype=np.int64))
        for c in ("village_code", "township_code"):
            old[c] = chunk[c].to_numpy()
        keep = ~old["row_number"].isin(quarantined_rows).to_numpy()
        expected = old.loc[keep].reset_index(drop=True)
        written = pq.read_table(out / "decisions" / f"part-{k:05d}.parquet").to_pandas()
        pd.testing.assert_frame_equal(written, expected.astype(written.dtypes.to_dict()), check_exact=True)
    # the report from sums gathered while writing == the report read back from the parts
    live = {p.name: pq.read_table(p) for p in sorted(out.glob("programme_*.parquet"))}
    assert write_programme_report(out) == s.programme
    for name, table in live.items():
        assert pq.read_table(out / name).equals(table)
