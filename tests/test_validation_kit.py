"""Third-party validation of a registered model (real sqlite MLflow store in a temp dir)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

import mlflow
import numpy as np
import pandas as pd
import pytest
import typer
from mlflow.tracking import MlflowClient
from sklearn.metrics import brier_score_loss, roc_auc_score
from typer.testing import CliRunner

from village_credit.cli import app as cli_app
from village_credit.registry.tracking import data_fingerprint
from village_credit.validation.kit import (
    ValidationKitError,
    artifact_hash,
    load_model_source,
    parse_model_uri,
    validate_model,
)

pytestmark = pytest.mark.slow
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

SECTIONS = ("sample", "config", "discrimination", "calibration", "stability", "migration",
            "fairness", "challenger", "reproducibility", "evidence")


@pytest.fixture(scope="module")
def store(validation_kit, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("kit")
    old = mlflow.get_tracking_uri()
    uri = validation_kit.make_store(root)
    dm = validation_kit.cached_model(tmp_path_factory)
    v1 = validation_kit.register_model(dm, root)
    v2 = validation_kit.register_model(dm, root)  # same model again: a challenger with identical numbers
    sample = validation_kit.population(2500, seed=31)
    # a previous grade for the migration matrix: the model's own grade, some moved one band
    rng = np.random.default_rng(0)
    grades = dm.decide(sample)["grade"].to_numpy(object)
    order = ["A1", "A2", "B1", "B2", "C1", "C2", "D1", "D2", "E1", "E2"]
    idx = np.array([order.index(g) for g in grades]) + rng.integers(-1, 2, len(grades))
    prev = np.array(order, dtype=object)[np.clip(idx, 0, 9)]
    sample = pd.concat([sample, pd.DataFrame({"previous_grade": prev})], axis=1)
    path = root / "sample.parquet"
    sample.to_parquet(path)
    yield {"root": root, "uri": uri, "v1": v1, "v2": v2, "sample": sample, "path": path, "dm": dm}
    mlflow.set_tracking_uri(old)


@pytest.fixture(scope="module")
def validated(store: dict) -> dict:
    out = store["root"] / "report"
    steps: list[tuple[str, int, int]] = []
    res, html, js = validate_model(store["v1"], store["path"], out, challenger_uri=store["v2"],
                                   progress=lambda *a: steps.append(a), validator="V. Alidator")
    return {"res": res, "html": html, "json": js, "out": out, "steps": steps}


def test_progress_is_reported_step_by_step(validated: dict) -> None:
    done = [d for _, d, _ in validated["steps"]]
    assert done == sorted(done) and done[0] == 0 and len(set(done)) == len(done) >= 4
    assert validated["steps"][-1] == ("done", done[-1], done[-1])


def test_report_has_every_section_and_embedded_charts(validated: dict) -> None:
    html = validated["html"].read_text(encoding="utf-8")
    assert html.count('class="chart"') >= 5  # the charts, inline SVG
    for title in ("Discrimination", "Calibration", "Stability", "Grade migration",
                  "Fairness summary", "Champion vs challenger", "Reproducibility"):
        assert title in html, title
    data = json.loads(validated["json"].read_text(encoding="utf-8"))
    for key in SECTIONS:
        assert data.get(key) is not None, key
    disc, cal, stab = data["discrimination"], data["calibration"], data["stability"]
    assert disc["auc_ci"][0] < disc["auc"] < disc["auc_ci"][1]
    # ten grades graded by PD; the vetoed households (graded by policy) were never lent to,
    # so none has an observed outcome: no back-test row, but the table of decisions without
    # an observed outcome lists them (as in the pipeline's hold-out validation)
    assert disc["roc"] and disc["cap"] and len(disc["rank_ordering"]) == 10
    assert "vetoed (graded by policy)" not in {r["grade"] for r in disc["rank_ordering"]}
    unobserved = {r["households"]: r for r in data["unobserved"]}
    vetoed = unobserved["no observed outcome: vetoed (no line whatever the PD)"]
    assert vetoed["n"] > 0 and vetoed["n"] + unobserved["no observed outcome: no veto (refused, not explored)"]["n"] \
        == data["sample"]["n_without_outcome"]
    assert unobserved["observed outcome (lent to or explored)"]["n"] == data["sample"]["n"]
    assert "households without one enter stability and migration only" in html
    # the report opens with who/what was validated and one verdict with reasons
    ident, verdict = data["identity"], data["verdict"]
    assert ident["model_name"] == "vc-kit" and ident["model_version"] == "1"
    assert ident["validation_sample_fingerprint"] and ident["toolkit_version"] and ident["model_run_id"]
    assert ident["validator"] == "V. Alidator"
    assert verdict["verdict"] in ("pass", "conditional", "fail") and verdict["rules"]
    assert html.index("Model identity and verdict") < html.index("Discrimination")
    # the verdict is a coloured banner, as in fairness.html, not a plain line (issue 27)
    assert f'<b>{verdict["verdict"].upper()}</b> overall verdict' in html
    assert html.index('class="verdict') < html.index("Discrimination")
    assert {"brier", "ece", "hosmer_lemeshow", "spiegelhalter", "grades", "reliability"} <= set(cal)
    assert {"jeffreys_p", "binomial_p", "light"} <= set(cal["grades"][0])
    # independent sample: Hosmer-Lemeshow with ddof 0 (dof = number of groups)
    assert data["config"]["hl_ddof"] == 0 and cal["hosmer_lemeshow"]["dof"] == 10
    assert stab["score_psi"] is not None and stab["score_alert"] in ("green", "amber", "red")
    assert len(stab["csi"]) >= 20  # every model feature profiled at training time
    # stability and migration need no outcome: every scored household
    assert data["migration"]["summary"]["n"] == data["sample"]["n_scored"] > data["sample"]["n"]
    assert {"by_group", "disparities"} <= set(data["fairness"])
    groups = {r["group"] for r in data["fairness"]["by_group"]}
    assert {"60+", "formerly_poor"} <= groups
    ch = data["challenger"]  # the same model registered twice: no difference
    assert ch["auc_diff"] == pytest.approx(0.0, abs=1e-12)
    assert ch["calibration"]["brier"] == pytest.approx(cal["brier"])
    ev = json.loads((validated["out"] / "evidence.json").read_text())
    assert {"discrimination", "calibration", "stability", "fairness", "validation_sample_fingerprint"} <= set(ev)
    assert "max_gap_approval" in ev["fairness"]["equal_risk"]


def test_figures_match_independent_computation(store: dict, validated: dict) -> None:
    """The kit's numbers equal sklearn's on the pyfunc's own decisions."""
    res = validated["res"]
    model = mlflow.pyfunc.load_model(store["v1"])
    s = store["sample"]
    dec = model.predict(s.drop(columns=["true_pd", "default_12m", "granted_hist",
                                        "outcome_observed", "previous_grade"]))
    assert (dec["status"] == "scored").all()
    # as the pipeline's hold-out validation: the households with an observed outcome only
    seen = s["outcome_observed"].to_numpy(bool)
    assert 0 < seen.sum() < len(s) and res["sample"]["n"] == seen.sum()
    assert res["sample"]["n_without_outcome"] == (~seen).sum()
    dec, y = dec.loc[seen].reset_index(drop=True), s["default_12m"].to_numpy()[seen]
    assert res["discrimination"]["auc"] == pytest.approx(roc_auc_score(y, -dec["points"]), abs=1e-12)
    assert res["calibration"]["brier"] == pytest.approx(brier_score_loss(y, dec["pd"]), abs=1e-12)
    # the per-grade back-test covers households graded by their PD; vetoed ones (graded
    # E2 by policy) are on a row of their own
    vetoed = dec["vetoed"].to_numpy(bool)
    g = pd.DataFrame({"g": dec["grade"][~vetoed], "y": y[~vetoed]}).groupby("g")["y"].agg(["size", "sum"])
    tab = pd.DataFrame(res["calibration"]["grades"]).set_index("grade")
    for grade, row in g.iterrows():
        assert tab.loc[grade, "n"] == row["size"] and tab.loc[grade, "defaults"] == row["sum"]
    from village_credit.validation.report import POLICY_GRADED

    assert not vetoed.any() and POLICY_GRADED not in tab.index  # never lent to: no outcome
    # the rank-ordering table separates them exactly as the back-test does (one grade-order
    # function for every table)
    ro = pd.DataFrame(res["discrimination"]["rank_ordering"]).set_index("grade")
    for grade, row in g.iterrows():
        assert ro.loc[grade, "n"] == row["size"] and ro.loc[grade, "defaults"] == row["sum"]
    assert POLICY_GRADED not in ro.index


