"""Shared by the scoring tests: ONE small registered model (``@champion``) per session.

The model is trained (``fit_blend``), logged as the pyfunc from code, registered as
``village-credit`` version 1 in a real sqlite MLflow store under a temp dir, and
given the ``@champion`` alias. Each test file's session-scoped fixture calls
:func:`scoring_env`, which builds it once per process and caches it here.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

NAME = "village-credit"
MODEL_URI = f"models:/{NAME}@champion"
TRUTH = ["true_pd", "default_12m", "granted_hist", "outcome_observed"]


@dataclass
class ScoringEnv:
    root: Path
    tracking_uri: str
    model_uri: str
    version: str
    households: pd.DataFrame  # the scoring input (with injected bad rows)
    parquet: Path
    csv: Path
    bad_rows: dict[int, str]  # row number -> column with the problem

    def env(self) -> dict[str, str]:
        """Environment for a subprocess running the CLI against this store."""
        src = str(Path(__file__).resolve().parents[1] / "src")
        return {**os.environ, "MLFLOW_TRACKING_URI": self.tracking_uri,
                "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
                "PYSPARK_PYTHON": sys.executable}


_CACHE: dict[str, ScoringEnv] = {}


def scoring_households(n: int = 3000, seed: int = 11) -> tuple[pd.DataFrame, dict[int, str]]:
    """Generated households (truth dropped) with a few bad rows of each kind."""
    from village_credit.data.generator import GeneratorConfig, generate_households

    df = generate_households(GeneratorConfig(n_households=n, seed=seed))
    df = df.drop(columns=[c for c in TRUTH if c in df.columns])
    head_age = np.array(df["head_age"], dtype="float64")  # np.array copies: writable
    head_age[[5, n // 2]] = np.nan
    size = np.array(df["household_size"])
    size[17] = -2
    education = np.array(df["education"], dtype=object)
    education[n - 3] = "doctorate_of_magic"
    hid = np.array(df["household_id"], dtype=object)
    hid[41] = hid[40]  # duplicate within one chunk: both copies are quarantined
    df = df.assign(head_age=head_age, household_size=size, education=education, household_id=hid)
    bad = {5: "head_age", n // 2: "head_age", 17: "household_size", n - 3: "education", 40: "household_id",
           41: "household_id"}
    return df, bad


def scoring_env(base: Path) -> ScoringEnv:
    """Build (once per process) the registered model and the scoring input files."""
    if "env" in _CACHE:
        return _CACHE["env"]
    import mlflow
    from mlflow import MlflowClient

    from village_credit.data.generator import GeneratorConfig, generate_households
    from village_credit.data.io import write_parquet
    from village_credit.models.blend import fit_blend
    from village_credit.registry import configure
    from village_credit.registry.pyfunc_model import log_decision_model

    base.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{base.as_posix()}/mlflow.db"
    configure(uri)
    train = generate_households(GeneratorConfig(n_households=1500, seed=3))
    tr, ca = train.iloc[:1000], train.iloc[1000:]
    dm = fit_blend(tr, tr["default_12m"], ca, ca["default_12m"], policy="jinxiang_2022",
                   strategy="additive_points", gbm_params={"n_estimators": 20, "num_leaves": 7}, seed=0)
    dm.save(base / "decision_model")
    with mlflow.start_run():
        info = log_decision_model(base / "decision_model", input_example=dm.input_example(5),
                                  registered_model_name=NAME)
    version = str(info.registered_model_version)
    # promoted through the real promotion path (the scorer refuses an ungated version);
    # the gates themselves are the subject of the registry tests, not of these
    from village_credit.registry import promote

    promote(NAME, version, {}, override_reason="scoring tests: gates are tested in test_registry_*",
            client=MlflowClient(tracking_uri=uri, registry_uri=uri))

    households, bad = scoring_households()
    parquet = write_parquet(households, base / "households.parquet")
    csv = base / "households.csv"
    out = households.copy()
    for c in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[c].dtype):
            out[c] = out[c].dt.strftime("%Y-%m-%d")
    out.to_csv(csv, index=False)
    env = ScoringEnv(root=base, tracking_uri=uri, model_uri=MODEL_URI, version=version,
                     households=households, parquet=parquet, csv=csv, bad_rows=bad)
    _CACHE["env"] = env
    return env


def assert_every_row_once(out_dir: Path, n_rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each input row number appears exactly once across decisions + quarantined rows."""
    from village_credit.scoring import read_decisions, read_quarantine_rows

    dec = read_decisions(out_dir)
    bad = read_quarantine_rows(out_dir)
    rows = np.concatenate([dec["row_number"].to_numpy(np.int64), bad["row_number"].to_numpy(np.int64)])
    assert len(rows) == n_rows, (len(dec), len(bad), n_rows)
    assert np.array_equal(np.sort(rows), np.arange(n_rows))
    return dec, bad
