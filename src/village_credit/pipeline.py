"""The main job: data -> rules -> model -> blend -> explain -> fairness -> MLflow -> score.

One function, ``run_experiment``, used by ``village-credit train``, ``village-credit
demo``, the notebooks and the end-to-end test alike. Each stage calls the public API
of its layer; nothing here computes what a layer already offers.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier

from village_credit.config import ExperimentConfig, ModelConfig, RegistryConfig
from village_credit.data import (
    GeneratorConfig,
    generate_households,
    generate_vintage,
    read_table,
    validate_households,
    write_parquet,
)
from village_credit.data.groups import group_order
from village_credit.errors import ConfigError
from village_credit.explain.shap_global import (
    global_shap,
    plot_bar,
    plot_beeswarm,
    plot_dependence,
    write_global_explanations,
)
from village_credit.fairness.audit import DecisionSystem, fairness_audit
from village_credit.fairness.calibration import calibration_groups
from village_credit.fairness.ceiling import ceiling_system, split_gaps
from village_credit.fairness.equal_risk import equal_risk_gaps
from village_credit.fairness.groups import sensitive_frame
from village_credit.fairness.observed import (
    decisions_evidence,
    observed_rows_evidence,
    observed_summary,
    outcome_seen,
    protected_groups,
    table_outcome_support,
)
from village_credit.fairness.reject_inference import REMEDIES, infer_rejects
from village_credit.fairness.report import fairness_json, write_fairness_report
from village_credit.fairness.support import (
    EXPLORATION_LINE,
    expected_loss,
    explored_calibration,
    headline,
    support_diagnostics,
)
from village_credit.models.blend import logistic_fit
from village_credit.models.estimator import CreditScoreClassifier
from village_credit.models.features import HouseholdFeatures
from village_credit.models.scaling import PointsScaling
from village_credit.models.splits import split_by_village
from village_credit.models.support import NEUTRALISED_KEY, exploration_weights, neutral_items_for
from village_credit.models.tuning import tune
from village_credit.registry.loading import version_digest
from village_credit.registry.promotion import log_evidence, promote, record_thresholds
from village_credit.registry.pyfunc_model import log_decision_model
from village_credit.registry.store import configure, get_client
from village_credit.registry.tracking import data_fingerprint, log_run_context
from village_credit.registry.verdict import record_validation, run_tags
from village_credit.rules.engine import score_rules
from village_credit.rules.grades import grade_order, policy_age_ceiling
from village_credit.rules.policy import load_policy
from village_credit.rules.report import programme_report
from village_credit.scoring import read_decisions, score_file
from village_credit.sources import DataSource, data_source, load_table, split_table
from village_credit.stages import Stage, StageTimer
from village_credit.validation.calibration import (
    HL_DDOF_INDEPENDENT,
    HL_GROUPS,
    brier,
    expected_calibration_error,
    hosmer_lemeshow,
)
from village_credit.validation.discrimination import auc_delong, ks_statistic
from village_credit.validation.recalibration import (
    DECISION_CLASS,
    RecalibratedDecisionModel,
    group_recalibrate,
)
from village_credit.validation.report import (
    unobserved_decisions,
    validation_report,
    write_validation_report,
)
from village_credit.validation.stability import psi, reference_profile

__all__ = ["ExperimentResult", "evaluate", "fit_models", "load_households", "run_experiment"]


@dataclass
class ExperimentResult:
    """What the main job produced: metrics, paths, the registered version and its fate."""

    config: ExperimentConfig
    metrics: dict[str, float] = field(default_factory=dict)
    approval_by_group: pd.DataFrame | None = None
    paths: dict[str, str] = field(default_factory=dict)
    run_id: str | None = None
    model_version: str | None = None
    promoted: bool = False
    gates: dict[str, Any] = field(default_factory=dict)
    scoring: dict[str, Any] = field(default_factory=dict)
    stages: list[Stage] = field(default_factory=list)
    tracking_uri: str = ""
    quarantined_rows: int = 0
    programme: dict[str, Any] = field(default_factory=dict)
    kind: str = "generated"  # the data source: generated | households | table
    model_uri: str | None = None
    run_model_uri: str | None = None
    registered_model_name: str | None = None
    split_method: str = "by village"
    features: list[str] = field(default_factory=list)
    dropped_columns: dict[str, str] = field(default_factory=dict)
    outcome_support: dict[str, Any] = field(default_factory=dict)
    evidence: str = "hold-out"
    """What the metrics and gates judge: the hold-out, or (table, ``holdout_share: 0``) out-of-fold PDs."""
    rows: dict[str, int] = field(default_factory=dict)
    """Table runs: read = quarantined (no target) + train + hold-out; evaluated + its quarantined = hold-out."""
    categories_read_as_missing: dict[str, Any] = field(default_factory=dict)
    """Table runs: cells whose category is outside the spec's list (read as missing), train and hold-out."""
    validation: dict[str, Any] = field(default_factory=dict)  # hold-out verdict and its record

    def summary_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "model_uri": self.model_uri,
            "run_model_uri": self.run_model_uri,
            "registered_model_name": self.registered_model_name,
            "split_method": self.split_method,
            "features": self.features,
            "dropped_columns": self.dropped_columns,
            "gates": self.gates,
            "metrics": self.metrics,
            "run_id": self.run_id,
            "model_version": self.model_version,
            "promoted": self.promoted,
            "paths": self.paths,
            "scoring": self.scoring,
            "quarantined_rows": self.quarantined_rows,
            "programme": self.programme,
            "outcome_support": self.outcome_support,
            "evidence": self.evidence,
            "rows": self.rows,
            "categories_read_as_missing": self.categories_read_as_missing,
            "validation": self.validation,
            "stages": {s.name: round(s.seconds, 2) for s in self.stages},
            "stages_cpu": {s.name: round(s.cpu_seconds, 2) for s in self.stages},
        }


# --------------------------------------------------------------------------- data
def load_households(cfg: ExperimentConfig) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Vintage 1 (and 2 when asked) from the generator, or the user's file."""
    d = cfg.data
    if d.source == "generate":
        gen = GeneratorConfig(n_households=d.n_households, seed=cfg.seed, n_townships=d.n_townships,
                              villages_per_township=d.villages_per_township,
                              target_default_rate=d.target_default_rate, snapshot_date=d.snapshot_date,
                              policy_age_max=d.policy_age_max, over_age_grant_share=d.over_age_grant_share,
                              exploration_share=d.exploration_share,
                              exploration_share_over_age=d.exploration_share_over_age)
        v1 = generate_households(gen)
        v2 = generate_vintage(gen, vintage=2) if d.second_vintage else None
        return v1, v2
    return read_table(d.source), None


def _outcome_mask(df: pd.DataFrame, cfg: ExperimentConfig) -> np.ndarray:
    if cfg.split.train_outcomes == "all" or "outcome_observed" not in df.columns:
        return np.ones(len(df), dtype=bool)
    return df["outcome_observed"].to_numpy(dtype=bool)


