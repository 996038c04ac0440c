"""Experiment configuration: one YAML file describes one run.

Why typed sections instead of a raw dict: a typo in an experiment file should fail
before an hour of tuning, naming the file and the key, not after.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from village_credit.errors import ConfigError


@dataclass
class DataConfig:
    """Where households come from: the generator (default) or a file."""

    source: str = "generate"  # "generate" or a path to Parquet/CSV
    n_households: int = 20_000
    n_townships: int = 8
    villages_per_township: int = 12
    target_default_rate: float = 0.04
    snapshot_date: str = "2025-06-30"
    second_vintage: bool = True  # generate vintage 2 for out-of-time and stability checks
    # The historical policy of the generator (whose outcomes are observed) and the
    # randomised exploration grant (data.generator.GeneratorConfig; docs/fairness.md).
    policy_age_max: int = 60
    over_age_grant_share: float = 0.0
    exploration_share: float = 0.0
    # Bring your own data (source is a path):
    target: str = "default_12m"
    id_column: str | None = "household_id"
    group_column: str = "village_code"
    feature_spec: str | None = None  # YAML/JSON feature spec for generic tables
    # The target label that means default ("bad", "yes", ...); None: the target must be 0/1
    target_positive: str | int | None = None


@dataclass
class SplitConfig:
    """Village-grouped split: no village appears in two of train/calibration/hold-out."""

    calibration_share: float = 0.2
    holdout_share: float = 0.2
    # "observed": learn only from households the old rules lent to (the real-world
    # case); "all": use the synthetic truth for everyone (an upper bound).
    train_outcomes: str = "observed"
    reject_inference: str = "none"  # none | reweighting | fuzzy_augmentation | parcelling


@dataclass
class TuningConfig:
    n_trials: int = 8
    timeout_s: float | None = 120.0
    cv_folds: int = 3


@dataclass
class ModelConfig:
    strategy: str = "additive_points"  # stacking | boost_from_rules | additive_points | gbm_only
    include_protected: bool = False
    calibration: str = "platt"  # platt | isotonic | auto
    gbm: dict[str, Any] = field(default_factory=lambda: {
        "n_estimators": 300, "learning_rate": 0.05, "num_leaves": 8, "min_child_samples": 40,
    })
    tuning: TuningConfig = field(default_factory=TuningConfig)
    pdo: float = 20.0
    base_points: float = 60.0
    base_odds: float = 49.0  # odds good:bad at base_points (PD 2 %)
    # Rule items (practically) constant among observed outcomes are not applied
    # (models.support): fewer than neutralise_min_varied observed rows differ.
    neutralise_constant_items: bool = True
    neutralise_min_varied: int = 1


@dataclass
class GateConfig:
    """Promotion thresholds (keys as ``registry.gates.DEFAULT_THRESHOLDS``).

    Every one is recorded with its value on the model version.
    """

    auc_min: float = 0.70
    auc_tolerance: float = 0.01
    ks_tolerance: float = 0.02
    ece_max: float = 0.02
    hosmer_lemeshow_p_min: float = 0.01
    score_psi_max: float = 0.10
    feature_psi_max: float = 0.25
    approval_gap_max: float = 0.05  # the fairness issue's equal-risk target
    line_gap_max: float = 0.10
    parity_ratio_min: float = 0.80
    gap_vs_rules_max_ratio: float = 0.60
    schema_mode: str = "exact"
    # outcome_support gate: fairness.json must carry the outcome-support section, and no
    # protected group may be extrapolated unless a remedy is applied (or an override).
    outcome_support_required: bool = True


@dataclass
class RegistryConfig:
    model_name: str = "village-credit"
    experiment: str = "village-credit"
    gates: GateConfig = field(default_factory=GateConfig)


@dataclass
class FairnessConfig:
    """Audit settings; the promotion gates read the audit's JSON."""

    min_count: int = 50  # households per group in a true-PD decile before its gap counts
    n_boot: int = 100
    n_deciles: int = 10
    # Outcome support (fairness.support): a protected group with fewer observed
    # outcomes in training is flagged as extrapolated (gate outcome_support).
    min_observed_outcomes: int = 300
    # Group-aware recalibration (validation.recalibration.group_recalibrate) on the
    # observed rows of: none | calibration (the calibration split) | observed
    # (training + calibration splits).
    group_recalibration: str = "none"
    group_prior_sd: float = 0.25
    lgd: float = 0.45  # loss given default for expected-loss figures


@dataclass
class StagesConfig:
    """Stages a fast research loop may skip (the model is still trained and evaluated)."""

    shap: bool = True      # global SHAP plots and JSON
    reports: bool = True   # validation / fairness HTML + JSON reports
    mlflow: bool = True    # log the run and the model (off: no registration, no gates, no scoring)


