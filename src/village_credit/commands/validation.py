"""``village-credit validate | recalibrate | monitor``: the independent calibrator's commands.

Thin wrappers over :mod:`village_credit.validation.kit` and
:mod:`village_credit.validation.recalibration`; errors print a message and exit 2.
"""

from __future__ import annotations

import dataclasses
import json
from enum import Enum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from village_credit.commands._options import tracking_uri_option
from village_credit.errors import VillageCreditError
from village_credit.registry import champion_version, configure
from village_credit.reporting.progress import step_bar
from village_credit.validation.kit import DEFAULT_CONFIG, monitor, validate_model
from village_credit.validation.recalibration import recalibrate

_PROGRESS_HELP = "Show a progress bar on stderr."


class Method(str, Enum):
    """Calibration maps ``recalibrate`` can fit (``validation.recalibration.recalibrate``)."""

    auto = "auto"
    platt = "platt"
    isotonic = "isotonic"


class FailOn(str, Enum):
    """Alert level from which ``monitor`` exits 1."""

    none = "none"
    amber = "amber"
    red = "red"


def _fail(console: Console, exc: Exception) -> None:
    console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
    raise typer.Exit(code=2) from exc


def validate_cmd(
    model: str = typer.Option(..., "--model", "-m", help="Model URI, e.g. models:/village-credit@champion."),
    data: Path = typer.Option(..., "--input", "-i", help="Labelled sample (Parquet/CSV) with the target "
                              "column the model records (its own spec); optional previous_grade and "
                              "the protected attributes the model declares (fairness by group)."),
    validator: str = typer.Option(
        None, "--validator", envvar="VILLAGE_CREDIT_VALIDATOR",
        help="Who signs this validation (required when it is recorded with a registered "
             "version: its verdict gates promotion)."),
    report: Path = typer.Option(Path("reports/validation"), "--output", "-o", help="Output directory."),
    challenger: str = typer.Option(None, "--challenger", help="Second model URI scored on the same sample "
                                   "(models:/NAME@champion: the paired comparison the champion gates need)."),
    no_mlflow: bool = typer.Option(False, "--no-mlflow", help="Do not log the report to MLflow."),
    hl_ddof: int = typer.Option(0, "--hl-ddof", help="Hosmer-Lemeshow dof = groups - ddof "
                                "(the toolkit's convention: 0, the sample is independent "
                                "of the model's fit)."),
    green_p: float = typer.Option(0.05, "--green-p", help="Grade light green when p >= this."),
    red_p: float = typer.Option(0.01, "--red-p", help="Grade light red when p < this."),
    tracking_uri: str = tracking_uri_option(),
    allow_ungated: bool = typer.Option(
        False, "--allow-ungated",
        help="Compare with a --challenger ...@champion that has no valid promotion record."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help=_PROGRESS_HELP),
) -> None:
    """Third-party validation report (HTML + JSON + gate evidence) of a registered model."""
    console = Console(stderr=True)
    try:
        configure(tracking_uri)
        cfg = dataclasses.replace(DEFAULT_CONFIG, hl_ddof=hl_ddof, green_p=green_p, red_p=red_p)
        with step_bar("validating", progress, console) as bar:
            res, html, js = validate_model(model, data, report, challenger_uri=challenger,
                                           log_to_mlflow=not no_mlflow, config=cfg,
                                           allow_ungated=allow_ungated, progress=bar,
                                           validator=validator)
    except VillageCreditError as exc:
        _fail(console, exc)
        return
    disc, cal = res["discrimination"], res["calibration"]
    stab = res.get("stability") or {}
    summary: dict[str, Any] = {
        "html": str(html), "json": str(js), "evidence": str(Path(report) / "evidence.json"),
        "model": res["reproducibility"].get("model_uri"),
        "version": res["reproducibility"].get("model_version"),
        # counts in = counts out: rows without a label are decided, never tested
        "rows": {k: res["reproducibility"].get(k) for k in (
            "sample_rows", "rows_scored", "rows_quarantined", "rows_with_outcome")},
        "auc": disc["auc"], "auc_ci": disc["auc_ci"], "ks": disc["ks"], "ece": cal["ece"],
        "hosmer_lemeshow_p": cal["hosmer_lemeshow"]["p_value"], "grade_lights": cal["lights"],
        "score_psi": stab.get("score_psi"), "mlflow_run": (res.get("mlflow") or {}).get("run_id"),
    }
    verdict = res.get("verdict") or {}
    summary["verdict"] = verdict.get("verdict")
    summary["verdict_reasons"] = verdict.get("reasons")
    if res.get("challenger"):
        ch = res["challenger"]
        summary["challenger"] = {"auc_diff": ch["auc_diff"], "p_value": ch["p_value"]}
    typer.echo(json.dumps(summary, indent=2, default=str))
    console.print(f"verdict: {str(verdict.get('verdict')).upper()}"
                  + "".join(f"\n  - {r}" for r in verdict.get("reasons") or []))
    _print_next_step(console, res, summary["mlflow_run"], challenger)


