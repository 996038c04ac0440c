"""Third-party workflows: validate a registered model, monitor drift between vintages.

Who uses this: the *independent calibrator* of the three-party review (domain notes
section 1). They hold the registered model and their own labelled sample, never our
training code paths or data. So everything here starts from a model URI:

1. the logged pyfunc is downloaded (``mlflow.artifacts.download_artifacts``) and
   hashed (sha256 over its files), then loaded from that very copy with
   ``mlflow.pyfunc.load_model``: the decisions validated are the decisions of the
   bytes hashed;
2. the training reference profile (for PSI/CSI) and the feature transformer come
   from the ``decision_model`` artifact inside the logged model (``model.json``);
3. the statistics are the pure functions of :mod:`village_credit.validation`
   (``validation_report``), so the calibrator, the promotion gates and the monitor
   compute identical numbers.

Layering: this module (and :mod:`~village_credit.validation.recalibration`) is a
*workflow* on top of the registry; ``registry``, ``fairness`` and MLflow are imported
lazily inside the functions, so ``village_credit.validation`` itself stays a pure
statistics package that ``registry.gates`` may import without a cycle.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

import village_credit
from village_credit.data.io import read_table
from village_credit.data.schema import TRUTH_COLUMNS
from village_credit.errors import VillageCreditError
from village_credit.fairness.audit import DecisionSystem, fairness_audit
from village_credit.fairness.ceiling import ceiling_system, split_gaps
from village_credit.fairness.equal_risk import equal_risk_gaps
from village_credit.fairness.groups import FairnessInputError, sensitive_frame
from village_credit.fairness.observed import (
    decisions_evidence,
    observed_rows_evidence,
    observed_summary,
    outcome_seen,
)
from village_credit.fairness.report import fairness_json
from village_credit.registry.loading import (
    LoadedModel,
    ModelLoadError,
    UngatedModelError,
    artifact_digest,
    load_model,
    parse_models_uri,
)
from village_credit.registry.store import get_client
from village_credit.registry.tracking import data_fingerprint, library_versions
from village_credit.registry.verdict import record_validation, run_tags, training_fingerprint
from village_credit.reporting.html import write_json
from village_credit.reporting.progress import ProgressCallback, Steps
from village_credit.rules.engine import score_rules
from village_credit.rules.grades import grade_order, policy_age_ceiling
from village_credit.validation.drift import drift_report, overall_alert, write_drift_report
from village_credit.validation.report import (
    ValidationConfig,
    unobserved_decisions,
    validation_report,
    write_validation_report,
)
from village_credit.validation.segments import segment_drift

__all__ = [
    "DEFAULT_CONFIG",
    "model_spec",
    "outcome_column",
    "outcome_labels",
    "GRADE_ORDER",
    "ValidationKitError",
    "artifact_hash",
    "decide_sample",
    "gate_evidence",
    "load_model_source",
    "monitor",
    "parse_model_uri",
    "read_sample",
    "validate_model",
]

OUTCOME = "default_12m"
PREVIOUS_GRADE = "previous_grade"
SCORE_NAME = "score"
#: Ground truth (incl. the outcome) and the previous grade: never sent to the model.
_NOT_INPUTS = (*TRUTH_COLUMNS, PREVIOUS_GRADE)
#: Raw columns never compared by the monitor: identifiers and the vintage counter itself.
_MONITOR_SKIP = ("household_id", "vintage", *TRUTH_COLUMNS)

#: Third-party default: the toolkit's one Hosmer-Lemeshow convention (dof = groups; the
#: sample is independent of the model's fit), as in ``pipeline.evaluate``.
DEFAULT_CONFIG = ValidationConfig(score_name=SCORE_NAME)


GRADE_ORDER: list[str] = grade_order()


class ValidationKitError(VillageCreditError, ValueError):
    """A third-party workflow cannot run: unreadable model or sample, missing column, ..."""


# --------------------------------------------------------------------------- inputs


def read_sample(data: pd.DataFrame | str | Path, what: str = "sample") -> pd.DataFrame:
    """A DataFrame as is, or a Parquet/CSV file read with ``data.io.read_table``."""
    if isinstance(data, pd.DataFrame):
        return data.reset_index(drop=True)
    path = Path(data)
    if not path.exists():
        raise ValidationKitError(f"{what} file not found: {path}")
    df = read_table(path).reset_index(drop=True)
    if df.empty:  # every statistic of an empty sample would be NaN or an error far from here
        raise ValidationKitError(f"{what} file {path} has no rows")
    return df


def parse_model_uri(uri: str) -> tuple[str | None, str | None, str | None]:
    """``(name, version, alias)`` of a ``models:/`` URI (the one loader's parser)."""
    return parse_models_uri(uri)


def artifact_hash(directory: str | Path) -> str:
    """``sha256:<hex>`` over every file of ``directory`` (the one loader's digest)."""
    return artifact_digest(directory)


def __getattr__(name: str) -> Any:  # ModelSource: the loader's LoadedModel, imported lazily
    if name == "ModelSource":
        return LoadedModel
    raise AttributeError(name)


def load_model_source(uri: str, dst_dir: str | Path | None = None, *,
                      require_gate: bool = False, allow_ungated: bool = False) -> Any:
    """Download, hash and load a decision model as a third party would (the one loader).

    ``uri``: any URI MLflow accepts (``models:/name@alias``, ``models:/name/N``,
    ``models:/m-<id>``, ``runs:/<run>/model``) or a local model folder. The calibrator
    judges models before promotion, so the promotion record is reported, not required,
    unless ``require_gate``. Errors are :class:`ValidationKitError`.
    """
    try:
        return load_model(uri, dst_dir, require_gate=require_gate, allow_ungated=allow_ungated)
    except UngatedModelError:
        raise
    except ModelLoadError as exc:
        raise ValidationKitError(str(exc)) from exc


# --------------------------------------------------------------------------- scoring


def _model_inputs(sample: pd.DataFrame, source: Any = None) -> pd.DataFrame:
    drop = {*_NOT_INPUTS, *([outcome_column(source)] if source is not None else [])}
    return sample.drop(columns=[c for c in drop if c in sample.columns])


def model_spec(source: Any) -> dict[str, Any]:
    """What the model itself recorded about its table: target, its positive label, id
    column and grades (the household constants only for a model that records none).

    A table model (:mod:`village_credit.models.estimator`, trained by ``train``) stores
    ``target``, ``target_positive``, ``id_column`` and ``grade_edges_pd`` in its
    metadata; a household blend has a policy whose grades are the programme's.
    """
    dm = getattr(source, "decision_model", None)
    meta = dict(getattr(dm, "metadata", None) or {})
    edges = meta.get("grade_edges_pd")
    if getattr(dm, "policy", None) is None and edges:
        grades = [f"G{i + 1:02d}" for i in range(len(edges) + 1)]
    else:
        grades = list(GRADE_ORDER)
    return {"target": str(meta.get("target") or OUTCOME),
            "target_positive": meta.get("target_positive"),
            "id_column": meta.get("id_column") or "household_id",
            "grades": grades, "has_policy": getattr(dm, "policy", None) is not None}


def outcome_column(source: Any) -> str:
    """The name of the outcome column the model was trained on (``default_12m`` for households)."""
    return model_spec(source)["target"]


def outcome_labels(sample: pd.DataFrame, source: Any, what: str = "validation sample") -> np.ndarray:
    """The sample's outcome as 0/1 by the model's own spec (text labels through
    ``target_positive``), NaN where a row has no label.

    A row without a label is a row without an observed outcome (a refused applicant, a
    loan not yet due): it is decided, counted and kept for the population figures, never
    tested against an outcome (:func:`outcome_rows`). A clear error for a missing
    column, no label at all, unknown labels, or a row that ``outcome_observed`` marks
    observed but that has no label.

    >>> import pandas as pd
    >>> from types import SimpleNamespace
    >>> from village_credit.validation.kit import outcome_labels
    >>> table_model = SimpleNamespace(decision_model=SimpleNamespace(
    ...     metadata={"target": "bad", "target_positive": "yes"}, policy=None))
    >>> outcome_labels(pd.DataFrame({"bad": ["yes", "no", None]}), table_model).tolist()
    [1.0, 0.0, nan]
    """
    spec = model_spec(source)
    target, positive = spec["target"], spec["target_positive"]
    if target not in sample.columns:
        raise ValidationKitError(
            f"the {what} has no {target!r} column (the model's target: 1 / {positive!r} = "
            "defaulted): a labelled sample is needed")
    col = sample[target]
    missing = col.isna().to_numpy()
    if missing.all():
        raise ValidationKitError(f"the {what}: no row has a {target!r} label (a labelled sample "
                                 "is needed; rows without one are decided but not tested)")
    contradicts = missing & outcome_seen(sample) if "outcome_observed" in sample.columns else None
    if contradicts is not None and contradicts.any():
        row = int(np.flatnonzero(contradicts)[0])
        raise ValidationKitError(
            f"the {what}: column {target!r}, row {row}: missing although 'outcome_observed' is true "
            f"({int(contradicts.sum())} such rows): label them or mark them not observed")
    if positive is not None:
        y = (col.astype(str) == str(positive)).to_numpy(dtype=float)
        y[missing] = np.nan
        return y
    vals = pd.to_numeric(col, errors="coerce")
    bad = ~missing & (vals.isna() | ~vals.isin([0, 1])).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValidationKitError(f"the {what}: column {target!r}, row {row}: {col.iloc[row]!r} is not "
                                 "0 or 1 (and the model records no target_positive label)")
    return vals.to_numpy(dtype=float)


def outcome_rows(sample: pd.DataFrame, y: np.ndarray) -> np.ndarray:
    """The rows tested against an outcome: labelled (``y`` not NaN) and, where the sample
    says so, observed (:func:`~village_credit.fairness.observed.outcome_seen`).

    >>> import numpy as np, pandas as pd
    >>> from village_credit.validation.kit import outcome_rows
    >>> outcome_rows(pd.DataFrame({"x": [1, 2, 3]}), np.array([0.0, np.nan, 1.0])).tolist()
    [True, False, True]
    """
    return ~np.isnan(np.asarray(y, dtype=float)) & outcome_seen(sample)


def _numbers_back(out: pd.DataFrame) -> pd.DataFrame:
    """Float columns the pyfunc made JSON-safe (``None`` for a quarantined row's PD,
    points, line) back to float64 with NaN, so the statistics see numbers."""
    fixes = {}
    for col in out.columns:
        s = out[col]
        if s.dtype != object:
            continue
        vals = s[s.notna()]
        if len(vals) and all(isinstance(v, (float, int, np.floating, np.integer))
                             and not isinstance(v, (bool, np.bool_)) for v in vals):
            fixes[col] = pd.to_numeric(s, errors="coerce").astype("float64")
    return out.assign(**fixes) if fixes else out


def decide_sample(source: Any, sample: pd.DataFrame) -> pd.DataFrame:
    """The model's decisions on ``sample`` through the pyfunc (row order kept)."""
    out = source.pyfunc.predict(_model_inputs(sample, source))
    if not isinstance(out, pd.DataFrame) or len(out) != len(sample):
        raise ValidationKitError(f"model {source.uri!r} returned {type(out).__name__} of "
                                 f"{len(out)} rows for {len(sample)} input rows")
    out = _numbers_back(out.reset_index(drop=True))
    for col in ("pd", "points", "grade", "status"):
        if col not in out.columns:
            raise ValidationKitError(f"model {source.uri!r}: decisions lack column {col!r}")
    return out


def model_features(source: Any, rows: pd.DataFrame) -> pd.DataFrame | None:
    """The model's own feature frame of (valid) ``rows``, or ``None`` if it cannot be built."""
    dm = source.decision_model
    try:
        X = dm._transform(rows.reset_index(drop=True))  # noqa: SLF001 - the model's exact path
    except Exception:
        try:
            X = dm.features.transform(rows.reset_index(drop=True))
        except Exception:
            return None
    return X.reset_index(drop=True)


def _fairness(rows: pd.DataFrame, decisions: Mapping[str, pd.DataFrame], y: np.ndarray,
              age_max: int, n_boot: int, seed: int, model: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(summary for the report, fairness keys for gate evidence).

    With ``true_pd`` and the model: the equal-risk gaps split into the information ceiling
    (cross-fitted on the sample) and the model's own excess; always: observed-outcome
    evidence by age band and formerly-poor status (fairness/observed.py).
    """
    sens = sensitive_frame(rows, age_max)
    systems = [DecisionSystem.from_decisions(name, d.reset_index(drop=True))
               for name, d in decisions.items()]
    tp = rows["true_pd"].to_numpy(dtype=float) if "true_pd" in rows.columns else None
    feats = ["age_band", "elderly", "policy_age", "formerly_poor"]
    audit = fairness_audit(systems, sens, y, true_pd=tp, n_boot=n_boot, seed=seed, features=feats)
    split = None
    gap_systems = list(systems)
    if tp is not None and model is not None:
        try:  # a sample too small to cross-fit leaves the excess missing: its gates then fail
            gap_systems.append(ceiling_system(model, rows, seed=seed))
        except (FairnessInputError, ValueError):
            pass
    gaps = equal_risk_gaps(gap_systems, sens, tp) if tp is not None else None
    if gaps is not None and len(gap_systems) > len(systems):
        split = split_gaps(gaps)
    observed = observed_rows_evidence(systems[0], rows.reset_index(drop=True), y)
    fj = fairness_json(audit, gaps, primary_system=systems[0].name, ceiling=split, observed=observed)
    bg = audit.by_group
    keep = bg["metric"].isin(["n", "approval_rate", "default_rate", "mean_pd", "mean_line",
                              "calibration_gap", "auc"])
    wide = (bg[keep].pivot_table(index=["system", "feature", "group"], columns="metric",
                                 values="value", aggfunc="first", sort=False)
            .reset_index())
    wide.columns.name = None
    disp = audit.disparities[audit.disparities["metric"] != "four_fifths_pass"].reset_index(drop=True)
    summary: dict[str, Any] = {
        "by_group": wide,
        "disparities": disp,
        "demographic_parity_min_ratio": fj["demographic_parity"].get("min_ratio"),
        "equal_risk": ({k: fj["equal_risk"].get(k) for k in
                        ("max_gap_approval", "max_gap_line", "passes_5pct")}
                       if gaps is not None else "n/a (needs true_pd, known only for synthetic data)"),
        "note": "Groups by head-of-household age and formerly-poor status; bootstrap "
                f"CIs from {n_boot} replicates.",
    }
    evidence = {"equal_risk": fj.get("equal_risk", {}),
                "demographic_parity": fj.get("demographic_parity", {}), "observed": observed}
    return summary, evidence


def _table_fairness(rows: pd.DataFrame, decisions: pd.DataFrame, y: np.ndarray, dm: Any
                    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(report section, gate evidence) of a table model: observed-outcome evidence over the
    protected attributes its spec declared (recorded as ``metadata["protected"]``).

    None declared: every fairness gate "not applicable" by name. Declared but absent from
    (or missing in) the sample: no evidence, so the fairness gates fail as missing, saying why.
    """
    protected = [str(c) for c in (getattr(dm, "metadata", None) or {}).get("protected") or []]
    absent = [c for c in protected if c not in rows.columns]
    if absent:
        why = f"not computed: the sample lacks the protected column(s) {', '.join(absent)} the model declares"
        return {"fairness": why}, None
    try:
        ev = decisions_evidence(decisions, rows, y, protected)
    except FairnessInputError as exc:
        return {"fairness": f"not computed: {exc}"}, None
    if isinstance(ev.get("not_applicable"), str):
        return {"fairness": f"not applicable: {ev['not_applicable']}"}, ev
    return observed_summary(ev["observed"]), ev


def gate_evidence(result: Mapping[str, Any], fairness: Mapping[str, Any] | None = None,
                  fingerprint: str | None = None) -> dict[str, Any]:
    """Promotion-gate evidence (``registry.gates`` keys) from a validation result.

    ``fingerprint`` is the validation sample's (labelled so: the registry's
    ``data_fingerprint`` is the training data's). A comparison with a registered
    champion on the same sample becomes ``discrimination.vs_champion`` (the paired
    gates' evidence).
    """
    disc, cal = result["discrimination"], result["calibration"]
    stab = result.get("stability") or {}
    csi = stab.get("csi")
    max_csi = (float(csi["csi"].max()) if isinstance(csi, pd.DataFrame) and len(csi) else None)
    ev: dict[str, Any] = {
        "discrimination": {"auc": disc["auc"], "ks": disc["ks"]},
        "calibration": {"ece": cal["ece"], "hosmer_lemeshow_p": cal["hosmer_lemeshow"]["p_value"],
                        "red_grades": cal["lights"]["red"]},
        "stability": {"score_psi": stab.get("score_psi"), "max_feature_psi": max_csi},
        "source": "third-party validation sample",
    }
    if fairness is not None:
        ev["fairness"] = dict(fairness)
    if fingerprint is not None:
        ev["validation_sample_fingerprint"] = fingerprint
    ch = result.get("challenger")
    rep = result.get("reproducibility") or {}
    if ch is not None and rep.get("challenger_version") and rep.get("challenger_name") == rep.get("model_name"):
        ev["discrimination"]["vs_champion"] = {
            "champion_version": str(rep["challenger_version"]),
            "auc_diff": ch["auc_diff"], "auc_diff_ci": ch.get("auc_diff_ci"),
            "auc_p_value": ch["p_value"], "ks_diff": ch["ks_champion"] - ch["ks_challenger"],
            "n": int(result["sample"]["n"]), "sample_fingerprint": fingerprint,
            "method": "paired DeLong on one sample (PD of both models)"}
    return ev


def _fingerprint(df: pd.DataFrame) -> str | None:
    return data_fingerprint(df)


def _toolkit_version() -> str:
    return str(village_credit.__version__)


def _library_versions() -> dict[str, str]:
    return library_versions()


# --------------------------------------------------------------------------- validate


def validate_model(
    model_uri: str,
    data: pd.DataFrame | str | Path,
    report_dir: str | Path,
    *,
    challenger_uri: str | None = None,
    log_to_mlflow: bool = True,
    config: ValidationConfig | None = None,
    fairness_boot: int = 100,
    seed: int = 0,
    allow_ungated: bool = False,
    progress: ProgressCallback | None = None,
    validator: str | None = None,
) -> tuple[dict[str, Any], Path, Path]:
    """Validate a registered model on the calibrator's labelled sample.

    The target, its positive label, the id column and the grades come from the model's
    own recorded spec (:func:`model_spec`). A validation logged for a registered
    version is that version's **validation record** (its verdict gates promotion,
    :mod:`village_credit.registry.verdict`): it needs a ``validator`` identity and is
    refused without one. ``challenger_uri``: a model scored on the same sample; when it
    is a registered version of the same model (``models:/NAME@champion``) the paired
    DeLong comparison becomes the evidence of the champion gates.

    A ``challenger_uri`` naming ``@champion`` must be a promoted version (the loader
    checks its promotion record) unless ``allow_ungated``.

    Writes ``validation_report.html`` (charts embedded), ``validation_report.json``
    (every figure) and ``evidence.json`` (the promotion-gate keys, usable as
    ``village-credit promote --evidence``) into ``report_dir``. When ``log_to_mlflow``
    and the URI names a registered version, the three files are logged to a new run
    (tagged ``validated_model_name`` / ``validated_model_version``) and the model
    version gets ``validation.<date>.<figure>`` tags plus ``last_validation``.
    Returns ``(result, html_path, json_path)``. ``progress``: called ``(step, done,
    total)`` before each step (:mod:`village_credit.reporting.progress`).
    """
    cfg = config or DEFAULT_CONFIG
    sample = read_sample(data)
    work = Path(tempfile.mkdtemp(prefix="vc-validate-"))
    try:
        return _validate(model_uri, sample, Path(report_dir), challenger_uri, log_to_mlflow, cfg,
                         fairness_boot, seed, work, allow_ungated, Steps(progress, total=5),
                         (validator or "").strip())
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _validate(model_uri: str, sample: pd.DataFrame, out: Path, challenger_uri: str | None,
              log_to_mlflow: bool, cfg: ValidationConfig, fairness_boot: int, seed: int,
              work: Path, allow_ungated: bool = False,
              steps: Steps | None = None, validator: str = "") -> tuple[dict[str, Any], Path, Path]:
    steps = steps or Steps(None, total=5)
    steps("loading the model")
    champ = load_model_source(model_uri, work / "champion")
    spec = model_spec(champ)
    y_all = outcome_labels(sample, champ)
    if log_to_mlflow and champ.registered and not validator:
        raise ValidationKitError(
            f"{champ.label}: a validation recorded for a registered version can promote it, so it "
            "must be signed: give the validator's identity (--validator NAME, or "
            "registry.validator in the experiment config), or --no-mlflow for a report only")
    dec = decide_sample(champ, sample)
    ok = (dec["status"] == "scored").to_numpy().copy()
    chal = cdec = None
    steps("deciding the sample")
    if challenger_uri is not None:
        # a comparison against @champion must be against a promoted version: an alias
        # moved by hand onto an ungated version is refused here as in scoring
        chal = load_model_source(challenger_uri, work / "challenger",
                                 require_gate=parse_model_uri(challenger_uri)[2] == "champion",
                                 allow_ungated=allow_ungated)
        cdec = decide_sample(chal, sample)
        ok = ok & (cdec["status"] == "scored").to_numpy()
    if not ok.any():
        raise ValidationKitError("no row of the sample could be scored (all quarantined)")
    rows = sample.loc[ok].reset_index(drop=True)
    d = dec.loc[ok].reset_index(drop=True)
    # the rows the pipeline's hold-out validation tests: those with an observed outcome
    # (labelled, and observed where the sample says); the others count for the population
    seen_all = outcome_rows(rows, y_all[ok])
    seen = seen_all if ("outcome_observed" in rows.columns or not seen_all.all()) else None
    if seen is not None and not seen.any():
        raise ValidationKitError("no scored row of the sample has an observed outcome")
    y = np.nan_to_num(y_all[ok])  # unlabelled rows are never tested (``seen``)
    if seen is not None and "outcome_observed" not in rows.columns:
        rows = rows.copy()  # one block: the sample may arrive as many
        rows["outcome_observed"] = seen  # the fairness evidence reads it (outcome_seen)

    features = model_features(champ, rows)
    prev = rows[PREVIOUS_GRADE].to_numpy(dtype=object) if PREVIOUS_GRADE in rows.columns else None
    challenger = None
    decisions = {"model": d}
    if chal is not None and cdec is not None:
        cd = cdec.loc[ok].reset_index(drop=True)
        challenger = {"name": "challenger", "pd": cd["pd"].to_numpy(float),
                      "grades": cd["grade"].to_numpy(object), "score": cd["points"].to_numpy(float)}
        decisions["challenger"] = cd
    policy = getattr(champ.decision_model, "policy", None)
    if policy is not None:
        # The points standard the model replaces, on the same households: the baseline
        # for the gate "no less fair than the rules" (the policy ships with the model).
        decisions["rules"] = score_rules(rows, policy).decisions.reset_index(drop=True)
    fairness_summary = fair_ev = None
    steps("fairness")
    if not spec["has_policy"]:  # a table model: the protected attributes its own spec declares
        tested = np.ones(len(rows), bool) if seen is None else seen
        fairness_summary, fair_ev = _table_fairness(rows.loc[tested].reset_index(drop=True),
                                                    d.loc[tested].reset_index(drop=True), y[tested],
                                                    champ.decision_model)
    elif {"head_age", "formerly_poor"} <= set(rows.columns):
        age_max = policy_age_ceiling(getattr(champ.decision_model, "policy", None))
        fairness_summary, fair_ev = _fairness(rows, decisions, y, age_max, fairness_boot, seed,
                                              model=champ.decision_model)
    fingerprint = _fingerprint(sample)
    repro: dict[str, Any] = {
        **champ.identity_dict(),
        "validator": validator or "not given (report only, no validation record)",
        "training_data_fingerprint": _training_fingerprint(champ),
        "override": _override_of(champ),
        "validation_sample_fingerprint": fingerprint,
        "sample_fingerprint": fingerprint,
        "target": spec["target"],
        "sample_rows": int(len(sample)),
        "rows_scored": int(ok.sum()),
        "rows_quarantined": int((~ok).sum()),
        "rows_with_outcome": int(ok.sum() if seen is None else seen.sum()),
        "reference_profile": ("stored with the model" if champ.reference_profile
                              else "absent: no stability section"),
        "validated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "library_versions": _library_versions(),
        "toolkit_version": _toolkit_version(),
    }
    if chal is not None:
        repro.update({f"challenger_{k.removeprefix('model_')}": v for k, v in chal.identity_dict().items()
                      if k != "decision_class"})
    steps("statistics")
    result = validation_report(
        y, d["pd"].to_numpy(float), d["points"].to_numpy(float), d["grade"].to_numpy(object),
        spec["grades"], features_df=features, reference_profile=champ.reference_profile,
        prev_grades=prev, fairness_summary=fairness_summary, challenger=challenger, repro=repro,
        config=cfg, policy_graded=d["vetoed"].to_numpy(bool) if "vetoed" in d.columns else None,
        outcome_observed=seen)
    if seen is not None and "true_pd" in rows.columns and "vetoed" in d.columns:
        result["unobserved"] = unobserved_decisions(rows, d)
    result["evidence"] = gate_evidence(result, fair_ev, fingerprint)

    title = f"Model validation report: {champ.label}"
    steps("report and MLflow")
    run_ctx = _start_validation_run(champ, repro) if log_to_mlflow else None
    if log_to_mlflow and run_ctx is None:
        result["mlflow"] = {"skipped": f"{champ.uri} is not a registered model version"}
    if run_ctx is not None:
        result["reproducibility"]["validation_run_id"] = run_ctx.info.run_id
    try:
        html, js = write_validation_report(result, out, title=title,
                                           unit="households" if spec["has_policy"] else "rows")
        ev_path = out / "evidence.json"
        write_json(result["evidence"], ev_path)
        if run_ctx is not None:
            result["mlflow"] = _log_validation(run_ctx, champ, result, [html, js, ev_path], validator)
    finally:
        if run_ctx is not None:
            mlflow.end_run()
    steps.finish()
    return result, html, js


def _training_fingerprint(src: Any) -> str | None:
    """The training data's fingerprint from the model's run (what the registry shows)."""
    return training_fingerprint(MlflowClient(tracking_uri=mlflow.get_tracking_uri(),
                                             registry_uri=mlflow.get_registry_uri()), src.run_id)


def _override_of(src: Any) -> str | None:
    """The override a registered version was promoted with (who, until, why), if any."""
    if not src.registered:
        return None
    try:
        tags = MlflowClient(tracking_uri=mlflow.get_tracking_uri(),
                            registry_uri=mlflow.get_registry_uri()).get_model_version(
            str(src.name), str(src.version)).tags
    except Exception:  # noqa: BLE001 - the identity block shows what the registry says, or nothing
        return None
    if tags.get("promoted_by_override") != "true":
        return None
    return (f"promoted by override: {tags.get('override.by', 'unknown')} until "
            f"{tags.get('override.until', 'unknown')}: {tags.get('override_reason', '')}")


def _start_validation_run(src: Any, repro: Mapping[str, Any]) -> Any:
    """A new run for the validation when the model is a registered version; else ``None``."""
    if not src.registered:
        return None
    nested = mlflow.active_run() is not None
    return mlflow.start_run(run_name=f"validate-{src.name}-v{src.version}", nested=nested, tags=run_tags(
        str(src.name), str(src.version), model_uri=src.uri, artifact_sha256=src.artifact_sha256,
        validator=repro.get("validator"), sample_fingerprint=repro.get("validation_sample_fingerprint"),
        training_fingerprint=repro.get("training_data_fingerprint"), purpose="third-party validation"))


def _log_validation(run: Any, src: Any, result: Mapping[str, Any],
                    files: Sequence[Path], validator: str) -> dict[str, Any]:
    run_id = run.info.run_id
    for f in files:
        mlflow.log_artifact(str(f), "validation")
    disc, cal = result["discrimination"], result["calibration"]
    stab = result.get("stability") or {}
    figures = {
        "auc": disc["auc"], "gini": disc["gini"], "ks": disc["ks"], "brier": cal["brier"],
        "ece": cal["ece"], "hosmer_lemeshow_p": cal["hosmer_lemeshow"]["p_value"],
        "spiegelhalter_p": cal["spiegelhalter"]["p_value"],
        "grades_red": cal["lights"]["red"], "grades_amber": cal["lights"]["amber"],
        "grades_green": cal["lights"]["green"], "score_psi": stab.get("score_psi"),
    }
    metrics = {k: float(v) for k, v in figures.items()
               if v is not None and np.isfinite(float(v))}
    mlflow.log_metrics(metrics)
    client = get_client()
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    # keyed by the validation run: a second validation (even the same day) adds its own
    # tags and never overwrites an earlier one
    tags = {f"validation.{run_id}.{k}": f"{v:.6g}" for k, v in metrics.items()}
    tags[f"validation.{run_id}.date"] = date
    tags["last_validation"] = json.dumps({
        "date": date, "run_id": run_id, "report_json": "validation/validation_report.json",
        "report_html": "validation/validation_report.html", "evidence": "validation/evidence.json",
        "auc": metrics.get("auc"), "ece": metrics.get("ece"),
        "grades_red": metrics.get("grades_red"), "verdict": (result.get("verdict") or {}).get("verdict")})
    tags[f"validation.{run_id}.verdict"] = str((result.get("verdict") or {}).get("verdict"))
    tags["last_validation_run_id"] = run_id
    for k, v in tags.items():
        client.set_model_version_tag(str(src.name), str(src.version), k, v)
    tags.update(record_validation(client, run_id, str(src.name), str(src.version),
                                  result.get("verdict") or {}, validator=validator))
    return {"run_id": run_id, "model_version_tags": tags}


# --------------------------------------------------------------------------- monitor


def _raw_columns(df: pd.DataFrame) -> list[str]:
    cols = df.select_dtypes(include=["number", "bool"]).columns
    return [str(c) for c in cols if c not in _MONITOR_SKIP]


def _model_frame(src: Any, table: pd.DataFrame, what: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Model features plus ``score`` (points) and ``pd`` of the scorable rows of ``table``,
    and the mask of those rows."""
    dec = decide_sample(src, table)
    ok = (dec["status"] == "scored").to_numpy()
    if not ok.any():
        raise ValidationKitError(f"monitor: no row of the {what} table could be scored")
    X = model_features(src, table.loc[ok])
    if X is None:
        raise ValidationKitError(f"monitor: the model's feature transformer failed on the {what} table")
    return X.assign(**{SCORE_NAME: dec.loc[ok, "points"].to_numpy(float),
                       "pd": dec.loc[ok, "pd"].to_numpy(float)}), ok


def monitor(
    model_uri: str | LoadedModel | None,
    reference: pd.DataFrame | str | Path,
    current: pd.DataFrame | str | Path,
    out_dir: str | Path | None,
    thresholds: Sequence[float] = (0.1, 0.25),
    *,
    bins: int = 10,
    columns: Sequence[str] | None = None,
    alpha: float = 0.01,
    segment_alpha: float = 0.03,
    segment_min_count: int = 30,
    seed: int = 0,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """PSI/CSI drift of ``current`` against ``reference`` (e.g. vintage 2 vs vintage 1).

    Every figure carries its sampling noise (:mod:`village_credit.validation.drift`): a
    column alerts when its CSI is material (``thresholds``) and significant after Holm
    at ``alpha``; zero-inflated counts (days past due) also by their non-zero share.
    By segment (township, village, age band, formerly-poor status;
    :func:`village_credit.validation.segments.segment_drift`): realised default rates
    reference vs current and, with a model, realised vs predicted and the segment's
    score PSI with its p-value, Holm-adjusted together at ``segment_alpha``; segments
    below ``segment_min_count`` households are "too small to judge". ``alert`` is the
    worst of the column alert (``column_alert``, columns and zero shares) and the segment
    alert (``segment_alert``); ``flagged_segments`` says why each segment moved. With no
    change, the three families (columns, zero shares, segments) raise a false alarm with
    probability at most ``2 * alpha + segment_alpha`` (0.05 by default).

    ``model_uri``: a model URI (the one loader, :func:`load_model_source`), an already
    loaded model (``LoadedModel``), or ``None``. With a model: drift of the model's
    features (its own transformer) and of its score (``score`` = points, and ``pd``);
    the model's stored training profile, when present, is also compared with the
    current features (``vs_training``). Without a model: the raw numeric and boolean
    columns (identifiers, ``vintage`` and ground truth left out). Writes
    ``drift_report.html/.json`` when ``out_dir``. ``progress``: called ``(step, done,
    total)`` before each step (:mod:`village_credit.reporting.progress`).
    """
    steps = Steps(progress, total=4)
    steps("reading the tables")
    ref = read_sample(reference, "reference")
    cur = read_sample(current, "current")
    th = tuple(float(t) for t in thresholds)
    if len(th) != 2 or not 0 <= th[0] <= th[1]:
        raise ValidationKitError(f"monitor: thresholds must be two numbers low <= high, got {thresholds}")
    src = None
    work = Path(tempfile.mkdtemp(prefix="vc-monitor-"))
    ok_r, ok_c = np.ones(len(ref), bool), np.ones(len(cur), bool)
    steps("model features" if model_uri is not None else "columns")
    try:
        if model_uri is not None:
            src = (model_uri if isinstance(model_uri, LoadedModel)
                   else load_model_source(model_uri, work))
            (ref_f, ok_r), (cur_f, ok_c) = (_model_frame(src, ref, "reference"),
                                            _model_frame(src, cur, "current"))
        else:
            ref_f, cur_f = ref, cur
    finally:
        shutil.rmtree(work, ignore_errors=True)
    cols = list(columns) if columns is not None else (
        list(ref_f.columns) if src is not None else _raw_columns(ref_f))
    missing = [c for c in cols if c not in cur_f.columns or c not in ref_f.columns]
    if missing:
        raise ValidationKitError(f"monitor: columns {missing[:10]} are missing from the "
                                 "reference or the current table")
    steps("drift by column")
    result = drift_report(ref_f[cols], cur_f, cols, bins=bins, thresholds=th, alpha=alpha,
                          seed=seed)
    result["n_reference"] = int(len(ref_f))
    result["mode"] = "model features and score" if src is not None else "raw columns"
    table = result["csi"]
    score_row = table[table["column"] == SCORE_NAME]
    result["score_psi"] = float(score_row["csi"].iloc[0]) if len(score_row) else None
    result["score_p_value"] = float(score_row["p_value"].iloc[0]) if len(score_row) else None
    result["score_alert"] = str(score_row["alert"].iloc[0]) if len(score_row) else "n/a"
    result["red_columns"] = table.loc[table["alert"] == "red", "column"].tolist()
    zero = result["zero_share"]
    result["zero_share_alerts"] = [
        f"{r.column}: non-zero share {r.nonzero_reference:.1%} -> {r.nonzero_current:.1%} "
        f"(Holm p {r.p_holm:.2g}; {r.n_reference} -> {r.n_current} rows)"
        for r in zero[zero["alert"].isin(["amber", "red"])].itertuples(index=False)]
    steps("drift by segment")
    seg = segment_drift(
        ref.loc[ok_r].reset_index(drop=True), cur.loc[ok_c].reset_index(drop=True),
        ref_score=ref_f[SCORE_NAME].to_numpy(float) if src is not None else None,
        cur_score=cur_f[SCORE_NAME].to_numpy(float) if src is not None else None,
        cur_pd=cur_f["pd"].to_numpy(float) if src is not None else None,
        ref_pd=ref_f["pd"].to_numpy(float) if src is not None else None,
        alpha=segment_alpha, min_count=segment_min_count, psi_thresholds=th, bins=bins,
        seed=seed)
    result["segments"] = seg
    result["segment_min_count"] = int(segment_min_count)
    result["column_alert"] = result["alert"]
    result["segment_alert"] = overall_alert("n/a", seg)
    result["alert"] = overall_alert(result["column_alert"], seg)
    result["flagged_segments"] = [f"{r.segment}={r.value} ({r.alert}): {r.why}"
                                  for r in seg[seg["flagged"]].itertuples(index=False)]
    if src is not None:
        result["model"] = src.identity_dict()
        if src.reference_profile:
            prof_cols = [c for c in src.reference_profile["columns"] if c in cur_f.columns]
            vt = drift_report(src.reference_profile, cur_f, prof_cols, thresholds=th,
                              alpha=alpha, seed=seed)
            result["vs_training"] = {"alert": vt["alert"], "counts": vt["counts"], "csi": vt["csi"],
                                     "zero_share": vt["zero_share"]}
    if out_dir is not None:
        html, js = write_drift_report(result, out_dir, title=(
            "Population drift report" + (f": {src.label}" if src is not None else "")))
        result["html"], result["json"] = html, js
    steps.finish()
    return result
