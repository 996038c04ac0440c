"""Registry and promotion against a real sqlite-backed MLflow store in a temp dir.

The models are small real sklearn models logged with mlflow.sklearn: the promotion
logic does not depend on what the model is (the decision pyfunc has its own test).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import mlflow
import numpy as np
import pandas as pd
import pytest
import typer
from mlflow.exceptions import MlflowException
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from village_credit.cli import app as village_credit_app
from village_credit.registry import (
    RegistryError,
    champion_version,
    configure,
    get_client,
    list_versions,
    log_evidence,
    promote,
    recorded_evidence,
    rollback,
)
from village_credit.registry.loading import version_digest
from village_credit.registry.promotion import CHALLENGER, CHAMPION, PREVIOUS, model_thresholds
from village_credit.registry.verdict import OverrideError, record_validation, run_tags

OVERRIDE = {"override_by": "R. Officer", "override_until": "2099-12-31"}

_names = itertools.count()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """One sqlite store per module (creating one costs seconds); one model name per test."""
    root = tmp_path_factory.mktemp("mlstore")
    old = mlflow.get_tracking_uri()
    uri = f"sqlite:///{root.as_posix()}/mlflow.db"
    configure(uri)
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"age": rng.integers(20, 70, 80).astype("int64"),
                      "income": rng.normal(5.0, 1.0, 80)})
    y = (x["income"] + rng.normal(0, 1, 80) > 5).astype(int)
    uris = {}
    with mlflow.start_run() as run:
        uris["base"] = mlflow.sklearn.log_model(
            LogisticRegression().fit(x, y), name="base", input_example=x.head(3),
            pip_requirements=["scikit-learn", "pandas"]).model_uri
        x2 = x.assign(land_mu=1.0)
        uris["wider"] = mlflow.sklearn.log_model(
            LogisticRegression().fit(x2, y), name="wider", input_example=x2.head(3),
            pip_requirements=["scikit-learn", "pandas"]).model_uri
    yield {"uri": uri, "root": root, "uris": uris, "run_id": run.info.run_id, "x": x}
    mlflow.set_tracking_uri(old)


@pytest.fixture()
def name(store: dict) -> str:
    configure(store["uri"])  # a CLI test may have re-pointed MLflow; same store anyway
    return f"vc-test-{next(_names)}"


def new_version(store: dict, name: str, which: str = "base", verdict: str | None = "pass") -> str:
    """Register a version and, unless ``verdict`` is None, record a validator's verdict on it."""
    mv = mlflow.register_model(store["uris"][which], name)
    if verdict is not None:
        validate(name, str(mv.version), verdict)
    return str(mv.version)


def validate(name: str, version: str, verdict: str, *, sample_fp: str = "vc-fp-1:validation-sample",
             reasons: tuple[str, ...] = (), digest: str | None = None) -> str:
    """A validation record of ``version`` as ``validate`` writes it (run tags + verdict)."""
    c = get_client()
    run = c.create_run("0", tags=run_tags(
        name, version, model_uri=f"models:/{name}/{version}",
        artifact_sha256=digest or version_digest(name, version, client=c), validator="V. Alidator",
        sample_fingerprint=sample_fp, training_fingerprint=None, purpose="test validation"))
    record_validation(c, run.info.run_id, name, version, {"verdict": verdict, "reasons": list(reasons)},
                      validator="V. Alidator")
    c.set_terminated(run.info.run_id)
    return run.info.run_id


def vs(champion: str, auc_diff: float, ks_diff: float = 0.0) -> dict:
    """Both models scored on one validation sample (``discrimination.vs_champion``)."""
    return {"champion_version": champion, "auc_diff": auc_diff, "ks_diff": ks_diff,
            "auc_diff_ci": [auc_diff - 0.02, auc_diff + 0.02], "auc_p_value": 0.3, "n": 1500}


def with_vs(ev: dict, champion: str, auc_diff: float, ks_diff: float = 0.0) -> dict:
    ev["discrimination"]["vs_champion"] = vs(champion, auc_diff, ks_diff)
    return ev


