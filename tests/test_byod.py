"""Bring your own data: the generic GBM path on a non-household table (no rule engine)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from village_credit.byod import file_columns, is_generic, run_generic_experiment
from village_credit.config import load_config
from village_credit.errors import ConfigError
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
    logit = (-2.2 + 0.7 * arrears - 0.9 * (np.log(income) - 8.0) + 0.015 * (age - 45)
             + np.where(sector == "trade", 0.4, 0.0) + 0.15 * (region % 3 - 1))
    true_p = 1.0 / (1.0 + np.exp(-logit))
    target = (rng.random(n) < true_p).astype(float)
    df = pd.DataFrame({
        "loan_ref": [f"LN{i:06d}" for i in range(n)],
        "region": [f"R{r:02d}" for r in region],
        "x_income": income.round(2),
        "x_arrears": arrears,
        "x_age": age,
        "sector": sector,
        "target": target,
        "true_p": true_p,
    })
    df.loc[rng.choice(n, 150, replace=False), "x_income"] = np.nan
    df.loc[rng.choice(n, 60, replace=False), "sector"] = None
    df.loc[rng.choice(n, N_MISSING_TARGET, replace=False), "target"] = np.nan
    return df


def _config(tmp: Path, source: Path, out: str, **extra) -> dict:
    raw = {
        "name": f"byod-{out}",
        "seed": 5,
        "output_dir": str(tmp / out),
        "data": {"source": str(source), "target": "target", "id_column": "loan_ref",
                 "group_column": "region", "feature_spec": str(tmp / "spec.yaml")},
        "model": {"strategy": "gbm_only", "calibration": "platt",
                  "gbm": {"n_estimators": 150, "learning_rate": 0.05, "num_leaves": 8,
                          "min_child_samples": 30},
                  "tuning": {"n_trials": 2, "timeout_s": None, "cv_folds": 3}},
        "registry": {"model_name": "vc-byod", "experiment": "vc-byod"},
    }
    for k, v in extra.items():
        raw[k] = v
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
        res_csv = run_generic_experiment(_load(tmp, _config(tmp, csv, "out_csv")))
        res_pq = run_generic_experiment(_load(tmp, _config(tmp, pq, "out_pq")))
    finally:
        mp.undo()
    return {"tmp": tmp, "uri": uri, "df": df, "truth": truth, "csv": csv, "pq": pq,
            "res": res_csv, "res_pq": res_pq}


def _load(tmp: Path, raw: dict, name: str = "exp.yaml"):
    p = tmp / name
    p.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return load_config(p)


def test_discrimination_near_the_true_probability(byod) -> None:
    res, df, truth = byod["res"], byod["df"], byod["truth"]
    m = res.metrics
    assert m["auc"] > 0.70
    assert m["auc_ci_low"] < m["auc"] < m["auc_ci_high"]
    # oracle AUC on the same hold-out rows
    labelled = df["target"].notna().to_numpy()
    y = df.loc[labelled, "target"].to_numpy().astype(int)
    p_true = truth[labelled].to_numpy()
    holdout = np.isin(df.loc[labelled, "region"].to_numpy(),
                      _holdout_regions(res, df.loc[labelled].reset_index(drop=True)))
    oracle = auc_delong(y[holdout], p_true[holdout])[0]
    assert len(y[holdout]) == int(m["holdout_rows"])
    assert m["auc"] > oracle - 0.05, (m["auc"], oracle)
    assert 0 < m["ks"] < 1 and 0 <= m["hosmer_lemeshow_p"] <= 1


def _holdout_regions(res, labelled: pd.DataFrame) -> np.ndarray:
    """Regions of the hold-out part, recomputed with the same seeded split."""
    from village_credit.models.splits import split_by_village

    sp = split_by_village(pd.DataFrame({"g": labelled["region"].astype("string")}), (0.6, 0.2, 0.2),
                          seed=res.config.seed, group_col="g")
    return labelled["region"].to_numpy()[sp.holdout]


def test_calibration_reported_before_and_after(byod) -> None:
    m = byod["res"].metrics
    for k in ("brier_before", "brier_after", "ece_before", "ece_after"):
        assert k in m and np.isfinite(m[k])
    assert m["ece_after"] <= m["ece_before"] + 0.01 or m["ece_after"] <= 0.03
    assert m["brier_after"] <= m["brier_before"] + 0.005


def test_quarantine_reconciles(byod) -> None:
    res = byod["res"]
    m = res.metrics
    assert res.quarantined_rows == N_MISSING_TARGET == m["rows_quarantined"]
    assert m["rows_read"] == N_ROWS == m["rows_used"] + m["rows_quarantined"]
    assert m["train_rows"] + m["calibration_rows"] + m["holdout_rows"] == m["rows_used"]
    q = pd.read_parquet(res.paths["quarantine"])
    assert len(q) == N_MISSING_TARGET
    expected = np.flatnonzero(byod["df"]["target"].isna().to_numpy())
    assert q["row_number"].tolist() == expected.tolist()
    assert set(q["reason"]) == {"missing target value"} and set(q["column"]) == {"target"}
    assert q["id"].tolist() == byod["df"]["loan_ref"].to_numpy()[expected].tolist()


def test_features_follow_the_spec(byod) -> None:
    res = byod["res"]
    # target, id, group and the protected column (include_protected false) are not features
    assert res.feature_names == ["x_income", "x_arrears", "sector"]
    assert res.monotone == {"x_income": -1, "x_arrears": 1, "sector": 0}
    assert res.split_method.startswith("by group column 'region'")


def test_monotone_constraint_is_honoured(byod) -> None:
    import mlflow

    res = byod["res"]
    base = res.features.transform(byod["df"].iloc[:40])
    grid = np.arange(0, 10, dtype=float)
    mlflow.set_tracking_uri(byod["uri"])
    booster = mlflow.lightgbm.load_model(res.model_uri)
    for col, sign in (("x_arrears", 1), ("x_income", -1)):
        values = grid if col == "x_arrears" else np.exp(np.linspace(6.0, 10.0, 10))
        scores = []
        for v in values:
            scores.append(res.model.raw_score(base.assign(**{col: v})))
        diffs = np.diff(np.column_stack(scores), axis=1) * sign
        assert (diffs >= -1e-12).all(), col
        # the logged booster (LightGBM text) gives the same scores as the in-memory model
        logged = booster.predict(base.assign(**{col: values[0]}).to_numpy(), raw_score=True)
        np.testing.assert_allclose(logged, scores[0], rtol=1e-10, atol=1e-12)


def test_mlflow_run_has_metrics_artifacts_and_no_rows(byod) -> None:
    res, uri = byod["res"], byod["uri"]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run = client.get_run(res.run_id)
    for k in ("auc", "auc_ci_low", "ks", "hosmer_lemeshow_p", "brier_before", "brier_after",
              "ece_before", "ece_after", "rows_quarantined", "tuning_best_cv_auc"):
        assert k in run.data.metrics, k
    assert run.data.tags["pipeline"] == "bring-your-own-data"
    assert "data_fingerprint" in run.data.tags
    top = {a.path for a in client.list_artifacts(res.run_id)}
    assert {"generic", "explain", "validation", "config"} <= top
    generic = {a.path for a in client.list_artifacts(res.run_id, "generic")}
    assert {"generic/calibrator.json", "generic/feature_spec.json"} <= generic
    # the model: a LightGBM flavour (booster text), logged from this run, no pickles
    import mlflow

    mlflow.set_tracking_uri(uri)
    info = mlflow.models.get_model_info(res.model_uri)
    assert info.run_id == res.run_id and "lightgbm" in info.flavors
    assert run.data.tags["generic_model_uri"] == res.model_uri
    model_dir = Path(mlflow.artifacts.download_artifacts(res.model_uri, dst_path=str(byod["tmp"] / "m")))
    model_files = {p.name for p in model_dir.rglob("*") if p.is_file()}
    assert not any(p.endswith((".pkl", ".pickle")) for p in model_files), model_files
    assert "model.lgb" in model_files, model_files
    assert "tree" in (next(model_dir.rglob("model.lgb"))).read_text()[:200]
    explain = {a.path for a in client.list_artifacts(res.run_id, "explain")}
    assert "explain/shap_bar.png" in explain and "explain/shap_global.json" in explain
    spec = json.loads(Path(client.download_artifacts(res.run_id, "generic/feature_spec.json",
                                                     str(byod["tmp"]))).read_text(encoding="utf-8"))
    assert {f["name"]: f["monotone"] for f in spec["features"]}["x_arrears"] == 1
    cal = json.loads(Path(client.download_artifacts(res.run_id, "generic/calibrator.json",
                                                    str(byod["tmp"]))).read_text(encoding="utf-8"))
    assert cal["method"] == "platt"
    # no raw rows: no row identifier appears in any logged text artifact
    ids = set(byod["df"]["loan_ref"].iloc[::97])
    local = Path(client.download_artifacts(res.run_id, "", str(byod["tmp"] / "dl")))
    for f in local.rglob("*"):
        if f.is_file() and f.suffix in (".json", ".html", ".yaml", ".csv", ".txt", ".MLmodel", ""):
            text = f.read_text(encoding="utf-8", errors="ignore")
            assert not any(i in text for i in ids), f
    # not registered unless asked, and never under the decision model's name
    assert res.registered_model_name is None
    assert not client.search_registered_models("name = 'vc-byod'")


def test_csv_and_parquet_give_the_same_model(byod) -> None:
    a, b = byod["res"].metrics, byod["res_pq"].metrics
    for k in ("auc", "ece_after", "brier_after", "rows_quarantined", "holdout_rows"):
        assert a[k] == pytest.approx(b[k], rel=1e-9, abs=1e-12), k


def test_is_generic_dispatch(byod, tmp_path: Path) -> None:
    tmp = byod["tmp"]
    assert file_columns(byod["csv"]) == list(byod["df"].columns)
    assert file_columns(byod["pq"]) == list(byod["df"].columns)
    assert is_generic(_load(tmp_path, _config(tmp, byod["csv"], "x")))
    raw = _config(tmp, byod["pq"], "x")
    raw["data"].pop("feature_spec")
    assert is_generic(_load(tmp_path, raw))  # gbm_only + no household columns
    raw["model"]["strategy"] = "additive_points"
    assert not is_generic(_load(tmp_path, raw))  # the blend needs the household schema
    assert not is_generic(load_config(None))  # generated households


def test_missing_or_non_binary_target_is_a_config_error(byod, tmp_path: Path) -> None:
    raw = _config(tmp_path, byod["csv"], "bad")
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump({"features": []}), encoding="utf-8")
    raw["data"]["target"] = "defaulted"
    with pytest.raises(ConfigError, match=r"loans\.csv.*'defaulted'"):
        run_generic_experiment(_load(tmp_path, raw))
    df = byod["df"].assign(target=byod["df"]["target"].replace({1.0: 2.0}))
    bad = tmp_path / "bad.csv"
    df.to_csv(bad, index=False)
    raw = _config(tmp_path, bad, "bad")
    with pytest.raises(ConfigError, match=r"bad\.csv.*'target'.*binary 0/1"):
        run_generic_experiment(_load(tmp_path, raw))


def test_cli_train_runs_the_generic_path(byod, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from village_credit.cli import app

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    raw = _config(byod["tmp"], byod["pq"], "cli")
    raw["output_dir"] = str(tmp_path / "out")
    raw["model"]["tuning"] = {"n_trials": 1, "timeout_s": None, "cv_folds": 3}
    exp = tmp_path / "byod.yaml"
    exp.write_text(yaml.safe_dump(raw), encoding="utf-8")
    result = CliRunner().invoke(app, ["train", str(exp)])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["kind"] == "generic" and summary["quarantined_rows"] == N_MISSING_TARGET
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(summary["run_id"])
    assert run.data.metrics["auc"] > 0.7
