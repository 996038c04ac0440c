"""A table of one's own through the one runner: the estimator, the one model format, scoring.

Regression tests for issue 14's defects, through the public API and the CLI.""" 

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from village_credit.config import load_config
from village_credit.errors import ConfigError
from village_credit.pipeline import run_experiment
from village_credit.sources import data_source, file_columns
from village_credit.validation import auc_delong

N_ROWS = 3000
N_MISSING_TARGET = 37

SPEC = {
    "target": "target",
    "features": [
        {"name": "x_income", "label_en": "Monthly income", "label_zh": "月收入", "unit": "yuan",
         "monotone": -1, "group": "capacity"},
        {"name": "x_arrears", "label_en": "Months in arrears", "label_zh": "拖欠月数", "unit": "months",
         "monotone": 1, "group": "behaviour"},
        {"name": "x_age", "label_en": "Age", "label_zh": "年龄", "unit": "years", "monotone": 0,
         "group": "protected"},
        {"name": "sector", "label_en": "Sector", "label_zh": "行业", "categories": ["crops", "trade", "wages"]},
        # numeric codes given as categories: in a CSV they arrive as text "1", "2", "3"
        {"name": "tier", "label_en": "Branch tier", "label_zh": "网点等级", "categories": [1, 2, 3],
         "monotone": 1},
    ],
    "protected": ["x_age"],
}


def make_table(seed: int = 7) -> pd.DataFrame:
    """A non-household table; target drawn from a known logistic model (true_p kept aside)."""
    rng = np.random.default_rng(seed)
    n = N_ROWS
    region = rng.integers(0, 40, n)
    income = rng.lognormal(8.0, 0.6, n)
    arrears = rng.poisson(1.0, n).astype(float)
    age = rng.integers(20, 75, n).astype(float)
    sector = rng.choice(["crops", "trade", "wages"], n, p=[0.5, 0.2, 0.3])
    tier = rng.integers(1, 4, n)
    logit = (-2.2 + 0.7 * arrears - 0.9 * (np.log(income) - 8.0) + 0.015 * (age - 45)
             + np.where(sector == "trade", 0.4, 0.0) + 0.15 * (region % 3 - 1) + 0.6 * (tier - 2))
    true_p = 1.0 / (1.0 + np.exp(-logit))
    target = (rng.random(n) < true_p).astype(float)
    df = pd.DataFrame({
        "loan_ref": [f"LN{i:06d}" for i in range(n)],
        "region": [f"R{r:02d}" for r in region],
        "x_income": income.round(2),
        "x_arrears": arrears,
        "x_age": age,
        "sector": sector,
        "tier": tier,
        "telephone": rng.integers(0, 2, n),
        "target": np.where(target == 1, "bad", "good").astype(object),
        "true_p": true_p,
    })
    df.loc[rng.choice(n, 150, replace=False), "x_income"] = np.nan
    df.loc[rng.choice(n, 60, replace=False), "sector"] = None
    df.loc[rng.choice(n, N_MISSING_TARGET, replace=False), "target"] = None
    return df


def _config(tmp: Path, source: Path, out: str, **extra) -> dict:
    raw = {
        "name": f"byod-{out}",
        "seed": 5,
        "output_dir": str(tmp / out),
        "data": {"source": str(source), "target": "target", "target_positive": "bad",
                 "id_column": "loan_ref", "group_column": "region", "feature_spec": str(tmp / "spec.yaml")},
        "model": {"tuning": {"n_trials": 0, "timeout_s": None, "cv_folds": 3}},
        "registry": {"model_name": "vc-byod", "experiment": "vc-byod"},
    }
    raw.update(extra)
    return raw