# --------------------------------------------------------------------------- model
def _reject_inference_sample(model: Any, train: pd.DataFrame, observed: np.ndarray, method: str,
                             seed: int, eval_date: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of ``train``, labels and weights for the final fit under a reject-inference remedy.

    ``model`` is the first blend, fitted on the observed training rows: its PD for every
    training household is the base PD of fuzzy augmentation and parcelling. Reweighting
    also needs P(observed | x): a small single-threaded LightGBM on the model's own
    features predicting ``outcome_observed``. Unobserved rows the model quarantines
    (no PD) cannot be given an inferred outcome and are left out.
    """
    base = model.predict_pd(train, eval_date=eval_date).to_numpy(dtype=float)
    usable = np.flatnonzero(observed | np.isfinite(base))
    obs_u = observed[usable]
    sel = None
    if method == "reweighting":
        X = model.features.transform(train.iloc[usable])
        clf = LGBMClassifier(n_estimators=100, learning_rate=0.05, num_leaves=15, min_child_samples=40,
                             random_state=seed, n_jobs=1, verbose=-1)
        clf.fit(X, obs_u.astype(int))
        sel = clf.predict_proba(X)[:, 1]
    y = train["default_12m"].to_numpy(dtype=float)[usable]
    rows, labels, weights = infer_rejects(train.iloc[usable], obs_u, y[obs_u], method,
                                          base_proba=base[usable] if method != "reweighting" else None,
                                          selection_proba=sel, seed=seed)
    return usable[rows], labels, weights


def fit_models(train: pd.DataFrame, calib: pd.DataFrame, cfg: ExperimentConfig,
               tuned_params: dict[str, Any] | None) -> dict[str, Any]:
    """The promoted blend and, for comparison, the GBM-only model (same data, same seed).

    ``split.reject_inference`` (with ``split.train_outcomes: observed``): a first blend
    is fitted on the observed training rows, its PD for every training household feeds
    :func:`~village_credit.fairness.reject_inference.infer_rejects`, and both final models
    are fitted on the inferred sample (rows, labels, weights). The method applied is
    recorded in ``metadata["reject_inference"]`` of both models.

    ``split.calibration: cross_fit``: the calibration split joins training and the PD map
    is fitted on village-grouped out-of-fold scores of every training village.

    Outcome-support remedies (docs/fairness.md): rule items (practically) constant among
    the observed training households are neutralised in the blend
    (``model.neutralise_constant_items``); ``fairness.group_recalibration`` wraps the blend
    in group offsets; whenever a remedy applies, ``blend_unremedied`` (same rows, no
    remedy) is fitted too so that the hold-out shows what the remedies cost.
    """
    m = cfg.model
    method = cfg.split.reject_inference
    if method not in REMEDIES:  # config.py does not check this option; fail before any fitting
        raise ConfigError(f"split.reject_inference must be one of {', '.join(REMEDIES)}, got {method!r}")
    cross_fit = cfg.split.calibration == "cross_fit"
    if cross_fit:
        if cfg.fairness.group_recalibration != "none":
            raise ConfigError("split.calibration: cross_fit leaves no village the trees did not see for "
                              "fairness.group_recalibration; set it to none")
        # ~20 calibration villages carry their own random effects into the map's intercept;
        # out-of-fold scores over every training village average them out (issue 25)
        train, calib = pd.concat([train, calib], ignore_index=True), calib.iloc[:0]
    if cfg.split.train_outcomes != "observed":
        method = "none"  # every outcome is known: nothing to infer
    scaling = PointsScaling.from_pdo(m.pdo, m.base_points, m.base_odds)
    params = {**m.gbm, **(tuned_params or {})}
    tr_mask, ca_mask = _outcome_mask(train, cfg), _outcome_mask(calib, cfg)
    tr, ca = train.loc[tr_mask], calib.loc[ca_mask]
    y_ca = ca["default_12m"].to_numpy()
    meta = {"experiment": cfg.name, "reject_inference": method}

    def fit(rows: pd.DataFrame, y: Any, strategy: str, metadata: dict[str, Any], w: Any = None,
            neutral: dict[str, Any] | bool = False) -> Any:
        """The estimator with the village-grouped calibration split (trees see ``rows`` only)."""
        est = CreditScoreClassifier(strategy=strategy, policy=cfg.policy, gbm_params=params,
                                    points_scaling=scaling, include_protected=m.include_protected,
                                    elderly_pension_interaction=m.elderly_pension_interaction,
                                    eval_date=cfg.eval_date, seed=cfg.seed, neutralise_rule_items=neutral,
                                    group_column="village_code" if cross_fit else None,
                                    tree_weight_power=(cfg.split.exploration_tree_weight_power
                                                       if cfg.split.exploration_weighting else 1.0))
        return est.fit(rows, y, sample_weight=w, calibration_data=None if cross_fit else (ca, y_ca),
                       metadata=metadata).model_

    neutral: dict[str, Any] | bool = False  # outcome-support remedy (docs/fairness.md)
    if m.neutralise_constant_items and m.strategy != "gbm_only":
        neutral = neutral_items_for(train, cfg.policy, tr_mask, cfg.eval_date, min_varied=m.neutralise_min_varied)
    w_design = None
    if cfg.split.exploration_weighting:
        if method != "none" or cfg.split.train_outcomes != "observed":
            raise ConfigError("split.exploration_weighting weights the observed outcomes by design; it needs "
                              "split.train_outcomes: observed and split.reject_inference: none")
        if cfg.data.source == "generate" and cfg.data.exploration_share_over_age is not None:
            # the weights estimate one exploration share for every refused household (models/support.py)
            raise ConfigError("split.exploration_weighting assumes one exploration share; it cannot be used "
                              "with data.exploration_share_over_age (targeted exploration)")
        # each explored household stands for 1 / share refused ones (models/support.py)
        w_design = exploration_weights(train, cfg.policy, cfg.eval_date)[np.asarray(tr_mask, bool)]
        meta["exploration_weight"] = float(w_design.max())
        meta["exploration_tree_weight_power"] = float(cfg.split.exploration_tree_weight_power)
    blend = fit(tr, tr["default_12m"].to_numpy(), m.strategy, dict(meta), w_design, neutral=neutral)
    fit_tr, y_tr, w_tr = tr, tr["default_12m"].to_numpy(), w_design
    if method != "none":
        rows, y_tr, w_tr = _reject_inference_sample(blend, train, np.asarray(tr_mask, bool), method, cfg.seed,
                                                      cfg.eval_date)
        fit_tr = train.iloc[rows].reset_index(drop=True)  # fuzzy augmentation repeats rows
        # The calibration split stays observed-only: the Platt/stacking coefficients are fitted
        # on real outcomes (the honest data a bank has), never on inferred ones; only the
        # trees see the inferred rejects.
        blend = fit(fit_tr, y_tr, m.strategy, dict(meta, n_train_observed=int(tr_mask.sum())), w_tr,
                    neutral=neutral)
    out = {"blend": blend, "gbm": fit(fit_tr, y_tr, "gbm_only", {"reject_inference": method}, w_tr)}
    return _outcome_support_remedies(out, fit_tr, y_tr, w_tr, tr, ca, cfg, fit, meta)


def _outcome_support_remedies(models: dict[str, Any], fit_tr: pd.DataFrame, y_tr: Any, w_tr: Any,
                              tr: pd.DataFrame, ca: pd.DataFrame, cfg: ExperimentConfig,
                              fit: Any, meta: dict[str, Any]) -> dict[str, Any]:
    """Group-aware recalibration of the blend, and the same blend without any remedy (its cost).

    ``blend_unremedied``: no neutralised item, no group offsets (same rows, same seed),
    so the hold-out shows what the outcome-support remedies cost in AUC and expected loss.
    ``fit``: the runner's one way to fit a model (the estimator on the calibration split).
    """
    f = cfg.fairness
    blend = models["blend"]
    remedied = bool(blend.metadata.get(NEUTRALISED_KEY)) or f.group_recalibration != "none"
    if f.group_recalibration != "none":
        # the map always on the calibration split (rows the trees never saw); the group
        # offsets on it, or ("observed") on every observed row for more outcomes per group
        sample = ca if f.group_recalibration == "calibration" else pd.concat([tr, ca], ignore_index=True)
        models["blend"] = group_recalibrate(blend, sample, prior_sd=f.group_prior_sd, seed=cfg.seed,
                                            eval_date=cfg.eval_date, map_sample=ca,
                                            lineage={"sample": f"observed rows of {f.group_recalibration}"})
    if remedied:
        models["blend_unremedied"] = fit(fit_tr, y_tr, cfg.model.strategy, dict(meta), w_tr)
    return models


def tune_params(train: pd.DataFrame, cfg: ExperimentConfig, log_to_mlflow: bool) -> dict[str, Any]:
    """Optuna search over LightGBM parameters with village-grouped CV (budget from config)."""
    t = cfg.model.tuning
    if not t.n_trials:  # 0 trials: no tuning (a timeout alone does not start a search)
        return {}
    mask = _outcome_mask(train, cfg)
    tr = train.loc[mask]
    feats = HouseholdFeatures(include_protected=cfg.model.include_protected,
                              elderly_pension=cfg.model.elderly_pension_interaction)
    X = feats.fit_transform(tr)
    base: dict[str, Any] = {"monotone_constraints": feats.monotone_constraints()}
    if cfg.model.strategy == "additive_points":
        base["interaction_constraints"] = "additive"
    weights = None
    if cfg.split.exploration_weighting:  # the objective the final fit weighs (fit_models)
        weights = exploration_weights(train, cfg.policy, cfg.eval_date)[mask]
    result = tune(X, tr["default_12m"].to_numpy(), tr["village_code"].to_numpy(), n_trials=t.n_trials,
                  timeout=t.timeout_s, seed=cfg.seed, cv_folds=t.cv_folds, log_to_mlflow=log_to_mlflow,
                  base_params=base, sample_weight=weights,
                  tree_weight_power=cfg.split.exploration_tree_weight_power)
    return dict(result.best_params)


# --------------------------------------------------------------------------- evaluation
def evaluate(models: dict[str, Any], holdout: pd.DataFrame, cfg: ExperimentConfig) -> dict[str, Any]:
    """Hold-out metrics for rules, GBM and blend; decisions for the fairness audit."""
    y = holdout["default_12m"].to_numpy()
    policy = load_policy(cfg.policy)
    rules = score_rules(holdout, policy, cfg.eval_date).decisions
    out: dict[str, Any] = {"decisions": {}, "metrics": {}}
    for name, model in models.items():
        dec = model.decide(holdout, top_k=cfg.top_k, eval_date=cfg.eval_date)
        out["decisions"][name] = dec
        p = dec["pd"].to_numpy(dtype=float)
        auc, _, lo, hi = auc_delong(y, p)
        ks, _ = ks_statistic(y, p)
        hl_stat, _, hl_p = hosmer_lemeshow(y, p, groups=HL_GROUPS, ddof=HL_DDOF_INDEPENDENT)
        out["metrics"].update({
            f"{name}_auc": auc, f"{name}_auc_ci_low": lo, f"{name}_auc_ci_high": hi, f"{name}_ks": ks,
            f"{name}_ece": expected_calibration_error(y, p), f"{name}_brier": brier(y, p),
            f"{name}_hosmer_lemeshow_p": hl_p, f"{name}_approval_rate": float((dec["credit_line"] > 0).mean()),
        })
    # Rule points alone: rank by points; a logistic map gives the PD the audit compares.
    pts = rules["rule_points"].to_numpy(dtype=float)
    coef = logistic_fit(pts.reshape(-1, 1), y)
    rule_pd = 1.0 / (1.0 + np.exp(-(coef[0] + coef[1] * pts)))
    out["rules"] = rules.assign(pd=rule_pd)
    out["metrics"].update({
        "rules_auc": auc_delong(y, -pts)[0],
        "rules_approval_rate": float(rules["approved"].mean()),
        "oracle_auc": auc_delong(y, holdout["true_pd"].to_numpy())[0],
        "holdout_default_rate": float(y.mean()),
        "holdout_households": float(len(y)),
    })
    out["metrics"]["blend_auc_gap_to_oracle"] = out["metrics"]["oracle_auc"] - out["metrics"]["blend_auc"]
    return out


def out_of_time(model: Any, holdout: pd.DataFrame, holdout_points: pd.Series, later: pd.DataFrame,
                cfg: ExperimentConfig) -> dict[str, float]:
    """The hold-out villages one year later (vintage 2, with drift): AUC and score PSI.

    Same villages as the hold-out, so neither the model nor its calibration saw them.
    """
    oot = later.loc[later["village_code"].isin(set(holdout["village_code"]))]
    if oot.empty:
        return {}
    y = oot["default_12m"].to_numpy()
    dec = model.decide(oot, top_k=1, eval_date=cfg.eval_date)
    ok = (dec["status"] == "scored").to_numpy()
    p = dec["pd"].to_numpy(float)[ok]
    now = holdout_points.to_numpy(float)
    return {
        "oot_households": float(ok.sum()),
        "oot_default_rate": float(y[ok].mean()),
        "blend_oot_auc": auc_delong(y[ok], p)[0],
        "oracle_oot_auc": auc_delong(y[ok], oot["true_pd"].to_numpy()[ok])[0],
        "blend_oot_ece": expected_calibration_error(y[ok], p),
        "score_psi_oot": psi(now, dec["points"].to_numpy(float)[ok]),
    }


def decision_systems(ev: dict[str, Any]) -> list[Any]:
    r = ev["rules"]
    systems = [DecisionSystem(name="rules", approved=r["approved"].to_numpy(bool),
                              credit_line=r["credit_line"].to_numpy(float), rate=r["rate"].to_numpy(float),
                              pd=r["pd"].to_numpy(float), score=r["rule_points"].to_numpy(float))]
    for name in ("gbm", "blend"):
        d = ev["decisions"][name]
        systems.append(DecisionSystem(name=name, approved=(d["credit_line"] > 0).to_numpy(bool),
                                      credit_line=d["credit_line"].to_numpy(float),
                                      rate=d["rate"].to_numpy(float), pd=d["pd"].to_numpy(float),
                                      score=d["points"].to_numpy(float)))
    return systems


def fairness_stage(ev: dict[str, Any], holdout: pd.DataFrame, cfg: ExperimentConfig, out_dir: Path,
                   train: pd.DataFrame | None = None, models: dict[str, Any] | None = None,
                   population: pd.DataFrame | None = None,
                   ) -> tuple[dict[str, Any], pd.DataFrame, dict[str, str]]:
    """Audit, equal-risk gaps split into the information ceiling and each system's excess
    (with the truth), observed-outcome evidence of the blend, report and JSON."""
    policy = load_policy(cfg.policy)
    sens = sensitive_frame(holdout, policy_age_max=policy_age_ceiling(policy))
    systems = decision_systems(ev)
    y = holdout["default_12m"].to_numpy()
    f = cfg.fairness
    tp = holdout["true_pd"].to_numpy()
    audit = fairness_audit(systems, sens, y, true_pd=tp, n_boot=f.n_boot, seed=cfg.seed)
    ceiling = None
    gap_systems = systems
    if models is not None:  # the ceiling decides through the blend's own policy and scale
        ceiling = ceiling_system(models["blend"], holdout, reference=_ceiling_reference(holdout, train, population),
                                 eval_date=cfg.eval_date, seed=cfg.seed)
        gap_systems = [*systems, ceiling]
    gaps = equal_risk_gaps(gap_systems, sens, tp, n_deciles=f.n_deciles, min_count=f.min_count)
    split = split_gaps(gaps, limits=_excess_limits(cfg)) if ceiling is not None else None
    observed = observed_rows_evidence(systems[-1], holdout, y)
    support = (outcome_support_stage(ev, holdout, gaps, cfg, train, models, population,
                                     ceiling_pd=ceiling.pd if ceiling is not None else None)
               if train is not None and models is not None else None)
    data = fairness_json(audit, gaps, support=support, ceiling=split, observed=observed)  # the gates' numbers
    approval = approval_by_group(systems, holdout)
    if not cfg.stages.reports:  # `stages.reports: false` writes no report files, the gates still judge
        return data, approval, {}
    html, js = write_fairness_report(audit, gaps, out_dir=out_dir, identity=_report_identity(cfg, holdout),
                                     limits=_fairness_limits(cfg), support=support, ceiling=split,
                                     observed=observed)
    return data, approval, {"fairness_html": str(html), "fairness_json": str(js)}


def _run_fingerprint() -> str:
    """The training data's fingerprint as logged on the active run (``data_fingerprint``)."""
    run = mlflow.active_run()
    if run is None:
        return "no MLflow run"
    return str(mlflow.get_run(run.info.run_id).data.tags.get("data_fingerprint") or "not logged")
def _ceiling_reference(holdout: pd.DataFrame, train: pd.DataFrame | None,
                       population: pd.DataFrame | None) -> pd.DataFrame | None:
    """Every household outside the hold-out villages (observed or not: the truth is known
    for all), so the ceiling is fitted on far more rows than it is judged on."""
    if population is not None and "village_code" in population.columns:
        return population.loc[~population["village_code"].isin(set(holdout["village_code"]))]
    return train


def _report_identity(cfg: ExperimentConfig, households: pd.DataFrame) -> dict[str, Any]:
    """Who the report is about: model name, MLflow run and the two fingerprints, each
    labelled by its data (the training rows' is the one on the run and the registry)."""
    run = mlflow.active_run()
    return {"model": cfg.registry.model_name, "run_id": run.info.run_id if run else "no MLflow run",
            "training_data_fingerprint": _run_fingerprint(),
            "validation_sample_fingerprint": data_fingerprint(households), "experiment": cfg.name,
            "policy": cfg.policy}


def _validation_identity(model_name: str, run_id: str | None, holdout: pd.DataFrame) -> dict[str, Any]:
    """The main job's validation report: which model (its run; the version is registered
    after the report is written) and which hold-out it was judged on."""
    return {"model_name": model_name, "model_run_id": run_id or "no MLflow run",
            "model_uri": f"runs:/{run_id}/model" if run_id else None,
            "training_data_fingerprint": _run_fingerprint(),
            "validation_sample_fingerprint": data_fingerprint(holdout)}


def _fairness_limits(cfg: ExperimentConfig) -> dict[str, float]:
    """The gates' fairness thresholds, for the report (which never loosens the programme targets)."""
    g = cfg.registry.gates
    return {"approval_gap_max": g.approval_gap_max, "line_gap_max": g.line_gap_max,
            "parity_ratio_min": g.parity_ratio_min, "approval_excess_max": g.approval_excess_max,
            "line_excess_max": g.line_excess_max, "group_calibration_p_min": g.group_calibration_p_min,
            "tpr_gap_max": g.tpr_gap_max}


def _excess_limits(cfg: ExperimentConfig) -> dict[str, float]:
    g = cfg.registry.gates
    return {"approval": g.approval_excess_max, "line": g.line_excess_max}


def outcome_support_stage(ev: dict[str, Any], holdout: pd.DataFrame, gaps: Any, cfg: ExperimentConfig,
                          train: pd.DataFrame, models: dict[str, Any], population: pd.DataFrame | None,
                          ceiling_pd: Any = None) -> dict[str, Any]:
    """The ``outcome_support`` section of fairness.json (docs/fairness.md, gate ``outcome_support``).

    Support per protected group on the training split (observed or not), the headline
    both ways on the hold-out (with ``ceiling_pd``, the information ceiling's own
    predicted / true beside the model's), the remedies applied and their cost beside them.
    """
    blend = models["blend"]
    observed = _outcome_mask(train, cfg)
    items = score_rules(train, load_policy(cfg.policy), cfg.eval_date).items.reset_index(drop=True)
    X = blend.features.transform(train).reset_index(drop=True)
    sup = support_diagnostics(train.reset_index(drop=True), observed, items=items, features=X,
                              min_observed=cfg.fairness.min_observed_outcomes)
    neutral = dict(blend.metadata.get(NEUTRALISED_KEY) or {})
    offsets = dict(getattr(blend, "group_offsets", {}) or {})
    pop = population if population is not None else train
    explored = (pop["outcome_observed"].to_numpy(bool) & ~pop["granted_hist"].to_numpy(bool)
                if {"outcome_observed", "granted_hist"} <= set(pop.columns) else np.zeros(len(pop), bool))
    remedies = []
    if neutral:
        remedies.append(f"neutralised rule items ({', '.join(neutral)})")
    if explored.any():
        over = ("" if cfg.data.exploration_share_over_age is None else
                f", {cfg.data.exploration_share_over_age:g} of those over {cfg.data.policy_age_max}")
        remedies.append(f"exploration grant ({int(explored.sum())} households, share "
                        f"{cfg.data.exploration_share:g} of refused without veto{over})")
    if offsets:
        remedies.append(f"group-aware recalibration ({cfg.fairness.group_recalibration})")
    if blend.metadata.get("exploration_weight"):
        remedies.append(f"exploration design weights (each explored household counts "
                        f"{blend.metadata['exploration_weight']:.1f}x)")
    truth = "true_pd" in holdout.columns
    lgd = cfg.fairness.lgd
    risk = holdout["true_pd"].to_numpy(float) if truth else None
    m = ev["metrics"]

    def cost_row(name: str, key: str) -> dict[str, Any]:
        d = ev["decisions"][key]
        p = risk if risk is not None else d["pd"].to_numpy(float)
        return {"remedy": name, "holdout_auc": m[f"{key}_auc"],
                "auc_cost": m.get("blend_unremedied_auc", m[f"{key}_auc"]) - m[f"{key}_auc"],
                "expected_loss_yuan": expected_loss(p, d["credit_line"].to_numpy(float),
                                                    d["credit_line"].to_numpy(float) > 0, lgd),
                "loss_basis": "true PD" if truth else "predicted PD"}

    costs = [cost_row("none (blend without remedies)", "blend_unremedied")] if "blend_unremedied" in models else []
    costs.append(cost_row("model remedies applied (neutralised items, group offsets)" if costs else "none", "blend"))
    if explored.any():
        p_ex = (pop["true_pd"] if "true_pd" in pop.columns else pop["default_12m"]).to_numpy(float)[explored]
        costs.append({"remedy": f"exploration grant ({int(explored.sum())} loans of {EXPLORATION_LINE:,.0f} yuan)",
                      "holdout_auc": None, "auc_cost": None,
                      "expected_loss_yuan": float(np.sum(p_ex) * EXPLORATION_LINE * lgd),
                      "loss_basis": "true PD" if "true_pd" in pop.columns else "observed defaults"})
    # did the remedy work: the explored households of the hold-out (never trained on)
    hold_explored = (holdout["outcome_observed"].to_numpy(bool) & ~holdout["granted_hist"].to_numpy(bool)
                     if {"outcome_observed", "granted_hist"} <= set(holdout.columns)
                     else np.zeros(len(holdout), bool))
    sup["explored_calibration"] = explored_calibration(
        holdout.reset_index(drop=True), hold_explored, ev["decisions"]["blend"]["pd"].to_numpy(float))
    sup.update(remedies=remedies, neutralised_items=neutral, group_offsets=offsets,
               headline=headline(holdout, ev["decisions"]["blend"]["pd"].to_numpy(float),
                                 equal_risk_table=gaps.table, system="blend", ceiling_pd=ceiling_pd),
               remedy_costs=costs,
               # how age enters the model: never, or only through a pension (model.elderly_pension_interaction)
               age_use=blend.metadata.get("age_use") or ("age used as a feature (model.include_protected)"
                                                         if cfg.model.include_protected else "age not used"))
    return sup



def approval_by_group(systems: list[Any], households: pd.DataFrame) -> pd.DataFrame:
    """Approval rate per system by age band and formerly-poor status (for the summary).

    The groups are calibration's (:func:`~village_credit.fairness.calibration_groups`:
    the one set of age bands, youngest first, then formerly poor or not), so every table
    of the summary names a group alike.
    """
    groups = calibration_groups(households)
    rows = []
    for s in systems:
        frame = groups.assign(approved=np.asarray(s.approved, dtype=bool))
        for col in ("age_band", "formerly_poor"):
            for grp, rate in frame.groupby(col)["approved"].mean().items():
                rows.append({"system": s.name, "group": grp, "approval_rate": rate})
    table = pd.DataFrame(rows).pivot(index="group", columns="system", values="approval_rate")
    return table.loc[sorted(table.index, key=group_order)]


# --------------------------------------------------------------------------- tables
CROSS_FITTED_EVIDENCE = ("cross-fitted (split.holdout_share: 0): every row trained the model; metrics, "
                         "validation and gates read each row's out-of-fold PD (trees that never saw it); "
                         "no hold-out, so no stability evidence")
def table_estimator(cfg: ExperimentConfig, spec: dict[str, Any] | None) -> CreditScoreClassifier:
    """The unfitted estimator an experiment on a table of one's own trains.

    ``model.tuning.n_trials: 0`` means no tuning, as on the household path: the timeout
    only caps a search, it never starts one.
    """
    d, t = cfg.data, cfg.model.tuning
    return CreditScoreClassifier(
        strategy="gbm_only", features=spec or None, calibration_folds=max(2, int(t.cv_folds)),
        tuning_trials=int(t.n_trials or 0), tuning_timeout_s=t.timeout_s if t.n_trials else None,
        gbm_params=_table_gbm(cfg), points_scaling=_table_scaling(cfg), id_column=d.id_column,
        group_column=d.group_column, include_protected=cfg.model.include_protected, top_k=cfg.top_k,
        seed=cfg.seed)


def train_table(table: Any, train_idx: np.ndarray, cfg: ExperimentConfig, log_to_mlflow: bool) -> Any:
    """The estimator on a table of one's own: spec features, cross-fitted calibration, base-rate points."""
    est = table_estimator(cfg, table.spec)
    frame = table.frame.iloc[train_idx].reset_index(drop=True)
    est.fit(frame, table.y[train_idx])
    est.model_.metadata.update({"experiment": cfg.name, "target": table.target,
                                "target_positive": cfg.data.target_positive})
    if cfg.model.approval_max_pd is not None:  # the declared cut-off: decide() writes `approved` from it
        est.model_.metadata["approval_max_pd"] = float(cfg.model.approval_max_pd)
    return est


def _table_gbm(cfg: ExperimentConfig) -> dict[str, Any] | None:
    """LightGBM parameters the experiment set; ``None`` keeps the estimator's size-aware defaults."""
    return None if cfg.model.gbm == ModelConfig().gbm else dict(cfg.model.gbm)


def _table_scaling(cfg: ExperimentConfig) -> Any:
    """Base-rate anchored points unless the experiment sets its own anchor (pdo/base_points/base_odds)."""
    m, dflt = cfg.model, ModelConfig()
    if (m.base_odds, m.base_points, m.pdo) == (dflt.base_odds, dflt.base_points, dflt.pdo):
        return "base_rate"
    return {"pdo": m.pdo, "base_points": m.base_points, "base_odds": m.base_odds}


def evaluate_table(model: Any, frame: pd.DataFrame, y: np.ndarray, oof_pd: np.ndarray, y_train: np.ndarray
                   ) -> tuple[dict[str, float], pd.DataFrame]:
    """Hold-out metrics of a table model (PD after calibration), plus cross-fitted ones on training rows."""
    dec = model.decide(frame, top_k=0)
    return _table_metrics(dec, y, oof_pd, y_train), dec


def evaluate_cross_fitted(model: Any, frame: pd.DataFrame, y: np.ndarray, oof_pd: np.ndarray
                          ) -> tuple[dict[str, float], pd.DataFrame]:
    """Metrics and decisions of a table model without a hold-out (``split.holdout_share: 0``).

    Every row trained the final trees, so no row has an honest final-model score; the
    evidence is each row's out-of-fold PD (trees that never saw it, then the cross-fitted
    calibration). Rows the model cannot read (``row_problems``) are quarantined, as at scoring.
    """
    problems = np.asarray(model.features.row_problems(frame), dtype=object)
    ok = problems == ""
    p = np.where(ok, np.asarray(oof_pd, dtype=np.float64), np.nan)
    points = model.scaling.points_from_pd(p)
    dec = pd.DataFrame({"status": np.where(ok, "scored", "quarantined"), "quarantine_reason": problems,
                        "pd": p, "points": points, "grade": model.pd_grades(p)})
    if model.approval_max_pd is not None:  # as decide() writes it: PD at most the cut-off, scored rows only
        dec["approved"] = ok & (np.nan_to_num(p, nan=np.inf) <= model.approval_max_pd)
    return _table_metrics(dec, y, oof_pd, y), dec


def _table_metrics(dec: pd.DataFrame, y: np.ndarray, oof_pd: np.ndarray, y_train: np.ndarray) -> dict[str, float]:
    """Discrimination and calibration of the scored rows of ``dec``; quarantined rows counted."""
    ok = (dec["status"] == "scored").to_numpy()
    p, yy = dec["pd"].to_numpy(float)[ok], y[ok]
    auc, _, lo, hi = auc_delong(yy, p)
    ks, _ = ks_statistic(yy, p)
    _, _, hl_p = hosmer_lemeshow(yy, p, groups=10, ddof=0)
    m = {"auc": auc, "auc_ci_low": lo, "auc_ci_high": hi, "gini": 2 * auc - 1, "ks": ks,
         "hosmer_lemeshow_p": hl_p, "brier": brier(yy, p), "ece": expected_calibration_error(yy, p),
         "holdout_households": float(len(yy)), "holdout_default_rate": float(yy.mean()),
         "holdout_quarantined": float((~ok).sum()),
         "cv_auc": auc_delong(y_train, oof_pd)[0], "cv_ece": expected_calibration_error(y_train, oof_pd)}
    if "approved" in dec.columns:  # the model's declared cut-off: approval among the scored rows
        m["approval_rate"] = float(dec["approved"].to_numpy(bool)[ok].mean()) if ok.any() else float("nan")
    # the household summary's names, so one summary and one set of gates read both
    m.update({"blend_auc": auc, "blend_ks": ks, "blend_ece": m["ece"], "blend_brier": m["brier"],
              "blend_hosmer_lemeshow_p": hl_p, "gbm_auc": auc})
    return {k: float(v) for k, v in m.items()}


def table_explanations(model: Any, X: pd.DataFrame, out: Path, seed: int) -> dict[str, Path]:
    """Global SHAP of a table model: beeswarm, bar, dependence of the top 2 features, JSON (spec labels)."""
    out.mkdir(parents=True, exist_ok=True)
    gs = global_shap(model, X, sample=2000, seed=seed)
    lab = {n: model.labels.get(f"model:{n}", {}) for n in gs.feature_names}
    en = {n: lab[n].get("en", n) for n in gs.feature_names}
    zh = {n: lab[n].get("zh", n) for n in gs.feature_names}
    paths = {"beeswarm": out / "shap_beeswarm.png", "bar": out / "shap_bar.png"}
    plot_beeswarm(gs, path=paths["beeswarm"], labels=en)
    plot_bar(gs, path=paths["bar"], labels=en)
    overall = np.abs(gs.values).mean(axis=0)
    order = np.argsort(-overall, kind="stable")
    for i in order[:2]:
        f = gs.feature_names[i]
        slug = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in f)
        paths[f"dependence:{f}"] = out / f"shap_dependence_{slug}.png"
        plot_dependence(gs, f, path=paths[f"dependence:{f}"], labels=en)
    summary = {"units": "log-odds of default (LightGBM raw score, before calibration)",
               "explainer": "shap.TreeExplainer (tree_path_dependent)", "n_rows": len(X),
               "n_explained": len(gs), "seed": int(seed),
               "overall": [{"feature": gs.feature_names[i], "label_en": en[gs.feature_names[i]],
                            "label_zh": zh[gs.feature_names[i]], "mean_abs_shap": float(overall[i])}
                           for i in order]}
    paths["summary_json"] = out / "shap_global.json"
    paths["summary_json"].write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    return paths