def _champion_of(name: str) -> str | None:
    try:
        return champion_version(name)
    except Exception:  # noqa: BLE001 - a hint only: no champion known
        return None


def _print_next_step(console: Console, res: dict[str, Any], run_id: str | None,
                     challenger: str | None) -> None:
    """The hint after a validation follows its verdict: never a promote hint after a FAIL."""
    rep = res["reproducibility"]
    name, version = rep.get("model_name"), rep.get("model_version")
    verdict = str((res.get("verdict") or {}).get("verdict"))
    if not (name and version):
        return
    recal = (f"`village-credit recalibrate --model models:/{name}/{version} --input <labelled "
             "sample>` (or retrain), then validate the new version on another sample")
    if not run_id:
        console.print("not recorded (--no-mlflow or an unregistered model): this report cannot "
                      "promote anything")
        return
    where = f"validation record of {name} v{version} (run {run_id}, verdict {verdict.upper()})"
    champion = _champion_of(name)
    paired = ((res.get("evidence") or {}).get("discrimination") or {}).get("vs_champion") or {}
    if verdict == "fail":
        console.print(f"{where}; promotion of v{version} is refused: a FAIL verdict is never "
                      f"overridden. Instead: {recal}")
    elif rep.get("model_gated") or champion == str(version):
        console.print(f"{where}; v{version} is already promoted."
                      + (f" To recalibrate it: {recal}" if verdict != "pass" else ""))
    elif champion is not None and str(paired.get("champion_version")) != champion:
        console.print(f"{where}; the champion gates compare v{version} with the champion v{champion} "
                      f"on one sample: `village-credit validate --model models:/{name}/{version} "
                      f"--input <labelled sample> --validator <who> --challenger models:/{name}@champion`")
    elif verdict == "conditional":
        console.print(f"{where}; a CONDITIONAL verdict promotes only with a recorded override: "
                      f"`village-credit promote --model-name {name} --version {version} "
                      "--override-by <who> --override-reason <why> --override-until <YYYY-MM-DD>`"
                      f"; or remove the conditions: {recal}")
    else:
        console.print(f"{where}; next: `village-credit promote --model-name {name} "
                      f"--version {version}`")