@pytest.fixture(scope="module")
def byod(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("byod")
    df = make_table()
    truth = df.pop("true_p")
    csv = tmp / "loans.csv"
    df.to_csv(csv, index=False)
    pq = tmp / "loans.parquet"
    df.to_parquet(pq, index=False)
    (tmp / "spec.yaml").write_text(yaml.safe_dump(SPEC, allow_unicode=True), encoding="utf-8")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    mp.chdir(tmp)
    try:
        res_csv = run_experiment(_load(tmp, _config(tmp, csv, "out_csv")))
        res_pq = run_experiment(_load(tmp, _config(tmp, pq, "out_pq", stages={"shap": False, "reports": False,
                                                                              "mlflow": False})))
    finally:
        mp.undo()
    return {"tmp": tmp, "uri": uri, "df": df, "truth": truth, "csv": csv, "pq": pq,
            "res": res_csv, "res_pq": res_pq}


def _load(tmp: Path, raw: dict, name: str = "exp.yaml"):
    p = tmp / name
    p.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return load_config(p)


def _labelled(df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    keep = df["target"].notna().to_numpy()
    return df.loc[keep].drop(columns=["target"]).reset_index(drop=True), \
        (df.loc[keep, "target"] == "bad").to_numpy(dtype=int)


def test_discrimination_near_the_true_probability(byod) -> None:
    res, df, truth = byod["res"], byod["df"], byod["truth"]
    m = res.metrics
    assert res.kind == "table"
    assert m["auc"] > 0.70 and m["cv_auc"] > 0.70
    assert m["auc_ci_low"] < m["auc"] < m["auc_ci_high"]
    # near the oracle AUC (the true probabilities) of the labelled rows
    _, y = _labelled(df)
    p_true = truth[df["target"].notna().to_numpy()].to_numpy()
    oracle = auc_delong(y, p_true)[0]
    assert m["auc"] > oracle - 0.06, (m["auc"], oracle)
    assert res.split_method.startswith("by group")
    assert 0 < m["ks"] < 1 and 0 <= m["hosmer_lemeshow_p"] <= 1


def test_target_label_mapping_and_quarantine_reconcile(byod) -> None:
    """target_positive: bad maps the labels; rows without a target are quarantined, counted."""
    res = byod["res"]
    m = res.metrics
    assert res.quarantined_rows == N_MISSING_TARGET == m["rows_quarantined"]
    assert m["rows_read"] == N_ROWS
    assert m["train_rows"] + m["holdout_households"] == N_ROWS - N_MISSING_TARGET
    q = pd.read_parquet(res.paths["quarantine"])
    expected = np.flatnonzero(byod["df"]["target"].isna().to_numpy())
    assert q["row_number"].tolist() == expected.tolist()
    assert set(q["reason"]) == {"missing target value"} and set(q["column"]) == {"target"}
    _, y = _labelled(byod["df"])
    assert m["base_rate"] == pytest.approx(y.mean(), abs=0.03)  # training rows: about the table's rate


def test_features_follow_the_spec_and_dropped_columns_are_named(byod) -> None:
    res = byod["res"]
    # target, id, group, personal-looking and protected columns are not features
    assert res.features == ["x_income", "x_arrears", "sector", "tier"]
    assert res.dropped_columns["telephone"].startswith("looks like personal data")
    assert res.dropped_columns["x_age"].startswith("protected")
    assert "loan_ref" in res.dropped_columns and "region" in res.dropped_columns
    summary = json.loads(Path(res.paths["summary"]).read_text(encoding="utf-8"))
    assert summary["dropped_columns"] == res.dropped_columns


def test_numeric_coded_categories_from_csv_are_not_lost(byod) -> None:
    """Defect: a numeric-coded column given `categories` became all-NaN from a CSV."""
    from village_credit.models.decision import DecisionModel

    model = DecisionModel.load(byod["res"].paths["model_dir"])
    text = pd.read_csv(byod["csv"], dtype=str, keep_default_na=False)  # every cell as text
    X = model.features.transform(text)
    assert X["tier"].notna().all()
    assert sorted(X["tier"].unique()) == [0.0, 1.0, 2.0]
    floats = byod["df"].assign(tier=byod["df"]["tier"].astype(float))  # 1.0, 2.0, 3.0
    np.testing.assert_array_equal(model.features.transform(floats)["tier"].to_numpy(), X["tier"].to_numpy())


def test_reloaded_model_keeps_numeric_columns_numeric(byod) -> None:
    """Defect: rebuilding features from the saved spec re-read numbers as string categories."""
    from village_credit.models.decision import DecisionModel

    res = byod["res"]
    model = DecisionModel.load(res.paths["model_dir"])
    kinds = {s.name: s.kind for s in model.features.specs_}
    assert kinds == {"x_income": "numeric", "x_arrears": "numeric", "sector": "categorical",
                     "tier": "categorical"}
    X, _ = _labelled(byod["df"])
    text = pd.read_csv(byod["csv"], dtype=str, keep_default_na=False)
    text = text.loc[text["target"] != ""].reset_index(drop=True)
    p_frame = model.predict_pd(X.head(300)).to_numpy()
    p_text = model.predict_pd(text.head(300)).to_numpy()
    np.testing.assert_allclose(p_text, p_frame, rtol=1e-12, atol=1e-12)


def test_points_anchored_on_the_base_rate(byod) -> None:
    """Defect: the household anchor gave most applicants negative points on a high-rate table."""
    from village_credit.models.decision import DecisionModel

    model = DecisionModel.load(byod["res"].paths["model_dir"])
    X, _ = _labelled(byod["df"])
    dec = model.decide(X, top_k=0)
    base = byod["res"].metrics["base_rate"]
    assert float(model.scaling.pd(60.0)) == pytest.approx(base, rel=1e-9)
    assert (dec["points"] < 0).mean() < 0.05
    assert dec["grade"].isin([f"G{i:02d}" for i in range(1, 11)]).all()


def test_csv_parquet_and_fast_loop_give_the_same_model(byod) -> None:
    a, b = byod["res"], byod["res_pq"]
    for k in ("auc", "ece", "brier", "rows_quarantined", "holdout_households"):
        assert a.metrics[k] == pytest.approx(b.metrics[k], rel=1e-9, abs=1e-12), k
    # stages off: no MLflow run, no SHAP, no reports; the model is still saved
    assert b.run_id is None and b.model_version is None
    assert not any(k.startswith("explain") for k in b.paths) and "validation_html" not in b.paths
    assert (Path(b.paths["model_dir"]) / "model.json").is_file()


def test_logged_model_is_the_decision_model_with_named_outputs(byod) -> None:
    """Defect: the logged pyfunc returned uncalibrated PD as `raw_log_odds`, without encoding."""
    import mlflow

    from village_credit.models.decision import DecisionModel

    res, uri = byod["res"], byod["uri"]
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run = client.get_run(res.run_id)
    assert run.data.tags["data_source"] == "table"
    top = {a.path for a in client.list_artifacts(res.run_id)}
    assert "generic" not in top and {"explain", "validation", "config"} <= top
    info = mlflow.models.get_model_info(res.run_model_uri)
    outputs = [c["name"] for c in info.signature.outputs.to_dict()]
    assert "raw_log_odds" not in outputs and {"pd", "points", "grade", "status"} <= set(outputs)
    X, _ = _labelled(byod["df"])
    rows = X.head(40)
    pyf = mlflow.pyfunc.load_model(res.run_model_uri)
    out = pyf.predict(rows.astype(object).astype(str))  # text cells, as from a CSV
    expected = DecisionModel.load(res.paths["model_dir"]).predict_pd(rows).to_numpy()
    np.testing.assert_allclose(out["pd"].to_numpy(float), expected, rtol=1e-10)
    # the user's names (issue 26): the id column as given, no household words, no approval
    # column where the model has no cut-off of its own
    assert out["loan_ref"].tolist() == rows["loan_ref"].tolist()
    assert "household_id" not in out.columns and "approved" not in out.columns
    # no pickles, no raw rows in any logged text
    local = Path(client.download_artifacts(res.run_id, "", str(byod["tmp"] / "dl")))
    assert not list(local.rglob("*.pkl"))
    ids = set(byod["df"]["loan_ref"].iloc[::97])
    for f in local.rglob("*"):
        if f.is_file() and f.suffix in (".json", ".html", ".yaml", ".csv", ".txt", ""):
            text = f.read_text(encoding="utf-8", errors="ignore")
            assert not any(i in text for i in ids), f


def test_promote_runs_the_gates_for_a_table(byod) -> None:
    """Defect: --promote was ignored for a table; now the gates run. Issue 26: with no truth the
    fairness gates read observed-outcome evidence over the spec's protected attribute (x_age)
    and the equal-risk gates say why they do not apply."""
    gates = byod["res"].gates
    assert gates, "promotion gates did not run"
    by = {g["name"]: g for g in gates["gates"]["gates"]}
    assert by["auc_min"]["passed"] is True
    assert by["fairness_approval_excess_max"]["detail"].startswith("not applicable: no ground truth")
    for name in ("fairness_group_calibration_p_min", "fairness_tpr_gap_max"):  # read, never "missing"
        assert "missing" not in by[name]["detail"], by[name]
    assert by["fairness_group_calibration_p_min"]["value"] is not None
    # the table model declares no approval cut-off: approval figures say so by name, never a number
    for name in ("fairness_parity_ratio_min", "fairness_tpr_gap_max"):
        assert by[name]["value"] is None and by[name]["detail"].startswith("not applicable: no cut-off declared")
    assert not byod["res"].promoted


def test_data_source_kind(byod, tmp_path: Path) -> None:
    tmp = byod["tmp"]
    assert file_columns(byod["csv"]) == list(byod["df"].columns)
    assert file_columns(byod["pq"]) == list(byod["df"].columns)
    raw = _config(tmp, byod["pq"], "x")
    raw["data"].pop("feature_spec")
    raw["model"] = {"strategy": "additive_points"}  # no gbm_only: still a table, never a household error
    assert data_source(_load(tmp_path, raw)).kind == "table"
    assert data_source(load_config(None)).kind == "generated"


def test_relative_paths_are_read_from_the_yaml_folder(byod, tmp_path: Path, monkeypatch) -> None:
    exp_dir = tmp_path / "experiments"
    exp_dir.mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "loans.csv").write_bytes(byod["csv"].read_bytes())
    (tmp_path / "data" / "spec.yaml").write_text(yaml.safe_dump(SPEC), encoding="utf-8")
    raw = _config(tmp_path, Path("../data/loans.csv"), "rel")
    raw["data"]["source"] = "../data/loans.csv"
    raw["data"]["feature_spec"] = "../data/spec.yaml"
    (exp_dir / "exp.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    monkeypatch.chdir(byod["tmp"])  # somewhere else entirely
    cfg = load_config(exp_dir / "exp.yaml")
    assert Path(cfg.data.source).resolve() == (tmp_path / "data" / "loans.csv").resolve()
    assert Path(cfg.data.feature_spec).resolve() == (tmp_path / "data" / "spec.yaml").resolve()


def test_missing_or_unmapped_target_is_a_config_error(byod, tmp_path: Path) -> None:
    raw = _config(tmp_path, byod["csv"], "bad")
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump({"features": []}), encoding="utf-8")
    raw["data"]["target"] = "defaulted"
    with pytest.raises(ConfigError, match=r"loans\.csv.*'defaulted'"):
        run_experiment(_load(tmp_path, raw))
    raw = _config(tmp_path, byod["csv"], "bad")
    raw["data"]["target_positive"] = None  # bad/good labels without a mapping
    with pytest.raises(ConfigError, match=r"loans\.csv.*'target'.*target_positive"):
        run_experiment(_load(tmp_path, raw))
    raw["data"]["target_positive"] = "defaulted"
    with pytest.raises(ConfigError, match="never occurs"):
        run_experiment(_load(tmp_path, raw))


def test_cli_train_then_score_new_rows(byod, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI end to end: dropped columns printed; new rows scored by every model URI form."""
    from typer.testing import CliRunner

    from village_credit.cli import app

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    raw = _config(byod["tmp"], byod["csv"], "cli", stages={"shap": False, "reports": False, "mlflow": True})
    raw["output_dir"] = str(tmp_path / "out")
    exp = tmp_path / "byod.yaml"
    exp.write_text(yaml.safe_dump(raw), encoding="utf-8")
    result = CliRunner().invoke(app, ["train", "--config", str(exp), "--no-promote"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    table = [line for line in result.output.splitlines() if line[:1] in "┏┃┡│└"]
    assert table and all(len(line) <= 80 for line in table) and "…" not in result.output
    assert "telephone" in result.output and "looks like personal data" in result.output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["kind"] == "table" and summary["quarantined_rows"] == N_MISSING_TARGET
    assert summary["gates"] == {}  # --no-promote honoured
    assert "Stage timings (s): read table" in result.output and "train (estimator)" in result.output
    rows = summary["rows"]  # every row accounted for, quarantined ones included
    assert rows["read"] == rows["quarantined_no_target"] + rows["train"] + rows["holdout"] == N_ROWS
    assert rows["holdout"] == rows["evaluated"] + rows["evaluated_quarantined"]
    # new rows, as text: an unreadable number is quarantined with a reason; a sector never
    # seen in training is read as missing, as in training and as LightGBM does
    new = byod["df"].drop(columns=["target"]).head(30).astype(object)
    new.loc[4, "x_arrears"] = "many"
    new.loc[9, "sector"] = "mining"
    new_csv = tmp_path / "new.csv"
    new.to_csv(new_csv, index=False)
    import mlflow

    mlflow.set_tracking_uri(uri)
    local = mlflow.artifacts.download_artifacts(summary["model_uri"], dst_path=str(tmp_path / "local"))
    for k, model in enumerate([summary["run_model_uri"], summary["model_uri"], "models:/vc-byod/1", local]):
        args = ["score", "-i", str(new_csv), "-o", str(tmp_path / f"s{k}"), "-m", model]
        refused = CliRunner().invoke(app, args)  # never promoted: the loader refuses it, with the way out
        assert refused.exit_code == 2 and "--allow-ungated" in refused.output, (model, refused.output)
        r = CliRunner().invoke(app, [*args, "--allow-ungated"])
        assert r.exit_code == 0, (model, r.output)
        from village_credit.scoring import read_decisions, read_quarantine

        dec = read_decisions(tmp_path / f"s{k}")
        q = read_quarantine(tmp_path / f"s{k}")
        assert len(dec) == 29 and q["row_number"].tolist() == [4], model
        assert set(q["column"]) == {"x_arrears"}
    scored = read_decisions(tmp_path / "s0").set_index("row_number")
    from village_credit.models.decision import DecisionModel

    as_missing = DecisionModel.load(summary["paths"]["model_dir"]).predict_pd(new.assign(sector=None).drop(index=[4]))
    assert scored.loc[9, "pd"] == pytest.approx(float(as_missing.loc[9]), rel=1e-12)


def test_spark_scores_a_table_model_like_the_local_engine(byod, tmp_path: Path, monkeypatch) -> None:
    """A model trained on one's own table scores through Spark, bad rows quarantined, same PDs."""
    import mlflow

    from village_credit.scoring import read_decisions, read_quarantine, score_file
    from village_credit.scoring.spark import read_spark_decisions, score_file_spark

    monkeypatch.setenv("MLFLOW_TRACKING_URI", byod["uri"])
    mlflow.set_tracking_uri(byod["uri"])  # an earlier test may have pointed MLflow elsewhere
    new = byod["df"].drop(columns=["target"]).head(40).astype(object)
    new.loc[3, "x_income"] = "n/a"
    path = tmp_path / "new.csv"
    new.to_csv(path, index=False)
    uri = byod["res"].run_model_uri
    # a research model, never promoted: both engines score it only when told to, and record it
    local = score_file(uri, path, tmp_path / "local", progress=False, allow_ungated=True)
    spark = score_file_spark(uri, path, tmp_path / "spark", master="local[1]", report=False, allow_ungated=True)
    assert local.model["gated"] is False and spark.model["gated"] is False
    assert (spark.rows_read, spark.scored, spark.quarantined) == (local.rows_read, local.scored, local.quarantined) \
        == (40, 39, 1)
    a = read_decisions(tmp_path / "local").sort_values("row_number")
    b = read_spark_decisions(tmp_path / "spark").sort_values("row_number")
    np.testing.assert_allclose(b["pd"].to_numpy(float), a["pd"].to_numpy(float), rtol=1e-12)
    assert b["loan_ref"].tolist() == a["loan_ref"].tolist() == new["loan_ref"].drop(index=3).tolist()
    q = read_quarantine(tmp_path / "local")
    assert q["row_number"].tolist() == [3] and q["loan_ref"].tolist() == [new.loc[3, "loan_ref"]]


def test_table_decisions_use_the_models_own_names_and_cut_off(byod) -> None:
    """Issue 26: ``approved`` only from the model's own cut-off; ``row_id`` without an id column."""
    from village_credit.models.decision import DecisionModel

    dm = DecisionModel.load(byod["res"].paths["model_dir"])
    X, _ = _labelled(byod["df"])
    rows = X.head(30).reset_index(drop=True).astype(object)
    rows.loc[2, "x_income"] = "n/a"  # one quarantined row
    plain = dm.decide(rows)
    assert list(plain.columns[:2]) == ["loan_ref", "status"] and "approved" not in plain.columns
    dm.metadata["approval_max_pd"] = float(plain["pd"].median())
    cut = dm.decide(rows)
    scored = (cut["status"] == "scored").to_numpy()
    assert not cut["approved"][~scored].any()
    assert cut["approved"][scored].tolist() == (cut["pd"][scored] <= dm.approval_max_pd).tolist()
    assert 0 < cut["approved"].sum() < scored.sum()
    dm.metadata["id_column"] = None
    assert dm.decide(rows)["row_id"].tolist() == [str(i) for i in range(len(rows))]


def test_shipped_german_credit_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """experiments/german_credit.yaml runs from any folder (paths relative to the YAML)."""
    exp = Path(__file__).resolve().parents[1] / "experiments" / "german_credit.yaml"
    monkeypatch.chdir(tmp_path)
    cfg = load_config(exp, {"output_dir": str(tmp_path / "out"), "stages.mlflow": False,
                            "stages.shap": False, "stages.reports": False})
    res = run_experiment(cfg)
    assert res.kind == "table" and res.metrics["rows_read"] == 1000
    assert res.metrics["base_rate"] == pytest.approx(0.30, abs=0.01)
    assert res.metrics["auc"] > 0.72 and res.metrics["cv_auc"] > 0.72
    assert set(res.dropped_columns) == {"telephone", "personal_status_and_sex", "age_in_years"}


def test_zero_trials_means_no_tuning_on_the_table_path_too() -> None:
    """``n_trials: 0`` with the default 120 s timeout used to tune for 120 s on a table."""
    from village_credit.config import load_config
    from village_credit.pipeline import table_estimator

    off = table_estimator(load_config(None, {"model.tuning.n_trials": 0, "model.tuning.timeout_s": 120}), {})
    assert (off.tuning_trials, off.tuning_timeout_s) == (0, None)
    cfg = load_config(None, {"model.tuning.n_trials": 3, "model.tuning.timeout_s": 60})
    assert (table_estimator(cfg, {}).tuning_trials, table_estimator(cfg, {}).tuning_timeout_s) == (3, 60)


def test_no_holdout_evidence_is_cross_fitted_and_unlisted_codes_are_missing(byod, tmp_path: Path) -> None:
    """holdout_share: 0 trains on every row and judges out-of-fold PDs, said so; a code the spec's
    list omits (tier 3 of [1, 2]) is missing in training, counted, and missing at scoring too."""
    from village_credit.models.decision import DecisionModel

    spec = {**SPEC, "features": [dict(f, categories=[1, 2]) if f["name"] == "tier" else f
                                 for f in SPEC["features"]]}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    raw = _config(tmp_path, byod["csv"], "cf", stages={"shap": False, "reports": False, "mlflow": False})
    raw["split"] = {"holdout_share": 0}
    res = run_experiment(_load(tmp_path, raw))
    labelled, y = _labelled(byod["df"])
    assert res.evidence.startswith("cross-fitted") and res.split_method.startswith("none (holdout_share: 0)")
    assert res.rows == {"read": N_ROWS, "quarantined_no_target": N_MISSING_TARGET, "train": len(y), "holdout": 0,
                        "evaluated": len(y), "evaluated_quarantined": 0}
    assert res.metrics["auc"] == pytest.approx(res.metrics["cv_auc"]) and res.metrics["auc"] > 0.7
    n_tier3 = int((labelled["tier"] == 3).sum())
    assert res.categories_read_as_missing["train"] == {"tier": {"3": n_tier3}}
    summary = json.loads(Path(res.paths["summary"]).read_text(encoding="utf-8"))
    assert summary["evidence"] == res.evidence and "evaluate (cross-fitted, no hold-out)" in summary["stages"]
    model = DecisionModel.load(res.paths["model_dir"])
    rows = labelled[labelled["tier"] == 3].head(20)
    dec = model.decide(rows, top_k=0)
    assert (dec["status"] == "scored").all()  # as in training: missing, never "unknown category"
    np.testing.assert_allclose(dec["pd"].to_numpy(), model.predict_pd(rows.assign(tier=None)).to_numpy(),
                               rtol=1e-12)


def test_household_data_needs_a_holdout(tmp_path: Path) -> None:
    cfg = load_config(None, {"split.holdout_share": 0, "output_dir": str(tmp_path / "out")})
    with pytest.raises(ConfigError, match="holdout_share: 0 .* is for a table of one's own"):
        run_experiment(cfg)


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.1, "high"])
def test_approval_cut_off_outside_0_1_is_a_config_error(bad) -> None:
    """``model.approval_max_pd`` is a PD strictly between 0 and 1; anything else names the key."""
    with pytest.raises(ConfigError, match=r"model\.approval_max_pd"):
        load_config(None, {"model.approval_max_pd": bad})