def table_model_name(cfg: ExperimentConfig) -> str:
    """Registered name of a table model: ``registry.model_name``, kept apart from the household default."""
    name = cfg.registry.model_name
    return f"{name}-table" if name == RegistryConfig().model_name else name


# --------------------------------------------------------------------------- main
@dataclass
class _Job:
    """What every stage of one run shares: the configuration, where outputs go, the timer."""

    cfg: ExperimentConfig
    source: DataSource  # which stages apply
    result: ExperimentResult
    stages: StageTimer
    out_dir: Path
    protected: list[str] = field(default_factory=list)  # a table's declared protected attributes
    training_fingerprint: str | None = None  # the training rows' fingerprint, as logged on the run


@dataclass
class _Data:
    """The data stage's products (household data: the splits; a table of one's own: the table)."""

    population_path: Path
    fingerprint_rows: pd.DataFrame  # the training rows, fingerprinted in the run
    model_name: str
    households: pd.DataFrame | None = None
    later: pd.DataFrame | None = None  # the second vintage (out-of-time check), if generated
    valid: pd.DataFrame | None = None
    train: pd.DataFrame | None = None
    calib: pd.DataFrame | None = None
    holdout: pd.DataFrame | None = None
    table: Any = None
    train_idx: np.ndarray | None = None
    holdout_idx: np.ndarray | None = None