def test_reproducibility_block(validation_kit, store: dict, validated: dict, tmp_path: Path) -> None:
    rep = validated["res"]["reproducibility"]
    assert rep["model_uri"] == store["v1"] and rep["model_name"] == validation_kit.NAME and rep["model_version"] == "1"
    local = mlflow.artifacts.download_artifacts(store["v1"], dst_path=str(tmp_path / "again"))
    assert rep["model_artifact_sha256"] == artifact_hash(local)
    assert rep["challenger_artifact_sha256"].startswith("sha256:")
    assert rep["sample_fingerprint"] == data_fingerprint(store["sample"])
    assert {"python", "mlflow", "pandas", "scikit-learn"} <= set(rep["library_versions"])


def test_logged_to_mlflow_with_version_tags(validation_kit, store: dict, validated: dict) -> None:
    info = validated["res"]["mlflow"]
    client = MlflowClient()
    arts = {a.path for a in client.list_artifacts(info["run_id"], "validation")}
    assert {"validation/validation_report.html", "validation/validation_report.json",
            "validation/evidence.json"} <= arts
    run = client.get_run(info["run_id"])
    assert run.data.tags["validated_model_version"] == "1"
    assert run.data.metrics["auc"] == pytest.approx(validated["res"]["discrimination"]["auc"])
    tags = client.get_model_version(validation_kit.NAME, "1").tags
    assert any(k.startswith("validation.") and k.endswith(".auc") for k in tags)
    last = json.loads(tags["last_validation"])
    assert last["run_id"] == info["run_id"] and last["report_json"].endswith(".json")


