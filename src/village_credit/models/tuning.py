"""Optuna tuning of :class:`LGBMDefaultModel` with village-grouped cross-validation.

Why this shape: seeded TPE makes a study reproducible (same data, seed and trial
budget -> same trials); the objective is the mean AUC over village-grouped folds
(``splits.village_group_kfold``), so no village informs its own validation;
``MedianPruner`` sees the running mean AUC after each fold and stops poor trials
early, which is where most of the time budget goes. Each fold early-stops on its
validation fold (log-loss); the tuned ``n_estimators`` is the mean best iteration.
That makes the CV AUC slightly optimistic; the out-of-time AUC (second vintage,
fit on all data with the best parameters) is the honest check.

MLflow is optional and imported lazily (``log_to_mlflow=True``): every trial is a
nested run (params, fold AUCs, cv AUC, state) and the parent run gets the best
params and scores. Optuna's MLflowCallback is deprecated, so this is done here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn.metrics import roc_auc_score

from village_credit.errors import ConfigError
from village_credit.models.blend import tree_weights
from village_credit.models.gbm import LGBMDefaultModel
from village_credit.models.splits import village_group_kfold

DEFAULT_SEARCH_SPACE: dict[str, dict[str, Any]] = {
    "learning_rate": {"type": "float", "low": 0.02, "high": 0.3, "log": True},
    "num_leaves": {"type": "int", "low": 4, "high": 64, "log": True},
    "min_child_samples": {"type": "int", "low": 10, "high": 400, "log": True},
    "reg_lambda": {"type": "float", "low": 1e-3, "high": 30.0, "log": True},
    "subsample": {"type": "float", "low": 0.5, "high": 1.0},
    "colsample_bytree": {"type": "float", "low": 0.4, "high": 1.0},
}
"""Default search space; ``n_estimators`` comes from early stopping (up to ``max_estimators``)."""


def small_table_space(n_rows: int) -> dict[str, dict[str, Any]]:
    """A search space that fits a small table (hundreds to a few thousand rows).

    Why not :data:`DEFAULT_SEARCH_SPACE`: on 800 rows its 64-leaf trees and leaves of up
    to 400 rows are models the data cannot support, and early stopping on a 160-row
    validation fold picks a noisy tree count. Here trees are shallow (2-12 leaves),
    leaves hold at most a twentieth of the rows, and ``n_estimators`` is searched with
    the learning rate (no early stopping: tune with ``early_stopping_rounds=None``).

    >>> space = small_table_space(800)
    >>> space["num_leaves"]["high"], space["min_child_samples"]["high"], "n_estimators" in space
    (12, 40, True)
    """
    return {
        "learning_rate": {"type": "float", "low": 0.02, "high": 0.15, "log": True},
        "n_estimators": {"type": "int", "low": 50, "high": 400, "log": True},
        "num_leaves": {"type": "int", "low": 2, "high": 12, "log": True},
        "min_child_samples": {"type": "int", "low": 5, "high": max(10, int(n_rows) // 20), "log": True},
        "reg_lambda": {"type": "float", "low": 1e-3, "high": 30.0, "log": True},
        "subsample": {"type": "float", "low": 0.5, "high": 1.0},
        "colsample_bytree": {"type": "float", "low": 0.4, "high": 1.0},
    }


@dataclass
class TuningResult:
    """What a study found. ``best_params`` are ready for ``LGBMDefaultModel(**best_params)``."""

    best_params: dict[str, Any]
    best_value: float
    study: optuna.Study
    trials_df: pd.DataFrame
    oot_auc: float | None = None
    baseline_value: float | None = None
    """CV AUC of ``baseline`` on the same folds (``None`` without a baseline)."""
    selected: str = "tuned"
    """``"tuned"`` or ``"baseline"``: which parameters ``best_params`` holds (see ``tune``)."""
    model: LGBMDefaultModel | None = None
    """Fitted on all of ``X`` with ``best_params`` when ``oot`` or ``refit`` was asked for."""
    elapsed_s: float = 0.0
    n_pruned: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _normalise_space(space: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Accept ``{"name": {"type": .., "low": .., "high": .., "log": ..}}`` or tuples ``("float", lo, hi, log)``."""
    allowed = set(LGBMDefaultModel().get_params())
    out: dict[str, dict[str, Any]] = {}
    for name, spec in space.items():
        if name not in allowed:
            raise ConfigError(f"search_space: {name!r} is not an LGBMDefaultModel parameter")
        if isinstance(spec, Mapping):
            d = dict(spec)
        elif isinstance(spec, Sequence) and spec and spec[0] in ("float", "int"):
            d = {"type": spec[0], "low": spec[1], "high": spec[2], "log": bool(spec[3]) if len(spec) > 3 else False}
        elif isinstance(spec, Sequence) and spec and spec[0] == "categorical":
            d = {"type": "categorical", "choices": list(spec[1])}
        else:
            raise ConfigError(f"search_space[{name!r}]: expected a mapping with 'type' or a tuple, got {spec!r}")
        t = d.get("type")
        if t in ("float", "int"):
            if "low" not in d or "high" not in d or not d["low"] <= d["high"]:
                raise ConfigError(f"search_space[{name!r}]: needs low <= high, got {d}")
        elif t == "categorical":
            if not d.get("choices"):
                raise ConfigError(f"search_space[{name!r}]: categorical needs non-empty 'choices'")
        else:
            raise ConfigError(f"search_space[{name!r}]: type must be float, int or categorical, got {t!r}")
        out[name] = d
    return out


