"""No object column on the scoring hot path (issue 31 item 1).

What each stage of a decision receives is recorded (the row checks' frame, the features'
frame and their matrix, the rules' frame) while real files are scored through the batch
scorer, and its dtypes are checked: texts Arrow-backed ``str`` (no Python string per
cell), dates ``datetime64[ns]`` (whatever form they arrived in: Parquet ``date32``,
timestamps with or without a zone, CSV text, Python ``date`` objects), numbers numpy.
A change that lets an object column back onto the hot path fails here by column name.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from village_credit.data.schema import SCHEMA

_SPECS = {c.name: c for c in SCHEMA.columns}
_DATES = [c.name for c in SCHEMA.columns if c.dtype == "date"]


def _bad_dtypes(frame: pd.DataFrame) -> dict[str, str]:
    """Columns whose dtype is not the hot path's: object anywhere, a schema text column
    not held in Arrow, a schema date column not ``datetime64[ns]``."""
    bad = {}
    for name, dt in frame.dtypes.items():
        spec = _SPECS.get(str(name))
        if dt == object:
            bad[str(name)] = str(dt)
        elif spec is not None and spec.dtype in ("string", "category"):
            if not (isinstance(dt, pd.StringDtype) and dt.storage == "pyarrow"):
                bad[str(name)] = str(dt)
        elif spec is not None and spec.dtype == "date" and dt != np.dtype("datetime64[ns]"):
            bad[str(name)] = str(dt)
    return bad


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[Any]]]:
    """What the row checks, the features (in and out) and the rules were given."""
    from village_credit.models import decision

    got: dict[str, list[Any]] = {"row_checks": [], "features": [], "matrix": [], "rules": []}
    validate, rules, transform = decision.validate_households, decision.score_rules, decision.DecisionModel._transform

    def validate_spy(df: pd.DataFrame, *a: Any, **k: Any) -> Any:
        got["row_checks"].append(df.dtypes.copy())
        return validate(df, *a, **k)

    def rules_spy(df: pd.DataFrame, *a: Any, **k: Any) -> Any:
        got["rules"].append(df.dtypes.copy())
        return rules(df, *a, **k)

    def transform_spy(self: Any, valid: pd.DataFrame) -> pd.DataFrame:
        got["features"].append(valid.dtypes.copy())
        X = transform(self, valid)
        got["matrix"].append(X.dtypes.copy())
        return X

    monkeypatch.setattr(decision, "validate_households", validate_spy)
    monkeypatch.setattr(decision, "score_rules", rules_spy)
    monkeypatch.setattr(decision.DecisionModel, "_transform", transform_spy)
    yield got


def _check(seen: dict[str, list[Any]], stages: tuple[str, ...] = ("row_checks", "features", "rules")) -> None:
    for stage in stages:
        assert seen[stage], f"stage {stage} was never reached"
        for dtypes in seen[stage]:
            bad = _bad_dtypes(pd.DataFrame({n: pd.Series([], dtype=d) for n, d in dtypes.items()}))
            assert not bad, f"{stage} received columns off the hot path's dtypes: {bad}"
    for dtypes in seen["matrix"]:
        assert set(map(str, dtypes)) == {"float64"}, dict(dtypes)


def _score(store: Any, path: Path, out: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from village_credit.scoring import score_file

    monkeypatch.delenv("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", raising=False)
    # one process, every stage in turn: the spies see every chunk
    return score_file(store.model_uri, path, out, chunk_rows=1000, progress=False, workers=1,
                      read_ahead=0)


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_a_file_scored_reaches_every_stage_without_object_columns(
        scoring_store: Any, seen: dict[str, list[Any]], tmp_path: Path, kind: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    path = scoring_store.parquet if kind == "parquet" else scoring_store.csv
    summary = _score(scoring_store, path, tmp_path / "out", monkeypatch)
    assert summary.reconciled and summary.quarantined == len(scoring_store.bad_rows)
    assert len(seen["row_checks"]) == summary.chunks
    _check(seen)


def test_dates_of_any_arrow_form_reach_the_stages_as_datetime64(
        scoring_store: Any, seen: dict[str, list[Any]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Dates written as timestamps (ms, a zone, ns) and as ``date32`` alike."""
    table = pq.read_table(scoring_store.parquet)
    forms = [pa.timestamp("ms"), pa.timestamp("us", tz="Asia/Shanghai"), pa.timestamp("ns"), pa.date32()]
    for i, name in enumerate(d for d in _DATES if d in table.column_names):
        j = table.column_names.index(name)
        to = forms[i % len(forms)]
        table = table.set_column(j, pa.field(name, to), table.column(j).cast(to))
    path = tmp_path / "timestamps.parquet"
    pq.write_table(table, path)
    assert {str(table.schema.field(d).type) for d in _DATES if d in table.column_names} >= {
        "timestamp[ms]", "timestamp[ns]", "date32[day]"}
    summary = _score(scoring_store, path, tmp_path / "out", monkeypatch)
    assert summary.reconciled
    _check(seen)


def test_python_date_objects_leave_the_row_checks_as_datetime64(seen: dict[str, list[Any]]) -> None:
    """A frame as ``pd.read_parquet`` gives it (dates as Python ``date`` objects, what a
    served pyfunc may get): the row checks convert the dates (through Arrow); what the
    features and the rules receive holds no object column."""
    from village_credit.models.examples import example_model

    model, rows = example_model()
    frame = rows.reset_index(drop=True).copy()
    for name in _DATES:
        if name in frame.columns:
            frame[name] = pd.Series([None if pd.isna(v) else v.date() for v in frame[name]], dtype=object)
    assert isinstance(frame["snapshot_date"].iloc[0], datetime.date)
    decided = model.decide(frame)
    assert (decided["status"] == "scored").all()
    assert _bad_dtypes(pd.DataFrame({n: pd.Series([], dtype=d) for n, d in seen["row_checks"][0].items()}))
    _check(seen, ("features", "rules"))


def test_the_check_itself_names_an_object_column() -> None:
    """The dtype check would fail: an object id, a pandas ``string[python]`` code, a
    day-unit date are each named."""
    frame = pd.DataFrame({
        "household_id": pd.Series(["a"], dtype=object),
        "education": pd.Series(["primary"], dtype="string[python]"),
        "snapshot_date": pd.Series(np.array(["2025-01-01"], dtype="datetime64[s]")),
        "head_age": [40],
    })
    assert set(_bad_dtypes(frame)) == {"household_id", "education", "snapshot_date"}
