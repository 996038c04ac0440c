"""Experiment configuration: one YAML file describes one run.

Why declared models instead of a raw dict: a typo in an experiment file should fail
before an hour of tuning, naming the file and the key, not after. Each key is declared
once below (type, default, range, choices, description); the same declaration checks
the file at load and generates ``schemas/experiment.schema.json`` for editors
(:mod:`village_credit.schemas`). What a model cannot see -- the policy registry and
the input files -- is checked right after (:mod:`village_credit.config_validation`).
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
    with_config,
)
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict

from village_credit.config_validation import check_inputs
from village_credit.data.validation import parse_date_option
from village_credit.errors import ConfigError
from village_credit.fairness.reject_inference import REMEDIES
from village_credit.file_formats import FileFormat, validate_document
from village_credit.models.calibration import Method
from village_credit.models.coefficients import STRATEGIES
from village_credit.yaml_io import safe_load

__all__ = [
    "DataConfig",
    "ExperimentConfig",
    "FairnessConfig",
    "GateConfig",
    "GbmParams",
    "ModelConfig",
    "RegistryConfig",
    "SplitConfig",
    "StagesConfig",
    "TuningConfig",
    "load_config",
]

MIN_GENERATED_HOUSEHOLDS = 500
"""Fewer generated households leave too few villages for village-grouped splits."""

MIN_TRAIN_SHARE = 0.1
"""Calibration and hold-out together must leave more than this share of villages for training."""


# ----------------------------------------------------------------------------- value types
def _date_text(value: Any) -> Any:
    """YAML reads an unquoted ``2025-06-30`` as a date; the config keeps dates as text."""
    return value.isoformat() if isinstance(value, datetime.date) else value


def _calendar_date(value: str) -> str:
    """A date the toolkit holds (the same check as a date cell or ``--eval-date``)."""
    try:
        parse_date_option(value, "date")
    except ConfigError as exc:
        reason = str(exc).removeprefix(f"date {value!r}: ")
        raise PydanticCustomError("date", "{reason}", {"reason": reason}) from None
    return value


DateText = Annotated[str, BeforeValidator(_date_text), AfterValidator(_calendar_date),
                     Field(json_schema_extra={"format": "date"})]
"""``YYYY-MM-DD``, a calendar date between 1677 and 2262 (pandas' range)."""


def _non_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "must not be empty")
    return value


NonBlank = Annotated[str, AfterValidator(_non_blank), Field(json_schema_extra={"pattern": r"\S"})]
UnitInterval = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegative = Annotated[float, Field(ge=0.0)]


class _Section(FileFormat):
    """A config section: a key left empty in YAML (``data:`` with nothing under it) means defaults."""

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        sections = {name for name, f in cls.model_fields.items()
                    if isinstance(f.annotation, type) and issubclass(f.annotation, _Section)}
        return {k: ({} if v is None and k in sections else v) for k, v in data.items()}


