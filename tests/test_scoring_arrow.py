"""Arrow-native decisions (issue 31 item 1): the Arrow face of ``decide`` and the parts
written from it are what the pandas face and the pandas writer give, value for value
and byte for byte."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st


@functools.lru_cache(maxsize=1)
def _model_and_rows() -> tuple[object, pd.DataFrame]:
    from village_credit.models.examples import example_model

    return example_model()


def _with_bad_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows read as a Parquet file gives them, with a missing age, an unknown education
    and a repeated id: quarantined rows among the scored ones."""
    from village_credit.data.io import table_to_frame

    bad = rows.reset_index(drop=True).copy()
    bad.loc[1, "head_age"] = np.nan
    bad["education"] = bad["education"].astype(object)
    bad.loc[4, "education"] = "doctorate"
    bad.loc[7, "household_id"] = bad.loc[2, "household_id"]
    return table_to_frame(pa.Table.from_pandas(bad, preserve_index=False))


@pytest.mark.parametrize("bad", [False, True])
def test_decide_arrow_is_decide_as_from_pandas_converts_it(bad: bool) -> None:
    model, rows = _model_and_rows()
    frame = _with_bad_rows(rows) if bad else rows.reset_index(drop=True)
    decided = model.decide(frame)
    want = pa.Table.from_pandas(decided, preserve_index=False).replace_schema_metadata(None)
    got = model.decide_arrow(frame)
    assert got.schema == want.schema
    assert got.equals(want)
    assert (decided["status"] == "quarantined").sum() == (4 if bad else 0)  # rows 1, 4 and both copies of the id
    # the pandas face keeps its text columns as Arrow-backed ``str``, never objects
    assert not [c for c in decided.columns if decided[c].dtype == object]


def test_decide_arrow_reads_an_arrow_table_as_a_file_read_does() -> None:
    from village_credit.data.io import table_to_frame

    model, rows = _model_and_rows()
    table = pa.Table.from_pandas(_with_bad_rows(rows), preserve_index=False)
    assert model.decide_arrow(table).equals(model.decide_arrow(table_to_frame(table)))
    assert model.decide_arrow(table.to_batches(max_chunksize=10_000)[0]).num_rows == table.num_rows


@pytest.mark.parametrize("empty", [False, True])
def test_a_table_part_is_the_bytes_of_its_frame_part(tmp_path: Path, empty: bool) -> None:
    """The writer's pandas metadata for an Arrow table is the one ``from_pandas`` writes
    for the frame, so a part written from Arrow is byte-identical to the frame's."""
    from village_credit.scoring.batch import decisions_frame
    from village_credit.scoring.outputs import atomic_write_frame

    model, rows = _model_and_rows()
    table = model.decide_arrow(_with_bad_rows(rows))
    table = table.add_column(0, "row_number", pa.array(np.arange(table.num_rows, dtype=np.int64)))
    if empty:
        table = table.slice(0, 0)
    meta = {"village_credit.model_name": "m"}
    atomic_write_frame(decisions_frame(table), meta, tmp_path / "frame.parquet")
    atomic_write_frame(table, meta, tmp_path / "table.parquet")
    assert (tmp_path / "frame.parquet").read_bytes() == (tmp_path / "table.parquet").read_bytes()