def evidence(auc: float = 0.80, ks: float = 0.45, **extra: object) -> dict:
    ev = {
        "discrimination": {"auc": auc, "ks": ks},
        "calibration": {"ece": 0.01, "hosmer_lemeshow_p": 0.40},
        "stability": {"score_psi": 0.02, "feature_psi": {"age": 0.01, "income": 0.03}},
        "fairness": {"equal_risk": {"max_gap_approval": 0.01, "max_gap_line": 0.02,
                                    "max_excess_approval": 0.005, "max_excess_line": 0.01,
                                    "rules": {"max_gap_approval": 0.40}},
                     "demographic_parity": {"min_ratio": 0.92}},
        "data_fingerprint": "vc-fp-1:abc",
    }
    ev.update(extra)
    return ev


def aliases(name: str) -> dict[str, str]:
    return {k: str(v) for k, v in get_client().get_registered_model(name).aliases.items()}


def test_gate_pass_makes_champion_and_records_evidence(store: dict, name: str) -> None:
    v1 = new_version(store, name)
    res = promote(name, v1, evidence())
    assert res.promoted and not res.by_override and res.report.passed
    assert champion_version(name) == v1 and aliases(name) == {CHAMPION: v1}
    tags = get_client().get_model_version(name, v1).tags
    assert tags["gates.passed"] == "true"
    # gate results: one table artifact (Markdown + JSON), not a tag per gate
    assert not [k for k in tags if k.startswith("gate.")]
    run_id = get_client().get_model_version(name, v1).run_id
    table = mlflow.artifacts.load_text(f"runs:/{run_id}/{tags['gates.table']}")
    assert "| auc_min | 0.800 | >= 0.650 | pass |" in table
    gates_json = json.loads(mlflow.artifacts.load_text(f"runs:/{run_id}/{tags['gates.table'][:-2]}json"))
    assert gates_json["passed"] is True
    assert {g["name"] for g in gates_json["gates"]} >= {"auc_min", "ece_max"}
    description = get_client().get_model_version(name, v1).description
    assert f"version {v1}" in description and "all promotion gates passed" in description
    assert tags["data_fingerprint"] == "vc-fp-1:abc"
    assert tags["code_version"] and tags["promotion.time"]
    record = json.loads(mlflow.artifacts.load_text(res.record_artifact))
    assert record["report"]["passed"] is True and record["decision"] == "promote"
    # schema evidence was filled from the model signature
    assert {c["name"] for c in record["evidence"]["schema"]} == {"age", "income"}
    assert recorded_evidence(name, v1)["discrimination"]["auc"] == 0.80
    row = list_versions(name)[0]
    assert row["aliases"] == [CHAMPION] and row["gates_passed"] == "true"


def test_failing_version_is_never_champion_api(store: dict, name: str) -> None:
    v1 = new_version(store, name)
    v2 = new_version(store, name)
    assert promote(name, v1, evidence(auc=0.80)).promoted
    res = promote(name, v2, with_vs(evidence(auc=0.75), v1, -0.05))  # worse on the same sample
    assert not res.promoted
    assert [g.name for g in res.report.failed] == ["auc_vs_champion"]
    assert aliases(name) == {CHAMPION: v1, CHALLENGER: v2}
    assert get_client().get_model_version(name, v2).tags["gates.passed"] == "false"
    # no champion yet + missing evidence: still never champion
    other = f"{name}-b"
    v = new_version(store, other)
    assert not promote(other, v, {}).promoted and champion_version(other) is None
    # a blank override is no override
    assert not promote(name, v2, with_vs(evidence(auc=0.75), v1, -0.05), override_reason="   ").promoted
    assert champion_version(name) == v1