# ----------------------------------------------------------------------------- sections
class DataConfig(_Section):
    """Where households come from: the generator (default) or a file."""

    source: str = Field("generate", description=(
        "`generate` for synthetic households, or a Parquet/CSV file (.parquet, .pq, .csv), "
        "relative to the experiment file. A file without the household columns (or with a "
        "feature_spec) is trained as a table of one's own: no rule engine."))
    n_households: int = Field(20_000, ge=1, description=(
        f"Synthetic households to generate (at least {MIN_GENERATED_HOUSEHOLDS} when source is generate)."))
    n_townships: int = Field(8, ge=1, description="Townships in the generated county.")
    villages_per_township: int = Field(12, ge=1, description="Villages per generated township.")
    target_default_rate: float = Field(0.04, gt=0.0, lt=1.0, description=(
        "Share of generated households that default within 12 months (0-1, exclusive)."))
    snapshot_date: DateText = Field("2025-06-30", description="Generated snapshot date, YYYY-MM-DD.")
    second_vintage: bool = Field(True, description=(
        "Generate a second vintage for the out-of-time and stability checks."))
    policy_age_max: int = Field(60, description=(
        "Historical policy of the generator (whose outcomes are observed): the oldest age, "
        "in years, lent to (data.generator.GeneratorConfig; docs/fairness.md)."))
    over_age_grant_share: UnitInterval = Field(0.0, description=(
        "Share (0-1) of over-age households granted a loan anyway by the historical policy."))
    exploration_share: UnitInterval = Field(0.0, description=(
        "Randomised exploration grant: share (0-1) of refused households without a veto given "
        "a trial loan, so their outcomes are observed."))
    exploration_share_over_age: UnitInterval | None = Field(None, description=(
        "Targeted exploration: share (0-1) of the refused households without a veto whose head "
        "is over policy_age_max given a trial loan; null: the same as exploration_share."))
    target: str = Field("default_12m", description=(
        "Target column of a file of one's own (rows without a value are quarantined)."))
    id_column: str | None = Field("household_id", description=(
        "Id column: kept out of the features, copied to decisions and quarantine; null: rows are numbered."))
    group_column: str = Field("village_code", description=(
        "Hold-out and calibration folds take whole groups of this column (a missing column: random split)."))
    feature_spec: str | None = Field(None, description=(
        "Feature spec (.yaml, .yml or .json; schemas/feature_spec.schema.json) for a table of one's "
        "own, relative to the experiment file; null: every column as it is."))
    target_positive: str | int | None = Field(None, description=(
        "The target label that means default (bad, yes, ...); null: the target must hold 0/1."))

    @field_validator("n_households")
    @classmethod
    def _enough_households(cls, v: int, info: ValidationInfo) -> int:
        if info.data.get("source") == "generate" and v < MIN_GENERATED_HOUSEHOLDS:
            raise PydanticCustomError(
                "too_few_households", "must be at least {minimum} for village-grouped splits",
                {"minimum": MIN_GENERATED_HOUSEHOLDS})
        return v


class SplitConfig(_Section):
    """Village-grouped split: no village appears in two of train/calibration/hold-out."""

    calibration_share: float = Field(0.2, gt=0.0, lt=1.0, description=(
        "Share (0-1) of villages held for calibration."))
    holdout_share: float = Field(0.2, ge=0.0, lt=1.0, description=(
        f"Share (0-1) of villages held out for evaluation; with calibration_share below "
        f"{1 - MIN_TRAIN_SHARE:g}, so more than {MIN_TRAIN_SHARE:.0%} are left for training. "
        "0 (a table of one's own only): no hold-out; every row trains and the evidence is "
        "cross-fitted (out-of-fold) on the training rows."))
    train_outcomes: Literal["observed", "all"] = Field("observed", description=(
        "observed: learn only from households the old rules lent to (the real-world case); "
        "all: use the synthetic truth for everyone (an upper bound)."))
    reject_inference: Literal[REMEDIES] = Field("none", description=(  # type: ignore[valid-type]
        "Reject-inference remedy for the refused households (docs/fairness.md)."))
    calibration: Literal["split", "cross_fit"] = Field("split", description=(
        "split: the PD map is fitted on the calibration split's villages only; cross_fit: those "
        "villages join training and the map is fitted on village-grouped out-of-fold scores, so "
        "every village's random effect averages out (needs fairness.group_recalibration: none)."))
    exploration_weighting: bool = Field(False, description=(
        "Weight each explored household (outcome observed, not granted by the old rules) by "
        "1 / the exploration share among the refused households without a veto, estimated from "
        "the training rows, so the observed sample stands for every household the PD decides for "
        "(needs train_outcomes: observed, reject_inference: none; docs/fairness.md)."))
    exploration_tree_weight_power: float = Field(1.0, ge=0.0, le=1.0, description=(
        "With exploration_weighting: the trees (and the tuning folds' fits) see the design "
        "weights raised to this power (0: unweighted, 1: in full); the PD map and the tuning "
        "AUC always use them in full (docs/benchmarks.md, 'Calibration by group')."))

    @field_validator("holdout_share")
    @classmethod
    def _leave_training(cls, v: float, info: ValidationInfo) -> float:
        cal = info.data.get("calibration_share")
        if cal is not None and cal + v >= 1 - MIN_TRAIN_SHARE:
            raise PydanticCustomError(
                "shares", f"calibration_share + holdout_share must be below {1 - MIN_TRAIN_SHARE:g} "
                f"(more than {MIN_TRAIN_SHARE:.0%} of the villages left for training)")
        return v