def test_the_validation_record_is_signed_and_names_the_same_bytes_and_data(validation_kit, store: dict,
                                                                          validated: dict) -> None:
    """Issue 25 item 7: validator, model name/version/artifact SHA-256 and the labelled
    sample fingerprint are the same on the run, the version's tags, the report and the evidence."""
    res, client = validated["res"], MlflowClient()
    run = client.get_run(res["mlflow"]["run_id"])
    report = json.loads(validated["json"].read_text(encoding="utf-8"))["identity"]
    ev = json.loads((validated["out"] / "evidence.json").read_text())
    sample_fp = data_fingerprint(store["sample"])
    assert run.data.tags["validation.validator"] == report["validator"] == "V. Alidator"
    assert run.data.tags["model_artifact_sha256"] == report["model_artifact_sha256"] \
        == res["reproducibility"]["model_artifact_sha256"]
    assert run.data.tags["validation_sample_fingerprint"] == report["validation_sample_fingerprint"] \
        == ev["validation_sample_fingerprint"] == sample_fp
    tags = client.get_model_version(validation_kit.NAME, "1").tags
    assert tags["validation.last_verdict"] == run.data.tags["validation.verdict"] == res["verdict"]["verdict"]
    assert tags["validation.last_validator"] == "V. Alidator" and tags["validation.last_run"] == run.info.run_id


def test_an_unsigned_validation_cannot_be_recorded(store: dict, tmp_path: Path) -> None:
    with pytest.raises(ValidationKitError, match="must be signed"):
        validate_model(store["v1"], store["sample"].head(300), tmp_path / "u", validator="  ")
    res, _, _ = validate_model(store["v1"], store["sample"].head(300), tmp_path / "r", log_to_mlflow=False,
                               fairness_boot=5)
    assert res["identity"]["validator"].startswith("not given")  # a report only: no record


def test_the_comparison_is_paired_on_one_sample_and_feeds_the_champion_gate(validated: dict) -> None:
    """validate --challenger scores both versions on the same rows: the evidence carries the
    paired DeLong difference with its CI, which the auc_vs_champion gate reads."""
    from village_credit.registry.gates import evaluate_gates

    res = validated["res"]
    ev = res["evidence"]
    vs = ev["discrimination"]["vs_champion"]
    assert vs["champion_version"] == "2" and vs["n"] == res["sample"]["n"]
    assert vs["auc_diff"] == pytest.approx(res["challenger"]["auc_champion"] - res["challenger"]["auc_challenger"])
    assert vs["auc_diff"] == pytest.approx(0.0, abs=1e-12) and vs["auc_diff_ci"] == [0.0, 0.0]  # same model
    gates = {g.name: g for g in evaluate_gates(ev, None, {"schema": []}, champion_version="2").gates}
    assert gates["auc_vs_champion"].passed and f"same {res['sample']['n']} rows" in gates["auc_vs_champion"].detail
    gates = {g.name: g for g in evaluate_gates(ev, None, {"schema": []}, champion_version="5").gates}
    assert not gates["auc_vs_champion"].passed and "champion is v5" in gates["auc_vs_champion"].detail


