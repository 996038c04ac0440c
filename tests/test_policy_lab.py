"""The policy lab: declared parameters, the NSGA-II frontier, exported policies, resuming, honesty.

Small populations (1,500 households, 16-24 trials) keep it fast; the speed claim lives
in bench/bench_policy_lab.py.
"""

from __future__ import annotations

import copy
import math
import re
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from village_credit.errors import PolicyError
from village_credit.fairness import ceiling_system
from village_credit.fairness.ceiling import household_ceiling_pd
from village_credit.policy_lab import (
    PolicyEvaluator,
    apply_parameters,
    current_values,
    run_policy_lab,
)
from village_credit.policy_lab.parameters import without_age_limit
from village_credit.policy_lab.search import objectives
from village_credit.reporting.displays import PolicyFrontierDisplay
from village_credit.rules import list_policies, load_policy, score_rules

N = 1500


@pytest.fixture(scope="module")
def households(generated_households):
    return generated_households(N, 5)


@pytest.fixture(scope="module")
def lab_result(households, tmp_path_factory):
    store = tmp_path_factory.mktemp("mlflow")
    return run_policy_lab(households, "jinxiang_2022", n_trials=24, population_size=8, seed=3, min_count=10,
                          out_dir=tmp_path_factory.mktemp("lab"), tracking_uri=f"sqlite:///{store}/m.db")


# ----------------------------------------------------------------------------- the parameters block
def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pilot.yaml"
    path.write_text("extends: jinxiang_2022\nname: pilot\n" + text, encoding="utf-8")
    return path


def test_every_shipped_policy_declares_parameters_with_today_inside():
    for name in list_policies():
        pol = load_policy(name)
        assert pol.parameters is not None, name
        assert apply_parameters(pol, current_values(pol)).to_dict() == pol.to_dict()


@pytest.mark.parametrize(("text", "message"), [
    ("parameters: {veto_windows: {crimes: {choices: [1, 2]}}}",
     "pilot.yaml: parameters.veto_windows.crimes: no dated veto of that name"),
    ("parameters: {age_limit: {low: 62, high: 70, step: 2}}",  # low/high/step overlay the inherited range
     "pilot.yaml: parameters.age_limit: today's value 60 is not among the values tried ([62, 70] step 2)"),
    ("parameters: {line_per_point: {low: 500, high: 1500, step: 300}}",
     "pilot.yaml: parameters.line_per_point.step: high - low = 1000 is not a whole number of steps"),
    ("parameters: {exploration_share: {low: 0, high: 2}}",
     "pilot.yaml: parameters.exploration_share: a share lies between 0 and 1"),
    ("parameters: {grade_shift: {low: 15}}",
     "pilot.yaml: parameters.grade_shift.low: low 15 is above high 10"),
    ("parameters: {grade_shift: {choices: [0, 5]}}",
     "pilot.yaml: parameters.grade_shift: give either choices or low/high(/step), not both"),
    ("parameters: {age_limt: {low: 55, high: 70}}",
     "pilot.yaml: parameters.age_limt: unknown key (allowed: age_limit"),
])
def test_bad_parameters_name_file_and_key(tmp_path, text, message):
    with pytest.raises(PolicyError, match=None) as err:
        load_policy(_write(tmp_path, text))
    assert message in str(err.value)


def test_a_policy_without_the_age_condition_cannot_declare_an_age_limit(tmp_path):
    path = _write(tmp_path, "base: {conditions: {age: null}}\nparameters: {age_limit: {low: 55, high: 70}}\n")
    with pytest.raises(PolicyError, match="parameters.age_limit: the policy has no base condition"):
        load_policy(path)


# ----------------------------------------------------------------------------- the fast decision = the engine's
def test_the_lab_decides_exactly_like_score_rules(households):
    pol = load_policy("xx_county")
    lab = PolicyEvaluator(households, pol, min_count=20)
    for values in ({}, {"age_limit": 80, "veto_window.financial": 1, "grade_shift": -5, "line_per_point": 1300,
                        "approval_min_points": 10}):
        variant = apply_parameters(pol, values)
        d = lab.decide(variant)
        ref = score_rules(households, variant).decisions
        np.testing.assert_array_equal(d.credit_line, ref["credit_line"].to_numpy())
        np.testing.assert_array_equal(d.points, ref["rule_points"].to_numpy())
        assert (lab.figures(d)["approval_rate"] != lab.figures(lab.decide(pol))["approval_rate"]) == bool(values)