def test_override_with_reason_is_recorded(store: dict, name: str) -> None:
    v1 = new_version(store, name)
    with pytest.raises(OverrideError, match="who and until are missing"):
        promote(name, v1, evidence(auc=0.5), override_reason="pilot county, board decision 12")
    res = promote(name, v1, evidence(auc=0.5), override_reason="pilot county, board decision 12",
                  **OVERRIDE)
    assert res.promoted and res.by_override and not res.report.passed
    tags = get_client().get_model_version(name, v1).tags
    assert tags["override_reason"] == "pilot county, board decision 12"
    assert tags["override.by"] == "R. Officer" and tags["override.until"] == "2099-12-31"
    assert tags["promoted_by_override"] == "true" and tags["gates.passed"] == "false"
    description = get_client().get_model_version(name, v1).description
    assert "FAILED: auc_min" in description and "pilot county, board decision 12" in description
    assert champion_version(name) == v1


def test_promotion_moves_old_champion_to_previous_and_rollback(store: dict, name: str) -> None:
    v1, v2 = new_version(store, name), new_version(store, name)
    promote(name, v1, evidence(auc=0.80))
    res = promote(name, v2, with_vs(evidence(auc=0.81), v1, 0.01))
    assert res.promoted and res.previous_champion == v1
    assert aliases(name) == {CHAMPION: v2, PREVIOUS: v1}
    with pytest.raises(RegistryError):
        promote(name, v2, evidence())  # already champion

    rb = rollback(name, reason="complaints from township 3")
    assert (rb.champion, rb.demoted) == (v1, v2)
    assert aliases(name) == {CHAMPION: v1, CHALLENGER: v2}
    assert get_client().get_model_version(name, v2).tags["rollback.reason"].startswith("complaints")
    with pytest.raises(RegistryError):
        rollback(name)  # @previous is consumed: no flip-flopping


def test_relative_gates_use_champion_recorded_evidence(store: dict, name: str) -> None:
    v1, v2 = new_version(store, name), new_version(store, name)
    promote(name, v1, evidence(auc=0.90, ks=0.60))
    res = promote(name, v2, with_vs(evidence(auc=0.80, ks=0.45), v1, -0.10, -0.15))  # absolute gates pass
    assert not res.promoted
    assert {g.name for g in res.report.failed} == {"auc_vs_champion", "ks_vs_champion"}
    assert res.report.champion_version == v1


def test_schema_change_fails_schema_gate(store: dict, name: str) -> None:
    v1 = new_version(store, name, "base")
    v2 = new_version(store, name, "wider")
    promote(name, v1, evidence())
    res = promote(name, v2, with_vs(evidence(), v1, 0.0))
    assert not res.promoted and [g.name for g in res.report.failed] == ["schema_compatible"]
    assert "land_mu" in res.report.failed[0].detail


def test_crash_mid_way_leaves_champion_untouched(store: dict, name: str) -> None:
    v1, v2 = new_version(store, name), new_version(store, name)
    promote(name, v1, evidence())
    # Passing gates, but a fingerprint the real store refuses as a tag value (> 100k
    # chars): the tag writes raise half-way, before any alias may move.
    with pytest.raises(MlflowException):
        promote(name, v2, evidence(auc=0.95, data_fingerprint="x" * 200_000))
    assert aliases(name) == {CHAMPION: v1}
    # same with no champion at all: no alias appears
    other = f"{name}-b"
    v = new_version(store, other)
    with pytest.raises(MlflowException):
        promote(other, v, evidence(data_fingerprint="x" * 200_000))
    assert champion_version(other) is None and aliases(other) == {}


def test_unknown_version_raises(store: dict, name: str) -> None:
    new_version(store, name)
    with pytest.raises(RegistryError):
        promote(name, "99", evidence())


def cli_app() -> typer.Typer:
    """The real CLI (its commands load lazily, as for a user)."""
    return village_credit_app


