"""``village-credit promote | rollback | models``: the model registry from the shell."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.console import Console

from village_credit.commands._errors import user_errors
from village_credit.commands._options import tracking_uri_option
from village_credit.commands._tables import fitting_table
from village_credit.errors import ConfigError
from village_credit.registry import configure, get_client, list_versions, promote, rollback
from village_credit.yaml_io import safe_load

_MODEL_NAME_HELP = "Registered model name (default: village-credit)."


def _read_mapping(path: Path | None, what: str) -> dict[str, Any] | None:
    """A JSON or YAML file as a dict (``None`` when no path was given)."""
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {what} file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{what} file {path} must hold a mapping, got {type(data).__name__}")
    return data

def promote_cmd(
    version: str = typer.Option(..., "--version", "-v", help="Model version to promote."),
    override_reason: str = typer.Option(
        None, "--override-reason",
        help="Why to promote despite failed gates (with --override-by and --override-until; "
             "never past a FAIL verdict). Recorded on the version."),
    override_by: str = typer.Option(None, "--override-by", help="Who takes the override."),
    override_until: str = typer.Option(None, "--override-until",
                                       help="Until when the override holds (YYYY-MM-DD)."),
    model_name: str = typer.Option("village-credit", "--model-name", help=_MODEL_NAME_HELP),
    evidence: Path = typer.Option(
        None, "--evidence",
        help="Evidence JSON/YAML; default: evidence/evidence.json on the version's run."),
    thresholds: Path = typer.Option(
        None, "--thresholds",
        help="Gate thresholds (JSON/YAML); recorded for the registered model and used for "
             "every later version. Default: the thresholds recorded for the model."),
    thresholds_reason: str = typer.Option(
        None, "--thresholds-reason", help="Why these thresholds (recorded with them)."),
    tracking_uri: str = tracking_uri_option(),
) -> None:
    """Run the promotion gates; move @champion only if all pass (or with an override)."""
    console = Console(stderr=True)
    with user_errors(console):
        configure(tracking_uri)
        client = get_client()
        ev = _read_mapping(evidence, "evidence")
        th = _read_mapping(thresholds, "thresholds")
        res = promote(model_name, version, ev, th, override_reason=override_reason,
                      override_by=override_by, override_until=override_until, client=client, thresholds_reason=thresholds_reason,
                      evidence_source=None if evidence is None else str(evidence))
    table = fitting_table("gate", "value", "threshold", "result", "detail",
                          title=f"{model_name} v{version}: gates")
    for g in res.report.gates:
        table.add_row(g.name, "" if g.value is None else f"{g.value:.4g}",
                      f"{g.comparator} {'' if g.threshold is None else f'{g.threshold:.4g}'}",
                      "pass" if g.passed else "FAIL", g.detail)
    console.print(table)
    console.print(f"thresholds: {res.thresholds_source}")
    console.print(f"evidence: {res.evidence_source}")
    typer.echo(json.dumps(res.to_dict(), indent=2, default=str))
    if not res.promoted:
        if res.refused:
            console.print(f"[red]not promoted:[/red] {res.refused}")
        else:
            console.print(f"[red]not promoted:[/red] failed gates: "
                          f"{', '.join(g.name for g in res.report.failed)}")
            if not override_reason:  # the one way past failed gates (never past a FAIL verdict: refused)
                console.print(f"to promote it anyway, record an override (who, why, until when): "
                              f"`village-credit promote --model-name {model_name} --version {version} "
                              "--override-by <who> --override-reason <why> --override-until <YYYY-MM-DD>`")
        raise typer.Exit(code=1)
    how = f" by {res.override.text()}" if res.by_override and res.override else ""
    console.print(f"[green]v{version} is now @champion{how}[/green]"
                  + (f"; v{res.previous_champion} is @previous" if res.previous_champion else ""))
    console.print(f"score with: `village-credit score --model models:/{model_name}@champion "
                  "--input <file> --output <folder>`"
                  + (f"; undo with: `village-credit rollback --model-name {model_name}`"
                     if res.previous_champion else ""))


def rollback_cmd(
    model_name: str = typer.Option("village-credit", "--model-name", help=_MODEL_NAME_HELP),
    reason: str = typer.Option(None, "--reason", help="Why (recorded on the demoted version)."),
    tracking_uri: str = tracking_uri_option(),
) -> None:
    """Restore @previous as @champion; the demoted version becomes @challenger."""
    console = Console(stderr=True)
    with user_errors(console):
        configure(tracking_uri)
        res = rollback(model_name, client=get_client(), reason=reason)
    typer.echo(json.dumps({"model_name": res.model_name, "champion": res.champion,
                           "demoted": res.demoted}))
    console.print(f"v{res.champion} is @champion again"
                  + (f"; v{res.demoted} is @challenger" if res.demoted else ""))


def models_cmd(
    model_name: str = typer.Option("village-credit", "--model-name", help=_MODEL_NAME_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    tracking_uri: str = tracking_uri_option(),
) -> None:
    """List registered versions with their aliases and gate results."""
    console = Console()
    with user_errors():
        configure(tracking_uri)
        rows = list_versions(model_name, client=get_client())
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = fitting_table("version", "aliases", "verdict", "gate state", "failed", "override",
                          "created", title=model_name)
    for r in rows:
        override = (f"{r['override_by']} until {r['override_until']}: {r['override_reason']}"
                    if r["override_reason"] else "")
        table.add_row(r["version"], ", ".join("@" + a for a in r["aliases"]), r["verdict"],
                      r["gate_state"], r["failed_gates"], override, r["created"])
    console.print(table)
