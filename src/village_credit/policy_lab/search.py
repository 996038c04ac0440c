"""The search: Optuna's NSGA-II over a policy's declared parameters, logged to MLflow.

Why generations: trials are asked one generation (``population_size`` trials) at a
time, in order, each from a sampler seeded with ``seed`` and the trial number; the generation is
then decided in parallel (``n_jobs`` threads, the decisions are numpy) and told back
in order. So a seeded search gives the same trials however many threads decide them,
and a study resumed from its storage (``<out_dir>/study.log``, Optuna's journal file)
continues with exactly the trials an uninterrupted run would have made. The parallel
work is ``n_jobs`` threads in one process: several processes on one study file would
interleave their generations and lose that seeded order. Trial 0 is today's standard, so the Pareto set
always holds it or a policy that dominates it.

Objectives: approval rate (up), expected loss in yuan (down), and the absolute
approval and line gaps of the elderly and the formerly poor (down; both signs count).
The objectives are the whole gaps (what households meet); on the truth every gap is
also reported split into the information ceiling and the policy's own excess
(``<gap>_ceiling`` + ``<gap>_excess``, :mod:`village_credit.policy_lab.evaluate`).
Constraint: expected loss at most today's (``Trial.set_constraint``; infeasible trials
never enter the Pareto set). Every trial is an MLflow child run of one parent run,
logged in one batch per trial.
"""

from __future__ import annotations

import hashlib
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import optuna
import pandas as pd
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from village_credit.errors import ConfigError
from village_credit.models.decision import DecisionModel
from village_credit.policy_lab.evaluate import BASIS_LABEL, BASIS_TEXT, COMPARISONS, PolicyEvaluator
from village_credit.policy_lab.parameters import (
    apply_parameters,
    current_values,
    parameter_space,
    suggest,
)
from village_credit.registry.store import seed_store_of
from village_credit.rules.policy import Policy, load_policy

LOSS_CONSTRAINT = "expected_loss_above_today"
UNMEASURED_CONSTRAINT = "gaps_not_measured"
UNMEASURED = 1.0e12
"""The sampler's value of an objective the trial could not measure (the figure stays NaN)."""
STUDY_FILE = "study.log"
FIGURES_VERSION = "ceiling-split-1"
"""Part of a study's fingerprint: a study stored with other figures starts afresh."""


def objectives(supported: dict[str, bool]) -> list[tuple[str, str]]:
    """(figure, direction) of each objective; a comparison without outcome support is left out."""
    out = [("approval_rate", "maximize"), ("expected_loss_yuan", "minimize")]
    for c in COMPARISONS:
        if supported.get(c, True):
            out += [(f"{c}_approval_gap", "minimize"), (f"{c}_line_gap", "minimize")]
    return out


