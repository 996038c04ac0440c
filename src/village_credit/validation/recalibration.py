"""Recalibration by the independent calibrator: a new model version that wraps the original.

``DecisionModel`` has no post-calibration hook, so :class:`RecalibratedDecisionModel`
is a subclass that applies one or more calibration maps (``models.calibration``
``Calibrator``; Platt or isotonic, chosen by cross-validated log-loss) to the
model's log-odds *before* points, grade, credit line and rate are derived. The
policy still decides (vetoes and eligibility win), through the parent's own
``policy_decisions``; only the risk estimate moves.

Exactness of the explanations:

* **Platt** (``logit' = a * logit + b``) is affine in log-odds, so every contribution
  is multiplied by ``a`` and ``b`` is added to the base value: reason codes and
  ``contributions()`` stay exactly additive (they sum to the new points) and keep
  their ranking within a household.
* **Isotonic** is a monotone step-like map of the *total* log-odds, not of each
  term. The wrapper keeps the original feature and rule contributions and puts the
  per-household difference ``iso(logit) - logit`` into the base value: points still
  equal the sum of contributions and the top reasons are the original model's, but
  the base is no longer one constant, and households inside one isotonic step get
  the same PD (ranking ties, a slightly lower AUC).

On disk a recalibrated model is the parent's directory (``booster.txt``,
``policy.yaml``, ``model.json``) plus ``recalibration.json`` (the maps, in the order
applied, each with its lineage); recalibrating again appends a map. The stored
training reference profile keeps its feature entries; its ``score`` entry (points)
is mapped through the calibration (a monotone map moves bin edges, not shares), so
score PSI stays comparable.

A new version is registered with lineage tags and a before/after report; it is
**not** promoted: it goes through ``registry.promote`` and its gates like any other.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import mlflow
import numpy as np
import pandas as pd

from village_credit.data.groups import SUPPORT_GROUPS
from village_credit.errors import ConfigError
from village_credit.models.calibration import fit_calibrator
from village_credit.models.decision import DecisionModel
from village_credit.models.recalibrated import (
    RECALIBRATION_FILE,
    RecalibratedDecisionModel,
    _group_design,
    apply_maps,
)
from village_credit.models.saved_folder import DECISION_MODEL_ARTIFACT
from village_credit.registry.pyfunc_model import log_decision_model
from village_credit.registry.store import get_client
from village_credit.reporting.html import HtmlReport, to_jsonable, write_report
from village_credit.validation.calibration import (
    HL_DDOF_FITTED,
    HL_DDOF_INDEPENDENT,
    brier,
    expected_calibration_error,
    hosmer_lemeshow,
    reliability_table,
    spiegelhalter,
)
from village_credit.validation.backtest import grade_backtest
from village_credit.validation.kit import (
    ValidationKitError,
    _fingerprint,
    _model_inputs,
    decide_sample,
    load_model_source,
    model_spec,
    outcome_labels,
    outcome_rows,
    read_sample,
)
from village_credit.validation.report import reliability_svg

__all__ = [
    "DECISION_CLASS",
    "RECALIBRATION_FILE",
    "RecalibratedDecisionModel",
    "RecalibrationResult",
    "apply_maps",
    "calibration_figures",
    "fit_group_offsets",
    "group_recalibrate",
    "recalibrate",
]

DECISION_CLASS = "village_credit.models.recalibrated:RecalibratedDecisionModel"
"""Where new recalibrated versions load from (older ones name ``village_credit.validation.
recalibration:RecalibratedDecisionModel``, which this module still provides)."""


# --------------------------------------------------------------------------- group-aware


def fit_group_offsets(logit: Any, y: Any, design: Any, prior_sd: float = 0.5,
                      max_iter: int = 50) -> np.ndarray:
    """Per-group log-odds offsets on top of a model's log-odds, shrunk towards 0.

    Maximises the logistic log-likelihood of ``y`` given ``logit + design @ delta``
    minus ``sum(delta**2) / (2 prior_sd**2)`` (a normal prior: a group with few
    observed outcomes keeps nearly the model's own estimate; one with many gets its
    observed default rate). Damped Newton; deterministic.
    """
    z = np.asarray(logit, dtype=np.float64).ravel()
    yy = np.asarray(y, dtype=np.float64).ravel()
    G = np.asarray(design, dtype=np.float64)
    if G.ndim != 2 or G.shape[0] != z.shape[0] or yy.shape[0] != z.shape[0]:
        raise ConfigError(f"fit_group_offsets: {z.shape[0]} log-odds, {yy.shape[0]} outcomes, "
                          f"design of shape {G.shape}")
    if not (np.all(np.isfinite(z)) and np.all(np.isin(yy, (0.0, 1.0)))):
        raise ConfigError("fit_group_offsets: log-odds must be finite and outcomes 0/1")
    if not prior_sd > 0:
        raise ConfigError(f"fit_group_offsets: prior_sd must be > 0, got {prior_sd}")
    lam = 1.0 / prior_sd ** 2
    d = np.zeros(G.shape[1])
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-(z + G @ d)))
        grad = G.T @ (p - yy) + lam * d
        H = (G * (p * (1 - p))[:, None]).T @ G + lam * np.eye(G.shape[1])
        step = np.linalg.solve(H, grad)
        d -= step
        if np.max(np.abs(step), initial=0.0) < 1e-10:
            break
    return d


def group_recalibrate(model: DecisionModel, sample: pd.DataFrame, *, method: str = "platt",
                      groups: list[str] | None = None, prior_sd: float = 0.5, seed: int = 0,
                      eval_date: Any = None, lineage: dict[str, Any] | None = None,
                      map_sample: pd.DataFrame | None = None) -> RecalibratedDecisionModel:
    """``model`` recalibrated on a labelled sample (e.g. an exploration sample), per group.

    First one calibration map of the whole log-odds (``method``: platt / isotonic /
    auto, as :func:`recalibrate`), then a shrunk log-odds offset per protected group
    (:data:`village_credit.data.groups.SUPPORT_GROUPS` unless ``groups``) fitted on
    the mapped log-odds (:func:`fit_group_offsets`). Each offset is its own contribution
    (``recalibration:<group>``): a reason code where it moves a household's points, and
    contributions stay exactly additive. ``sample`` needs
    ``default_12m``; rows the model quarantines are left out. ``map_sample``: fit the
    map on these rows instead (e.g. rows the model's trees never saw) and the offsets
    on ``sample`` (e.g. every observed row, for more outcomes per group).
    """
    def scored(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        if "default_12m" not in frame.columns or frame["default_12m"].isna().any():
            raise ConfigError("group recalibration needs a sample with a complete 'default_12m' column")
        dec = model.decide(frame, top_k=1, eval_date=eval_date)
        ok = (dec["status"] == "scored").to_numpy()
        return (frame.loc[ok], frame.loc[ok, "default_12m"].to_numpy(dtype=float),
                model.scaling.logit(dec.loc[ok, "points"].to_numpy(float)))

    rows, y, z = scored(sample)
    _, y_map, z_map = scored(map_sample) if map_sample is not None else (rows, y, z)
    cal = fit_calibrator(z_map, y_map, method=method, seed=seed, input="logit")  # type: ignore[arg-type]
    z2 = cal.transform_logit(z)
    ok = np.ones(len(rows), bool)
    names = list(groups or SUPPORT_GROUPS)
    G = _group_design(rows, names)
    delta = fit_group_offsets(z2, y, G, prior_sd=prior_sd)
    info = {"method": cal.method, "rows_used": int(ok.sum()), "group_prior_sd": float(prior_sd),
            "group_rows": {g: int(G[:, j].sum()) for j, g in enumerate(names)},
            "group_defaults": {g: int(y[G[:, j] > 0].sum()) for j, g in enumerate(names)},
            **(lineage or {})}
    wrapped = RecalibratedDecisionModel.wrap(model, cal, info)
    wrapped.group_offsets = {**getattr(model, "group_offsets", {}), **dict(zip(names, map(float, delta)))}
    wrapped.metadata["recalibrated"]["group_offsets"] = dict(wrapped.group_offsets)
    return wrapped


# --------------------------------------------------------------------------- figures


def calibration_figures(y: Any, pd_pred: Any, grades: Any, grade_order: list[str],
                        hl_ddof: int, green_p: float = 0.05, red_p: float = 0.01,
                        n_bins: int = 10, policy_graded: Any = None) -> dict[str, Any]:
    """Brier, ECE, Hosmer-Lemeshow, Spiegelhalter, the grade back-test and its lights.

    The back-test is the validation verdict's own (``backtest.grade_backtest``: thin grades
    pooled to 5 expected defaults, Holm across pools), so a recalibration report and a
    validation report never light the same grades differently; ``pools`` holds the pools
    and their lights, ``grades`` the unpooled per-grade table (information), as in the
    validation report. ``policy_graded`` (e.g.
    vetoed) households are left out of the back-test: the policy, not the PD, set their grade.
    """
    hl = hosmer_lemeshow(y, pd_pred, n_bins, hl_ddof)
    z, sp = spiegelhalter(y, pd_pred)
    keep = np.ones(len(np.asarray(y)), bool) if policy_graded is None else ~np.asarray(policy_graded, bool)
    bt = grade_backtest(np.asarray(grades, dtype=object)[keep], np.asarray(y)[keep],
                        np.asarray(pd_pred, dtype=float)[keep], grade_order, green_p, red_p)
    return {
        "brier": brier(y, pd_pred),
        "ece": expected_calibration_error(y, pd_pred, n_bins),
        "hosmer_lemeshow": {"stat": hl[0], "dof": hl[1], "p_value": hl[2], "ddof": hl_ddof},
        "spiegelhalter": {"z": z, "p_value": sp},
        "mean_pd": float(np.mean(pd_pred)),
        "default_rate": float(np.mean(y)),
        "grades": bt["grades"],
        "pools": bt["pools"],
        "lights": bt["lights"],
        "rank_order_broken": bt["rank_order_broken"],
        "not_testable": bt["not_testable"],
        "reliability": reliability_table(y, pd_pred, n_bins),
    }


@dataclasses.dataclass
class RecalibrationResult:
    """What :func:`recalibrate` produced (``version`` is ``None`` when not registered)."""

    parent: dict[str, Any]
    method: str
    calibrator: dict[str, Any]
    before: dict[str, Any]
    after: dict[str, Any]
    sample_fingerprint: str | None
    n_sample: int
    model_dir: Path | None = None
    model_name: str | None = None
    version: str | None = None
    model_uri: str | None = None
    run_id: str | None = None
    tags: dict[str, str] = dataclasses.field(default_factory=dict)
    report_json: Path | None = None
    report_html: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable({k: getattr(self, k) for k in (
            "parent", "method", "calibrator", "before", "after", "sample_fingerprint", "n_sample",
            "model_dir", "model_name", "version", "model_uri", "run_id", "tags", "report_json",
            "report_html")})

    def summary(self) -> dict[str, Any]:
        keys = ("brier", "ece", "mean_pd", "default_rate")
        return {
            "parent": self.parent.get("model_uri"), "model_name": self.model_name,
            "version": self.version, "method": self.method, "run_id": self.run_id,
            "before": {**{k: self.before[k] for k in keys},
                       "hosmer_lemeshow_p": self.before["hosmer_lemeshow"]["p_value"],
                       "lights": self.before["lights"]},
            "after": {**{k: self.after[k] for k in keys},
                      "hosmer_lemeshow_p": self.after["hosmer_lemeshow"]["p_value"],
                      "lights": self.after["lights"]},
            "promoted": False,
        }


def _write_report(res: RecalibrationResult, out: Path) -> tuple[Path, Path]:
    rep = HtmlReport("Recalibration report", subtitle=(
        f"{res.parent.get('model_uri')} -> {res.method}; {res.n_sample} households "
        "(the calibrator's sample; 'after' is in-sample, see cross-validated scores)"))
    rep.add_section("Before and after")
    b, a = res.before, res.after
    rep.add_table(pd.DataFrame({
        "figure": ["mean PD", "default rate", "Brier", "ECE", "Hosmer-Lemeshow p",
                   "Spiegelhalter p", "pools green", "pools amber", "pools red"],
        "before": [b["mean_pd"], b["default_rate"], b["brier"], b["ece"],
                   b["hosmer_lemeshow"]["p_value"], b["spiegelhalter"]["p_value"],
                   b["lights"]["green"], b["lights"]["amber"], b["lights"]["red"]],
        "after": [a["mean_pd"], a["default_rate"], a["brier"], a["ece"],
                  a["hosmer_lemeshow"]["p_value"], a["spiegelhalter"]["p_value"],
                  a["lights"]["green"], a["lights"]["amber"], a["lights"]["red"]],
    }))
    rep.add_svg(reliability_svg([("before", b["reliability"]), ("after", a["reliability"])]),
                "Reliability before and after recalibration")
    rep.add_table(b["pools"], caption="Grade back-test before (thin grades pooled, Holm across pools)")
    rep.add_table(a["pools"], caption="Grade back-test after (grades recomputed from new points; pooled)")
    rep.add_section("Calibration map")
    rep.add_key_values({"method": res.method,
                        "cross-validated scores": json.dumps(res.calibrator.get("cv_scores", {})),
                        **({"a (slope)": res.calibrator["a"], "b (shift)": res.calibrator["b"]}
                           if res.method == "platt" else
                           {"isotonic steps": len(res.calibrator.get("x_thresholds", []))})})
    rep.add_section("Lineage")
    rep.add_key_values({**res.parent, "sample_fingerprint": res.sample_fingerprint})
    return write_report(rep, res.to_dict(), out, "recalibration_report")


# --------------------------------------------------------------------------- workflow


def recalibrate(
    model_uri: str,
    sample: pd.DataFrame | str | Path,
    *,
    method: Literal["auto", "platt", "isotonic"] = "auto",
    seed: int = 0,
    register: bool = True,
    out_dir: str | Path | None = None,
    registered_model_name: str | None = None,
    criterion: Literal["log_loss", "brier"] = "log_loss",
    green_p: float = 0.05,
    red_p: float = 0.01,
    group_aware: bool = False,
    group_prior_sd: float = 0.5,
) -> RecalibrationResult:
    """Fit a calibration map on the calibrator's sample and register the wrapped model.

    The map is fitted on the model's log-odds (``scaling.logit(points)``) of the
    scored rows against ``default_12m`` with ``models.calibration.fit_calibrator``
    (``method="auto"``: Platt vs isotonic by cross-validated ``criterion``). The new
    decision-model directory is written to ``out_dir/decision_model`` (a temporary
    folder when ``out_dir`` is None) with ``recalibration_report.html/.json``.
    With ``register``, it is logged as a pyfunc (``decision_class`` =
    :data:`DECISION_CLASS`) and registered as a new version of the parent's
    registered model (or ``registered_model_name``) with tags ``parent_version``,
    ``parent_model_uri``, ``parent_artifact_sha256``, ``sample_fingerprint``,
    ``recalibration_method``; **no alias is moved** (use ``promote``).

    ``group_aware``: after the map, a shrunk log-odds offset per protected group
    (:func:`fit_group_offsets`, prior sd ``group_prior_sd``) is fitted on the sample,
    e.g. an exploration sample of households the old rules refused; the offsets are
    stored in ``recalibration.json`` and the lineage.
    """
    data = read_sample(sample)
    if method not in ("auto", "platt", "isotonic"):
        raise ValidationKitError(f"method must be auto, platt or isotonic, got {method!r}")
    work = Path(tempfile.mkdtemp(prefix="vc-recalibrate-"))
    try:
        src = load_model_source(model_uri, work / "parent")
        # the target, its label and the grades from the model's own spec
        y_all = outcome_labels(data, src, "recalibration sample")
        order = model_spec(src)["grades"]
        dec = decide_sample(src, data)
        # the rows a bank has an outcome for (labelled, and ``outcome_observed`` where given):
        # the rows the validation kit tests, so the map is fitted on what it is judged on
        ok = (dec["status"] == "scored").to_numpy() & outcome_rows(data, y_all)
        if not ok.any():
            raise ValidationKitError("no row of the recalibration sample could be scored with an observed "
                                     "outcome (outcome_observed)")
        rows = data.loc[ok].reset_index(drop=True)
        d = dec.loc[ok].reset_index(drop=True)
        y = y_all[ok]
        parent = src.decision_model
        z = parent.scaling.logit(d["points"].to_numpy(float))
        try:
            cal = fit_calibrator(z, y, method=method, seed=seed, input="logit", criterion=criterion)
        except ConfigError as exc:
            raise ValidationKitError(f"cannot fit a calibration map on this sample: {exc}") from exc
        fingerprint = _fingerprint(data)
        lineage = {
            "parent_model_uri": src.uri, "parent_model_name": src.name,
            "parent_version": src.version, "parent_artifact_sha256": src.artifact_sha256,
            "parent_decision_class": src.decision_class, "sample_fingerprint": fingerprint,
            "sample_rows": int(len(data)), "rows_used": int(ok.sum()), "method": cal.method,
            "seed": int(seed), "criterion": criterion,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        model = RecalibratedDecisionModel.wrap(parent, cal, lineage)
        if group_aware:
            delta = fit_group_offsets(cal.transform_logit(z), y, _group_design(rows, list(SUPPORT_GROUPS)),
                                      prior_sd=group_prior_sd)
            model.group_offsets = {**model.group_offsets, **dict(zip(SUPPORT_GROUPS, map(float, delta)))}
            lineage["group_offsets"] = dict(model.group_offsets)
            lineage["group_prior_sd"] = float(group_prior_sd)
        after = model.decide(_inputs(rows))
        vetoed = d["vetoed"].to_numpy(bool)
        before_fig = calibration_figures(y, d["pd"].to_numpy(float), d["grade"].to_numpy(object),
                                         order, HL_DDOF_INDEPENDENT, green_p, red_p,
                                         policy_graded=vetoed)
        after_fig = calibration_figures(y, after["pd"].to_numpy(float),
                                        after["grade"].to_numpy(object), order, HL_DDOF_FITTED,
                                        green_p, red_p,
                                        policy_graded=after["vetoed"].to_numpy(bool))
        out = Path(out_dir) if out_dir is not None else work / "out"
        model_dir = model.save(out / DECISION_MODEL_ARTIFACT)
        res = RecalibrationResult(
            parent=src.identity_dict(), method=cal.method, calibrator=cal.to_dict(), before=before_fig,
            after=after_fig, sample_fingerprint=fingerprint, n_sample=int(ok.sum()),
            model_dir=model_dir if out_dir is not None else None)
        res.report_html, res.report_json = _write_report(res, out)
        if register:
            _register(res, model, model_dir, src, registered_model_name, lineage)
        return res
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _inputs(rows: pd.DataFrame) -> pd.DataFrame:
    return _model_inputs(rows)


def _register(res: RecalibrationResult, model: RecalibratedDecisionModel, model_dir: Path,
              src: Any, registered_model_name: str | None, lineage: dict[str, Any]) -> None:
    name = registered_model_name or src.name
    if not name:
        raise ValidationKitError(f"{src.uri!r} is not a registered model version: pass "
                                 "registered_model_name to register the recalibrated model")
    tags = {
        "parent_version": str(src.version or ""), "parent_model_uri": src.uri,
        "parent_artifact_sha256": src.artifact_sha256,
        "sample_fingerprint": str(lineage.get("sample_fingerprint") or "unknown"),
        "recalibration_method": res.method, "recalibrated": "true",
        "recalibration.brier_before": f"{res.before['brier']:.6g}",
        "recalibration.brier_after": f"{res.after['brier']:.6g}",
        "recalibration.ece_before": f"{res.before['ece']:.6g}",
        "recalibration.ece_after": f"{res.after['ece']:.6g}",
    }
    nested = mlflow.active_run() is not None
    with mlflow.start_run(run_name=f"recalibrate-{name}-v{src.version}", nested=nested,
                          tags={**tags, "purpose": "third-party recalibration"}) as run:
        mlflow.log_artifact(str(res.report_json), "recalibration")
        mlflow.log_artifact(str(res.report_html), "recalibration")
        mlflow.log_metrics({f"{k}_{when}": float(fig[k]) for when, fig in
                            (("before", res.before), ("after", res.after))
                            for k in ("brier", "ece", "mean_pd")})
        info = log_decision_model(model_dir, input_example=model.input_example(5),
                                  registered_model_name=name, decision_class=DECISION_CLASS)
        run_id = run.info.run_id
    version = str(info.registered_model_version)
    client = get_client()
    tags["recalibration_run_id"] = run_id
    tags["recalibration_report"] = "recalibration/recalibration_report.json"
    for k, v in tags.items():
        client.set_model_version_tag(name, version, k, v)
    client.update_model_version(name, version, description=(
        f"Recalibrated ({res.method}) from {src.uri} (version {src.version}) on a third-party "
        f"sample {lineage.get('sample_fingerprint')}. Not promoted: run the promotion gates."))
    res.model_name, res.version, res.run_id = name, version, run_id
    res.model_uri, res.tags = f"models:/{name}/{version}", tags