def test_approval_cut_off_is_refused_for_household_models(tmp_path: Path) -> None:
    """Household models approve from their policy's credit lines: a table cut-off there is an error."""
    cfg = load_config(None, {"model.approval_max_pd": 0.3, "output_dir": str(tmp_path / "out")})
    with pytest.raises(ConfigError, match="approval_max_pd is a table model's own cut-off"):
        run_experiment(cfg)


@pytest.mark.parametrize("holdout_share", [0.2, 0])
def test_declared_cut_off_is_recorded_and_decides_approved(byod, tmp_path: Path, holdout_share) -> None:
    """Issue 26 item 6: the experiment's cut-off is recorded with the model, ``decide`` (and so
    ``score``) writes ``approved`` = PD <= cut-off, the run reports its approval rate, and the
    observed-outcome fairness evidence judges approval parity at it (no longer "not applicable")."""
    from village_credit.fairness.observed import decisions_evidence
    from village_credit.models.decision import DecisionModel

    raw = _config(byod["tmp"], byod["csv"], f"cut{holdout_share}", stages={"shap": False, "reports": False,
                                                                           "mlflow": False})
    raw["model"]["approval_max_pd"] = 0.25
    raw["split"] = {"holdout_share": holdout_share}
    res = run_experiment(_load(tmp_path, raw))
    model = DecisionModel.load(res.paths["model_dir"])
    assert model.metadata["approval_max_pd"] == 0.25 and model.approval_max_pd == 0.25
    labelled, y = _labelled(byod["df"])
    dec = model.decide(labelled, top_k=0)
    scored = (dec["status"] == "scored").to_numpy()
    assert dec["approved"].tolist() == (scored & (dec["pd"].fillna(1.0) <= 0.25)).tolist()
    assert 0.05 < dec["approved"].mean() < 0.95  # the cut-off splits the rows: parity can be judged
    assert 0 < res.metrics["approval_rate"] < 1  # hold-out, or (share 0) the out-of-fold PDs at the cut-off
    ev = decisions_evidence(dec, labelled, y, ["x_age"])
    assert "not_applicable" not in ev["demographic_parity"] and 0 < ev["demographic_parity"]["min_ratio"] <= 1