@dataclass
class LabResult:
    """A finished search: every trial's parameters and figures, the Pareto set, today's standard.

    ``trials``: one row per complete trial (``trial``, the parameters, the figures,
    ``feasible``, ``pareto``, ``today``, ``basis``: SYNTHETIC or MEASURED,
    ``no_outcome_support``: the comparisons whose gaps could not be measured); ``basis``
    (``truth`` / ``observed``), ``label`` and ``notice`` say what the figures rest on; ``support``: the outcome-support diagnostics (None on truth without outcomes).
    """

    policy: Policy
    trials: pd.DataFrame
    parameters: list[str]
    objectives: list[tuple[str, str]]
    basis: str
    support: dict[str, Any] | None
    supported: dict[str, bool]
    study_name: str
    parent_run_id: str | None = None
    tracking_uri: str | None = None
    out_dir: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """SYNTHETIC or MEASURED, and on what: the first words of every output."""
        return BASIS_LABEL[self.basis]

    @property
    def notice(self) -> str:
        text = f"{self.label}. Figures {BASIS_TEXT[self.basis]}."
        if self.basis == "truth":
            text += " Each gap = information ceiling + the policy's own excess."
        lacking = [c for c, ok in self.supported.items() if not ok]
        if lacking:
            text += f" No outcome support (gaps not measured): {', '.join(lacking)}."
        return text

    @property
    def today(self) -> pd.Series:
        return self.trials[self.trials["today"]].iloc[0]

    @property
    def pareto(self) -> pd.DataFrame:
        """The Pareto policies, by approval rate (``number``: their label on the frontier chart)."""
        p = self.trials[self.trials["pareto"]].sort_values(["approval_rate", "expected_loss_yuan"],
                                                           ascending=[True, True])
        return p.assign(number=np.arange(1, len(p) + 1)).reset_index(drop=True)

    def by_group(self) -> pd.DataFrame:
        """The Pareto policies with their parameters and approval, mean line and gaps per group."""
        cols = (["number", "trial", "today", "basis", "no_outcome_support"] + self.parameters + ["approval_rate", "expected_loss_yuan"]
                + [c for c in self.trials.columns if c.startswith(("approval_", "mean_line_"))
                   and c != "approval_rate"]
                + [c for c in self.trials.columns if c.endswith(("_gap", "_gap_ceiling", "_gap_excess"))])
        return self.pareto[list(dict.fromkeys(cols))]

    def policy_of(self, trial: int, name: str | None = None) -> Policy:
        """The policy a trial decided with (``name``: the new policy's name)."""
        row = self.trials[self.trials["trial"] == trial]
        if row.empty:
            raise ConfigError(f"policy lab: no complete trial {trial}")
        values = {p: float(row.iloc[0][p]) for p in self.parameters}
        return apply_parameters(self.policy, values, name=name)

    def export_policy(self, trial: int, path: str | Path, name: str) -> Path:
        """Write trial ``trial``'s policy as a YAML file that ``load_policy`` reads like a shipped one."""
        pol = self.policy_of(trial, name=name)
        row = self.trials[self.trials["trial"] == trial].iloc[0]
        data = pol.to_dict()
        data["notes"] = list(pol.notes) + [
            (f"Chosen in the policy lab (study {self.study_name}, trial {trial}) from {self.policy.name}; "
            f"{self.label} figures {BASIS_TEXT[self.basis]}: approval {row['approval_rate']:.3f}, "
            f"expected loss {row['expected_loss_yuan']:,.0f} yuan.")]
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        text = Policy(data, str(p)).to_yaml_text().split("\n", 1)[1]
        p.write_text(f"# village-credit policy '{name}' from the policy lab\n" + text, encoding="utf-8")
        return p


def _fingerprint(lab: PolicyEvaluator, seed: int, population_size: int) -> str:
    """What a resumed study must share with the stored one: policy, households, model, seed, population."""
    h = hashlib.sha256(lab.policy.to_yaml_text().encode())
    h.update(str((len(lab.households), lab.basis, seed, population_size, lab.model is not None,
                  FIGURES_VERSION)).encode())
    ids = lab.households["household_id"] if "household_id" in lab.households else lab.households.index.to_series()
    h.update(pd.util.hash_pandas_object(ids, index=False).to_numpy().tobytes())
    if lab.model is not None and lab._contrib is not None:
        h.update(np.ascontiguousarray(lab._contrib).tobytes())
    return h.hexdigest()[:16]


def _storage(out_dir: Path | None) -> Any:
    if out_dir is None:
        return optuna.storages.InMemoryStorage()
    out_dir.mkdir(parents=True, exist_ok=True)
    backend = optuna.storages.journal.JournalFileBackend(str(out_dir / STUDY_FILE))
    return optuna.storages.JournalStorage(backend)


def _evaluate(lab: PolicyEvaluator, values: dict[str, float]) -> dict[str, float]:
    pol = apply_parameters(lab.policy, values)
    return lab.figures(lab.decide(pol))