class TuningConfig(_Section):
    """Optuna search of the LightGBM parameters."""

    n_trials: int = Field(8, ge=0, description="Optuna trials; 0: no tuning (timeout_s only caps a search).")
    timeout_s: float | None = Field(120.0, gt=0.0, description=(
        "Wall-clock budget of the search in seconds; null: only n_trials limits it."))
    cv_folds: int = Field(3, ge=2, description=(
        "Cross-validation folds (group folds for households; cross-fitted calibration for tables)."))


@with_config(ConfigDict(extra="allow"))
class GbmParams(TypedDict, total=False):
    """LightGBM parameters; the common ones are declared (and checked), any other passes to LightGBM."""

    n_estimators: Annotated[int, Field(ge=1, description="Boosting rounds (trees).")]
    learning_rate: Annotated[float, Field(gt=0.0, description="Shrinkage per tree.")]
    num_leaves: Annotated[int, Field(ge=1, description="Leaves per tree.")]
    min_child_samples: Annotated[int, Field(ge=1, description="Rows a leaf must hold at least.")]
    max_depth: Annotated[int, Field(ge=-1, description="Tree depth limit; -1: none.")]


class ModelConfig(_Section):
    """The estimator: blend strategy, LightGBM, calibration and the points scale."""

    strategy: Literal[STRATEGIES] = Field("additive_points", description=(  # type: ignore[valid-type]
        "How the GBM is blended with the rule points: stacking, boost_from_rules, additive_points "
        "or gbm_only (no rules; what a table source implies)."))
    include_protected: bool = Field(False, description=(
        "Use protected attributes (age, formerly poor; a table spec's protected columns) as features."))
    elderly_pension_interaction: bool = Field(False, description=(
        "Add the feature 'pension received by a head aged 60+' (may only lower risk): age enters "
        "only through its interaction with a pension, never alone. Household data only."))
    calibration: Method = Field("platt", description="PD calibration: platt, isotonic or auto (the better on CV).")
    gbm: GbmParams = Field(default_factory=lambda: {  # type: ignore[assignment]
        "n_estimators": 300, "learning_rate": 0.05, "num_leaves": 8, "min_child_samples": 40,
    }, description="LightGBM parameters; replaces the default set as a whole.")
    tuning: TuningConfig = Field(default_factory=TuningConfig, description="Optuna search.")
    pdo: float = Field(20.0, gt=0.0, description="Points to double the odds (good:bad).")
    base_points: float = Field(60.0, description="Points at base_odds.")
    base_odds: float = Field(49.0, gt=0.0, description="Odds good:bad at base_points (49: PD 2 %).")
    neutralise_constant_items: bool = Field(True, description=(
        "Do not apply rule items (practically) constant among observed outcomes (models.support)."))
    neutralise_min_varied: int = Field(1, ge=1, description=(
        "An item is applied only when at least this many observed rows differ from its norm."))
    approval_max_pd: float | None = Field(None, gt=0.0, lt=1.0, description=(
        "A table of one's own: the declared approval cut-off, recorded with the model; a row is "
        "approved when its PD is at most this (0-1, exclusive). Decisions then carry `approved` and "
        "the fairness evidence judges approval parity and TPR/FPR gaps at it; null: no cut-off "
        "(no `approved` column). Household models approve from their policy's credit lines."))