def test_missing_outcome_is_a_clear_error(store: dict, tmp_path: Path) -> None:
    with pytest.raises(ValidationKitError, match="default_12m"):
        validate_model(store["v1"], store["sample"].drop(columns=["default_12m"]), tmp_path,
                       log_to_mlflow=False)


def test_unknown_model_is_a_clear_error(validation_kit, store: dict, tmp_path: Path) -> None:
    with pytest.raises(ValidationKitError, match="cannot resolve"):
        load_model_source(f"models:/{validation_kit.NAME}/99", tmp_path)


def test_artifact_hash_sorted_and_sensitive(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for d, names in ((a, ["x.txt", "sub/y.txt"]), (b, ["sub/y.txt", "x.txt"])):
        for n in names:
            (d / n).parent.mkdir(parents=True, exist_ok=True)
            (d / n).write_text(n)
    assert artifact_hash(a) == artifact_hash(b)  # creation order does not matter
    (b / "x.txt").rename(b / "z.txt")
    (b / "z.txt").write_text("x.txt")
    assert artifact_hash(a) != artifact_hash(b)  # same bytes, other name


def test_parse_model_uri() -> None:
    assert parse_model_uri("models:/m/3") == ("m", "3", None)
    assert parse_model_uri("models:/m@champion") == ("m", None, "champion")
    assert parse_model_uri("runs:/abc/model") == (None, None, None)


def test_cli_validate_and_errors(store: dict, tmp_path: Path) -> None:
    app = cli_app
    runner = CliRunner()
    res = runner.invoke(app, ["validate", "--model", store["v1"], "--input", str(store["path"]),
                              "--output", str(tmp_path / "cli"), "--no-mlflow",
                              "--tracking-uri", store["uri"]])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout[res.stdout.index("{"):])
    assert out["version"] == "1" and (tmp_path / "cli" / "validation_report.html").is_file()
    no_label = tmp_path / "nolabel.parquet"
    store["sample"].drop(columns=["default_12m"]).to_parquet(no_label)
    res = runner.invoke(app, ["validate", "--model", store["v1"], "--input", str(no_label),
                              "--output", str(tmp_path / "x"), "--tracking-uri", store["uri"]])
    assert res.exit_code == 2 and "default_12m" in res.output


def test_comparison_with_a_hand_moved_champion_is_refused(validation_kit, store: dict, tmp_path: Path) -> None:
    """validate's champion comparison goes through the loader's gate check."""
    from mlflow import MlflowClient

    from village_credit.registry import UngatedModelError

    MlflowClient().set_registered_model_alias(validation_kit.NAME, "champion", store["v2"].rsplit("/", 1)[1])
    try:
        with pytest.raises(UngatedModelError, match="no promotion record"):
            validate_model(store["v1"], store["sample"].head(600), tmp_path / "r",
                           challenger_uri=f"models:/{validation_kit.NAME}@champion", log_to_mlflow=False,
                           fairness_boot=5)
    finally:
        MlflowClient().delete_registered_model_alias(validation_kit.NAME, "champion")


def test_quarantined_rows_keep_numeric_decisions_for_the_statistics(store: dict, tmp_path: Path
                                                                     ) -> None:
    """The pyfunc answers JSON-safe ``None`` for a quarantined row's numbers; the kit
    turns them back into float NaN so every statistic sees numbers."""
    from village_credit.validation.kit import decide_sample

    src = load_model_source(store["v1"], tmp_path)
    sample = store["sample"].head(50).copy()
    sample["household_size"] = sample["household_size"].astype("float64")
    sample.loc[3, "household_size"] = -2.0
    dec = decide_sample(src, sample)
    assert dec.loc[3, "status"] != "scored" and np.isnan(dec.loc[3, "pd"])
    assert dec["pd"].dtype == np.float64 and dec["points"].dtype == np.float64


def test_a_sample_without_the_observed_flag_is_tested_on_every_row(store: dict, tmp_path: Path) -> None:
    """No ``outcome_observed`` column: every labelled row is an observed outcome (one rule,
    ``fairness.observed.outcome_seen``, for the kit and the pipeline's hold-out validation)."""
    s = store["sample"].drop(columns=["outcome_observed"]).head(800)
    res, _, _ = validate_model(store["v1"], s, tmp_path / "r", log_to_mlflow=False, fairness_boot=0)
    assert res["sample"]["n"] == res["sample"]["n_scored"] == 800 and res["sample"]["n_without_outcome"] == 0
    assert "unobserved" not in res
