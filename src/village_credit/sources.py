"""Where an experiment's rows come from, and which stages apply to them.

One runner (:func:`village_credit.pipeline.run_experiment`) serves three sources:

* ``generated``: synthetic households (ground truth known): every stage.
* ``households``: a household-schema file: every stage (the file must carry outcomes).
* ``table``: any table with a target column (+ an optional feature spec): no rule
  engine, no household validation, no programme report, no fairness audit by
  household group; the same estimator, evaluation, SHAP, validation report, MLflow
  model format, registration, gates and scoring.

The source says which stages apply (:attr:`DataSource.has_rules` and friends), so the
runner skips them instead of branching into a second pipeline.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from sklearn.model_selection import train_test_split

from village_credit.config import DataConfig, ExperimentConfig
from village_credit.data.io import read_table
from village_credit.data.schema import SCHEMA, HouseholdSchema, months_in
from village_credit.errors import ConfigError, DataReadError
from village_credit.models.features import category_key, category_keys, load_feature_specs
from village_credit.models.splits import split_by_village

__all__ = ["QUARANTINE_FILE", "DataSource", "TableData", "data_source", "file_columns", "load_table"]

QUARANTINE_FILE = "quarantine.parquet"
MIN_ROWS = 200
"""Fewer labelled rows than this cannot give a hold-out worth reporting."""
MIN_GROUPS_FOR_GROUP_SPLIT = 6
"""With fewer distinct groups a group split is degenerate; a stratified random split is used."""


def file_columns(path: str | Path) -> list[str]:
    """Column names of a Parquet or CSV file, from its schema / header only (no rows read)."""
    p = Path(path)
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return list(pq.read_schema(p).names)
        if suffix == ".csv":
            with p.open("r", encoding="utf-8-sig", newline="") as fh:
                return [h.strip() for h in next(csv.reader(fh), [])]
    except Exception as exc:  # OSError, UnicodeDecodeError, pyarrow.ArrowInvalid
        raise DataReadError(f"{p}: cannot read the column names: {exc}") from exc
    raise DataReadError(f"{p}: unsupported file type {p.suffix!r}; expected .parquet or .csv")


def _household_columns_missing(columns: list[str]) -> list[str]:
    m = months_in(columns)
    schema = SCHEMA if m in (0, SCHEMA.months) else HouseholdSchema(months=m)
    have = set(columns)
    return [c for c in schema.names if c not in have]


@dataclass(frozen=True)
class DataSource:
    """The kind of rows an experiment reads; the stages that apply follow from it."""

    kind: str  # "generated" | "households" | "table"
    path: str | None = None

    @property
    def has_rules(self) -> bool:
        """Household columns the points standard reads (rules, vetoes, lines, programme)."""
        return self.kind != "table"

    @property
    def has_truth(self) -> bool:
        """``true_pd`` and the household groups: oracle AUC, equal-risk fairness audit."""
        return self.kind != "table"

    @property
    def has_programme(self) -> bool:
        """Villages and townships: the credit-village programme report."""
        return self.kind != "table"


def data_source(cfg: ExperimentConfig) -> DataSource:
    """``generated`` for ``data.source: generate``; for a file: ``table`` when a feature spec is
    given or the header lacks household columns (whatever ``model.strategy`` says), else
    ``households``. Reads only the header; a missing file raises ``DataReadError``."""
    d = cfg.data
    if d.source == "generate":
        return DataSource("generated")
    p = Path(d.source)
    if not p.is_file():
        raise DataReadError(f"data.source {d.source}: no such file (relative paths are read from the "
                            "experiment file's folder)")
    if d.feature_spec or _household_columns_missing(file_columns(p)):
        return DataSource("table", str(p))
    return DataSource("households", str(p))


# ----------------------------------------------------------------------------- tables
@dataclass
class TableData:
    """A table read for training: feature frame, 0/1 target, groups, what was set aside."""

    frame: pd.DataFrame
    y: np.ndarray
    target: str
    n_read: int
    quarantined: int
    quarantine_path: Path
    spec: dict[str, Any] = field(default_factory=dict)
    groups: np.ndarray | None = None


def _resolve_target(d: DataConfig, spec_file: dict[str, Any], source: str) -> str:
    spec_target = spec_file.get("target")
    if spec_target and spec_target != d.target:
        if d.target == DataConfig().target:
            return str(spec_target)
        raise ConfigError(f"{source}: data.target {d.target!r} and the feature spec's target "
                          f"{spec_target!r} differ; set one of them")
    return d.target


def parse_target(df: pd.DataFrame, target: str, source: str, positive: Any = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``(y as float 0/1 with NaN for missing, missing mask)``.

    ``positive`` (``data.target_positive``): the label that means default, e.g. ``"bad"``;
    every other label is 0. Without it the column must hold 0/1 (or true/false).
    ConfigError names the file, the column and example values otherwise.
    """
    if target not in df.columns:
        shown = ", ".join(map(str, list(df.columns)[:20])) + (" ..." if df.shape[1] > 20 else "")
        raise ConfigError(f"{source}: target column {target!r} not found (set data.target); "
                          f"the file has: {shown}")
    s = df[target]
    text = s.astype("string").str.strip()
    text = text.mask(text == "")
    if positive is not None:
        keys = category_keys(text)
        pos = category_key(positive)
        if not bool((keys == pos).any()):
            seen = sorted(set(keys.dropna()))[:10]
            raise ConfigError(f"{source}: data.target_positive {positive!r} never occurs in column "
                              f"{target!r}; its values are {seen}")
        y = np.where(keys.isna(), np.nan, (keys == pos).astype(np.float64))
    else:
        if pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_numeric_dtype(s.dtype):
            vals = pd.to_numeric(s, errors="coerce").astype("Float64")
        else:
            low = text.str.lower()
            vals = pd.to_numeric(low.map({"true": "1", "false": "0"}).fillna(low), errors="coerce").astype("Float64")
            unparsed = text.notna() & vals.isna()
            if unparsed.any():
                bad = sorted(set(text[unparsed].astype(str)))[:5]
                raise ConfigError(f"{source}: target column {target!r} must be 0/1, or set "
                                  f"data.target_positive to the label that means default; "
                                  f"{int(unparsed.sum())} row(s) hold other values, e.g. {bad}")
        y = vals.to_numpy(dtype=np.float64, na_value=np.nan)
        bad_mask = ~np.isnan(y) & ~np.isin(y, (0.0, 1.0))
        if bad_mask.any():
            bad = sorted(set(y[bad_mask].tolist()))[:5]
            raise ConfigError(f"{source}: target column {target!r} must be binary 0/1; "
                              f"{int(bad_mask.sum())} row(s) hold other values, e.g. {bad}")
    y = np.asarray(y, dtype=np.float64)
    missing = np.isnan(y)
    present = set(y[~missing].tolist())
    if present != {0.0, 1.0}:
        raise ConfigError(f"{source}: target column {target!r} must hold both outcomes; "
                          f"found only {sorted(present) or 'missing values'}")
    return y, missing