def test_the_blend_decides_exactly_like_decision_model_decide():
    from village_credit.models.examples import example_model
    model, holdout = example_model()
    lab = PolicyEvaluator(holdout, model.policy, model=model, min_count=5)
    variant = apply_parameters(model.policy, {"veto_window.crime": 1, "approval_min_points": 15,
                                              "line_per_point": 800})
    swapped = copy.copy(model)
    swapped.policy = variant
    ref = swapped.decide(holdout)
    d = lab.decide(variant)
    np.testing.assert_array_equal(d.points, ref["points"].to_numpy())
    np.testing.assert_array_equal(d.credit_line, ref["credit_line"].to_numpy())
    # the ceiling is fairness.ceiling's own: under today's policy exactly ceiling_system's lines,
    # under the variant the same ceiling PD decided through the variant
    ceiling = ceiling_system(model, holdout, seed=0)
    np.testing.assert_array_equal(lab.ceiling_pd, ceiling.pd)
    np.testing.assert_array_equal(lab.decide(model.policy).ceiling_line, ceiling.credit_line)
    ref_ceiling = swapped.policy_decisions(model.scaling.points_from_pd(ceiling.pd), ref["eligible"].to_numpy(bool),
                                           ref["vetoed"].to_numpy(bool), households=holdout)
    np.testing.assert_array_equal(d.ceiling_line, ref_ceiling["credit_line"].to_numpy(float))


def test_the_rule_standards_ceiling_hands_its_own_points_out_in_the_ceilings_order(households):
    pol = load_policy("jinxiang_2022")
    lab = PolicyEvaluator(households, pol, seed=3, min_count=10)
    # fairness.ceiling's PD, on columns that do not move with the age limit: every variant meets one ceiling
    np.testing.assert_array_equal(lab.ceiling_pd, household_ceiling_pd(households, policy=without_age_limit(pol),
                                                                       seed=3))
    variant = apply_parameters(pol, {"age_limit": 75, "grade_shift": 5})
    np.testing.assert_array_equal(PolicyEvaluator(households, variant, seed=3, min_count=10).ceiling_pd,
                                  lab.ceiling_pd)
    for p in (pol, variant):
        d = lab.decide(p)
        decided = d.eligible & ~d.vetoed
        ceil_ok = d.ceiling_line > 0
        assert ceil_ok.sum() == d.approved.sum()  # same standard, same approval count ...
        assert not (ceil_ok & ~decided).any()
        pd_ok, pd_no = lab.ceiling_pd[ceil_ok], lab.ceiling_pd[decided & ~ceil_ok]
        assert pd_ok.max() <= pd_no.min()  # ... given to the lowest ceiling PDs
        np.testing.assert_array_equal(np.sort(d.ceiling_line[decided]), np.sort(d.credit_line[decided]))


def test_exploration_share_grants_trial_lines_to_refused_households_only(households):
    pol = load_policy("jinxiang_2022")
    lab = PolicyEvaluator(households, pol, min_count=20)
    base = lab.decide(pol, exploration_share=0.0)
    more = lab.decide(pol, exploration_share=0.1)
    assert not base.explored.any()
    assert more.explored.any() and not (more.explored & (base.approved | base.vetoed)).any()
    assert (more.credit_line[more.explored] == 50_000).all()
    np.testing.assert_array_equal(more.credit_line[~more.explored], base.credit_line[~more.explored])


# ----------------------------------------------------------------------------- the search
def test_each_gap_is_the_ceiling_plus_the_policys_own_excess(lab_result):
    t = lab_result.trials
    for c in ("elderly", "formerly_poor"):
        for k in ("approval", "line"):
            gap, ceiling, own = (t[f"{c}_{k}_{part}"] for part in ("gap", "gap_ceiling", "gap_excess"))
            ok = gap.notna()
            assert ok.all() and ceiling.notna().all() and own.notna().all(), (c, k)
            np.testing.assert_allclose(gap, ceiling + own, rtol=0, atol=1e-12)
    # the ceiling follows each trial's parameters (line per point, cut-offs, vetoes, exploration)
    assert t["elderly_line_gap_ceiling"].nunique() > 1
    # Jinxiang's age limit is the standard's own doing, not missing information: most of the
    # elderly's approval gap today is excess over what the best model on these columns would do
    today = lab_result.today
    assert today["elderly_approval_gap"] < 0
    assert abs(today["elderly_approval_gap_excess"]) > abs(today["elderly_approval_gap_ceiling"])