def _suggest(trial: optuna.Trial, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, d in space.items():
        if d["type"] == "float":
            params[name] = trial.suggest_float(name, float(d["low"]), float(d["high"]), log=bool(d.get("log")))
        elif d["type"] == "int":
            params[name] = trial.suggest_int(name, int(d["low"]), int(d["high"]), log=bool(d.get("log")))
        else:
            params[name] = trial.suggest_categorical(name, list(d["choices"]))
    return params


def _as_frame(X: Any) -> pd.DataFrame:
    return X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X, dtype=np.float64))


def tune(
    X: Any,
    y: Any,
    groups: Any,
    *,
    n_trials: int | None = None,
    timeout: float | None = None,
    seed: int = 0,
    init_score: Any = None,
    cv_folds: int = 3,
    oot: tuple[Any, ...] | None = None,
    log_to_mlflow: bool = False,
    search_space: Mapping[str, Any] | None = None,
    base_params: Mapping[str, Any] | None = None,
    max_estimators: int = 1000,
    early_stopping_rounds: int | None = 30,
    n_jobs: int = 1,
    refit: bool = False,
    pruner_startup_trials: int = 5,
    mlflow_run_name: str = "optuna-tuning",
    baseline: Mapping[str, Any] | None = None,
    sample_weight: Any = None,
    tree_weight_power: float = 1.0,
) -> TuningResult:
    """Tune LightGBM by village-grouped CV AUC; budget is ``n_trials`` and/or ``timeout`` seconds.

    ``base_params`` are fixed model parameters (e.g. ``monotone_constraints``,
    ``interaction_constraints``); ``init_score`` (log-odds per row, e.g. calibrated
    rule log-odds) is used as the offset in every fold and in the AUC.
    ``oot=(X2, y2)`` or ``(X2, y2, init_score2)``: after the study, fit on all of
    ``X`` with the best parameters and report the AUC on it (``oot_auc``).
    Same inputs and ``seed`` with a trial budget (not a timeout) -> same trials.
    ``sample_weight``: per-row weights of the fit (e.g. exploration design weights); each
    fold's trees are fitted and its AUC computed with them, so the search optimises the
    objective the final model is fitted on; ``tree_weight_power``: the folds' trees see
    ``sample_weight ** tree_weight_power`` (as the final trees), the AUC the full weights.

    ``early_stopping_rounds=None``: no early stopping; each trial fits ``n_estimators``
    trees (from ``search_space`` or ``base_params``). ``baseline`` (parameters over
    ``base_params``, e.g. the untuned defaults) is scored on the same folds first, and
    the best trial replaces it only when it wins by more than one standard error of the
    paired fold differences: on small tables the best of many noisy CV scores is mostly
    luck, and a search must not lose to the defaults it started from
    (``selected`` says which won).

    Examples
    --------
    A three-trial budget on four columns (a real study runs a hundred trials or more):

    >>> from village_credit.data import GeneratorConfig, generate_households
    >>> from village_credit.models import tune
    >>> hh = generate_households(GeneratorConfig(n_households=300, seed=7))
    >>> X = hh[["head_age", "land_mu", "assets_yuan", "income_farming"]].astype(float)
    >>> result = tune(X, hh["default_12m"], hh["village_code"], n_trials=3, seed=0, cv_folds=2,
    ...               max_estimators=50, early_stopping_rounds=10)
    >>> len(result.trials_df), sorted(result.best_params)[:3]
    (3, ['colsample_bytree', 'learning_rate', 'min_child_samples'])
    """
    if n_trials is None and timeout is None:
        raise ConfigError("tune: give a budget, n_trials and/or timeout (seconds)")
    if n_trials is not None and n_trials < 1:
        raise ConfigError(f"tune: n_trials must be >= 1, got {n_trials}")
    Xf = _as_frame(X)
    yy = np.asarray(y)
    g = np.asarray(groups)
    if not len(Xf) == len(yy) == len(g):
        raise ConfigError(f"tune: X has {len(Xf)} rows, y {len(yy)}, groups {len(g)}")
    init = None if init_score is None else np.asarray(init_score, dtype=np.float64).ravel()
    w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64).ravel()
    if w is not None and len(w) != len(yy):
        raise ConfigError(f"tune: sample_weight has {len(w)} rows, y {len(yy)}")
    w_fit = tree_weights(w, tree_weight_power)
    space = _normalise_space(search_space if search_space is not None else DEFAULT_SEARCH_SPACE)
    base = {"n_estimators": max_estimators, "random_state": seed, "n_jobs": n_jobs, **(base_params or {})}
    _normalise_space({k: ("categorical", [v]) for k, v in base.items()})  # names must be model params
    folds = village_group_kfold(yy, g, n_splits=cv_folds, seed=seed)

    def fold_fit(params: dict[str, Any], tr: np.ndarray, va: np.ndarray) -> tuple[float, int]:
        i_tr = None if init is None else init[tr]
        i_va = None if init is None else init[va]
        m = LGBMDefaultModel(**{**params, "early_stopping_rounds": early_stopping_rounds or None})
        m.fit(Xf.iloc[tr], yy[tr], init_score=i_tr, sample_weight=None if w_fit is None else w_fit[tr],
              eval_set=[(Xf.iloc[va], yy[va], i_va)] if early_stopping_rounds else None)
        auc = roc_auc_score(yy[va], m.decision_function(Xf.iloc[va], i_va),
                            sample_weight=None if w is None else w[va])
        return float(auc), int(m.best_iteration_)

    base_fold_auc = None
    if baseline is not None:
        base_fold_auc = np.array([fold_fit({**base, **dict(baseline)}, tr, va)[0] for tr, va in folds])

    def objective(trial: optuna.Trial) -> float:
        params = {**base, **_suggest(trial, space)}
        aucs: list[float] = []
        iters: list[int] = []
        for k, (tr, va) in enumerate(folds):
            auc, it = fold_fit(params, tr, va)
            aucs.append(auc)
            iters.append(it)
            trial.set_user_attr("fold_auc", list(aucs))
            trial.set_user_attr("best_iterations", list(iters))
            trial.report(float(np.mean(aucs)), k)
            if k < len(folds) - 1 and trial.should_prune():
                raise optuna.TrialPruned()
        return float(np.mean(aucs))

    sampler = optuna.samplers.TPESampler(seed=seed)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=pruner_startup_trials, n_warmup_steps=0)

    mlflow = None
    callbacks: list[Any] = []
    if log_to_mlflow:
        import mlflow as _mlflow  # lazy: models must not need mlflow at import time (test_tuning)

        mlflow = _mlflow
        callbacks.append(_mlflow_trial_logger(mlflow))

    t0 = time.perf_counter()
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    parent = None
    try:
        if mlflow is not None:
            parent = mlflow.start_run(run_name=mlflow_run_name, nested=mlflow.active_run() is not None)
            mlflow.log_params({"tuning_seed": seed, "tuning_cv_folds": cv_folds, "tuning_n_trials": n_trials,
                               "tuning_timeout_s": timeout, "tuning_n_rows": len(Xf),
                               "tuning_init_score": init is not None})
        study.optimize(objective, n_trials=n_trials, timeout=timeout, callbacks=callbacks)
        completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if not completed:
            raise ConfigError("tune: no trial completed within the budget; raise n_trials or timeout")
        best = study.best_trial
        best_params = {**base, **best.params}
        best_params["n_estimators"] = max(1, int(round(float(np.mean(best.user_attrs["best_iterations"])))))
        best_params.pop("early_stopping_rounds", None)
        best_value, selected = float(best.value), "tuned"
        if base_fold_auc is not None and not _wins(np.asarray(best.user_attrs["fold_auc"]), base_fold_auc):
            best_params = {k: v for k, v in {**base, **dict(baseline or {})}.items() if k != "early_stopping_rounds"}
            best_value, selected = float(base_fold_auc.mean()), "baseline"
        result = TuningResult(
            best_params=best_params, best_value=best_value, study=study,
            trials_df=study.trials_dataframe(), elapsed_s=0.0,
            n_pruned=sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials),
            baseline_value=None if base_fold_auc is None else float(base_fold_auc.mean()), selected=selected,
        )
        if oot is not None or refit:
            model = LGBMDefaultModel(**best_params).fit(Xf, yy, init_score=init)
            result.model = model
            if oot is not None:
                Xo, yo = _as_frame(oot[0]), np.asarray(oot[1])
                io = oot[2] if len(oot) > 2 else None
                result.oot_auc = float(roc_auc_score(yo, model.decision_function(Xo, io)))
        result.elapsed_s = time.perf_counter() - t0
        if mlflow is not None:
            mlflow.log_params({f"best_{k}": _param_str(v) for k, v in best.params.items()})
            mlflow.log_param("best_n_estimators", best_params["n_estimators"])
            metrics = {"best_cv_auc": result.best_value, "n_trials_done": len(study.trials),
                       "n_trials_pruned": result.n_pruned, "tuning_elapsed_s": result.elapsed_s}
            if result.oot_auc is not None:
                metrics["oot_auc"] = result.oot_auc
            mlflow.log_metrics(metrics)
            result.extra["mlflow_run_id"] = parent.info.run_id if parent is not None else None
        return result
    finally:
        optuna.logging.set_verbosity(verbosity)
        if parent is not None:
            mlflow.end_run()  # type: ignore[union-attr]