class GateConfig(_Section):
    """Promotion thresholds (keys as registry.gates.DEFAULT_THRESHOLDS).

    Every one is recorded with its value on the model version.
    """

    auc_min: UnitInterval = Field(0.70, description="Lowest hold-out AUC (0-1).")
    auc_tolerance: NonNegative = Field(0.01, description="AUC the candidate may lose against the champion.")
    ks_tolerance: NonNegative = Field(0.02, description="KS the candidate may lose against the champion.")
    ece_max: UnitInterval = Field(0.02, description="Highest expected calibration error (PD units, 0-1).")
    hosmer_lemeshow_p_min: UnitInterval = Field(0.01, description="Lowest Hosmer-Lemeshow p-value (0-1).")
    score_psi_max: NonNegative = Field(0.10, description="Highest score PSI, hold-out vs training.")
    feature_psi_max: NonNegative = Field(0.25, description="Highest PSI of any feature, hold-out vs training.")
    approval_gap_max: NonNegative = Field(0.05, description=(
        "Programme target: highest equal-risk approval-rate gap (0.05 = 5 points); the fairness "
        "report's headline. It may be tightened, never loosened (a looser value is not applied)."))
    line_gap_max: NonNegative = Field(0.10, description=(
        "Programme target: highest equal-risk credit-line gap (relative); may be tightened, never loosened."))
    approval_excess_max: NonNegative = Field(0.02, description=(
        "Gate: the model's own equal-risk approval gap over the information ceiling, both signs "
        "(synthetic truth)."))
    line_excess_max: NonNegative = Field(0.05, description=(
        "Gate: the model's own equal-risk line gap over the information ceiling, both signs (relative)."))
    group_calibration_p_min: UnitInterval = Field(0.01, description=(
        "Gate without the truth: lowest calibration-in-the-large p of any protected group with "
        "enough observed outcomes."))
    tpr_gap_max: UnitInterval = Field(0.05, description=(
        "Gate without the truth: highest between-group gap of the approval rate of repaid households."))
    parity_ratio_min: UnitInterval = Field(0.80, description="Lowest demographic-parity approval ratio (0-1).")
    gap_vs_rules_max_ratio: NonNegative = Field(0.60, description=(
        "The model's equal-risk approval gap as a share of the rule standard's, at most."))
    schema_mode: Literal["exact", "superset"] = Field("exact", description=(
        "Input schema against the champion: exact (same columns and types) or superset."))
    outcome_support_required: bool = Field(True, description=(
        "fairness.json must carry the outcome-support section; no protected group may be "
        "extrapolated unless a remedy is applied."))
    outcome_support_calibration_max: UnitInterval = Field(0.05, description=(
        "An extrapolated group's explored households: the largest calibration gap (mean PD - "
        "observed default rate) whose CI must still reach; beyond it the remedy did not work."))
    not_applicable: dict[str, str] = Field(default_factory=dict, description=(
        "Gates that cannot apply to this model, each with why (e.g. fairness_parity_ratio_min: "
        "no protected attribute declared); recorded with the model, reported by name, never "
        "failed as 'evidence missing'. A table of one's own fills in its rule-standard and "
        "missing-fairness gates itself."))


class RegistryConfig(_Section):
    """MLflow names and the promotion gates."""

    model_config = ConfigDict(protected_namespaces=())  # model_name is a key, not pydantic's

    model_name: NonBlank = Field("village-credit", description="Registered model name.")
    experiment: NonBlank = Field("village-credit", description="MLflow experiment name.")
    gates: GateConfig = Field(default_factory=GateConfig, description="Promotion thresholds.")
    validator: str | None = Field(None, description=(
        "Who signs the training run's hold-out validation (the version's validation record, "
        "whose verdict gates promotion); none: no record is written and promotion is refused "
        "until `village-credit validate --validator NAME` records one."))