def test_cli_promote_models_rollback(store: dict, name: str, tmp_path: Path) -> None:
    runner = CliRunner()
    app = cli_app()
    uri = ["--tracking-uri", store["uri"], "--model-name", name]
    v1, v2, v3 = (new_version(store, name) for _ in range(3))

    # evidence from the version's run (logged by the pipeline with log_evidence)
    log_evidence(evidence(auc=0.80), store["run_id"])
    r = runner.invoke(app, ["promote", "--version", v1, *uri])
    assert r.exit_code == 0, r.output
    assert champion_version(name) == v1

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(evidence(auc=0.70)))
    r = runner.invoke(app, ["promote", "--version", v2, "--evidence", str(bad), *uri])
    assert r.exit_code == 1, r.output
    assert champion_version(name) == v1 and aliases(name)[CHALLENGER] == v2

    r = runner.invoke(app, ["promote", "--version", v2, "--evidence", str(bad),
                            "--override-reason", "regulator waiver 2025-07", "--override-by", "R. Officer",
                            "--override-until", "2099-12-31", *uri])
    assert r.exit_code == 0, r.output
    assert champion_version(name) == v2
    assert get_client().get_model_version(name, v2).tags["override_reason"] == "regulator waiver 2025-07"

    r = runner.invoke(app, ["models", "--json", *uri])
    assert r.exit_code == 0, r.output
    rows = {row["version"]: row for row in json.loads(r.stdout)}
    assert rows[v2]["aliases"] == [CHAMPION] and rows[v1]["aliases"] == [PREVIOUS]
    assert rows[v3]["gates_passed"] == "not evaluated"
    assert rows[v2]["override_by"] == "R. Officer" and rows[v2]["gate_state"] == "promoted by override"
    assert rows[v1]["verdict"] == "pass" and rows[v1]["gate_state"] == "promoted (no longer champion)"

    r = runner.invoke(app, ["rollback", *uri])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["champion"] == v1 and champion_version(name) == v1

    r = runner.invoke(app, ["rollback", *uri])
    assert r.exit_code == 2  # nothing left to roll back to
    r = runner.invoke(app, ["promote", "--version", "77", *uri])
    assert r.exit_code == 2
    r = runner.invoke(app, ["models", *uri])
    assert r.exit_code == 0 and "@champion" in r.stdout


def test_cli_tables_fit_80_columns(store: dict, name: str, tmp_path: Path) -> None:
    """Gate table (long details, an override reason) and version list: folded, never cut to "…"."""
    runner, app = CliRunner(), cli_app()
    uri = ["--tracking-uri", store["uri"], "--model-name", name]
    v1 = new_version(store, name)
    ev = tmp_path / "evidence.json"  # long gate names and details, a long override reason
    ev.write_text(json.dumps(evidence(auc=0.70, data_fingerprint="vc-fp-1:" + "f" * 60)))
    outputs = [runner.invoke(app, ["promote", "--version", v1, "--evidence", str(ev), "--override-reason",
                                   "regulator waiver 2025-07: pilot county, reviewed by the risk committee",
                                   "--override-by", "R. Officer", "--override-until", "2099-12-31",
                                   *uri], env={"COLUMNS": "80"}),
               runner.invoke(app, ["models", *uri], env={"COLUMNS": "80"})]
    for r in outputs:
        assert r.exit_code == 0, r.output
        table = [line for line in r.output.splitlines() if line[:1] in "┏┃┡│└"]
        assert table and all(len(line) <= 80 for line in table), r.output
        assert "…" not in r.output, r.output


