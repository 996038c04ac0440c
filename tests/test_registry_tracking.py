"""Run context: fingerprint, versions, commit, and what gets logged (no raw rows)."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml

from village_credit.errors import ConfigError
from village_credit.registry.store import configure, default_tracking_uri
from village_credit.registry.tracking import (
    data_fingerprint,
    git_commit,
    library_versions,
    log_run_context,
    strip_personal_columns,
)


def frame() -> pd.DataFrame:
    return pd.DataFrame({
        "household_id": ["h1", "h2", "h3"],
        "age": np.array([30, 45, 61], dtype="int64"),
        "income": [1.5, 2.0, np.nan],
        "snapshot_date": pd.to_datetime(["2024-01-31", None, "2024-01-31"]),
        "formerly_poor": np.array([True, False, True]),
    })


def test_fingerprint_is_stable_and_content_sensitive() -> None:
    a = data_fingerprint(frame())
    assert a == data_fingerprint(frame()) and a.startswith("vc-fp-1:")
    assert data_fingerprint(frame().set_index("household_id", drop=False)) == a  # index ignored
    changed = frame()
    changed.loc[1, "age"] = 46
    assert data_fingerprint(changed) != a
    assert data_fingerprint(frame().iloc[::-1]) != a  # order-sensitive, documented
    assert data_fingerprint(frame()[["age", "household_id", "income", "snapshot_date",
                                     "formerly_poor"]]) != a
    assert data_fingerprint(frame().rename(columns={"age": "age_years"})) != a
    assert data_fingerprint(frame().astype({"household_id": object})) == a  # pandas 2 vs 3 strings
    assert data_fingerprint(frame().head(0)) != data_fingerprint(frame().head(0)[["age"]])


def test_fingerprint_handles_list_cells_and_rejects_non_frames() -> None:
    df = pd.DataFrame({"codes": [["a", "b"], ["c"]]})
    assert data_fingerprint(df) != data_fingerprint(pd.DataFrame({"codes": [["a"], ["c"]]}))
    with pytest.raises(ConfigError):
        data_fingerprint([1, 2])  # type: ignore[arg-type]


def test_versions_and_commit() -> None:
    v = library_versions()
    assert v["mlflow"] == mlflow.__version__ and "pandas" in v and "python" in v
    sha = git_commit()
    assert sha is None or len(sha) == 40
    assert git_commit("/") is None


def test_strip_personal_columns() -> None:
    df = frame().assign(name="x", head_name="y", phone="1", id_number="2", home_address="z")
    assert list(strip_personal_columns(df).columns) == list(frame().columns)


def test_default_tracking_uri(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert default_tracking_uri(tmp_path) == f"sqlite:///{tmp_path.resolve().as_posix()}/mlruns/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking:5000")
    assert default_tracking_uri(tmp_path) == "http://tracking:5000"


def test_log_run_context_logs_hashes_not_rows(tmp_path: Path) -> None:
    old = mlflow.get_tracking_uri()
    try:
        exp_id = configure(f"sqlite:///{tmp_path}/mlflow.db")
        exp = mlflow.get_experiment(exp_id)
        assert exp.artifact_location == (tmp_path / "artifacts").resolve().as_posix()
        df = frame().assign(name=["Zhang San", "Li Si", "Wang Wu"])
        config = {"model": {"num_leaves": 15}, "registry": {"model_name": "vc"},
                  "contact_phone": "13800000000"}
        with mlflow.start_run() as run:
            tags = log_run_context(config, 7, df)
        data = mlflow.get_run(run.info.run_id).data
        assert data.params["model.num_leaves"] == "15" and data.params["seed"] == "7"
        assert data.params["contact_phone"] == "<redacted>"
        assert data.tags["data_fingerprint"] == data_fingerprint(df) == tags["data_fingerprint"]
        assert data.tags["lib.mlflow"] == mlflow.__version__
        assert data.tags["git_commit"]
        logged = yaml.safe_load(mlflow.artifacts.load_text(
            f"runs:/{run.info.run_id}/config/config.yaml"))
        assert logged["model"] == {"num_leaves": 15}
        everything = " ".join([*data.params.values(), *data.tags.values(), str(logged)])
        assert "Zhang San" not in everything and "13800000000" not in everything
        with pytest.raises(ConfigError):
            log_run_context(config, 7, df)  # no active run
    finally:
        mlflow.set_tracking_uri(old)