@dataclass
class _Trained:
    """The training stage's products, with the hold-out decisions the reports read."""

    model: Any
    reference: dict[str, Any]  # PSI/CSI reference profile of the training rows
    holdout: pd.DataFrame
    hold_X: pd.DataFrame
    y_hold: np.ndarray
    decisions: pd.DataFrame
    grades: list[str]
    policy_graded: np.ndarray | None = None
    ev: dict[str, Any] | None = None  # household data: evaluate()'s output
    models: dict[str, Any] | None = None

    @property
    def keep(self) -> np.ndarray:
        """Hold-out rows the model scored (a table model may quarantine some)."""
        dec = self.decisions
        return (dec["status"] == "scored").to_numpy() if "status" in dec else np.ones(len(dec), bool)


def planned_stages(cfg: ExperimentConfig, source: DataSource, promote_model: bool, score_population: bool) -> int:
    """How many stages :func:`run_experiment` will time: the progress bar's total.

    Every ``job.stages.run`` call below is counted here; the population is scored only
    when the model is promoted, so that stage is taken off the count when it does not
    run (``StageTimer.close``), and the bar never stops short of its total nor passes it.
    """
    use_mlflow = bool(cfg.stages.mlflow)
    return ((5 if source.has_rules else 3)  # load/generate, validate, tune, train, evaluate; or read, train, evaluate
            + bool(cfg.stages.shap) + 1  # SHAP; the fairness audit (truth) or its observed-outcome evidence
            + 2 + bool(cfg.stages.reports)  # validation figures, save model; the report files
            + use_mlflow * (1 + promote_model + (promote_model and score_population)))