class FairnessConfig(_Section):
    """Audit settings; the promotion gates read the audit's JSON."""

    min_count: int = Field(50, ge=1, description="Households per group in a true-PD decile before its gap counts.")
    n_boot: int = Field(100, ge=0, description="Bootstrap resamples of the gaps' intervals.")
    n_deciles: int = Field(10, ge=2, description="True-PD bins of the equal-risk comparison.")
    min_observed_outcomes: int = Field(300, ge=1, description=(
        "A protected group with fewer observed training outcomes is flagged as extrapolated "
        "(gate outcome_support)."))
    group_recalibration: Literal["none", "calibration", "observed"] = Field("none", description=(
        "Group-aware recalibration on the observed rows of: none, calibration (the calibration "
        "split) or observed (training + calibration splits)."))
    group_prior_sd: float = Field(0.25, gt=0.0, description="Prior SD of a group's log-odds offset.")
    lgd: float = Field(0.45, gt=0.0, le=1.0, description="Loss given default for expected-loss figures (0-1].")


class StagesConfig(_Section):
    """Stages a fast research loop may skip (the model is still trained and evaluated)."""

    shap: bool = Field(True, description="Global SHAP plots and JSON.")
    reports: bool = Field(True, description="Validation and fairness HTML + JSON reports.")
    mlflow: bool = Field(True, description="Log the run and the model (off: no registration, no gates, no scoring).")


class ExperimentConfig(_Section):
    """One run: data, split, model, registry, fairness audit and stages."""

    name: NonBlank = Field("default", description="Experiment name (run name, report titles).")
    seed: int = Field(42, ge=0, description="Seed of every random step (same config + seed: same run).")
    policy: str = Field("jinxiang_2022", description=(
        "Shipped points policy name (`village-credit policies`) or a policy YAML path, "
        "relative to the experiment file."))
    eval_date: DateText | None = Field(None, description=(
        "Evaluation date YYYY-MM-DD of the rules; null: each household's snapshot date."))
    top_k: int = Field(3, ge=1, description="Reason codes per decision.")
    output_dir: NonBlank = Field("out", description="Where a run writes (relative to the working folder).")
    data: DataConfig = Field(default_factory=DataConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    fairness: FairnessConfig = Field(default_factory=FairnessConfig)
    stages: StagesConfig = Field(default_factory=StagesConfig)
    scoring_chunk_rows: int = Field(50_000, ge=1, description="Rows per chunk of batch scoring.")

    def to_dict(self) -> dict[str, Any]:
        """Every key with its value (logged with the run)."""
        return self.model_dump()


# ----------------------------------------------------------------------------- loading
def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Read an experiment YAML (default: the built-in defaults) and apply dotted overrides.

    ``overrides`` maps dotted keys to values, e.g. ``{"data.n_households": 2000}``;
    tests and the CLI use it to shrink a run without another file. Input paths in the
    file are read from the file's folder. Every key is checked before any work; an
    error names the file and the dotted key.

    >>> from village_credit import load_config
    >>> cfg = load_config(None, {"data.n_households": 2000, "model.tuning.n_trials": 0})
    >>> cfg.data.n_households, cfg.model.tuning.n_trials, cfg.split.holdout_share
    (2000, 0, 0.2)
    >>> load_config(None, {"split.holdout_share": 1.5})
    Traceback (most recent call last):
    ...
    village_credit.errors.ConfigError: <defaults>: split.holdout_share: Input should be less than 1, got 1.5
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
            raw = safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if path is not None and isinstance(raw, dict):
        _resolve_relative(raw, Path(path).resolve().parent)
    for dotted, value in (overrides or {}).items():
        node = raw
        *parents, leaf = dotted.split(".")
        for p in parents:
            if not isinstance(node.get(p), dict):
                node[p] = {}  # an empty section (``data:``) or none yet
            node = node[p]
        node[leaf] = value
    cfg = validate_document(ExperimentConfig, raw, source=source, error=ConfigError)
    d = cfg.data
    check_inputs(policy=cfg.policy, data_source=None if d.source == "generate" else d.source,
                 feature_spec=d.feature_spec, source=source)
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
