"""End to end: the main job on a small population, through the CLI, into a real MLflow store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from village_credit.cli import app

pytestmark = pytest.mark.slow

SMALL = """
name: e2e
seed: 11
output_dir: {out}
data:
  n_households: 5000
  n_townships: 4
  villages_per_township: 10
model:
  gbm: {{n_estimators: 120, learning_rate: 0.08, num_leaves: 8, min_child_samples: 30}}
  tuning: {{n_trials: 2, timeout_s: 60, cv_folds: 3}}
fairness:
  min_count: 15
  n_boot: 30
registry:
  model_name: vc-e2e
  experiment: vc-e2e
  validator: e2e test (hold-out villages)
  # plumbing run of 5,000 households: equal-risk cells of 15 households make the line excess
  # noise (0.22 here); experiments/default.yaml keeps the gate's 0.05
  gates: {{line_excess_max: 0.3, gap_vs_rules_max_ratio: 0.7}}
"""


@pytest.fixture(scope="module")
def main_job(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, object]:
    tmp = tmp_path_factory.mktemp("main_job")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    mp.chdir(tmp)
    exp = tmp / "e2e.yaml"
    exp.write_text(SMALL.format(out=tmp / "out"), encoding="utf-8")
    result = CliRunner().invoke(app, ["train", "--config", str(exp)], env={"COLUMNS": "80"})
    mp.undo()
    return tmp, uri, result


def test_main_job_exits_cleanly_and_prints_summary(main_job) -> None:
    _, _, result = main_job
    assert result.exit_code == 0, result.output
    assert "AUC blend" in result.output
    assert "mlflow ui --backend-store-uri sqlite:///" in result.output
    assert "approval rate by group" in result.output
    promoted = json.loads((main_job[0] / "out" / "summary.json").read_text())["promoted"]
    assert ("credit villages" in result.output) == promoted  # the programme report needs a champion
    if not promoted:  # the population was not scored: the summary says how to score it for research
        hint = next(line for line in result.output.splitlines() if "--allow-ungated" in line)
        assert "village-credit score --model runs:/" in hint
    # the summary tables fit 80 columns: folded, never cut to "…"
    table = [line for line in result.output.splitlines() if line[:1] in "┏┃┡│└"]
    assert table and all(len(line) <= 80 for line in table) and "…" not in result.output


def test_the_hold_out_verdict_decides_and_the_summary_says_so(main_job) -> None:
    """Issue 25: the demo claims promotion only when its own validation allows it."""
    tmp, uri, result = main_job
    summary = json.loads((tmp / "out" / "summary.json").read_text())
    val = summary["validation"]
    assert val["validator"] == "e2e test (hold-out villages)" and val["record_run_id"]
    report = json.loads((tmp / "out" / "validation" / "validation_report.json").read_text())
    assert report["verdict"]["verdict"] == val["verdict"]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    mv = client.get_model_version("vc-e2e", "1")
    # the pipeline's report names the registered version, its bytes and its signer
    assert report["identity"]["model_version"] == "1" and report["identity"]["validator"] == val["validator"]
    assert report["identity"]["model_artifact_sha256"] == mv.tags["promotion.artifact_digest"]
    assert report["identity"]["training_data_fingerprint"] == mv.tags["training_data_fingerprint"] \
        == client.get_run(mv.run_id).data.tags["data_fingerprint"]
    assert "validator's verdict" in result.output and val["verdict"].upper() in result.output
    if val["verdict"] == "fail":
        assert summary["promoted"] is False and "refuses promotion" in summary["gates"]["refused"]
        assert "Validator's verdict: FAIL" in mv.description and "not promoted" in mv.description
        assert "champion" not in (client.get_registered_model("vc-e2e").aliases or {})
        assert not (tmp / "out" / "scores").exists()  # nothing scored with a refused model
    if summary["promoted"]:
        assert val["verdict"] in ("pass", "conditional")


def test_champion_exists_and_scores_cover_every_household(main_job) -> None:
    tmp, uri, _ = main_job
    if not json.loads((tmp / "out" / "summary.json").read_text())["promoted"]:
        return  # refused, and said why: test_the_hold_out_verdict_decides_and_the_summary_says_so
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    champion = client.get_model_version_by_alias("vc-e2e", "champion")
    assert str(champion.version) == "1"
    tags = champion.tags
    assert tags["gates.passed"] in ("true", "false") and tags["gates.table"].endswith("gates.md"), tags
    assert "Gate verdict:" in champion.description
    exp = client.get_experiment(client.get_run(champion.run_id).info.experiment_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"  # the UI opens on runs

    summary = json.loads((tmp / "out" / "scores" / "summary.json").read_text())
    households = pd.read_parquet(tmp / "out" / "households.parquet")
    assert summary["rows_read"] == len(households) == 5000
    assert summary["scored"] + summary["quarantined"] == summary["rows_read"]
    assert summary["reconciled"] is True
    decisions = pd.read_parquet(tmp / "out" / "scores" / "decisions")
    assert decisions["household_id"].nunique() == summary["scored"]
    assert set(decisions["household_id"]) <= set(households["household_id"])
    assert {"pd", "points", "grade", "credit_line", "rate", "reason_codes"} <= set(decisions.columns)


def test_run_records_metrics_reports_and_context(main_job) -> None:
    tmp, uri, _ = main_job
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("vc-e2e")
    runs = client.search_runs([exp.experiment_id], "attributes.run_name LIKE 'e2e %'")
    assert len(runs) == 1
    run = runs[0]
    for key in ("blend_auc", "rules_auc", "oracle_auc", "blend_ece", "gbm_auc", "blend_oot_auc", "score_psi_oot"):
        assert key in run.data.metrics
    assert run.data.metrics["blend_auc"] > run.data.metrics["rules_auc"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"fairness", "validation", "explain"} <= artifacts
    summary = json.loads((tmp / "out" / "summary.json").read_text())
    assert Path(summary["paths"]["fairness_html"]).exists()
    if summary["promoted"]:  # no champion, no programme report
        # the programme report covers every village of the scored population
        villages = pd.read_parquet(tmp / "out" / "programme_villages.parquet")
        households = pd.read_parquet(tmp / "out" / "households.parquet")
        assert set(villages["village_code"]) == set(households["village_code"])
        assert summary["programme"]["villages"] == households["village_code"].nunique()
    # the promotion evidence is on the run, so `village-credit promote --version N` can find it
    local = client.download_artifacts(run.info.run_id, "evidence/evidence.json", str(tmp))
    evidence = json.loads(Path(local).read_text())
    # the gates judge what the signed validation measured (the observed hold-out), not the
    # run's research metrics over outcomes the generator drew for households nobody lent to
    report = json.loads((tmp / "out" / "validation" / "validation_report.json").read_text())
    assert evidence["discrimination"]["auc"] == pytest.approx(report["discrimination"]["auc"])
    assert evidence["calibration"]["hosmer_lemeshow_p"] == pytest.approx(
        report["calibration"]["hosmer_lemeshow"]["p_value"])
    assert report["sample"]["n"] + report["sample"]["n_without_outcome"] == report["sample"]["n_scored"]
    assert evidence["fairness"]["equal_risk"]["rules"]["max_gap_approval"] is not None


def test_outcome_support_is_flagged_in_every_report_and_gated(main_job) -> None:
    tmp, uri, result = main_job
    fair = json.loads((tmp / "out" / "fairness" / "fairness.json").read_text())
    sup = fair["outcome_support"]
    # the Jinxiang history lent to nobody over 60: those groups are extrapolation
    assert {"65-69", "70+"} <= set(sup["extrapolated_groups"])
    assert "base" in sup["neutralised_items"]  # the default remedy
    assert any(r.startswith("neutralised rule items") for r in sup["remedies"])
    assert sup["age_use"] == "age not used"  # model.elderly_pension_interaction is off by default
    head = {r["group"]: r for r in sup["headline"]}
    assert head["70+"]["pred_true_ratio"] > 0 and head["70+"]["pred_observed_ratio"] is None
    # beside it, the information ceiling's own ratio (the best PD these columns allow)
    assert all(0 < r["ceiling_true_ratio"] < 5 for r in head.values()), head
    assert "ceiling / true" in result.output
    assert "ceiling_true_ratio" in (tmp / "out" / "fairness" / "fairness.html").read_text()
    assert [c["remedy"] for c in sup["remedy_costs"]][0].startswith("none")
    assert "EXTRAPOLATED" in (tmp / "out" / "fairness" / "fairness.html").read_text()
    val_html = (tmp / "out" / "validation" / "validation_report.html").read_text()
    assert "EXTRAPOLATED" in val_html
    assert "vc-e2e" in val_html and "vc-fp-" in val_html  # identity: model and hold-out fingerprint
    banner = (tmp / "out" / "fairness" / "fairness.html").read_text().split("Model identity")[0]
    assert "EXTRAPOLATION" in banner and "70+" in banner  # the verdict itself says what rests on no outcome
    assert "EXTRAPOLATED" in result.output and "remedies applied" in result.output
    summary = json.loads((tmp / "out" / "summary.json").read_text())
    assert summary["outcome_support"]["extrapolated_groups"] == sup["extrapolated_groups"]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    mv = client.get_model_version("vc-e2e", "1")
    table = client.download_artifacts(mv.run_id, mv.tags["gates.table"].replace("gates.md", "gates.json"),
                                      str(tmp / "gates-dl"))
    gates = {g["name"]: g for g in json.loads(Path(table).read_text())["gates"]}
    assert "outcome_support" in gates, sorted(gates)  # the gate ran and is recorded with the version


def test_train_on_a_household_file_quarantines_bad_rows_and_keeps_them(tmp_path: Path) -> None:
    """`train` on a user's household file: bad rows go to out/quarantine.parquet with row,
    column and reason (counts in = valid + quarantined), and the rest trains."""
    from village_credit.config import load_config
    from village_credit.data import GeneratorConfig, generate_households
    from village_credit.data.io import write_parquet
    from village_credit.pipeline import run_experiment

    hh = generate_households(GeneratorConfig(n_households=1200, seed=8))
    age = np.array(hh["head_age"], dtype="float64")  # np.array copies: writable
    size = np.array(hh["household_size"])
    age[7], size[300] = 200.0, -1  # out of range
    hh = hh.assign(head_age=age, household_size=size)
    src = write_parquet(hh, tmp_path / "households.parquet")
    cfg = load_config(None, {"data.source": str(src), "data.second_vintage": False,
                             "output_dir": str(tmp_path / "out"), "model.tuning.n_trials": 0,
                             "model.gbm": {"n_estimators": 30, "num_leaves": 7},
                             "stages.mlflow": False, "stages.shap": False, "stages.reports": False})
    res = run_experiment(cfg, promote_model=False, score_population=False)
    q = pd.read_parquet(res.paths["quarantine"])
    assert res.quarantined_rows == 2
    # stages.reports off: no report files (fairness nor validation), the gates' numbers still exist
    assert not (tmp_path / "out" / "fairness").exists() and not (tmp_path / "out" / "validation").exists()
    assert "fairness_html" not in res.paths and res.approval_by_group is not None
    assert {(7, "head_age"), (300, "household_size")} <= set(zip(q["row_number"], q["column"], strict=True))
    assert q["reason"].str.len().gt(0).all()
