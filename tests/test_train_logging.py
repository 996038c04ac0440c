"""The run's context goes to MLflow in as few round trips as MLflow allows, and nothing is lost.

Why: on a small table `train`'s time is mostly fixed costs, and each MLflow call is a
store transaction; params and tags went in three calls (a look-up and two batches) where
one batch holds them (issue 26, `train` within 3x of its estimator).
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from village_credit.registry.examples import mlflow_state_restored
from village_credit.registry.store import configure
from village_credit.registry.tracking import log_run_context


@pytest.fixture()
def store(tmp_path: Path):
    with mlflow_state_restored():
        configure(f"sqlite:///{tmp_path}/mlflow.db", artifact_root=tmp_path / "artifacts")
        yield mlflow.tracking.MlflowClient()


def _counted(monkeypatch: pytest.MonkeyPatch, name: str) -> list[dict]:
    """Record each call of ``MlflowClient.<name>`` and let it through to the real store."""
    calls: list[dict] = []
    real = getattr(mlflow.tracking.MlflowClient, name)

    def spy(self, *args, **kwargs):
        calls.append(kwargs)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(mlflow.tracking.MlflowClient, name, spy)
    return calls


def test_params_and_tags_go_in_one_batch(store, monkeypatch: pytest.MonkeyPatch) -> None:
    config = {"model": {f"p{i}": i for i in range(60)}, "name": "t"}
    batches, lookups = _counted(monkeypatch, "log_batch"), _counted(monkeypatch, "get_run")
    with mlflow.start_run() as run:
        tags = log_run_context(config, 7, None, extra_tags={"data_source": "table"}, new_run=True)
    assert len(batches) == 1 and not lookups
    got = store.get_run(run.info.run_id).data
    assert got.params["model.p59"] == "59" and got.params["seed"] == "7" and len(got.params) == 62
    assert got.tags["data_source"] == "table" == tags["data_source"]
    assert got.tags["seed"] == "7" and got.tags["git_commit"]


def test_more_than_a_batch_of_params_and_a_rerun_logs_only_what_is_new(store, monkeypatch) -> None:
    config = {"grid": {f"p{i}": i for i in range(230)}}
    batches = _counted(monkeypatch, "log_batch")
    with mlflow.start_run() as run:
        log_run_context(config, 1, None)
        assert len(batches) == 3  # 231 params: 100 + 100 + 31, the tags with the first
        log_run_context(config, 1, None)  # an existing run: same params are not logged again
    assert sum(len(b.get("params") or []) for b in batches) == 231
    assert len(store.get_run(run.info.run_id).data.params) == 231