class _Logger:
    """Trials as MLflow child runs of one parent (one ``log_batch`` per trial, written in the background)."""

    def __init__(self, tracking_uri: str | None, experiment: str, parent: str | None,
                 params: dict[str, Any]) -> None:
        seed_store_of(tracking_uri or mlflow.get_tracking_uri())  # a new store: no migrations
        self.client = MlflowClient(tracking_uri)
        exp = self.client.get_experiment_by_name(experiment)
        self.experiment_id = exp.experiment_id if exp is not None else self.client.create_experiment(experiment)
        if parent is not None:
            try:
                self.client.get_run(parent)
            except MlflowException:  # the study was started against another store: a new parent here
                parent = None
        if parent is None:
            run = self.client.create_run(self.experiment_id, run_name=f"policy-lab {params['policy']}",
                                         tags={"village_credit.kind": "policy-lab"})
            parent = run.info.run_id
            self.client.log_batch(parent, params=[Param(k, str(v)) for k, v in params.items()])
        self.parent = parent
        self.basis = str(params["basis"])

        # trials are written by one background thread while the next generation is decided,
        # so the store's round trips (three per trial) overlap the search instead of adding to it
        self._writer = ThreadPoolExecutor(max_workers=1)
        self._pending: list[Any] = []

    def trial(self, number: int, values: dict[str, float], figures: dict[str, float]) -> None:
        self._pending.append(self._writer.submit(self._write_trial, number, dict(values), dict(figures)))

    def _write_trial(self, number: int, values: dict[str, float], figures: dict[str, float]) -> None:
        run = self.client.create_run(self.experiment_id, run_name=f"trial-{number}", tags={
            "mlflow.parentRunId": self.parent, "village_credit.trial": str(number),
            "village_credit.basis": self.basis})
        now = int(pd.Timestamp.now().timestamp() * 1000)
        metrics = [Metric(k, float(v), now, 0) for k, v in figures.items() if not math.isnan(v)]
        self.client.log_batch(run.info.run_id, metrics=metrics,
                              params=[Param(k, str(v)) for k, v in values.items()])
        self.client.set_terminated(run.info.run_id)

    def close(self, figures: dict[str, float]) -> None:
        self._writer.shutdown(wait=True)
        for done in self._pending:
            done.result()  # a failed write raises here, not silently
        now = int(pd.Timestamp.now().timestamp() * 1000)
        self.client.log_batch(self.parent, metrics=[Metric(k, float(v), now, 0) for k, v in figures.items()])
        self.client.set_terminated(self.parent)


def run_policy_lab(households: pd.DataFrame, policy: str | Path | Policy, *, model: DecisionModel | None = None,
                   n_trials: int = 200, seed: int = 0, population_size: int = 20, n_jobs: int = 1,
                   out_dir: str | Path | None = None, tracking_uri: str | None = None,
                   experiment: str = "policy-lab", log_to_mlflow: bool = True, eval_date: Any = None,
                   min_count: int = 50, min_observed: int = 300) -> LabResult:
    """Search the policy's declared parameters for the frontier of approval, loss and fair treatment.

    ``households``: valid rows (generated: ground truth; a labelled sample: observed
    outcomes only). ``model``: decide with this blend instead of the rule standard.
    ``out_dir``: the study's storage (resumable: run again with the same arguments and
    a larger ``n_trials``); None keeps it in memory. See the module docstring.

    >>> from village_credit.data import GeneratorConfig, generate_households
    >>> hh = generate_households(GeneratorConfig(n_households=300, seed=7))
    >>> res = run_policy_lab(hh, "jinxiang_2022", n_trials=8, population_size=4, min_count=10,
    ...                      log_to_mlflow=False)
    >>> len(res.trials), bool(res.today["pareto"] or res.pareto["approval_rate"].max() >= res.today["approval_rate"])
    (8, True)
    """
    pol = load_policy(policy)
    space = parameter_space(pol)
    if not space:
        raise ConfigError(f"{pol.source}: the policy declares no parameters (add a 'parameters:' block)")
    if n_trials < 1 or population_size < 2:
        raise ConfigError(f"policy lab: n_trials must be >= 1 and population_size >= 2, "
                          f"got {n_trials} and {population_size}")
    t0 = pd.Timestamp.now()
    lab = PolicyEvaluator(households, pol, model=model, eval_date=eval_date, seed=seed,
                          min_count=min_count, min_observed=min_observed)
    today_values = current_values(pol)
    today = _evaluate(lab, today_values)
    objs = [o for o in objectives(lab.supported) if not math.isnan(today[o[0]])]
    out = Path(out_dir) if out_dir is not None else None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = _storage(out)
    name = f"{pol.name}-{_fingerprint(lab, seed, population_size)}"
    study = optuna.create_study(study_name=name, storage=storage, directions=[d for _, d in objs],
                                load_if_exists=True)
    if not study.trials:
        study.set_user_attr("objectives", [o for o, _ in objs])
        study.enqueue_trial(today_values)
    elif study.user_attrs.get("objectives") != [o for o, _ in objs]:
        raise ConfigError(f"policy lab: the stored study {name} has other objectives")
    logger = None
    if log_to_mlflow:
        logger = _Logger(tracking_uri, experiment, study.user_attrs.get("parent_run_id"), {
            "policy": pol.name, "seed": seed, "population_size": population_size, "basis": BASIS_LABEL[lab.basis],
            "model": "blend" if model is not None else "rules", "n_households": len(lab.households),
            "study": name})
        study.set_user_attr("parent_run_id", logger.parent)
    t_setup = (pd.Timestamp.now() - t0).total_seconds()
    with ThreadPoolExecutor(max_workers=max(1, n_jobs)) as pool:
        _resume_running(study, lab, pool, today, objs, logger)
        while (done := len(study.get_trials(deepcopy=False))) < n_trials:
            batch, values = [], []
            for number in range(done, min(done + population_size - done % population_size, n_trials)):
                # a sampler seeded by trial number: a resumed study draws what an uninterrupted one would
                study.sampler = optuna.samplers.NSGAIISampler(population_size=population_size,
                                                              seed=seed * 1_000_003 + number)
                batch.append(study.ask())
                values.append(suggest(batch[-1], space))
                # the enqueued trial (today) skips NSGA-II's sampling: record its generation too,
                # so every generation holds exactly population_size trials however a run was cut
                sampler = study.sampler
                sampler.get_trial_generation(study, study.get_trials(deepcopy=False)[batch[-1].number])
            _tell(study, batch, values, list(pool.map(lambda v: _evaluate(lab, v), values)), today, objs, logger)
    if logger is not None:
        logger.close({f"today_{k}": v for k, v in today.items() if not math.isnan(v)})
    trials = _trial_table(study, list(space), today_values)
    trials["basis"] = BASIS_LABEL[lab.basis]  # every row says what its figures rest on
    # and which groups' gaps could not be measured (observed outcomes: too few outcomes)
    trials["no_outcome_support"] = ", ".join(c for c, ok in lab.supported.items() if not ok)
    return LabResult(pol, trials, list(space), objs, lab.basis, lab.support, lab.supported, name,
                     logger.parent if logger is not None else None,
                     logger.client.tracking_uri if logger is not None else None, out,
                     {"setup_s": t_setup, "search_s": (pd.Timestamp.now() - t0).total_seconds() - t_setup})


