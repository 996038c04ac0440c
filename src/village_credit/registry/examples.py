"""Throwaway MLflow stores and a tiny registered model for the ``>>>`` examples.

Importable (so an example pastes into a notebook as written), not in ``__all__``. The docstring examples of ``registry`` and ``scoring`` use it so
that each stays a few lines and about a second:

* :class:`ExampleStore`: a sqlite store (artifacts beside it) in its own temporary
  folder, configured as *the* MLflow store while open. ``close()`` brings back the
  previous tracking and registry URIs and active experiment, and deletes the folder;
  temporary folders made meanwhile (the download folder of ``load_model``) are inside it.
* :func:`mlflow_state_restored`: the same restoring, for an example that configures a
  store itself.

The empty store is a copy of the migrated template ``configure`` keeps in the user's
cache (``registry.store.seed_new_store``); the tiny decision model (the Jinxiang policy
blended with 5 trees fitted on 300 generated households) is made once per process and
logged afresh into each store.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from village_credit.data.generator import GeneratorConfig, generate_households
from village_credit.models.blend import fit_blend
from village_credit.registry.loading import version_digest
from village_credit.registry.promotion import promote
from village_credit.registry.pyfunc_model import log_decision_model
from village_credit.registry.store import configure
from village_credit.registry.verdict import record_validation, run_tags

_DB = "mlflow.db"
_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID")


@functools.cache
def _cache_dir() -> Path:
    """A folder for this process's trained model (deleted at exit)."""
    tmp = tempfile.TemporaryDirectory(prefix="vc-examples-")
    _cache_dir.keep = tmp  # type: ignore[attr-defined]  # lives until the interpreter exits
    return Path(tmp.name)


@functools.cache
def tiny_model() -> tuple[Path, pd.DataFrame]:
    """A small saved ``DecisionModel`` and an input example of 5 households."""
    df = generate_households(GeneratorConfig(n_households=300, seed=3))
    tr, ca = df.iloc[:200], df.iloc[200:]
    dm = fit_blend(tr, tr["default_12m"], ca, ca["default_12m"], policy="jinxiang_2022",
                   strategy="additive_points", gbm_params={"n_estimators": 5, "num_leaves": 4},
                   seed=0)
    return dm.save(_cache_dir() / "tiny_model"), dm.input_example(5)


def passing_evidence() -> dict:
    """Gate evidence within every default threshold (as validation and the audit log it)."""
    return {
        "discrimination": {"auc": 0.80, "ks": 0.45},
        "calibration": {"ece": 0.01, "hosmer_lemeshow_p": 0.40},
        "stability": {"score_psi": 0.02, "max_feature_psi": 0.05},
        "fairness": {"equal_risk": {"max_gap_approval": 0.01, "max_gap_line": 0.02,
                                    "max_excess_approval": 0.005, "max_excess_line": 0.01,
                                    "rules": {"max_gap_approval": 0.40}},
                     "demographic_parity": {"min_ratio": 0.92}},
    }


class _MlflowState:
    """MLflow's process-wide store settings, captured now and put back by ``restore()``."""

    def __init__(self) -> None:
        self.tracking = mlflow.tracking._tracking_service.utils._tracking_uri
        self.registry = mlflow.tracking._model_registry.utils._registry_uri
        self.experiment = mlflow.tracking.fluent._active_experiment_id
        self.env = {k: os.environ.get(k) for k in _ENV}  # MLflow mirrors the settings here

    def restore(self) -> None:
        mlflow.set_tracking_uri(self.tracking)  # None: back to the environment / default
        mlflow.tracking._model_registry.utils._registry_uri = self.registry
        mlflow.tracking.fluent._active_experiment_id = self.experiment
        for k, v in self.env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def mlflow_state_restored() -> Iterator[None]:
    """Put MLflow's tracking/registry URIs and active experiment back on exit."""
    state = _MlflowState()
    try:
        yield
    finally:
        state.restore()


class ExampleStore:
    """A throwaway sqlite MLflow store, configured as the current one until ``close()``."""

    def __init__(self) -> None:
        _cache_dir()  # now, while tempfile's folder is the system's: the tiny model outlives the store
        self._tmp = tempfile.TemporaryDirectory(prefix="vc-example-")
        self.root = Path(self._tmp.name)
        self.uri = f"sqlite:///{(self.root / _DB).as_posix()}"
        self._state = _MlflowState()
        configure(self.uri)  # a copy of the cached empty store, see seed_new_store
        self.client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        self._tempdir, tempfile.tempdir = tempfile.tempdir, str(self.root)

    def register(self, name: str = "demo") -> str:
        """Log the tiny model as a new, ungated version of ``name``; returns the version."""
        model_dir, example = tiny_model()
        with mlflow.start_run():
            info = log_decision_model(model_dir, input_example=example, registered_model_name=name)
        return str(info.registered_model_version)

    def champion(self, name: str = "demo") -> str:
        """Register the tiny model and make it ``@champion`` (by override: its gates are
        the subject of ``promote``'s example, not of the examples that load it)."""
        version = self.register(name)
        promote(name, version, {}, override_reason="example: the gates are shown in promote",
                override_by="example", override_until="2099-12-31", client=self.client)
        return version

    def validate(self, name: str, version: str, verdict: str, validator: str = "A. Validator") -> None:
        """Record a validator's verdict on ``version`` (what ``validate`` writes after its
        statistics; the statistics are the subject of ``validation.kit``'s examples)."""
        run = self.client.create_run("0", tags=run_tags(
            name, version, model_uri=f"models:/{name}/{version}",
            artifact_sha256=version_digest(name, version, client=self.client), validator=validator,
            sample_fingerprint="vc-fp-1:example-sample", training_fingerprint=None,
            purpose="example validation"))
        record_validation(self.client, run.info.run_id, name, version,
                          {"verdict": verdict, "reasons": []}, validator=validator)
        self.client.set_terminated(run.info.run_id)

    def close(self) -> None:
        """Restore the previous MLflow store and temporary folder; delete this store's folder."""
        tempfile.tempdir = self._tempdir
        self._state.restore()
        self._tmp.cleanup()
