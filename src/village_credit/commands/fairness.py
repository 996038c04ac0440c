"""``village-credit fairness``: audit decision files by age band and formerly-poor status."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from village_credit.commands._errors import user_errors
from village_credit.data.io import read_table
from village_credit.fairness.report import run_fairness
from village_credit.reporting.progress import step_bar


def _parse_scores(items: list[str]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep:  # a bare path: name it after the file
            name, path = Path(item).stem, item
        out[name] = Path(path)
    return out

def fairness(
    households: Path = typer.Option(..., "--input", "-i", help="Households (Parquet/CSV) with head_age, "
                                    "formerly_poor, default_12m; true_pd enables the equal-risk check."),
    scores: list[str] = typer.Option([], "--scores", help="Decisions file, NAME=PATH or PATH; repeatable. "
                                     "Columns: approved, optional credit_line, rate, pd, points; household_id."),
    policy: list[str] = typer.Option([], "--policy", "-p", help="Also audit the rules engine under this policy; "
                                     "repeatable (e.g. jinxiang_2022, jinxiang_2022_no_age_cutoff)."),
    report: Path = typer.Option(Path("reports/fairness"), "--output", "-o",
                                help="Output directory (HTML + JSON)."),
    policy_age_max: int | None = typer.Option(
        None, help="The policy's age ceiling for the policy_age groups [default: the elderly age, data.groups.ELDERLY_AGE]."),
    primary: str = typer.Option(None, help="System whose numbers are the headline gate keys (default: last)."),
    n_boot: int = typer.Option(200, help="Bootstrap replicates for confidence intervals."),
    seed: int = typer.Option(0, help="Bootstrap seed."),
    min_group: int = typer.Option(30, help="Smallest group compared in disparity ratios."),
    min_count: int = typer.Option(50, help="Households per group needed to check an equal-risk decile."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar on stderr."),
) -> None:
    """Fairness audit, equal-risk gaps and trade-off table; writes fairness.html and fairness.json."""
    console = Console(stderr=True)
    with user_errors(console):
        hh = read_table(households)
        frames = {name: read_table(p) for name, p in _parse_scores(scores).items()}
        age_kw = {} if policy_age_max is None else {"policy_age_max": policy_age_max}
        with step_bar("fairness", progress, console) as bar:
            res = run_fairness(hh, frames, policies=tuple(policy), **age_kw,
                               out_dir=report, n_boot=n_boot, seed=seed, min_group=min_group,
                               min_count=min_count, primary_system=primary, progress=bar)
    summary = {
        "html": str(res["html"]), "json": str(res["json"]),
        "equal_risk": {k: {m: v[m] for m in ("max_gap_approval", "max_gap_line", "passes_5pct")}
                       for k, v in (res["gaps"].summary.items() if res["gaps"] else [])},
    }
    typer.echo(json.dumps(summary, indent=2, default=str))