def test_the_frontier_holds_today_or_a_policy_that_dominates_it(lab_result):
    t = lab_result.trials
    today = lab_result.today
    assert today["trial"] == 0 and today["feasible"]
    front = t[t["pareto"]]
    assert front["feasible"].all()
    assert (front["expected_loss_yuan"] <= today["expected_loss_yuan"] + 1e-6).all()  # the constraint binds

    objs = lab_result.objectives
    assert len(objs) > 2  # the fairness gaps are objectives, not only approval and loss

    def better(a: pd.Series, b: pd.Series) -> tuple[bool, bool]:
        """(a at least as good as b on every objective, a strictly better on one)."""
        diffs = [(abs(a[o]) - abs(b[o])) if o.endswith("_gap") else (b[o] - a[o]) if d == "maximize"
                 else (a[o] - b[o]) for o, d in objs]  # <= 0: a is no worse
        return all(x <= 0 for x in diffs), any(x < 0 for x in diffs)

    assert bool(today["pareto"]) or any(all(better(r, today)) for _, r in front.iterrows())
    feasible = t[t["feasible"]]
    for _, r in front.iterrows():  # and no feasible trial dominates a Pareto policy
        assert not any(all(better(o, r)) for _, o in feasible.iterrows())


def test_an_exported_policy_loads_and_reproduces_its_trials_figures_exactly(lab_result, households, tmp_path):
    front = lab_result.pareto
    pick = front[~front["today"]].iloc[-1]
    path = lab_result.export_policy(int(pick["trial"]), tmp_path / "jinxiang_pilot.yaml", name="jinxiang_pilot")
    loaded = load_policy(path)
    assert loaded.name == "jinxiang_pilot" and loaded.parameters is not None
    fresh = PolicyEvaluator(households, loaded, seed=3, min_count=10)  # a new evaluator: nothing cached
    figures = fresh.figures(fresh.decide(loaded))
    for key, value in figures.items():
        assert (math.isnan(value) and math.isnan(pick[key])) or value == pick[key], key
    ref = score_rules(households, loaded).decisions  # the engine itself, before exploration
    d = fresh.decide(loaded, exploration_share=0.0)
    np.testing.assert_array_equal(d.credit_line, ref["credit_line"].to_numpy())


def test_a_resumed_study_makes_the_same_trials(households, tmp_path):
    kw = {"population_size": 6, "seed": 11, "min_count": 20, "log_to_mlflow": False}
    whole = run_policy_lab(households, "jinxiang_2022", n_trials=18, out_dir=tmp_path / "whole", **kw)
    run_policy_lab(households, "jinxiang_2022", n_trials=9, out_dir=tmp_path / "parts", **kw)
    resumed = run_policy_lab(households, "jinxiang_2022", n_trials=18, out_dir=tmp_path / "parts", n_jobs=2, **kw)
    cols = ["trial", *whole.parameters, "approval_rate", "expected_loss_yuan"]
    pd.testing.assert_frame_equal(whole.trials[cols], resumed.trials[cols])
    other = run_policy_lab(households, "jinxiang_2022", n_trials=18, out_dir=tmp_path / "other",
                           **{**kw, "seed": 12})
    assert not other.trials[whole.parameters].equals(whole.trials[whole.parameters])


def test_every_trial_is_an_mlflow_child_run_of_one_parent(lab_result):
    client = MlflowClient(lab_result.tracking_uri)
    parent = lab_result.parent_run_id
    assert parent is not None
    exp = client.get_run(parent).info.experiment_id
    children = client.search_runs([exp], f"tags.mlflow.parentRunId = '{parent}'", max_results=1000)
    assert len(children) == len(lab_result.trials)
    child = next(c for c in children if c.data.tags["village_credit.trial"] == "0")
    assert child.data.metrics["approval_rate"] == pytest.approx(lab_result.today["approval_rate"])


def test_a_labelled_sample_without_truth_uses_observed_outcomes_and_marks_unsupported_groups(households):
    sample = households.drop(columns=["true_pd"])
    res = run_policy_lab(sample, "jinxiang_2022", n_trials=8, population_size=4, min_count=20,
                         min_observed=100, log_to_mlflow=False)
    assert res.basis == "observed"
    assert "observed outcomes only" in res.notice
    assert res.supported["elderly"] is False  # Jinxiang never lent to the elderly: no outcomes
    assert "No outcome support" in res.notice and "elderly" in res.notice
    assert res.trials["elderly_approval_gap"].isna().all()
    assert [o for o, _ in res.objectives] == [o for o, _ in objectives(res.supported)]
    assert "elderly_approval_gap" not in [o for o, _ in res.objectives]
    assert (res.trials["line_without_outcome_yuan"] > 0).all()


