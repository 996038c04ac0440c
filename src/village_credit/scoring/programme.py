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


def write_programme_report(output_dir: Path) -> dict[str, Any]:
    """Credit village / credit township tables for the scored population.

    Every input household with a village counts: scored households are "on file"
    (their points put them on file), quarantined ones are in the village but have no
    file (they count against the 952 coverage test). Part by part, as additive
    per-village sums, so memory stays that of one chunk however large the input.
    """
    keys = ["village_code", "township_code"]
    sums = []
    for name in sorted(p.name for p in part_files(output_dir, "decisions")):
        dec = _read_for_report([output_dir / "decisions" / name],
                               [*keys, "points", "eligible", "grade", "approved", "credit_line"])
        bad_part = output_dir / "quarantine_rows" / name
        bad = _read_for_report([bad_part], keys) if bad_part.exists() else pd.DataFrame()
        if len(bad) and set(keys) <= set(bad.columns):
            bad = bad.dropna(subset=keys).assign(points=np.nan, eligible=False, grade=None, approved=False,
                                                 credit_line=np.nan)
            dec = pd.concat([dec.astype({k: "object" for k in keys}) if len(dec) else dec,
                             bad.astype({k: "object" for k in keys})], ignore_index=True)
        if dec.empty or not set(keys) <= set(dec.columns):
            continue
        sums.append(village_sums(dec[keys], dec, points_column="points"))
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