def _resume_running(study: optuna.Study, lab: PolicyEvaluator, pool: ThreadPoolExecutor,
                    today: dict[str, float], objs: list[tuple[str, str]], logger: _Logger | None) -> None:
    """Trials asked but never told (an interrupted run) are decided with their stored parameters."""
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    if not running:
        return
    batch = [optuna.trial.Trial(study, t._trial_id) for t in running]
    values = [{k: float(v) for k, v in t.params.items()} for t in running]
    _tell(study, batch, values, list(pool.map(lambda v: _evaluate(lab, v), values)), today, objs, logger)


def _tell(study: optuna.Study, batch: list[Any], values: list[dict[str, float]], figures: list[dict[str, float]],
          today: dict[str, float], objs: list[tuple[str, str]], logger: _Logger | None) -> None:
    for trial, vals, fig in zip(batch, values, figures, strict=True):
        for k, v in fig.items():
            trial.set_user_attr(k, v)
        trial.set_user_attr("values", vals)
        trial.set_constraint(LOSS_CONSTRAINT, fig["expected_loss_yuan"] - today["expected_loss_yuan"])
        obj = [abs(fig[o]) if o.endswith("_gap") else fig[o] for o, _ in objs]
        # a gap no cell could measure is NaN in the figures; for the sampler it is the worst
        # value and the trial is infeasible, so it never enters the Pareto set, and no trial
        # fails (a failed trial would shift NSGA-II's generations with the timing of a run)
        unmeasured = sum(math.isnan(v) for v in obj)
        trial.set_constraint(UNMEASURED_CONSTRAINT, float(unmeasured))
        study.tell(trial, [UNMEASURED if math.isnan(v) else v for v in obj])
        if logger is not None:
            logger.trial(trial.number, vals, fig)


def _trial_table(study: optuna.Study, params: list[str], today_values: dict[str, float]) -> pd.DataFrame:
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    pareto = {t.number for t in study.best_trials}
    rows = []
    for t in complete:
        vals = t.user_attrs["values"]
        row: dict[str, Any] = {"trial": t.number}
        row.update({p: vals[p] for p in params})
        row.update({k: v for k, v in t.user_attrs.items() if k != "values"})
        cons = t.constraints
        row["feasible"] = all(c <= 0 for c in (cons.values() if isinstance(cons, dict) else cons))
        row["pareto"] = t.number in pareto
        # trial 0 is today's standard (enqueued); a later trial that happens to draw the same
        # values is kept as it is, a separate point
        row["today"] = t.number == 0
        if t.number == 0 and any(abs(vals[p] - today_values[p]) >= 1e-9 for p in params):
            raise ConfigError(f"policy lab: trial 0 of study {study.study_name} is not today's standard")
        rows.append(row)
    return pd.DataFrame(rows)
