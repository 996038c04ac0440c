"""``village-credit policy-lab``: the frontier of approval, loss and fair treatment over a
policy's declared parameters.

Thin: read the experiment config's households, call
:func:`village_credit.policy_lab.run_policy_lab`, write the trial and Pareto tables and the
frontier chart (and, with ``--export``, one Pareto policy as a policy YAML), print counts
only -- never household data. Its first line says SYNTHETIC or MEASURED; its last lines
are the next commands, printed so that they run as they stand.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from village_credit.commands._errors import user_errors
from village_credit.commands._options import tracking_uri_option
from village_credit.config import load_config
from village_credit.data.io import check_output_dir, write_parquet
from village_credit.data.validation import validate_households
from village_credit.errors import ConfigError
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
    export: int | None = typer.Option(None, "--export",
                                      help="Write Pareto policy NUMBER (pareto.csv's 'number') as <output>/<name>.yaml."),
    name: str | None = typer.Option(None, "--name", help="The exported policy's name (default: <policy>_lab_<NUMBER>)."),
    tracking_uri: str | None = tracking_uri_option(),
) -> None:
    """Search a policy's parameters; write trials.csv, pareto.csv, frontier.png.

    Generated households: figures on their ground truth (SYNTHETIC). A labelled file
    without true_pd: observed outcomes only (MEASURED), groups without outcome support
    marked. Invalid rows go to households.quarantine.parquet with row, column and
    reason. Rerun with more --trials to continue the stored study; with --export to
    write a Pareto policy as a YAML file that loads and scores like a shipped one.
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
        seed = cfg.seed if seed is None else seed
        result = run_policy_lab(checked.valid, policy, model=decision_model, n_trials=trials, seed=seed,
                                population_size=population, n_jobs=jobs, out_dir=out)
        result.trials.to_csv(out / "trials.csv", index=False)
        pareto = result.by_group()
        pareto.to_csv(out / "pareto.csv", index=False)
        PolicyFrontierDisplay.from_result(result).figure_.savefig(out / "frontier.png", dpi=120)
        exported = None
        if export is not None:
            row = pareto[pareto["number"] == export]
            if row.empty:
                raise ConfigError(f"--export {export}: the Pareto policies are numbered 1 to {len(pareto)}")
            name = name or f"{result.policy.name}_lab_{export}"
            exported = result.export_policy(int(row.iloc[0]["trial"]), out / f"{name}.yaml", name=name)

    def say(text: str) -> None:  # one line each, never wrapped: the commands run as printed
        console.print(text, soft_wrap=True, markup=False, highlight=False)

    say(result.notice)  # first: what the figures rest on
    today = result.today
    say(f"{len(result.trials)} trials, {len(result.pareto)} Pareto policies "
        f"({checked.n_quarantined} household rows quarantined, {len(checked.valid)} decided)")
    say(f"today: approval {today['approval_rate']:.3f}, expected loss "
        f"{today['expected_loss_yuan']:,.0f} yuan; today is on the frontier: {bool(today['pareto'])}")
    say(f"wrote {out / 'trials.csv'}, {out / 'pareto.csv'}, {out / 'frontier.png'} ({result.label}); "
        f"MLflow parent run {result.parent_run_id}")
    again = ["policy-lab", "-p", policy, "-c", str(experiment), "-o", str(out), "--population", str(population),
             "--seed", str(seed), *(["--model", model] if model else []),
             *(["--tracking-uri", tracking_uri] if tracking_uri else [])]
    say(f"more trials (the stored study continues): `{_command([*again, '--trials', str(2 * trials)])}`")
    if exported is None:
        pick = _suggested(pareto)
        say(f"write Pareto policy {pick} as a policy file: "
            f"`{_command([*again, '--trials', str(trials), '--export', str(pick)])}`")
        return
    say(f"wrote policy {exported} ({result.label} figures in its notes); "
        f"see it: `{_command(['policies', '--show', str(exported)])}`")
    if cfg.data.source != "generate":
        decisions = out / f"{exported.stem}.decisions.parquet"
        score = _command(["rules", "-i", str(cfg.data.source), "-p", str(exported), "-o", str(decisions)])
        say(f"score with it: `{score}`")


def _command(args: list[str]) -> str:
    """A command line that runs as printed (each argument quoted where the shell needs it)."""
    return "village-credit " + " ".join(shlex.quote(a) for a in args)


def _suggested(pareto: Any) -> int:
    """The number of the Pareto policy a hint names: the first that is not today's standard."""
    other = pareto[~pareto["today"].astype(bool)]
    return int((other if len(other) else pareto).iloc[0]["number"])

