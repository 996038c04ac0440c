"""``village-credit policy-lab``: the frontier of approval, loss and fair treatment over a
policy's declared parameters.

Thin: read the experiment config's households, call
:func:`village_credit.policy_lab.run_policy_lab`, write the trial and Pareto tables and the
frontier chart, print counts only -- never household data.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from village_credit.commands._errors import user_errors
from village_credit.commands._options import tracking_uri_option
from village_credit.config import load_config
from village_credit.data.io import check_output_dir, write_parquet
from village_credit.data.validation import validate_households
from village_credit.pipeline import load_households
from village_credit.policy_lab import run_policy_lab
from village_credit.registry import configure, load_model
from village_credit.reporting.displays import PolicyFrontierDisplay


def policy_lab(
    policy: str = typer.Option("jinxiang_2022", "--policy", "-p",
                               help="Shipped policy name or YAML path (it must declare 'parameters:')."),
    experiment: Path = typer.Option(..., "--config", "-c", help="Experiment config: the households searched on."),
    out: Path = typer.Option(..., "--output", "-o", help="Output folder (study storage: rerun to resume)."),
    trials: int = typer.Option(200, "--trials", help="Trials in all (a resumed study runs only the missing ones)."),
    population: int = typer.Option(20, "--population", help="NSGA-II population (trials per generation)."),
    jobs: int = typer.Option(2, "--jobs", help="Threads deciding one generation's trials."),
    seed: int | None = typer.Option(None, "--seed", help="Search seed (default: the config's seed)."),
    model: str | None = typer.Option(None, "--model", "-m",
                                        help="MLflow model URI: search the blend's decisions (default: the rules)."),
    tracking_uri: str | None = tracking_uri_option(),
) -> None:
    """Search a policy's parameters; write trials.csv, pareto.csv, frontier.png.

    Generated households: figures on their ground truth. A labelled file without
    true_pd: observed outcomes only, groups without outcome support marked. Invalid
    rows go to households.quarantine.parquet with row, column and reason.
    """
    console = Console()
    with user_errors(console):
        cfg = load_config(experiment)
        check_output_dir(out, "--output").mkdir(parents=True, exist_ok=True)
        households, _ = load_households(cfg)
        checked = validate_households(households, require_truth=False)
        if checked.n_quarantined:  # set aside with row, column and reason, never dropped silently
            write_parquet(checked.quarantine, out / "households.quarantine.parquet")
        configure(tracking_uri, experiment_name="policy-lab")
        decision_model = load_model(model).decision_model if model is not None else None
        result = run_policy_lab(checked.valid, policy, model=decision_model, n_trials=trials,
                                seed=cfg.seed if seed is None else seed, population_size=population,
                                n_jobs=jobs, out_dir=out)
        result.trials.to_csv(out / "trials.csv", index=False)
        result.by_group().to_csv(out / "pareto.csv", index=False)
        PolicyFrontierDisplay.from_result(result).figure_.savefig(out / "frontier.png", dpi=120)
    today = result.today
    console.print(f"{len(result.trials)} trials, {len(result.pareto)} Pareto policies "
                  f"({checked.n_quarantined} household rows quarantined, {len(checked.valid)} decided)")
    console.print(f"today: approval {today['approval_rate']:.3f}, expected loss "
                  f"{today['expected_loss_yuan']:,.0f} yuan; today is on the frontier: {bool(today['pareto'])}")
    console.print(result.notice)
    console.print(f"wrote {out / 'trials.csv'}, {out / 'pareto.csv'}, {out / 'frontier.png'}; "
                  f"MLflow parent run {result.parent_run_id}")