def test_score_chunk_is_its_arrow_core_as_pandas(scoring_store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The registered pyfunc (the model's own logged code) is called on its Arrow face:
    the pandas ``score_chunk`` is that table as pandas, and both are what the pyfunc's
    ``predict`` gives (same decisions, same quarantine)."""
    import pyarrow.parquet as pq

    from village_credit.data.io import table_to_frame
    from village_credit.scoring.batch import (
        PyfuncScorer,
        decisions_frame,
        load_scoring_model,
        score_chunk,
        score_chunk_arrow,
    )

    # MLflow's in-process serving checks (other tests) can leave this set: predict would answer as the server does
    monkeypatch.delenv("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", raising=False)
    model, _ = load_scoring_model(scoring_store.model_uri)
    scorer = PyfuncScorer(model)
    assert scorer._arrow is not None  # a decision pyfunc: its Arrow face is used
    frame = table_to_frame(pq.read_table(scoring_store.parquet).slice(0, 200))
    table, problems_a, bad_a = score_chunk_arrow(scorer, frame, 0)
    decisions, problems, bad_rows = score_chunk(scorer, frame, 0)
    pd.testing.assert_frame_equal(decisions_frame(table), decisions)
    pd.testing.assert_frame_equal(problems_a, problems)
    pd.testing.assert_frame_equal(bad_a, bad_rows)
    assert sorted(bad_rows["row_number"]) == [5, 17, 40, 41]
    assert decisions["household_id"].dtype == "str"
    # the pyfunc's own predict (MLflow's path) decides the same
    via_mlflow = model.predict(frame)
    kept = via_mlflow["status"].to_numpy() == "scored"
    pd.testing.assert_frame_equal(decisions.drop(columns=["row_number", "village_code", "township_code"]),
                                  via_mlflow.loc[kept].reset_index(drop=True))
    # the Arrow face is the pyfunc's own method, with predict's checks: a missing input is refused alike
    inner = model.unwrap_python_model()
    assert scorer._arrow == inner.predict_arrow
    needed = inner.required_inputs[0]
    with pytest.raises(Exception, match=needed) as arrow_err:
        scorer._arrow(frame.drop(columns=[needed]))
    with pytest.raises(type(arrow_err.value), match=needed):
        model.predict(frame.drop(columns=[needed]))
    # a pyfunc without the method (another model, or one logged before it) keeps its predict
    from village_credit.scoring.batch import _arrow_face

    assert _arrow_face(object()) is None and _arrow_face(None) is None


@settings(max_examples=40, deadline=None)
@given(ids=st.lists(st.sampled_from(["a", "b", "c", "", None]), max_size=25),
       dtype=st.sampled_from(["str", "object"]))
def test_repeated_ids_are_pandas_duplicated(ids: list, dtype: str) -> None:
    from village_credit.data.validation import _repeated

    col = pd.Series(ids, dtype=dtype)
    want = (col.duplicated(keep=False) & col.notna()).to_numpy(bool)
    np.testing.assert_array_equal(_repeated(col), want)
    if len(ids) > 1:  # and over an id column of several Arrow chunks
        two = pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array(
            [pa.array(ids[:1], pa.large_string()), pa.array(ids[1:], pa.large_string())]),
            dtype=pd.StringDtype("pyarrow", na_value=np.nan)))
        np.testing.assert_array_equal(_repeated(two), (two.duplicated(keep=False) & two.notna()).to_numpy(bool))


def test_features_frame_is_built_once_in_the_model_order() -> None:
    from village_credit.models.features import build_household_features

    model, rows = _model_and_rows()
    got = model.features.transform(rows)
    want = build_household_features(rows, include_protected=model.features.include_protected,
                                    elderly_pension=model.features.elderly_pension)
    pd.testing.assert_frame_equal(got, want[model.features.feature_names_out_])


def test_a_model_without_the_arrow_face_writes_the_same_files(scoring_store, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A decision model logged before ``predict_arrow`` existed is scored through its
    ``predict`` (the frame converted to Arrow): its decisions, quarantine and programme
    files are the bytes the Arrow face writes."""
    from village_credit.scoring import batch
    from village_credit.scoring.batch import score_file

    monkeypatch.delenv("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", raising=False)
    score_file(scoring_store.model_uri, scoring_store.parquet, tmp_path / "arrow", workers=1)
    monkeypatch.setattr(batch, "_arrow_face", lambda inner: None)
    score_file(scoring_store.model_uri, scoring_store.parquet, tmp_path / "predict", workers=1)
    files = sorted(p.relative_to(tmp_path / "arrow") for p in (tmp_path / "arrow").rglob("*.parquet"))
    assert any(f.parts[0] == "decisions" for f in files) and any(f.parts[0] == "quarantine" for f in files)
    for f in files:
        assert (tmp_path / "arrow" / f).read_bytes() == (tmp_path / "predict" / f).read_bytes(), f