def _wins(trial_auc: np.ndarray, baseline_auc: np.ndarray) -> bool:
    """Does a trial beat the baseline by more than one standard error of the paired fold differences?"""
    d = np.asarray(trial_auc, dtype=np.float64) - np.asarray(baseline_auc, dtype=np.float64)
    if len(d) < 2:
        return bool(d.mean() > 0)
    return bool(d.mean() > d.std(ddof=1) / np.sqrt(len(d)))


def _param_str(v: Any) -> Any:
    return v if isinstance(v, int | float | str | bool) else str(v)


def _mlflow_trial_logger(mlflow: Any):
    """An Optuna callback logging each finished trial as a nested MLflow run."""

    def log(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        with mlflow.start_run(run_name=f"trial-{trial.number:03d}", nested=True):
            mlflow.log_params({k: _param_str(v) for k, v in trial.params.items()})
            mlflow.set_tags({"optuna_trial": trial.number, "state": trial.state.name})
            for step, auc in enumerate(trial.user_attrs.get("fold_auc", [])):
                mlflow.log_metric("fold_auc", auc, step=step)
            if trial.value is not None and math.isfinite(trial.value):
                mlflow.log_metric("cv_auc", trial.value)
            if trial.duration is not None:
                mlflow.log_metric("duration_s", trial.duration.total_seconds())

    return log
