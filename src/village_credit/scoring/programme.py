"""The credit village / credit township report of a scored population, from the output folder.

Computed part by part as additive per-village sums (``rules.report``), so memory stays
that of one chunk however large the input; written next to the decisions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from village_credit.rules import add_village_sums, report_from_village_sums, village_sums
from village_credit.scoring.outputs import atomic_write_table, part_files


def _read_for_report(parts: list[Path], columns: list[str]) -> pd.DataFrame:
    """Only the report columns; codes and grades as categoricals (small per row)."""
    frames = []
    for p in parts:
        have = pq.read_schema(p).names
        cols = [c for c in columns if c in have]
        if not cols:
            continue
        t = pq.read_table(p, columns=cols, read_dictionary=[c for c in cols if c in (
            "village_code", "township_code", "grade")])
        if t.num_rows:
            frames.append(t.to_pandas())
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


_KEYS = ["village_code", "township_code"]
_DECISION_COLUMNS = [*_KEYS, "points", "eligible", "grade", "approved", "credit_line"]


def chunk_sums(decisions: pd.DataFrame, bad_rows: pd.DataFrame) -> pd.DataFrame | None:
    """Additive per-village sums of one chunk's outputs (``None`` when it has no village codes).

    Every input household with a village counts: scored households are "on file"
    (their points put them on file), quarantined ones are in the village but have no
    file (they count against the 952 coverage test).
    """
    dec = decisions[[c for c in _DECISION_COLUMNS if c in decisions.columns]]
    bad = bad_rows[[c for c in _KEYS if c in bad_rows.columns]] if len(bad_rows) else pd.DataFrame()
    if len(bad) and set(_KEYS) <= set(bad.columns):
        bad = bad.dropna(subset=_KEYS).assign(points=np.nan, eligible=False, grade=None, approved=False,
                                              credit_line=np.nan)
        dec = pd.concat([dec.astype({k: "object" for k in _KEYS}) if len(dec) else dec,
                         bad.astype({k: "object" for k in _KEYS})], ignore_index=True)
    if dec.empty or not set(_KEYS) <= set(dec.columns):
        return None
    return village_sums(dec[_KEYS], dec, points_column="points")


def part_sums(output_dir: Path, name: str) -> pd.DataFrame | None:
    """:func:`chunk_sums` of one written part (a chunk done by an earlier, resumed run)."""
    dec = _read_for_report([output_dir / "decisions" / name], _DECISION_COLUMNS)
    bad_part = output_dir / "quarantine_rows" / name
    bad = _read_for_report([bad_part], _KEYS) if bad_part.exists() else pd.DataFrame()
    return chunk_sums(dec, bad)


def write_programme_report(output_dir: Path, sums: list[pd.DataFrame | None] | None = None) -> dict[str, Any]:
    """Credit village / credit township tables for the scored population.

    ``sums``: the per-chunk sums the scorer added up while it wrote each chunk (so
    the report costs no second read of the decisions); ``None`` reads them from the
    part files. Part by part, as additive per-village sums, so memory stays that of
    one chunk however large the input.
    """
    if sums is None:
        sums = [part_sums(output_dir, name) for name in sorted(p.name for p in part_files(output_dir, "decisions"))]
    sums = [x for x in sums if x is not None]
    if not sums:
        return {}
    report = report_from_village_sums(add_village_sums(sums))
    villages = output_dir / "programme_villages.parquet"
    townships = output_dir / "programme_townships.parquet"
    atomic_write_table(pa.Table.from_pandas(_plain(report.villages), preserve_index=False), villages)
    atomic_write_table(pa.Table.from_pandas(_plain(report.townships), preserve_index=False), townships)
    cv = report.villages["is_credit_village"]
    ct = report.townships["is_credit_township"]
    return {"villages": int(len(report.villages)), "credit_villages": int((cv == True).sum()),  # noqa: E712
            "villages_unknown": int(cv.isna().sum()), "townships": int(len(report.townships)),
            "credit_townships": int((ct == True).sum()),  # noqa: E712
            "villages_file": villages.name, "townships_file": townships.name}


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    """Categoricals back to plain strings for the report files."""
    fixes = {c: df[c].astype(str) for c in df.columns if isinstance(df[c].dtype, pd.CategoricalDtype)}
    return df.assign(**fixes) if fixes else df
