"""The guide's own-table walk on the shipped German credit table, through the CLI as written
(data/german_credit/README.md): train -> validate on a labelled sample the training never
saw -> promote -> score ``models:/german-credit@champion``.

Issue 26 item 1: validate, promote and score take the target, its label, the id column and
the grades from the model's own spec; gates that cannot apply say so by name. Issue 25
items 1 and 7: the verdict gates the promotion, and the validator, the artifact SHA-256 and
the labelled fingerprints are the same on the runs, the registry and the reports.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from village_credit.cli import app
from village_credit.data.io import read_table
from village_credit.registry.tracking import data_fingerprint

pytestmark = pytest.mark.slow  # the whole guide through the CLI: train, validate, promote, score

ROOT = Path(__file__).resolve().parents[1]
NAME = "german-credit"


def test_german_credit_walk_train_validate_promote_score(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    monkeypatch.setenv("COLUMNS", "300")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def cli(*args: str, code: int = 0):
        res = runner.invoke(app, list(args))
        assert res.exit_code == code, f"{args}: {res.output}"
        return res

    # the guide's first step: keep 200 loans aside for the validator, train on the other 800
    lines = (ROOT / "data" / "german_credit" / "germancredit.csv").read_text(encoding="utf-8").splitlines()
    Path("german_train.csv").write_text("\n".join(lines[:801]) + "\n", encoding="utf-8")
    Path("german_validation.csv").write_text("\n".join([lines[0], *lines[801:]]) + "\n", encoding="utf-8")

    cli("train", "--config", str(ROOT / "experiments" / "german_credit.yaml"), "--set",
        "data.source=german_train.csv", "--set", "output_dir=out", "--set", "stages.shap=false",
        "--no-promote")
    summary = json.loads(Path("out/summary.json").read_text(encoding="utf-8"))
    assert summary["model_version"] == "1" and summary["promoted"] is False

    res = cli("validate", "--model", f"models:/{NAME}/1", "--input", "german_validation.csv",
              "--validator", "A. Validator", "--output", "val", "--no-progress")
    val = json.loads(res.stdout)
    verdict = val["verdict"]
    # the target ('creditability', 'bad' = default) and the decile grades are the model's own
    report = json.loads(Path("val/validation_report.json").read_text(encoding="utf-8"))
    assert report["sample"]["n"] == 200 and report["sample"]["defaults"] == int(
        (pd.read_csv("german_validation.csv")["creditability"] == "bad").sum())
    assert {r["grade"] for r in report["calibration"]["grades"]} <= {f"G{i:02d}" for i in range(1, 11)}
    assert ("promote --model-name german-credit --version 1" in " ".join(res.stderr.split())) == (verdict != "fail")

    res = cli("promote", "--model-name", NAME, "--version", "1",
              code=0 if verdict == "pass" and "FAIL" not in res.stderr else 1)
    gates = {g["name"]: g for g in json.loads(res.stdout)["gates"]["gates"]}
    # no rule standard on a table: the gate says so by name, it does not fail as "missing"
    assert gates["fairness_gap_vs_rules"]["passed"] and gates["fairness_gap_vs_rules"]["detail"].startswith(
        "not applicable: no rule standard")
    assert gates["validation_verdict"]["detail"].startswith("validator A. Validator")
    # fairness from observed outcomes on the validator's sample, by the attributes the spec
    # declares (age bands and sex); the model has no cut-off, so approval figures say so by name
    fair = report["fairness"]
    assert {"age_in_years", "personal_status_and_sex"} <= set(fair)
    assert sum(g["n"] for g in fair["age_in_years"]) == 200 and len(fair["age_in_years"]) == 4
    assert all(g["observed_ci_low"] <= g["default_rate"] <= g["observed_ci_high"] for g in fair["age_in_years"])
    assert gates["fairness_group_calibration_p_min"]["value"] is not None
    for name in ("fairness_parity_ratio_min", "fairness_tpr_gap_max"):
        assert gates[name]["passed"] and gates[name]["detail"].startswith("not applicable: no cut-off declared")
    # outcome support: the training rows per protected group, from the version's own run
    assert gates["outcome_support"]["detail"] != "evidence fairness missing"
    assert "household" not in Path("val/validation_report.html").read_text(encoding="utf-8").lower()
    if res.exit_code == 1:
        assert verdict != "fail", "a FAIL verdict must be fixed, not overridden"
        cli("promote", "--model-name", NAME, "--version", "1", "--override-by", "R. Officer",
            "--override-reason", "pilot on 800 training loans: fewer outcomes per group than the "
            "programme's minimum; calibration by group reviewed on the validation sample",
            "--override-until", "2099-12-31")
    rows = {r["version"]: r for r in json.loads(cli("models", "--model-name", NAME, "--json").stdout)}
    assert rows["1"]["aliases"] == ["champion"] and rows["1"]["verdict"] == verdict
    assert rows["1"]["gate_state"].startswith("promoted")

    res = cli("score", "--model", f"models:/{NAME}@champion", "--input", "german_validation.csv",
              "--output", "scores", "--no-progress")
    scored = json.loads(res.stdout[res.stdout.index("{"):])
    assert scored["rows_read"] == 200 and scored["scored"] + scored["quarantined"] == 200
    assert scored["model"]["version"] == "1" and scored["model"]["gated"] is True
    # the user's names: no id column in this file, so decisions and reason codes say row_id
    res = cli("explain", "--model", f"models:/{NAME}@champion", "--input", "german_validation.csv",
              "--output", "reasons.parquet", "--no-progress")
    reasons = pd.read_parquet("reasons.parquet")
    assert reasons.columns[0] == "row_id" and "household_id" not in reasons.columns
    assert json.loads(res.stdout)["rows_with_reasons"] == 200

    # one identity, the same everywhere: runs, registry, reports
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    mv = client.get_model_version(NAME, "1")
    training_run = client.get_run(mv.run_id).data.tags
    validation_run = client.get_run(val["mlflow_run"]).data.tags
    train_fp = training_run["data_fingerprint"]  # the training rows (the run logs it, never rows)
    sample_fp = data_fingerprint(read_table(Path("german_validation.csv")))  # as the toolkit reads it
    ident = report["identity"]
    pipeline_ident = json.loads(Path("out/validation/validation_report.json").read_text())["identity"]
    assert mv.tags["training_data_fingerprint"] == mv.tags["data_fingerprint"] == train_fp \
        == validation_run["training_data_fingerprint"] == ident["training_data_fingerprint"] \
        == pipeline_ident["training_data_fingerprint"]
    assert mv.tags["validation_sample_fingerprint"] == validation_run["validation_sample_fingerprint"] \
        == ident["validation_sample_fingerprint"] == sample_fp
    assert mv.tags["promotion.artifact_digest"] == validation_run["model_artifact_sha256"] \
        == ident["model_artifact_sha256"] == scored["model"]["artifact_digest"]
    assert validation_run["validation.validator"] == ident["validator"] == "A. Validator"
    assert ident["model_name"] == NAME and ident["model_version"] == "1"
    assert mv.tags["validation.last_verdict"] == verdict
    assert "Validator's verdict: " + verdict.upper() + " by A. Validator" in mv.description

    if rows["1"]["gate_state"] == "promoted by override":
        # the override shows in every report written after it: validate the champion again
        res = cli("validate", "--model", f"models:/{NAME}@champion", "--input", "german_validation.csv",
                  "--no-mlflow", "--output", "val_again", "--no-progress")
        again = json.loads(Path("val_again/validation_report.json").read_text(encoding="utf-8"))
        assert again["identity"]["override"].startswith("promoted by override: R. Officer until 2099-12-31")
        assert "R. Officer until 2099-12-31" in Path("val_again/validation_report.html").read_text(encoding="utf-8")