def run_experiment(cfg: ExperimentConfig, *, progress: bool = False, promote_model: bool = True,
                   score_population: bool = True) -> ExperimentResult:
    """Run one experiment end to end and return what it produced.

    The data source (:func:`village_credit.sources.data_source`) says which stages apply:
    a table of one's own has no rules, no ground truth and no programme, so those stages
    are skipped; training, evaluation, SHAP, the validation report, the model format,
    registration, gates and scoring are the same. ``cfg.stages`` skips SHAP, reports or
    MLflow for fast research loops (without MLflow: no registration, gates or scoring).

    A table of one's own (400 loans, two features) with no tuning, SHAP, reports or MLflow:

    >>> from village_credit import run_experiment
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> import pandas as pd
    >>> from village_credit.config import load_config
    >>> from village_credit.pipeline import planned_stages
    >>> from village_credit.sources import data_source
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(400, 2))
    >>> loans = pd.DataFrame({"income": x[:, 0], "debt": x[:, 1], "village_code": rng.integers(0, 20, 400),
    ...                       "default_12m": (x[:, 1] - x[:, 0] + rng.normal(size=400) > 1.5).astype(int)})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     loans.to_csv(Path(tmp) / "loans.csv", index=False)
    ...     cfg = load_config(None, {"data.source": str(Path(tmp) / "loans.csv"),
    ...                              "output_dir": str(Path(tmp) / "out"),
    ...                              "model.tuning.n_trials": 0, "model.tuning.timeout_s": None,
    ...                              "model.gbm": {"n_estimators": 20, "num_leaves": 7},
    ...                              "stages.shap": False, "stages.reports": False, "stages.mlflow": False})
    ...     result = run_experiment(cfg)
    ...     planned = planned_stages(cfg, data_source(cfg), True, True)  # the progress bar's total
    >>> result.kind, [s.name for s in result.stages]  # doctest: +NORMALIZE_WHITESPACE
    ('table', ['read table', 'train (estimator)', 'evaluate hold-out', 'fairness (observed outcomes)',
               'validation report', 'save model'])
    >>> result.features, int(result.metrics["holdout_households"]), result.metrics["auc"] > 0.6
    (['income', 'debt'], 74, True)
    >>> planned == len(result.stages)  # honest: the bar ends at its total, never short or past it
    True
    """
    source = data_source(cfg)
    result = ExperimentResult(config=cfg, kind=source.kind)
    out_dir = Path(cfg.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    use_mlflow = bool(cfg.stages.mlflow)
    planned = planned_stages(cfg, source, promote_model, score_population)
    job = _Job(cfg, source, result, StageTimer(result.stages, progress, total=planned), out_dir)
    try:
        data = _prepare_households(job) if source.has_rules else _prepare_table(job)
        if use_mlflow:
            configure(experiment_name=cfg.registry.experiment)
            result.tracking_uri = mlflow.get_tracking_uri()
        evidence: dict[str, Any] = {}
        # one name per run (two runs of one experiment file were both called "default")
        run_name = f"{cfg.name} {datetime.now(UTC):%Y-%m-%d %H:%M:%S}"
        with (mlflow.start_run(run_name=run_name) if use_mlflow else contextlib.nullcontext()) as run:
            if run is not None:
                result.run_id = run.info.run_id
                # one batch for the run's params and tags (the data source among them)
                job.training_fingerprint = log_run_context(
                    cfg.to_dict(), cfg.seed, data.fingerprint_rows, extra_tags={"data_source": source.kind},
                    new_run=True).get("data_fingerprint")
            train = _train_households if source.has_rules else _train_table
            trained = train(job, data, use_mlflow)
            if cfg.stages.shap:
                _explain(job, trained)
            fair = (_fairness(job, data, trained) if source.has_truth
                    else job.stages.run("fairness (observed outcomes)", _observed_fairness, job, data, trained))
            val = _validate(job, data, trained, fair)
            model_dir = job.stages.run("save model", trained.model.save, out_dir / "model")
            result.paths["model_dir"] = str(model_dir)
            if run is not None:
                evidence = _log_and_register(job, data, trained, model_dir, val, fair, run.info.run_id)
            else:
                _write_validation(job, val)
        if use_mlflow and promote_model:
            _promote(job, data.model_name, evidence)
        if use_mlflow and score_population and result.promoted:
            _score_population(job, data)
    finally:
        job.stages.close()
    (out_dir / "summary.json").write_text(json.dumps(result.summary_dict(), indent=2, default=str),
                                          encoding="utf-8")
    result.paths["summary"] = str(out_dir / "summary.json")
    return result


def _prepare_households(job: _Job) -> _Data:
    """Generate or load households, validate them (quarantine kept), split by village."""
    cfg, result, out_dir = job.cfg, job.result, job.out_dir
    if cfg.model.approval_max_pd is not None:
        raise ConfigError("model.approval_max_pd is a table model's own cut-off; household models approve "
                          "from their policy's credit lines: remove the key")
    if cfg.split.holdout_share <= 0:
        raise ConfigError("split.holdout_share: 0 (no hold-out, cross-fitted evidence) is for a table of "
                          "one's own; household data is calibrated and judged on held-out villages: "
                          "set a share above 0")
    households, later = job.stages.run("load households" if cfg.data.source != "generate"
                                       else "generate households", load_households, cfg)
    checked = job.stages.run("validate", validate_households, households, require_truth=True)
    result.quarantined_rows = checked.n_quarantined
    if checked.n_quarantined:  # kept, not dropped: one row per problem (row, column, reason)
        q_path = write_parquet(checked.quarantine, out_dir / "quarantine.parquet")
        result.paths["quarantine"] = str(q_path)
    valid = checked.valid.reset_index(drop=True)
    if len(valid) < 500:
        raise ConfigError(f"only {len(valid)} valid households; need at least 500")
    population_path = out_dir / "households.parquet"
    write_parquet(households, population_path)
    result.paths["households"] = str(population_path)
    s = cfg.split
    split = split_by_village(valid, (1 - s.calibration_share - s.holdout_share, s.calibration_share,
                                     s.holdout_share), seed=cfg.seed)
    train, calib, holdout = split.frames(valid)
    return _Data(population_path, train, cfg.registry.model_name, households=households, later=later,
                 valid=valid, train=train, calib=calib, holdout=holdout)


def _prepare_table(job: _Job) -> _Data:
    """Read a table of one's own (bad rows quarantined) and split it."""
    cfg, result = job.cfg, job.result
    table = job.stages.run("read table", load_table, cfg, job.out_dir)
    result.quarantined_rows = table.quarantined
    result.paths["quarantine"] = str(table.quarantine_path)
    job.protected = [str(c) for c in (table.spec or {}).get("protected", []) or []]
    tr_idx, ho_idx, method = split_table(table.y, table.groups, cfg.split.holdout_share, cfg.seed)
    result.split_method = method
    return _Data(Path(str(cfg.data.source)), table.frame.iloc[tr_idx], table_model_name(cfg), table=table,
                 train_idx=tr_idx, holdout_idx=ho_idx)


def _train_households(job: _Job, data: _Data, use_mlflow: bool) -> _Trained:
    """Tune, fit the blend and the baselines, evaluate them on the hold-out (and vintage 2)."""
    cfg, train, holdout = job.cfg, data.train, data.holdout
    tuned = job.stages.run("tune (Optuna)", tune_params, train, cfg, use_mlflow)
    models = job.stages.run("train blend + GBM", fit_models, train, data.calib, cfg, tuned)
    blend = models["blend"]
    feats = blend.features
    train_points = blend.decide(train, top_k=1, eval_date=cfg.eval_date)["points"].to_numpy(float)
    reference = reference_profile(feats.transform(train), score=train_points)
    ev = job.stages.run("evaluate hold-out", evaluate, models, holdout, cfg)
    if data.later is not None:
        ev["metrics"].update(out_of_time(blend, holdout, ev["decisions"]["blend"]["points"], data.later, cfg))
    job.result.metrics = {k: float(v) for k, v in ev["metrics"].items()}
    dec = ev["decisions"]["blend"]
    blend.metadata["reference_profile"] = reference  # stored with the model for PSI/CSI later
    return _Trained(blend, reference, holdout, feats.transform(holdout), holdout["default_12m"].to_numpy(), dec,
                    grade_order(), policy_graded=dec["vetoed"].to_numpy(bool), ev=ev, models=models)


def _train_table(job: _Job, data: _Data, use_mlflow: bool) -> _Trained:
    """Fit the estimator on a table of one's own and evaluate it on the hold-out."""
    table, tr_idx, result = data.table, data.train_idx, job.result
    est = job.stages.run("train (estimator)", train_table, table, tr_idx, job.cfg, use_mlflow)
    model = est.model_
    result.dropped_columns = dict(est.dropped_columns_)
    result.features = list(model.feature_names)
    train_frame = table.frame.iloc[tr_idx].reset_index(drop=True)
    train_X = model.features.transform(train_frame)
    reference = reference_profile(train_X, score=model.scaling.points_from_pd(est.oof_pd_))
    if len(data.holdout_idx):
        holdout, y_hold = table.frame.iloc[data.holdout_idx].reset_index(drop=True), table.y[data.holdout_idx]
        result.metrics, dec = job.stages.run("evaluate hold-out", evaluate_table, model, holdout, y_hold,
                                             est.oof_pd_, table.y[tr_idx])
        hold_X = model.features.transform(holdout)
        unseen = model.features.unseen_categories(holdout)
    else:  # split.holdout_share: 0 -- the evidence is the out-of-fold PD of the training rows
        holdout, y_hold, hold_X = train_frame, table.y[tr_idx], train_X
        result.metrics, dec = job.stages.run("evaluate (cross-fitted, no hold-out)", evaluate_cross_fitted,
                                             model, train_frame, y_hold, est.oof_pd_)
        result.evidence = CROSS_FITTED_EVIDENCE
        unseen = {}
    result.metrics.update({"rows_read": float(table.n_read), "rows_quarantined": float(table.quarantined),
                           "train_rows": float(len(tr_idx)), "n_features": float(len(model.feature_names)),
                           "base_rate": float(est.base_rate_)})
    result.rows = {"read": int(table.n_read), "quarantined_no_target": int(table.quarantined),
                   "train": int(len(tr_idx)), "holdout": int(len(data.holdout_idx)),
                   "evaluated": int(result.metrics["holdout_households"]),
                   "evaluated_quarantined": int(result.metrics["holdout_quarantined"])}
    result.categories_read_as_missing = {"train": dict(est.unseen_categories_in_fit_), "holdout": unseen}
    if est.tuning_best_cv_auc_ is not None:
        result.metrics["tuning_best_cv_auc"] = est.tuning_best_cv_auc_
    grades = [f"G{i + 1:02d}" for i in range(len(model.metadata.get("grade_edges_pd", [])) + 1)]
    # the model's own spec: validate / recalibrate / promote read the target from here
    model.metadata["target"] = str(table.target)
    model.metadata["target_positive"] = job.cfg.data.target_positive
    model.metadata["protected"] = list(job.protected)
    model.metadata["reference_profile"] = reference  # stored with the model for PSI/CSI later
    return _Trained(model, reference, holdout, hold_X, y_hold, dec, grades)


def _explain(job: _Job, trained: _Trained) -> None:
    """Global SHAP explanations of the hold-out (plots and tables under ``explain/``)."""
    out = job.out_dir / "explain"
    if job.source.has_rules:
        expl = job.stages.run("explain (SHAP)", write_global_explanations, trained.model, trained.hold_X,
                              trained.holdout, out)
    else:
        expl = job.stages.run("explain (SHAP)", table_explanations, trained.model, trained.hold_X, out,
                              job.cfg.seed)
    job.result.paths.update({f"explain_{k}" if not job.source.has_rules else k: str(v) for k, v in expl.items()})


def _fairness(job: _Job, data: _Data, trained: _Trained) -> dict[str, Any]:
    """The fairness audit of the hold-out decisions (needs the ground truth)."""
    fair, approval, fair_paths = job.stages.run("fairness audit", fairness_stage, trained.ev, trained.holdout,
                                                job.cfg, job.out_dir / "fairness", data.train, trained.models,
                                                data.valid)
    job.result.outcome_support = _support_summary(fair.get("outcome_support"))
    job.result.approval_by_group = approval
    job.result.paths.update(fair_paths)
    return fair


def _observed_fairness(job: _Job, data: _Data, trained: _Trained) -> dict[str, Any]:
    """Without the truth: fairness evidence from observed outcomes over the declared protected
    attributes (a table: its feature spec's ``protected``), and the training rows' outcome
    support per group.

    Nothing declared: ``{"not_applicable": ...}``, so every fairness gate says so by name. A
    model without its own approval cut-off decides no approval (``decide()`` then has no
    ``approved`` column): its parity and TPR/FPR figures are "not applicable: no cut-off
    declared", its calibration within groups and the outcome support still hold.
    """
    holdout, dec, keep = trained.holdout, trained.decisions, trained.keep
    cols = [c for c in (data.table.spec.get("protected") or []) if c in holdout.columns]
    fair = decisions_evidence(dec.loc[keep].reset_index(drop=True), holdout.loc[keep].reset_index(drop=True),
                              np.asarray(trained.y_hold)[keep], cols)
    if cols:
        fair["outcome_support"] = table_outcome_support(
            protected_groups(data.table.frame.iloc[data.train_idx], cols), data.table.y[data.train_idx],
            job.cfg.fairness.min_observed_outcomes)
    return fair


def _validate(job: _Job, data: _Data, trained: _Trained, fair: dict[str, Any]) -> dict[str, Any]:
    """The validation report's figures on the scored hold-out rows (and its files, if reports are on)."""
    keep, dec, has_rules = trained.keep, trained.decisions, job.source.has_rules
    cross_fitted = job.result.evidence == CROSS_FITTED_EVIDENCE
    val = job.stages.run(
        "validation report", validation_report,
        np.asarray(trained.y_hold)[keep], dec["pd"].to_numpy(float)[keep], dec["points"].to_numpy(float)[keep],
        dec["grade"].to_numpy()[keep], trained.grades, features_df=trained.hold_X.loc[keep] if has_rules
        else trained.hold_X.iloc[np.flatnonzero(keep)],
        reference_profile=None if cross_fitted else trained.reference,  # no hold-out: nothing to compare
        **({"policy_graded": trained.policy_graded[keep]} if trained.policy_graded is not None else {}),
        fairness_summary=_validation_fairness_summary(fair),
        repro=_validation_identity(data.model_name, job.result.run_id, trained.holdout),
        outcome_observed=outcome_seen(trained.holdout)[keep] if has_rules else None,
    )
    if has_rules and "true_pd" in trained.holdout.columns:
        val["unobserved"] = unobserved_decisions(trained.holdout.loc[keep], dec.loc[keep])
    return val


def _write_validation(job: _Job, val: dict[str, Any]) -> None:
    """The validation report's files (HTML with its figures, JSON), written once: after the
    version is registered and signed when MLflow is on, so they name what was judged."""
    if not job.cfg.stages.reports:
        return
    cross_fitted = job.result.evidence == CROSS_FITTED_EVIDENCE
    val_html, val_json = job.stages.run(
        "write validation report", write_validation_report, val, job.out_dir / "validation",
        **({} if job.source.has_rules else {
            "title": "Model validation report (table of one's own"
                     + ("; cross-fitted evidence, no hold-out)" if cross_fitted else ")"),
            "unit": "rows"}))
    job.result.paths.update({"validation_html": str(val_html), "validation_json": str(val_json)})


def _log_and_register(job: _Job, data: _Data, trained: _Trained, model_dir: Path, val: dict[str, Any],
                      fair: dict[str, Any], run_id: str) -> dict[str, Any]:
    """Log metrics and reports to the run, log and register the model; returns the gates' evidence."""
    result, out_dir, model = job.result, job.out_dir, trained.model
    for sub in ("fairness", "explain"):  # the validation report: once written, after registration
        if (out_dir / sub).is_dir():
            mlflow.log_artifacts(str(out_dir / sub), sub)
    if result.approval_by_group is not None:
        mlflow.log_text(result.approval_by_group.to_csv(), "fairness/approval_by_group.csv")
    if result.dropped_columns:
        mlflow.log_dict(result.dropped_columns, "data/dropped_columns.json")
    info = job.stages.run("log + register model", log_decision_model, model_dir,
                          input_example=model.input_example(5), registered_model_name=data.model_name,
                          top_k=job.cfg.top_k, **_decision_class(model))
    # after the model, linked to it: logged before, MLflow would copy them to the model one
    # history query per metric (about 40 round trips to the store)
    mlflow.log_metrics(result.metrics, model_id=info.model_id)
    result.model_uri = info.model_uri
    result.run_model_uri = f"runs:/{run_id}/model"
    result.registered_model_name = data.model_name
    result.model_version = str(info.registered_model_version)
    evidence = _evidence(result.metrics, val, fair,
                         job.training_fingerprint or data_fingerprint(data.fingerprint_rows))
    if result.evidence == CROSS_FITTED_EVIDENCE:  # no hold-out: stability cannot be judged, never a PSI of 0
        evidence["stability"] = {"score_psi": None, "max_feature_psi": None}
        evidence["basis"] = result.evidence
    log_evidence(evidence, run_id)
    # the gates and thresholds this experiment declares, recorded with the registered model
    # now (not only at promotion), so that a later `promote` judges the version by them
    record_thresholds(data.model_name, _gate_thresholds(job, evidence),
                      f"experiment {job.cfg.name} (registry.gates)")
    _record_holdout_validation(job, data, val, run_id)
    _write_validation(job, val)
    if job.cfg.stages.reports:
        mlflow.log_artifacts(str(out_dir / "validation"), "validation")
    return evidence


def _record_holdout_validation(job: _Job, data: _Data, val: dict[str, Any], run_id: str) -> None:
    """The hold-out validation as the registered version's validation record.

    The hold-out (whole villages, or a table's held-out rows) was never seen by the
    training, so its verdict is the version's own (:mod:`village_credit.registry.verdict`):
    it gates the promotion that follows. Signed by ``registry.validator``; without one no
    record is written and the promotion is refused until someone validates.
    """
    result, validator = job.result, (job.cfg.registry.validator or "").strip()
    verdict = dict(val.get("verdict") or {})
    result.validation = {"verdict": verdict.get("verdict"), "reasons": verdict.get("reasons") or [],
                         "validator": validator or None, "record_run_id": None}
    if not validator:
        result.validation["note"] = ("no registry.validator in the config: no validation record, "
                                     "so the promotion is refused")
        return
    name, version = data.model_name, str(result.model_version)
    client = get_client()
    sha = version_digest(name, version, client=client)
    # the report names what it judged: the registered version, its bytes, its signer
    ident = val.setdefault("identity", {})
    ident.update(model_version=version, model_uri=f"models:/{name}/{version}", model_artifact_sha256=sha,
                 validator=validator)
    rec = client.create_run(mlflow.get_run(run_id).info.experiment_id, tags={
        "mlflow.runName": f"validate-{name}-v{version}", **run_tags(
            name, version, model_uri=f"models:/{name}/{version}",
            artifact_sha256=sha, validator=validator,
            sample_fingerprint=ident.get("validation_sample_fingerprint"),
            training_fingerprint=ident.get("training_data_fingerprint"),
            purpose=f"hold-out validation of the training run {run_id} ({result.split_method})")})
    client.log_text(rec.info.run_id, json.dumps(verdict, indent=2, default=str), "validation/verdict.json")
    record_validation(client, rec.info.run_id, name, version, verdict, validator=validator)
    client.set_terminated(rec.info.run_id)
    result.validation["record_run_id"] = rec.info.run_id


#: the gates that judge fairness evidence (their keys and limits: registry.gates)
_FAIRNESS_GATES = ("fairness_approval_excess_max", "fairness_line_excess_max", "fairness_parity_ratio_min",
                   "fairness_group_calibration_p_min", "fairness_tpr_gap_max", "outcome_support")


def gates_not_applicable(cfg: ExperimentConfig, source: DataSource, protected: list[str],
                         fairness: dict[str, Any]) -> dict[str, str]:
    """The gates that cannot apply to this experiment's model, each with why.

    Declared in ``registry.gates.not_applicable``, plus what the data source implies: a
    table of one's own has no points standard to compare with, and one whose spec
    declares no protected attribute has no group to judge fairness for. A table that
    declares protected attributes keeps its fairness gates: without fairness evidence
    they fail, as they should.

    >>> import tempfile
    >>> from pathlib import Path
    >>> import pandas as pd
    >>> from village_credit.config import load_config
    >>> from village_credit.sources import data_source
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     pd.DataFrame({"income": [1.0, 2.0], "default_12m": [0, 1]}).to_csv(Path(tmp) / "loans.csv", index=False)
    ...     cfg = load_config(None, {"data.source": str(Path(tmp) / "loans.csv")})
    ...     source = data_source(cfg)
    >>> na = gates_not_applicable(cfg, source, [], {})  # a table, no protected attribute declared
    >>> na["fairness_gap_vs_rules"], na["fairness_parity_ratio_min"]
    ("no rule standard to compare with (a table of one's own has no points policy)", 'no protected attribute declared in the feature spec')
    >>> "fairness_parity_ratio_min" in gates_not_applicable(cfg, source, ["age"], {})  # declared: it applies
    False
    """
    na = dict(cfg.registry.gates.not_applicable or {})
    if not source.has_rules:
        na.setdefault("fairness_gap_vs_rules", "no rule standard to compare with (a table of one's "
                      "own has no points policy)")
    if not source.has_truth and not fairness and not protected:
        for gate in _FAIRNESS_GATES:
            na.setdefault(gate, "no protected attribute declared in the feature spec")
    return na


def _gate_thresholds(job: _Job, evidence: dict[str, Any]) -> dict[str, Any]:
    """The experiment's gate thresholds and the gates that do not apply to its model."""
    thresholds = {k: v for k, v in vars(job.cfg.registry.gates).items()}
    thresholds["not_applicable"] = gates_not_applicable(job.cfg, job.source, job.protected,
                                                        evidence.get("fairness") or {})
    return thresholds


def _promote(job: _Job, model_name: str, evidence: dict[str, Any]) -> None:
    """The promotion gates on the registered version (champion if every gate passes)."""
    thresholds = _gate_thresholds(job, evidence)
    promo = job.stages.run("promotion gates", promote, model_name, job.result.model_version, evidence,
                           thresholds)
    job.result.promoted = bool(promo.promoted)
    job.result.gates = promo.to_dict()


def _score_population(job: _Job, data: _Data) -> None:
    """Batch-score the population with the champion (and the programme report, if it has one)."""
    result, out_dir = job.result, job.out_dir
    summary = job.stages.run("batch-score population", score_file, f"models:/{data.model_name}@champion",
                             data.population_path, out_dir / "scores", chunk_rows=job.cfg.scoring_chunk_rows,
                             overwrite=True, progress=False)
    result.scoring = summary.to_dict()
    result.paths["scores"] = str(out_dir / "scores")
    if job.source.has_programme:
        result.programme = programme_stage(data.households, out_dir)
        result.paths["programme_villages"] = str(out_dir / "programme_villages.parquet")


def _decision_class(model: Any) -> dict[str, str]:
    """A group-recalibrated blend loads through its own class (``recalibration.json``)."""
    return {"decision_class": DECISION_CLASS} if isinstance(model, RecalibratedDecisionModel) else {}


def _support_summary(sup: dict[str, Any] | None) -> dict[str, Any]:
    """The demo summary's outcome-support lines: extrapolated groups, remedies, ratios both ways."""
    if not sup:
        return {}
    return {"extrapolated_groups": sup.get("extrapolated_groups", []), "remedies": sup.get("remedies", []),
            "min_observed": sup.get("min_observed"),
            "headline": [{k: r.get(k) for k in ("group", "n", "n_observed", "pred_true_ratio", "ceiling_true_ratio",
                                                "pred_observed_ratio", "equal_risk_comparison", "worst_gap_line",
                                                "worst_gap_line_decile")} for r in sup.get("headline", [])]}


def _validation_fairness_summary(fair: dict[str, Any]) -> dict[str, Any] | None:
    """The validation report's fairness section: outcome support, and (no truth) the
    observed-outcome evidence by protected group, or why there is none."""
    support = _validation_support_flag(fair.get("outcome_support"))
    if isinstance(fair.get("not_applicable"), str):
        return {"fairness": f"not applicable: {fair['not_applicable']}"}
    if "observed" in fair and "equal_risk" not in fair:
        return {**observed_summary(fair["observed"]), **(support or {})}
    return support


def _validation_support_flag(sup: dict[str, Any] | None) -> dict[str, Any] | None:
    """Outcome-support flag for the validation report's fairness section (extrapolated groups)."""
    if not sup:
        return None
    ext = sup.get("extrapolated_groups") or []
    groups = pd.DataFrame(sup.get("groups") or [])
    cols = [c for c in ("group", "n", "n_observed", "n_observed_defaults", "extrapolated") if c in groups]
    flag = (f"EXTRAPOLATED (fewer than {sup.get('min_observed')} observed outcomes): {', '.join(ext)}"
            if ext else "every protected group has observed outcomes")
    return {"outcome support": flag,
            "remedies applied": ", ".join(sup.get("remedies") or []) or "none",
            "observed outcomes per group": groups[cols] if cols else groups}


def programme_stage(households: pd.DataFrame, out_dir: Path) -> dict[str, Any]:
    """Credit village / credit township report for the scored population (NPL from the truth)."""
    decisions = read_decisions(out_dir / "scores")
    outcome = households.set_index("household_id")["default_12m"]
    merged = decisions.assign(default_12m=decisions["household_id"].map(outcome).to_numpy())
    report = programme_report(merged, merged, outcome="default_12m", points_column="points")
    report.villages.to_parquet(out_dir / "programme_villages.parquet", index=False)
    report.townships.to_parquet(out_dir / "programme_townships.parquet", index=False)
    return report.summary()


def _evidence(m: dict[str, float], val: dict[str, Any], fairness: dict[str, Any], fingerprint: str
              ) -> dict[str, Any]:
    """The promotion evidence: hold-out numbers the gates compare with thresholds.

    Without the truth the fairness evidence is the observed-outcome section over the
    declared protected attributes; with none declared it says "not applicable", and the
    fairness gates say so by name.
    """
    stab = val.get("stability") or {}
    csi = stab.get("csi")
    max_csi = float(csi["csi"].max()) if csi is not None and len(csi) else None
    # discrimination and calibration as the signed validation measured them: on the hold-out
    # households with an observed outcome (the only outcomes a bank has), not on outcomes the
    # generator drew for households nobody lent to
    disc, cal = val["discrimination"], val["calibration"]
    return {
        "discrimination": {"auc": disc["auc"], "ks": disc["ks"]},
        "calibration": {"ece": cal["ece"], "hosmer_lemeshow_p": cal["hosmer_lemeshow"]["p_value"]},
        "stability": {"score_psi": stab.get("score_psi"), "max_feature_psi": max_csi},
        "fairness": fairness,
        "data_fingerprint": fingerprint,  # the training rows' (logged on the run)
    }