@dataclass
class ExperimentConfig:
    name: str = "default"
    seed: int = 42
    policy: str = "jinxiang_2022"
    eval_date: str | None = None  # None: each household's snapshot date
    top_k: int = 3
    output_dir: str = "out"
    data: DataConfig = field(default_factory=DataConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    fairness: FairnessConfig = field(default_factory=FairnessConfig)
    stages: StagesConfig = field(default_factory=StagesConfig)
    scoring_chunk_rows: int = 50_000

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _build(cls: type, raw: dict[str, Any], where: str, source: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: '{where or 'top level'}' must be a mapping, got {type(raw).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {unknown} under '{where or 'top level'}'; known: {sorted(known)}"
        )
    kwargs: dict[str, Any] = {}
    for name, value in raw.items():
        default = known[name].default_factory() if known[name].default_factory is not dataclasses.MISSING else None  # type: ignore[misc]
        key = f"{where}.{name}" if where else name
        if dataclasses.is_dataclass(default):
            kwargs[name] = _build(type(default), value or {}, key, source)
        else:
            kwargs[name] = value
    return cls(**kwargs)


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Read an experiment YAML (default: the built-in defaults) and apply dotted overrides.

    ``overrides`` maps dotted keys to values, e.g. ``{"data.n_households": 2000}``;
    tests and the CLI use it to shrink a run without another file.
    """
    raw: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read experiment file {path}: {exc.strerror or exc}") from exc
        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if path is not None and isinstance(raw, dict):
        _resolve_relative(raw, Path(path).resolve().parent)
    for dotted, value in (overrides or {}).items():
        node = raw
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    cfg = _build(ExperimentConfig, raw, "", source)
    from village_credit.config_validation import validate_config

    validate_config(cfg, source)  # types, ranges, choices, dates, policy, paths: before any work
    _check(cfg, source)
    return cfg


def _relative_to(value: Any, base: Path) -> Any:
    """A relative input path read from the YAML's folder (the working folder if only it has the file)."""
    if not isinstance(value, str) or not value or value == "generate" or Path(value).is_absolute():
        return value
    beside = base / value
    if beside.exists() or not Path(value).exists():
        return str(beside)
    return value


def _resolve_relative(raw: dict[str, Any], base: Path) -> None:
    """Input paths in an experiment file are relative to that file: ``data.source``,
    ``data.feature_spec`` and a ``policy`` given as a path (``*.yaml``). ``output_dir``
    stays relative to the working folder (where a run writes is the caller's choice)."""
    data = raw.get("data")
    if isinstance(data, dict):
        for key in ("source", "feature_spec"):
            if key in data:
                data[key] = _relative_to(data[key], base)
    pol = raw.get("policy")
    if isinstance(pol, str) and pol.endswith((".yaml", ".yml")):
        raw["policy"] = _relative_to(pol, base)


def _check(cfg: ExperimentConfig, source: str) -> None:
    s = cfg.split
    if not (0 < s.calibration_share < 1 and 0 < s.holdout_share < 1 and s.calibration_share + s.holdout_share < 0.9):
        raise ConfigError(f"{source}: split shares must be in (0, 1) and leave at least 10 % for training")
    if s.train_outcomes not in {"observed", "all"}:
        raise ConfigError(f"{source}: split.train_outcomes must be 'observed' or 'all', got {s.train_outcomes!r}")
    if cfg.model.strategy not in {"stacking", "boost_from_rules", "additive_points", "gbm_only"}:
        raise ConfigError(f"{source}: model.strategy {cfg.model.strategy!r} is not one of "
                          "stacking, boost_from_rules, additive_points, gbm_only")
    d, f = cfg.data, cfg.fairness
    if not (0.0 <= d.exploration_share <= 1.0 and 0.0 <= d.over_age_grant_share <= 1.0):
        raise ConfigError(f"{source}: data.exploration_share and data.over_age_grant_share must be in [0, 1]")
    if f.group_recalibration not in {"none", "calibration", "observed"}:
        raise ConfigError(f"{source}: fairness.group_recalibration must be none, calibration or observed, "
                          f"got {f.group_recalibration!r}")
    if cfg.model.neutralise_min_varied < 1:
        raise ConfigError(f"{source}: model.neutralise_min_varied must be >= 1")
    if f.min_observed_outcomes < 1 or not f.group_prior_sd > 0 or not 0 < f.lgd <= 1:
        raise ConfigError(f"{source}: fairness.min_observed_outcomes must be >= 1, group_prior_sd > 0, "
                          "lgd in (0, 1]")
    if cfg.data.source == "generate" and cfg.data.n_households < 500:
        raise ConfigError(f"{source}: data.n_households must be at least 500 for village-grouped splits")