def _quarantine(df: pd.DataFrame, missing: np.ndarray, target: str, id_column: str, path: Path) -> int:
    """One row per row without a target: row number, id (if any), column, reason (kept local)."""
    pos = np.flatnonzero(missing).astype(np.int64)
    ids = (df[id_column].astype("string").to_numpy()[pos].astype(object) if id_column in df.columns
           else np.full(len(pos), "", dtype=object))
    q = pd.DataFrame({
        "row_number": pos,
        "id": pd.Series(ids, dtype="string").fillna(""),
        "column": pd.Series([target] * len(pos), dtype="string"),
        "reason": pd.Series(["missing target value"] * len(pos), dtype="string"),
        "check": pd.Series(["missing"] * len(pos), dtype="string"),
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    q.to_parquet(path, index=False)
    return len(pos)


def load_table(cfg: ExperimentConfig, out_dir: Path) -> TableData:
    """Read a table, map its target to 0/1 and quarantine rows without a target."""
    d = cfg.data
    source = str(d.source)
    spec = load_feature_specs(d.feature_spec) if d.feature_spec else {}
    target = _resolve_target(d, spec, source)
    raw = read_table(source).reset_index(drop=True)
    y_all, missing = parse_target(raw, target, source, d.target_positive)
    q_path = out_dir / QUARANTINE_FILE
    n_q = _quarantine(raw, missing, target, d.id_column, q_path)
    frame = raw.loc[~missing].drop(columns=[target]).reset_index(drop=True)
    y = y_all[~missing].astype(np.int64)
    if len(frame) < MIN_ROWS:
        raise ConfigError(f"{source}: only {len(frame)} rows with a target; need at least {MIN_ROWS}")
    groups = None
    if d.group_column in frame.columns:
        groups = frame[d.group_column].astype("string").fillna("<missing>").to_numpy(dtype=object)
    return TableData(frame=frame, y=y, target=target, n_read=len(raw), quarantined=n_q,
                     quarantine_path=q_path, spec=spec, groups=groups)


def split_table(y: np.ndarray, groups: np.ndarray | None, holdout_share: float, seed: int
                ) -> tuple[np.ndarray, np.ndarray, str]:
    """Training and hold-out positions (whole groups when there are enough), and how.

    ``holdout_share`` 0: every row trains, none is held out (the runner then judges the
    model on out-of-fold PDs).
    """
    if holdout_share <= 0:
        return np.arange(len(y)), np.arange(0), "none (holdout_share: 0): evidence cross-fitted on every row"
    if groups is not None:
        n_groups = len(pd.unique(groups))
        if n_groups >= MIN_GROUPS_FOR_GROUP_SPLIT:
            frame = pd.DataFrame({"g": groups})
            sp = split_by_village(frame, (1 - holdout_share, 0.0, holdout_share), seed=seed, group_col="g")
            tr, ho = np.sort(np.asarray(sp.train)), np.sort(np.asarray(sp.holdout))
            if len(tr) and len(ho) and len(np.unique(y[tr])) == 2 and len(np.unique(y[ho])) == 2:
                return tr, ho, f"by group ({n_groups} groups)"
        method = f"stratified random (too few groups: {n_groups})"
    else:
        method = "stratified random (no group column)"
    idx = np.arange(len(y))
    tr, ho = train_test_split(idx, test_size=holdout_share, random_state=seed, stratify=y)
    return np.sort(tr), np.sort(ho), method