def recalibrate_cmd(
    model: str = typer.Option(..., "--model", "-m", help="Model URI to recalibrate."),
    data: Path = typer.Option(..., "--input", "-i", help="The calibrator's labelled sample (the model's "
                              "target column)."),
    method: Method = typer.Option(Method.auto, "--method", help="auto (by cross-validated log-loss), "
                                  "platt or isotonic."),
    seed: int = typer.Option(0, "--seed", help="Cross-validation seed."),
    report: Path = typer.Option(Path("reports/recalibration"), "--output", "-o",
                                help="Output directory (model folder + before/after report)."),
    no_register: bool = typer.Option(False, "--no-register", help="Only write the model folder."),
    model_name: str = typer.Option(None, "--model-name",
                                   help="Register under this name (default: the parent's)."),
    tracking_uri: str = tracking_uri_option(),
) -> None:
    """Fit a calibration map and register a new (unpromoted) version wrapping the model."""
    console = Console(stderr=True)
    try:
        configure(tracking_uri)
        res = recalibrate(model, data, method=method.value, seed=seed,  # type: ignore[arg-type]
                          register=not no_register, out_dir=report,
                          registered_model_name=model_name)
    except VillageCreditError as exc:
        _fail(console, exc)
        return
    summary = res.summary()
    summary.update(model_dir=str(res.model_dir), report=str(res.report_html))
    typer.echo(json.dumps(summary, indent=2, default=str))
    if res.version:
        console.print(
            f"registered {res.model_name} v{res.version} (not promoted); next: "
            f"`village-credit validate --model models:/{res.model_name}/{res.version} "
            f"--input <another labelled sample> --validator <who>"
            + (f" --challenger models:/{res.model_name}@champion" if _champion_of(res.model_name) else "")
            + "`; promote it only if that verdict allows")


def monitor_cmd(
    reference: Path = typer.Option(..., "--reference", help="Reference table (e.g. vintage 1)."),
    current: Path = typer.Option(..., "--current", help="Current table (e.g. vintage 2)."),
    model: str = typer.Option(None, "--model", "-m", help="Model URI: drift of its features and score "
                              "(default: raw numeric columns)."),
    report: Path = typer.Option(Path("reports/monitor"), "--output", "-o", help="Output directory."),
    amber: float = typer.Option(0.1, "--amber", help="PSI/CSI from which a column is amber."),
    red: float = typer.Option(0.25, "--red", help="PSI/CSI from which a column is red."),
    bins: int = typer.Option(10, "--bins", help="Quantile bins of the reference."),
    fail_on: FailOn = typer.Option(FailOn.none, "--fail-on", help="Exit 1 when the overall alert "
                                   "(worst of columns and segments) reaches this level."),
    alpha: float = typer.Option(0.01, "--alpha", help="A column's shift alerts only when "
                                "significant at this level after Holm over the columns."),
    segment_alpha: float = typer.Option(0.03, "--segment-alpha", help="A segment alerts only "
                                        "when significant at this level after Holm over every "
                                        "segment and test (with --alpha: at most 5 %% false "
                                        "alarms)."),
    min_count: int = typer.Option(30, "--segment-min-count", help="Segments with fewer "
                                  "rows in a vintage are 'too small to judge'."),
    tracking_uri: str = tracking_uri_option(),
    progress: bool = typer.Option(True, "--progress/--no-progress", help=_PROGRESS_HELP),
) -> None:
    """Drift report between two vintages: alerts only for material, significant shifts."""
    console = Console(stderr=True)
    try:
        if model:
            configure(tracking_uri)
        with step_bar("monitoring", progress, console) as bar:
            res = monitor(model, reference, current, report, (amber, red), bins=bins, alpha=alpha,
                          segment_alpha=segment_alpha, segment_min_count=min_count, progress=bar)
    except VillageCreditError as exc:
        _fail(console, exc)
        return
    summary = {"alert": res["alert"], "column_alert": res["column_alert"],
               "segment_alert": res["segment_alert"], "counts": res["counts"],
               "score_psi": res.get("score_psi"), "score_p_value": res.get("score_p_value"),
               "score_alert": res.get("score_alert"), "red_columns": res["red_columns"],
               "zero_share_alerts": res["zero_share_alerts"],
               "flagged_segments": res.get("flagged_segments", []),
               "html": str(res.get("html")), "json": str(res.get("json"))}
    typer.echo(json.dumps(summary, indent=2, default=str))
    rank = {"green": 0, "amber": 1, "red": 2}
    if fail_on is not FailOn.none and rank.get(res["alert"], -1) >= rank[fail_on.value]:
        raise typer.Exit(code=1)
