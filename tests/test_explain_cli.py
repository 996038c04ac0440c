"""The public ``explain`` API and ``village-credit explain`` on a real (small) DecisionModel."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from village_credit.data.schema import TRUTH_COLUMNS
from village_credit.explain import explain, load_decision_model
from village_credit.explain.api import LONG_COLUMNS, wide_columns

TOP_K = 3


@pytest.fixture(scope="module")
def households() -> pd.DataFrame:
    from village_credit.data.generator import GeneratorConfig, generate_households

    return generate_households(GeneratorConfig(n_households=900, seed=7))


@pytest.fixture(scope="module")
def decision_model(households: pd.DataFrame):  # type: ignore[no-untyped-def]
    """Built through the documented ``fit_blend`` API (stacking: rule items + model features)."""
    from village_credit.models.blend import fit_blend

    y = households["default_12m"].to_numpy()
    return fit_blend(households.iloc[:600], y[:600], households.iloc[600:], y[600:],
                     policy="jinxiang_2022", strategy="stacking",
                     gbm_params={"n_estimators": 25, "num_leaves": 7}, seed=0)


@pytest.fixture(scope="module")
def model_dir(decision_model, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    return decision_model.save(tmp_path_factory.mktemp("dm") / "decision_model")


@pytest.fixture(scope="module")
def scoring_input(households: pd.DataFrame) -> pd.DataFrame:
    """200 households without ground truth; one made invalid (age 5) to be quarantined."""
    df = households.drop(columns=TRUTH_COLUMNS).iloc[600:800].reset_index(drop=True)
    return df.assign(head_age=np.where(np.arange(len(df)) == 17, 5, df["head_age"].to_numpy()))


def _check_long_shape(long: pd.DataFrame, inp: pd.DataFrame) -> None:
    assert list(long.columns) == LONG_COLUMNS
    assert (long["household_id"].to_numpy() == inp["household_id"].to_numpy()[long["row"].to_numpy()]).all()
    factors = long[long["kind"].isin(["rule", "model"])]
    per = factors.groupby(["row", "direction"]).size()
    assert per.max() <= TOP_K
    assert (factors.loc[factors["direction"] == "down", "points"] < 0).all()
    assert (factors.loc[factors["direction"] == "up", "points"] > 0).all()
    assert long["label_zh"].str.len().gt(0).all() and long["label_en"].str.len().gt(0).all()


def test_explain_long_delegates_to_reason_codes(decision_model, scoring_input: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    long = explain(decision_model, scoring_input, top_k=TOP_K)
    expected = decision_model.reason_codes(scoring_input, top_k=TOP_K)[LONG_COLUMNS]
    pd.testing.assert_frame_equal(long, expected.reset_index(drop=True))
    _check_long_shape(long, scoring_input)
    # every valid household has a reason set; the invalid one has none
    assert set(long["row"]) == set(range(len(scoring_input))) - {17}


def test_explain_wide_is_the_long_table_pivoted(decision_model, scoring_input: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    long = explain(decision_model, scoring_input, top_k=TOP_K, form="long")
    wide = explain(decision_model, scoring_input, top_k=TOP_K, form="wide")
    assert list(wide.columns) == wide_columns(TOP_K)
    assert len(wide) == len(scoring_input) and wide["household_id"].tolist() == scoring_input["household_id"].tolist()
    assert wide.loc[17, "down_1_code"] == "" and np.isnan(wide.loc[17, "down_1_points"])
    dec = long[long["kind"].isin(["veto", "eligibility"])]
    assert (wide["n_decisive"].to_numpy() == np.bincount(dec["row"], minlength=len(wide))).all()
    for r, g in dec.groupby("row"):
        assert wide.loc[r, "decisive_codes"] == "; ".join(g.sort_values("rank")["code"])
    factors = long[long["kind"].isin(["rule", "model"])]
    for (r, d), g in factors.groupby(["row", "direction"]):
        g = g.sort_values("rank")
        for i, (code, pts) in enumerate(zip(g["code"], g["points"], strict=True), start=1):
            assert wide.loc[r, f"{d}_{i}_code"] == code
            assert wide.loc[r, f"{d}_{i}_points"] == pytest.approx(pts, rel=1e-12)
    assert (wide["down_1_label_zh"] != "").sum() > 0


def test_explain_loads_a_saved_directory(decision_model, model_dir: Path, scoring_input: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    head = scoring_input.head(20)
    a = explain(model_dir, head)
    b = explain(str(model_dir.parent), head)  # finds the decision_model folder below
    pd.testing.assert_frame_equal(a, explain(decision_model, head))
    pd.testing.assert_frame_equal(a, b)
    with pytest.raises(Exception, match="not found"):
        explain(model_dir / "nope", head)
    with pytest.raises(Exception, match="form"):
        explain(decision_model, head, form="tall")  # type: ignore[arg-type]


def test_explain_loads_an_mlflow_runs_uri(decision_model, model_dir: Path, tmp_path: Path,  # type: ignore[no-untyped-def]
                                          scoring_input: pd.DataFrame) -> None:
    mlflow = pytest.importorskip("mlflow")
    from village_credit.registry.store import configure

    previous = mlflow.get_tracking_uri()
    try:
        configure(f"sqlite:///{tmp_path}/mlflow.db")
        with mlflow.start_run() as run:
            # the layout of a logged pyfunc: <model>/artifacts/decision_model/...
            mlflow.log_artifacts(str(model_dir), artifact_path="model/artifacts/decision_model")
        dm = load_decision_model(f"runs:/{run.info.run_id}/model")
        head = scoring_input.head(20)
        pd.testing.assert_frame_equal(explain(dm, head), explain(decision_model, head))
    finally:
        mlflow.set_tracking_uri(previous)
        mlflow.set_registry_uri(previous)


@pytest.mark.parametrize("form", ["long", "wide"])
def test_cli_writes_one_reason_set_per_household(form: str, decision_model, model_dir: Path,  # type: ignore[no-untyped-def]
                                                 scoring_input: pd.DataFrame, tmp_path: Path) -> None:
    from village_credit.cli import app
    from village_credit.data.io import write_parquet

    inp = tmp_path / "households.parquet"
    write_parquet(scoring_input, inp)
    out = tmp_path / "reasons.parquet"
    res = CliRunner().invoke(app, ["explain", "--model", str(model_dir), "--input", str(inp),
                                   "--output", str(out), "--top-k", str(TOP_K), "--form", form,
                                   "--chunk-rows", "64", "--no-progress"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout[res.stdout.index("{"):])
    assert summary["rows_in"] == len(scoring_input) == 200
    got = pd.read_parquet(out)
    expected = explain(decision_model, scoring_input, top_k=TOP_K, form=form)  # type: ignore[arg-type]
    assert summary["rows_out"] == len(got) == len(expected)
    assert summary["rows_with_reasons"] == len(scoring_input) - 1  # the invalid row has none
    # chunking (64 rows) changes nothing: same rows, global row numbers
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True),
                                  check_dtype=False)
    if form == "long":
        _check_long_shape(got, scoring_input)
        assert got.groupby("row")["household_id"].nunique().eq(1).all()
    else:
        assert got["household_id"].is_unique and len(got) == len(scoring_input)


def test_cli_rejects_bad_form(model_dir: Path, tmp_path: Path) -> None:
    from village_credit.cli import app

    res = CliRunner().invoke(app, ["explain", "--model", str(model_dir), "--input", str(tmp_path / "x.parquet"),
                                   "--output", str(tmp_path / "o.parquet"), "--form", "tall"])
    assert res.exit_code != 0 and not (tmp_path / "o.parquet").exists()


def test_global_explanations_of_a_decision_model(decision_model, households: pd.DataFrame,  # type: ignore[no-untyped-def]
                                                 tmp_path: Path) -> None:
    from village_credit.explain import write_global_explanations

    paths = write_global_explanations(decision_model, None, households.iloc[:300], tmp_path, sample=200)
    assert paths["beeswarm"].stat().st_size > 5000 and paths["group_importance"].is_file()
    summary = json.loads(paths["summary_json"].read_text(encoding="utf-8"))
    assert {r["feature"] for r in summary["overall"]} == set(decision_model.feature_names)


def test_cli_explains_a_recalibrated_champion(decision_model, scoring_input: pd.DataFrame,  # type: ignore[no-untyped-def]
                                              tmp_path: Path) -> None:
    """The production model is explainable: a group-recalibrated version behind @champion
    loads through the one loader, and its group offsets appear as reasons of members."""
    import mlflow

    from village_credit.cli import app
    from village_credit.data.groups import support_groups
    from village_credit.data.io import write_parquet
    from village_credit.models.calibration import Calibrator
    from village_credit.models.recalibrated import RecalibratedDecisionModel
    from village_credit.registry import promote
    from village_credit.registry.examples import ExampleStore
    from village_credit.registry.pyfunc_model import log_decision_model
    from village_credit.validation.recalibration import DECISION_CLASS

    recal = RecalibratedDecisionModel.wrap(decision_model, Calibrator(method="platt", kind="logit",
                                                                      a=0.9, b=0.2))
    recal.group_offsets = {"70+": 0.6, "formerly_poor": -0.5}
    store = ExampleStore()
    try:
        with mlflow.start_run():
            info = log_decision_model(recal.save(tmp_path / "recalibrated"),
                                      input_example=decision_model.input_example(5),
                                      registered_model_name="vc-explain", decision_class=DECISION_CLASS)
        promote("vc-explain", str(info.registered_model_version), {},
                override_reason="test: the gates are not the subject here", override_by="test suite",
                override_until="2099-12-31", client=store.client)
        inp, out = tmp_path / "households.parquet", tmp_path / "reasons.parquet"
        write_parquet(scoring_input, inp)
        res = CliRunner().invoke(app, ["explain", "--model", "models:/vc-explain@champion",
                                       "--input", str(inp), "--output", str(out), "--no-progress",
                                       "--tracking-uri", store.uri])
    finally:
        store.close()
    assert res.exit_code == 0, res.output
    got = pd.read_parquet(out)
    pd.testing.assert_frame_equal(got, explain(recal, scoring_input, top_k=TOP_K), check_dtype=False)
    offsets = got[got["kind"] == "recalibration"]
    assert set(offsets["code"]) == {"recalibration:70+", "recalibration:formerly_poor"}
    member = support_groups(scoring_input)
    for code, group, direction in (("recalibration:70+", "70+", "down"),
                                   ("recalibration:formerly_poor", "formerly_poor", "up")):
        rows = offsets.loc[offsets["code"] == code, "row"].to_numpy()
        assert member[group].to_numpy(bool)[rows].all()  # only members carry the reason
        assert (offsets.loc[offsets["code"] == code, "direction"] == direction).all()
    # the offsets are contributions: every household's points are still their sum
    contrib = recal.contributions(scoring_input).dropna()
    points = recal.decide(scoring_input)["points"].dropna()
    np.testing.assert_allclose(contrib.sum(axis=1).to_numpy(), points.to_numpy(), rtol=1e-10)
    assert {"recalibration:70+", "recalibration:formerly_poor"} <= set(contrib.columns)