def test_truth_figures_say_they_are_synthetic_and_the_display_marks_today(lab_result):
    assert "ground truth of generated households" in lab_result.notice
    assert lab_result.notice.startswith("SYNTHETIC")
    d = PolicyFrontierDisplay.from_result(lab_result)
    assert d.labels_[-1].startswith("today:")
    assert len(d.labels_) == len(lab_result.pareto) + 1
    today = lab_result.today
    assert (f"elderly approval gap {today['elderly_approval_gap']:+.2f} = ceiling "
            f"{today['elderly_approval_gap_ceiling']:+.2f} + own {today['elderly_approval_gap_excess']:+.2f}"
            in d.labels_[-1])
    assert all(" = ceiling " in label for label in d.labels_)
    assert lab_result.notice in d.figure_._suptitle.get_text()
    assert "SYNTHETIC" in [t.get_text().split(" (")[0] for t in d.ax_[0].texts]  # across the chart itself
    table = lab_result.by_group()
    assert {"approval_elderly", "approval_formerly_poor", "approval_others", "mean_line_elderly",
            "elderly_approval_gap_ceiling", "elderly_line_gap_excess"} <= set(table)
    assert list(table["number"]) == list(range(1, len(table) + 1))
    assert table["basis"].str.startswith("SYNTHETIC").all()  # every row of pareto.csv says so



def test_a_long_frontier_lists_a_spread_with_the_numbers_of_pareto_csv(lab_result):
    """More Pareto policies than ``max_listed``: that many are numbered and listed (spread
    along the frontier, the smallest gap among them), each under its pareto.csv number."""
    table = lab_result.by_group()
    assert len(table) > 3
    d = PolicyFrontierDisplay(lab_result.trials, parameters=lab_result.parameters, notice=lab_result.notice,
                              max_listed=3).plot()
    policies = [label for label in d.labels_ if re.match(r"^\d+: ", label)]
    assert len(policies) == 3 and d.labels_[-2] == f"(3 of {len(table)} Pareto policies shown; all in " \
                                                    "pareto.csv, same numbers)"
    numbers = [int(label.split(":")[0]) for label in policies]
    assert numbers == sorted(set(numbers)) and numbers[-1] - numbers[0] >= len(table) / 2  # spread
    best = int(table.loc[table["elderly_approval_gap"].abs().idxmin(), "number"])
    assert best in numbers
    for n, label in zip(numbers, policies, strict=True):  # the label's gap is that row's of pareto.csv
        assert f"elderly approval gap {table.loc[table['number'] == n, 'elderly_approval_gap'].iloc[0]:+.2f}" in label
    assert sorted(int(t.get_text()) for t in d.ax_[0].texts if t.get_text().isdigit()) == numbers

def _hints(output: str) -> dict[str, list[str]]:
    """The commands the policy-lab command printed, by what they are for, split as a shell would."""
    found = {}
    for line in output.splitlines():
        m = re.search(r"^(.*?): `village-credit ([^`]*)`$", line.strip())
        if m:
            what = m.group(1).split("; ")[-1].split(" (")[0].split(" as ")[0]
            found[re.sub(r" \d+$", "", what)] = shlex.split(m.group(2))
    return found


def _documented_command() -> str:
    """docs/policy-lab.md's command (its first shell block), as a reader pastes it."""
    from doc_blocks import ROOT, SHELL, blocks

    block = next(b for b in blocks([ROOT / "docs" / "policy-lab.md"]) if b.lang in SHELL)
    assert "village-credit policy-lab" in block.code, block.where
    return block.code.strip()