def test_champion_loads_in_fresh_process(store: dict, name: str) -> None:
    v1 = new_version(store, name)
    promote(name, v1, evidence())
    code = (
        "import mlflow, pandas as pd, json, sys\n"
        f"m = mlflow.pyfunc.load_model('models:/{name}@champion')\n"
        "x = pd.DataFrame({'age': [30, 60], 'income': [4.0, 6.5]})\n"
        "print(json.dumps([int(v) for v in m.predict(x)]))\n"
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": store["uri"]}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=store["root"],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    preds = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(preds) == 2 and set(preds) <= {0, 1}


def test_thresholds_recorded_for_the_model_judge_every_later_version(store: dict, name: str) -> None:
    """The CLI default is not a second set of thresholds: without --thresholds a version
    is judged by those recorded for the registered model; the backstop says so."""
    v1, v2, v3 = (new_version(store, name) for _ in range(3))
    th, source = model_thresholds(name)
    assert th["approval_gap_max"] == 0.05 and "backstop" in source
    loose = {"approval_gap_max": 0.25, "line_gap_max": 0.75}
    res = promote(name, v1, evidence(), loose, thresholds_reason="experiment default.yaml")
    assert res.promoted and "experiment default.yaml" in res.thresholds_source
    # a later version, no thresholds passed: the recorded ones, not the toolkit defaults
    gap = evidence()
    gap["fairness"]["equal_risk"]["max_gap_approval"] = 0.20  # fails 0.05, passes 0.25
    res = promote(name, v2, with_vs(gap, v1, 0.0))
    assert res.promoted and res.thresholds["approval_gap_max"] == 0.25
    assert res.thresholds_source.startswith(f"recorded for registered model {name!r}")
    record = json.loads(mlflow.artifacts.load_text(res.record_artifact))
    assert record["thresholds"]["approval_gap_max"] == 0.25 and record["artifact_digest"]
    # same for the CLI, which prints which thresholds it used
    runner = CliRunner()
    cli = village_credit_app
    ev_file = store["root"] / f"{name}-ev.json"
    ev_file.write_text(json.dumps(with_vs(gap, v2, 0.0)))
    out = runner.invoke(cli, ["promote", "--model-name", name, "--version", v3, "--evidence",
                              str(ev_file), "--tracking-uri", store["uri"]],
                        env={"COLUMNS": "300"})
    assert out.exit_code == 0, out.output
    assert f"thresholds: recorded for registered model '{name}'" in out.stderr


def test_promote_finds_the_version_evidence_without_a_file(store: dict, name: str) -> None:
    x = store["x"]
    y = (x["income"] > 5).astype(int)
    with mlflow.start_run() as run:  # a run of its own: no evidence logged on it yet
        uri = mlflow.sklearn.log_model(LogisticRegression().fit(x, y), name="m",
                                       input_example=x.head(3),
                                       pip_requirements=["scikit-learn"]).model_uri
    v1 = str(mlflow.register_model(uri, name).version)
    validate(name, v1, "pass")
    res = promote(name, v1, None)  # nothing logged anywhere: every gate fails, and says why
    assert not res.promoted and res.evidence_source.startswith("none")
    log_evidence(evidence(), run.info.run_id)
    res = promote(name, v1, None)
    assert res.promoted and res.evidence_source.startswith("training run")


def test_experiment_opens_on_runs_in_the_mlflow_ui(store: dict) -> None:
    """configure() tags the experiment as classical ML; a kind chosen by a user is kept."""
    client = get_client()
    exp = client.get_experiment_by_name("village-credit")
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    client.set_experiment_tag(exp.experiment_id, "mlflow.experimentKind", "genai_development")
    configure(store["uri"])
    assert client.get_experiment(exp.experiment_id).tags["mlflow.experimentKind"] == "genai_development"
    client.set_experiment_tag(exp.experiment_id, "mlflow.experimentKind", "custom_model_development")


# ------------------------------------------------------------------ the validator's verdict


def test_a_fail_verdict_is_refused_by_promote_even_with_an_override(store: dict, name: str,
                                                                      tmp_path: Path) -> None:
    """Issue 25: a version whose own validation says FAIL never becomes @champion."""
    v1 = new_version(store, name, verdict="fail")
    validate(name, v1, "fail", reasons=("calibration in the large p = 0.00585 < 0.01",))
    res = promote(name, v1, evidence())  # every other gate passes
    assert not res.promoted and champion_version(name) is None
    assert [g.name for g in res.report.failed] == ["validation_verdict"]
    assert "FAIL - calibration in the large p = 0.00585" in res.report.failed[0].detail
    res = promote(name, v1, evidence(), override_reason="the board wants it", **OVERRIDE)
    assert not res.promoted and champion_version(name) is None and "never overridden" in res.refused
    tags = get_client().get_model_version(name, v1).tags
    assert tags["gates.passed"] == "false" and tags["validation.last_verdict"] == "fail"
    assert tags.get("promoted_by_override") == "false"
    assert "not promoted" in get_client().get_model_version(name, v1).description
    # the CLI says why, exits 1
    ev = tmp_path / "ev.json"
    ev.write_text(json.dumps(evidence()))
    r = CliRunner().invoke(cli_app(), ["promote", "--version", v1, "--evidence", str(ev), "--override-reason",
                                       "x", "--override-by", "y", "--override-until", "2099-01-01",
                                       "--tracking-uri", store["uri"], "--model-name", name],
                           env={"COLUMNS": "300"})
    assert r.exit_code == 1 and "the validator's verdict refuses promotion" in r.stderr
    assert champion_version(name) is None


def test_a_conditional_verdict_needs_an_override_shown_in_models(store: dict, name: str) -> None:
    v1 = new_version(store, name, verdict=None)
    validate(name, v1, "conditional", reasons=("1 grade(s) amber in the per-grade back-test",))
    res = promote(name, v1, evidence())
    assert not res.promoted and [g.name for g in res.report.failed] == ["validation_verdict"]
    assert "CONDITIONAL" in res.report.failed[0].detail and not res.refused
    res = promote(name, v1, evidence(), override_reason="amber grade D1 reviewed by the committee",
                  override_by="R. Officer", override_until="2099-06-30")
    assert res.promoted and champion_version(name) == v1
    gate = res.report.gates[0]
    assert gate.name == "validation_verdict" and gate.passed
    assert "override by R. Officer until 2099-06-30: amber grade D1 reviewed" in gate.detail
    description = get_client().get_model_version(name, v1).description
    assert "Validator's verdict: CONDITIONAL by V. Alidator" in description
    assert "override by R. Officer until 2099-06-30" in description
    record = json.loads(mlflow.artifacts.load_text(res.record_artifact))
    assert record["override"] == {"by": "R. Officer", "reason": "amber grade D1 reviewed by the committee",
                                  "until": "2099-06-30"}
    r = CliRunner().invoke(cli_app(), ["models", "--tracking-uri", store["uri"], "--model-name", name],
                           env={"COLUMNS": "300"})
    assert r.exit_code == 0, r.output
    row = next(line for line in r.stdout.splitlines() if "@champion" in line)
    assert "conditional" in row and "promoted by override" in row
    assert "R. Officer until 2099-06-30: amber grade D1 reviewed by the committee" in row
    with pytest.raises(OverrideError, match="in the past"):
        promote(name, new_version(store, name, verdict="conditional"), evidence(),
                override_reason="late", override_by="R. Officer", override_until="2001-01-01")


def test_the_verdict_must_be_of_these_artifacts_and_not_of_the_training_data(store: dict, name: str) -> None:
    v1 = new_version(store, name, verdict=None)
    validate(name, v1, "pass", digest="sha256:" + "0" * 64)  # a validation of other bytes
    res = promote(name, v1, evidence())
    assert not res.promoted and "no validation record of its own" in res.report.failed[0].detail
    # a "validation" on the very rows the model was trained on is no verdict
    run_id = get_client().get_model_version(name, v1).run_id
    get_client().set_tag(run_id, "data_fingerprint", "vc-fp-1:training-rows")
    validate(name, v1, "pass", sample_fp="vc-fp-1:training-rows")
    res = promote(name, v1, evidence(), override_reason="x", **OVERRIDE)
    assert not res.promoted and "its own training data" in res.refused
    get_client().set_tag(run_id, "data_fingerprint", "vc-fp-1:other")  # the shared test run
    validate(name, v1, "pass")
    res = promote(name, v1, evidence())
    assert res.promoted and res.validation["verdict"] == "pass" and res.validation["validator"] == "V. Alidator"
    tags = get_client().get_model_version(name, v1).tags
    # one fingerprint per data set, labelled: the training rows' is the run's
    assert tags["training_data_fingerprint"] == tags["data_fingerprint"] == "vc-fp-1:other"
    assert tags["validation_sample_fingerprint"] == "vc-fp-1:validation-sample"
