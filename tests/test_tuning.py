"""Optuna tuning: grouped CV, reproducibility, pruning, OOT, MLflow logging (small data, few trees)."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from village_credit.errors import ConfigError
from village_credit.models.gbm import LGBMDefaultModel
from village_credit.models.tuning import tune

SPACE = {"learning_rate": ("float", 0.05, 0.3, True), "num_leaves": ("int", 4, 16)}


def _data(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=list("abcd"))
    village = rng.integers(0, 30, n)
    logit = -1.5 + X.a - 0.7 * X.b + 0.3 * (village % 3)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y, np.char.add("V", village.astype(str))


def test_models_do_not_import_mlflow():
    import subprocess

    code = ("import sys, village_credit.models.tuning, village_credit.models.gbm, "
            "village_credit.models.calibration, village_credit.models.features; "
            "print('mlflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_tune_reproducible_with_oot():
    X, y, g = _data()
    X2, y2, _ = _data(800, seed=1)
    kw = dict(n_trials=4, seed=11, cv_folds=3, search_space=SPACE, max_estimators=60,
              early_stopping_rounds=10, oot=(X2, y2))
    r1 = tune(X, y, g, **kw)
    r2 = tune(X, y, g, **kw)
    assert r1.best_params == r2.best_params and r1.best_value == r2.best_value
    pd.testing.assert_series_equal(r1.trials_df["value"], r2.trials_df["value"])
    assert 0.6 < r1.best_value < 1.0 and r1.oot_auc is not None and r1.oot_auc > 0.6
    assert set(SPACE) <= set(r1.best_params) and 1 <= r1.best_params["n_estimators"] <= 60
    LGBMDefaultModel(**r1.best_params)  # directly usable
    np.testing.assert_array_equal(r1.model.predict_proba(X2), r2.model.predict_proba(X2))


def test_tune_prunes_and_uses_init_score():
    X, y, g = _data()
    offset = 1.0 * X.a.to_numpy()  # the offset already knows feature a
    r = tune(X, y, g, n_trials=8, seed=0, init_score=offset, search_space=SPACE, max_estimators=40,
             early_stopping_rounds=5, pruner_startup_trials=2)
    assert r.n_pruned + (r.trials_df.state == "COMPLETE").sum() == 8
    assert len(r.trials_df) == 8


def test_tune_budget_and_space_validation():
    X, y, g = _data(300)
    with pytest.raises(ConfigError, match="budget"):
        tune(X, y, g)
    with pytest.raises(ConfigError, match="not an LGBMDefaultModel parameter"):
        tune(X, y, g, n_trials=1, search_space={"eta": ("float", 0.1, 0.2)})


def test_tune_logs_trials_to_mlflow(tmp_path):
    mlflow = pytest.importorskip("mlflow")
    X, y, g = _data(600)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment("tuning-test")
    try:
        r = tune(X, y, g, n_trials=3, seed=1, search_space=SPACE, max_estimators=20, log_to_mlflow=True)
        runs = mlflow.search_runs(experiment_names=["tuning-test"])
        parent_id = r.extra["mlflow_run_id"]
        children = runs[runs["tags.mlflow.parentRunId"] == parent_id]
        assert len(children) == 3
        assert children["metrics.cv_auc"].notna().all()
        parent = runs[runs.run_id == parent_id].iloc[0]
        assert parent["metrics.best_cv_auc"] == pytest.approx(r.best_value)
        assert "params.best_learning_rate" in runs.columns
    finally:
        mlflow.set_tracking_uri(None)


def test_a_search_replaces_the_baseline_only_when_it_clearly_wins():
    """The baseline is scored on the same folds; a trial must beat it by one SE of the paired fold gaps."""
    from village_credit.models.tuning import _wins

    X, y, g = _data(900)
    kw = dict(n_trials=2, seed=3, cv_folds=3, early_stopping_rounds=None, base_params={"n_estimators": 40})
    # every trial is a single stump: the 40-tree baseline is better, so it is kept
    worse = tune(X, y, g, search_space={"num_leaves": ("categorical", [2]), "n_estimators": ("categorical", [1])},
                 baseline={"learning_rate": 0.1, "num_leaves": 4}, **kw)
    assert worse.selected == "baseline" and worse.best_value == worse.baseline_value
    assert (worse.best_params["num_leaves"], worse.best_params["n_estimators"]) == (4, 40)
    # a one-stump baseline against 40-tree trials: the search wins and is kept
    better = tune(X, y, g, search_space={"learning_rate": ("float", 0.05, 0.2)},
                  baseline={"n_estimators": 1, "num_leaves": 2}, **kw)
    assert better.selected == "tuned" and better.best_value > better.baseline_value
    assert better.best_params["n_estimators"] == 40  # no early stopping: the trees asked for
    assert _wins(np.array([0.80, 0.81, 0.79]), np.array([0.70, 0.71, 0.69]))
    assert not _wins(np.array([0.80, 0.70, 0.75]), np.array([0.74, 0.76, 0.74]))  # ahead on average, by noise
