"""Check a whole experiment configuration at load, before any data or MLflow run exists.

Why apart from :mod:`village_credit.config`: the dataclasses say what keys exist;
this module says what values they may hold. Every key is checked for its type
(from the dataclass annotations, so a new key is type-checked without a line here),
then ranges, choices, dates, the policy name and file paths. The first problem
raises :class:`ConfigError` naming the file and the dotted key, e.g.
``exp.yaml: data.n_households must be an integer, got 'many'`` -- never a
``TypeError`` an hour into tuning, never a FAILED MLflow run.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

from village_credit.errors import ConfigError, VillageCreditError

__all__ = ["validate_config"]


def _type_name(tp: Any) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false",
            dict: "a mapping", list: "a list"}.get(tp, getattr(tp, "__name__", str(tp)))


def _check_value(value: Any, tp: Any, key: str, source: str) -> Any:
    """``value`` converted to ``tp`` where that is lossless (2000.0 -> 2000, '1e-3' -> 0.001)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _check_value(value, a, key, source)
            except ConfigError as exc:
                errors.append(exc)
        names = " or ".join(_type_name(a) for a in args if a is not type(None))
        raise ConfigError(f"{source}: {key} must be {names}"
                          + (" or null" if type(None) in args else "") + f", got {value!r}")
    if origin is not None:  # dict[str, Any], list[...]
        tp = origin
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)  # YAML reads 1e-3 (no dot) as text
            except ValueError:
                pass
    elif isinstance(tp, type):
        if isinstance(value, tp):
            return value
    else:
        return value
    raise ConfigError(f"{source}: {key} must be {_type_name(tp)}, got {value!r}")


def _check_types(obj: Any, where: str, source: str) -> None:
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        key = f"{where}.{f.name}" if where else f.name
        value = getattr(obj, f.name)
        tp = hints.get(f.name, Any)
        if dataclasses.is_dataclass(tp):
            _check_types(value, key, source)
            continue
        setattr(obj, f.name, _check_value(value, tp, key, source))


def _range(source: str, key: str, value: float | None, lo: float | None = None, hi: float | None = None,
           lo_open: bool = False, hi_open: bool = False) -> None:
    if value is None:
        return
    bad = ((lo is not None and (value <= lo if lo_open else value < lo))
           or (hi is not None and (value >= hi if hi_open else value > hi)))
    if bad:
        lb = "(" if lo_open else "["
        rb = ")" if hi_open else "]"
        raise ConfigError(f"{source}: {key} must be in {lb}{'-inf' if lo is None else f'{lo:g}'}, "
                          f"{'inf' if hi is None else f'{hi:g}'}{rb}, got {value!r}")


def _choice(source: str, key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{source}: {key} must be one of {', '.join(allowed)}, got {value!r}")


def _date(source: str, key: str, value: str | None) -> None:
    if value is None:
        return
    from village_credit.data.validation import parse_date_option

    parse_date_option(value, f"{source}: {key}")


def _path(source: str, key: str, value: str | None, suffixes: tuple[str, ...]) -> None:
    """A file the run will read, relative to the working directory as the pipeline reads it."""
    if value is None:
        return
    p = Path(value)
    if p.suffix.lower() not in suffixes:
        raise ConfigError(f"{source}: {key} {value!r}: expected a {' or '.join(suffixes)} file")
    if not p.exists():
        raise ConfigError(f"{source}: {key} {value!r}: file not found")
    if not p.is_file():
        raise ConfigError(f"{source}: {key} {value!r}: not a file")


def validate_config(cfg: Any, source: str) -> None:
    """Check every key of an :class:`~village_credit.config.ExperimentConfig` (in place:
    lossless conversions such as ``2000.0 -> 2000`` are applied)."""
    _check_types(cfg, "", source)
    s = source
    _range(s, "seed", cfg.seed, 0)
    _range(s, "top_k", cfg.top_k, 1)
    _range(s, "scoring_chunk_rows", cfg.scoring_chunk_rows, 1)
    _date(s, "eval_date", cfg.eval_date)
    if not str(cfg.output_dir).strip():
        raise ConfigError(f"{s}: output_dir must not be empty")
    d = cfg.data
    _range(s, "data.n_townships", d.n_townships, 1)
    _range(s, "data.villages_per_township", d.villages_per_township, 1)
    _range(s, "data.target_default_rate", d.target_default_rate, 0, 1, lo_open=True, hi_open=True)
    _date(s, "data.snapshot_date", d.snapshot_date)
    if d.source == "generate":
        _range(s, "data.n_households", d.n_households, 500)
    else:
        _path(s, "data.source", d.source, (".parquet", ".pq", ".csv"))
    _path(s, "data.feature_spec", d.feature_spec, (".yaml", ".yml", ".json"))
    sp = cfg.split
    _range(s, "split.calibration_share", sp.calibration_share, 0, 1, lo_open=True, hi_open=True)
    _range(s, "split.holdout_share", sp.holdout_share, 0, 1, lo_open=True, hi_open=True)
    _choice(s, "split.train_outcomes", sp.train_outcomes, ("observed", "all"))
    from village_credit.fairness.reject_inference import REMEDIES

    _choice(s, "split.reject_inference", sp.reject_inference, REMEDIES)
    m = cfg.model
    _choice(s, "model.strategy", m.strategy, ("stacking", "boost_from_rules", "additive_points", "gbm_only"))
    _choice(s, "model.calibration", m.calibration, ("platt", "isotonic", "auto"))
    t = m.tuning
    _range(s, "model.tuning.n_trials", t.n_trials, 0)
    _range(s, "model.tuning.timeout_s", t.timeout_s, 0, lo_open=True)
    _range(s, "model.tuning.cv_folds", t.cv_folds, 2)
    _range(s, "model.pdo", m.pdo, 0, lo_open=True)
    _range(s, "model.base_odds", m.base_odds, 0, lo_open=True)
    for k, v in m.gbm.items():
        if not isinstance(k, str):
            raise ConfigError(f"{s}: model.gbm keys must be LightGBM parameter names, got {k!r}")
        if k in ("n_estimators", "num_leaves", "min_child_samples", "max_depth"):
            _check_value(v, int, f"model.gbm.{k}", s)
            _range(s, f"model.gbm.{k}", v, 1 if k != "max_depth" else -1)
        elif k in ("learning_rate",):
            _range(s, f"model.gbm.{k}", _check_value(v, float, f"model.gbm.{k}", s), 0, lo_open=True)
    g = cfg.registry.gates
    for name in ("auc_min", "ece_max", "hosmer_lemeshow_p_min", "parity_ratio_min"):
        _range(s, f"registry.gates.{name}", getattr(g, name), 0, 1)
    for name in ("auc_tolerance", "ks_tolerance", "score_psi_max", "feature_psi_max",
                 "approval_gap_max", "line_gap_max", "gap_vs_rules_max_ratio"):
        _range(s, f"registry.gates.{name}", getattr(g, name), 0)
    for name in ("model_name", "experiment"):
        if not str(getattr(cfg.registry, name)).strip():
            raise ConfigError(f"{s}: registry.{name} must not be empty")
    f = cfg.fairness
    _range(s, "fairness.min_count", f.min_count, 1)
    _range(s, "fairness.n_boot", f.n_boot, 0)
    _range(s, "fairness.n_deciles", f.n_deciles, 2)
    # the policy: a shipped name or a YAML path, loaded (and so fully checked) now
    from village_credit.rules import load_policy

    try:
        load_policy(cfg.policy)
    except VillageCreditError as exc:
        raise ConfigError(f"{s}: policy {cfg.policy!r}: {exc}") from exc