def test_the_command_writes_the_tables_the_chart_and_runs_its_printed_hints(tmp_path, monkeypatch):
    """The documented command, run by bash as pasted from docs/policy-lab.md (which marks
    it not run: 20,000 households x 200 trials), on the same config file shrunk to 800
    households and 6 trials: the config and output paths point into ``tmp_path``, every
    other word is the page's. Then its printed hints, verbatim."""
    import os
    import subprocess
    import sys

    import yaml

    from village_credit.cli import app

    root = Path(__file__).resolve().parents[1]
    config = yaml.safe_load((root / "experiments" / "default.yaml").read_text(encoding="utf-8"))
    config["data"]["n_households"] = 800  # the demo's config otherwise as shipped
    cfg = tmp_path / "default.yaml"
    cfg.write_text(yaml.safe_dump(config), encoding="utf-8")
    out = tmp_path / "lab"
    uri = f"sqlite:///{tmp_path}/m.db"
    command = _documented_command()
    assert command.count("experiments/default.yaml") == command.count("out/policy_lab") == 1, command
    command = command.replace("experiments/default.yaml", shlex.quote(str(cfg))).replace(
        "out/policy_lab", shlex.quote(str(out))) + " --trials 6 --population 3"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # the hints below run in-process on the same store
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                               "COLUMNS": "300"}, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert proc.stdout.startswith("SYNTHETIC (generated households, true PD). Figures on the ground truth")
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 6 and trials["today"].sum() == 1
    assert (out / "frontier.png").stat().st_size > 0 and (out / "study.log").exists()
    pareto = pd.read_csv(out / "pareto.csv")
    assert len(pareto) == int(trials["pareto"].sum())
    assert pareto["basis"].str.startswith("SYNTHETIC").all()

    hints = _hints(proc.stdout)
    assert set(hints) == {"more trials", "write Pareto policy"}, proc.stdout
    again = CliRunner().invoke(app, hints["more trials"])  # verbatim: the stored study continues
    assert again.exit_code == 0, again.output
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 12
    client = MlflowClient(uri)  # every trial of both runs a child of the one parent run
    parents = client.search_runs([client.get_experiment_by_name("policy-lab").experiment_id],
                                 "tags.`village_credit.kind` = 'policy-lab'")
    assert len(parents) == 1
    children = client.search_runs([parents[0].info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parents[0].info.run_id}'", max_results=100)
    assert sorted(int(c.data.tags["village_credit.trial"]) for c in children) == list(range(12))

    hints = _hints(again.output)
    number = int(hints["write Pareto policy"][hints["write Pareto policy"].index("--export") + 1])
    exported = CliRunner().invoke(app, hints["write Pareto policy"])  # no new trial: writes the YAML
    assert exported.exit_code == 0, exported.output
    assert len(pd.read_csv(out / "trials.csv")) == 12
    path = out / f"jinxiang_2022_lab_{number}.yaml"
    pick = pd.read_csv(out / "pareto.csv").set_index("number").loc[number]
    pilot = load_policy(path)
    assert pilot.name == f"jinxiang_2022_lab_{number}" and "SYNTHETIC" in pilot.notes[-1]
    assert current_values(pilot)["line_per_point"] == pick["line_per_point"]
    shown = CliRunner().invoke(app, _hints(exported.output)["see it"])
    assert shown.exit_code == 0 and f"name: jinxiang_2022_lab_{number}" in shown.output


def test_the_command_on_a_labelled_file_uses_outcomes_and_quarantines_bad_rows(households, tmp_path):
    from village_credit.cli import app
    from village_credit.data.io import write_parquet

    sample = households.drop(columns=["true_pd"]).head(800).copy()
    sample.loc[sample.index[3], "head_age"] = -5  # one bad row: quarantined with its reason
    write_parquet(sample, tmp_path / "sample.parquet")
    cfg = tmp_path / "real.yaml"
    cfg.write_text(f"name: real\nseed: 3\npolicy: jinxiang_2022\noutput_dir: out/real\n"
                   f"data: {{source: {tmp_path / 'sample.parquet'}}}\n", encoding="utf-8")
    out = tmp_path / "lab"
    result = CliRunner().invoke(app, ["policy-lab", "-c", str(cfg), "-o", str(out), "--trials", "4",
                                      "--population", "2", "--tracking-uri", f"sqlite:///{tmp_path}/m.db"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("MEASURED (observed outcomes only). Figures on observed outcomes only")
    text = " ".join(result.output.split())
    assert "No outcome support (gaps not measured): elderly" in text
    assert "1 household rows quarantined, 799 decided" in text
    quarantine = pd.read_parquet(out / "households.quarantine.parquet")
    assert list(quarantine["column"]) == ["head_age"]
    pareto = pd.read_csv(out / "pareto.csv")
    assert pareto["basis"].str.startswith("MEASURED").all()
    assert pareto["no_outcome_support"].map(lambda groups: "elderly" in groups.split(", ")).all()
    assert pareto["elderly_approval_gap"].isna().all() and pareto["elderly_approval_gap_ceiling"].isna().all()

    exported = CliRunner().invoke(app, _hints(result.output)["write Pareto policy"])  # the printed hints, verbatim
    assert exported.exit_code == 0, exported.output
    scored = CliRunner().invoke(app, _hints(exported.output)["score with it"])
    assert scored.exit_code == 0, scored.output
    decisions = next(p for p in out.glob("jinxiang_2022_lab_*.decisions.parquet") if "quarantine" not in p.name)
    assert len(pd.read_parquet(decisions)) == 799  # the bad row quarantined again, not dropped
