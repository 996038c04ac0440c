"""Global SHAP explanations: real TreeExplainer on a small LightGBM model."""

from __future__ import annotations

import json
import os

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from village_credit.explain import shap_global as sg
from village_credit.models.features import HouseholdFeatures
from village_credit.models.gbm import LGBMDefaultModel

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def households() -> pd.DataFrame:
    from village_credit.data.generator import GeneratorConfig, generate_households

    return generate_households(GeneratorConfig(n_households=1000, seed=11))


def _fit(households: pd.DataFrame, include_protected: bool) -> tuple[LGBMDefaultModel, pd.DataFrame]:
    X = HouseholdFeatures(include_protected=include_protected).fit_transform(households)
    model = LGBMDefaultModel(n_estimators=30, num_leaves=7, min_child_samples=10, random_state=0)
    model.fit(X, households["default_12m"].to_numpy())
    return model, X


@pytest.fixture(scope="module")
def fitted(households: pd.DataFrame) -> tuple[LGBMDefaultModel, pd.DataFrame]:
    """The default configuration: protected attributes are not model features."""
    return _fit(households, False)


@pytest.fixture(scope="module")
def fitted_protected(households: pd.DataFrame) -> tuple[LGBMDefaultModel, pd.DataFrame]:
    """Age and formerly-poor status included as features (to study their effect)."""
    return _fit(households, True)


@pytest.mark.parametrize("which", ["fitted", "fitted_protected"])
def test_shap_values_equal_lightgbm_pred_contrib(which: str, request: pytest.FixtureRequest) -> None:
    model, X = request.getfixturevalue(which)
    gs = sg.global_shap(model, X, sample=300, seed=3)
    assert len(gs) == 300 and gs.values.shape == (300, X.shape[1])
    assert gs.feature_names == list(X.columns)
    contrib = model.booster_.predict(X.loc[gs.index].to_numpy(dtype=np.float64), pred_contrib=True)
    np.testing.assert_allclose(gs.values, contrib[:, :-1], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(gs.base_values, contrib[:, -1], rtol=1e-7, atol=1e-9)
    # additivity: SHAP values + base = the raw score of the same rows
    np.testing.assert_allclose(gs.values.sum(axis=1) + gs.base_values,
                               model.booster_.predict(X.loc[gs.index].to_numpy(dtype=np.float64), raw_score=True),
                               rtol=1e-7, atol=1e-9)


def test_sampling_is_seeded_and_keeps_order(fitted: tuple[LGBMDefaultModel, pd.DataFrame]) -> None:
    model, X = fitted
    a = sg.global_shap(model.booster_, X, sample=100, seed=5)
    b = sg.global_shap(model, X, sample=100, seed=5)
    assert a.index.equals(b.index) and a.index.is_monotonic_increasing and a.index.isin(X.index).all()
    np.testing.assert_array_equal(a.values, b.values)
    assert not sg.global_shap(model, X, sample=100, seed=6).index.equals(a.index)
    assert len(sg.global_shap(model, X.head(50), sample=None)) == 50


def test_mean_abs_shap_by_group_matches_hand_computation(fitted: tuple[LGBMDefaultModel, pd.DataFrame],
                                                         households: pd.DataFrame) -> None:
    model, X = fitted
    gs = sg.global_shap(model, X, sample=400, seed=0)
    groups = sg.default_groups(households, gs.index)
    assert set(groups) == {"elderly_60plus", "formerly_poor"}
    elderly = households.loc[gs.index, "head_age"].to_numpy() >= 60
    np.testing.assert_array_equal(groups["elderly_60plus"], elderly)
    assert 0 < elderly.sum() < len(elderly)

    table = sg.mean_abs_shap_by_group(gs, groups)
    vals = gs.values
    for g, mask in groups.items():
        for flag in (True, False):
            sub = table[(table["group"] == g) & (table["in_group"] == flag)].set_index("feature")
            rows = vals[mask == flag]
            assert (sub["n"] == rows.shape[0]).all()
            for j, f in enumerate(gs.feature_names):
                expected_abs = sum(abs(r[j]) for r in rows) / len(rows)
                expected_signed = sum(r[j] for r in rows) / len(rows)
                assert sub.loc[f, "mean_abs_shap"] == pytest.approx(expected_abs, rel=1e-12, abs=1e-15)
                assert sub.loc[f, "mean_shap"] == pytest.approx(expected_signed, rel=1e-12, abs=1e-15)
    assert len(table) == 2 * 2 * len(gs.feature_names)
    # labels come from the feature spec
    row = table[table["feature"] == "income_total"].iloc[0]
    assert (row["label_en"], row["label_zh"]) == ("Annual income", "年收入")


def test_mean_abs_shap_by_group_on_plain_matrix() -> None:
    vals = np.array([[1.0, -2.0], [-3.0, 4.0], [5.0, 0.0]])
    out = sg.mean_abs_shap_by_group(vals, {"g": np.array([True, False, True])}, feature_names=["a", "b"])
    got = out.set_index(["in_group", "feature"])["mean_abs_shap"]
    assert got[(True, "a")] == 3.0 and got[(True, "b")] == 1.0
    assert got[(False, "a")] == 3.0 and got[(False, "b")] == 4.0
    with pytest.raises(Exception, match="mask"):
        sg.mean_abs_shap_by_group(vals, {"g": np.array([True, False])}, feature_names=["a", "b"])


@pytest.mark.parametrize("which", ["fitted", "fitted_protected"])
def test_features_tied_to_protected_attributes(which: str, request: pytest.FixtureRequest,
                                               households: pd.DataFrame) -> None:
    _, X = request.getfixturevalue(which)
    assert ("head_age" in X.columns) == (which == "fitted_protected")
    rho = sg.features_tied_to(X, households, "head_age", top_n=2)
    assert len(rho) == 2 and rho.abs().is_monotonic_decreasing
    expected = X.astype(float).corrwith(households["head_age"].astype(float), method="spearman").abs()
    assert abs(rho.iloc[0]) == pytest.approx(expected.max())
    if "head_age" in X.columns:  # a model feature is its own best proxy
        assert rho.index[0] == "head_age" and rho.iloc[0] == pytest.approx(1.0)
    fp = sg.features_tied_to(X, households, "formerly_poor", top_n=1)
    assert len(fp) == 1 and fp.index[0] in X.columns


def _assert_png(path: os.PathLike[str] | str) -> None:
    with open(path, "rb") as fh:
        head = fh.read(8)
    assert head == PNG_MAGIC, path
    assert os.path.getsize(path) > 5000, path


def test_plot_helpers_return_figures_and_save_png(fitted: tuple[LGBMDefaultModel, pd.DataFrame],
                                                  tmp_path) -> None:  # type: ignore[no-untyped-def]
    model, X = fitted
    gs = sg.global_shap(model, X, sample=200, seed=1)
    before = set(plt.get_fignums())
    figs = [
        sg.plot_beeswarm(gs, path=tmp_path / "b.png"),
        sg.plot_bar(gs.explanation, path=tmp_path / "bar.png"),
        sg.plot_dependence(gs, "income_total", path=tmp_path / "d.png"),
    ]
    for f in figs:
        assert isinstance(f, matplotlib.figure.Figure) and f.axes
    for name in ("b.png", "bar.png", "d.png"):
        _assert_png(tmp_path / name)
    assert set(plt.get_fignums()) == before  # detached from pyplot: no leak
    # English labels on the plots (no CJK: matplotlib may lack the fonts)
    ticks = [t.get_text() for t in figs[1].axes[0].get_yticklabels()]
    assert "Annual income" in ticks and not any("\u4e00" <= ch <= "\u9fff" for t in ticks for ch in t)
    with pytest.raises(Exception, match="not in the SHAP values"):
        sg.plot_dependence(gs, "no_such_feature")


def test_write_global_explanations(fitted: tuple[LGBMDefaultModel, pd.DataFrame], households: pd.DataFrame,
                                   tmp_path) -> None:  # type: ignore[no-untyped-def]
    model, X = fitted
    paths = sg.write_global_explanations(model, X, households, tmp_path, sample=300, seed=0)
    for key in ("beeswarm", "bar", "group_importance"):
        _assert_png(paths[key])
    dep = [k for k in paths if k.startswith("dependence:")]
    assert 1 <= len(dep) <= 4
    for k in dep:
        _assert_png(paths[k])
    summary = json.loads(paths["summary_json"].read_text(encoding="utf-8"))
    assert set(summary["features_tied_to"]) == {"head_age", "formerly_poor"}
    assert {f"dependence:{f}" for feats in summary["features_tied_to"].values() for f in feats} == set(dep)
    assert summary["n_explained"] == 300 and summary["groups"]["elderly_60plus"]["zh"] == "户主60岁及以上"
    assert any(r["label_zh"] == "年收入" for r in summary["overall"])
    by_group = pd.read_csv(paths["by_group_csv"])
    assert set(by_group["group"]) == {"elderly_60plus", "formerly_poor"}
    # no household identifiers leave the explain step
    for p in (paths["summary_json"], paths["by_group_csv"]):
        text = p.read_text(encoding="utf-8")
        assert households["household_id"].iloc[0] not in text and "household_id" not in text


def test_log_to_mlflow(tmp_path) -> None:  # type: ignore[no-untyped-def]
    mlflow = pytest.importorskip("mlflow")
    png = tmp_path / "bar.png"
    png.write_bytes(PNG_MAGIC + b"0" * 100)
    from village_credit.registry.store import configure

    previous = mlflow.get_tracking_uri()
    try:
        configure(f"sqlite:///{tmp_path}/mlflow.db")  # artifacts pinned under tmp_path
        with pytest.raises(Exception, match="no active MLflow run"):
            sg.log_to_mlflow([png])
        with mlflow.start_run() as run:
            logged = sg.log_to_mlflow({"bar": png})
        assert logged == ["explain/bar.png"]
        names = [a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "explain")]
        assert names == ["explain/bar.png"]
    finally:
        mlflow.set_tracking_uri(previous)
        mlflow.set_registry_uri(previous)


def test_dependence_shows_units_and_a_y_range_no_narrower_than_the_model_s_effects(
        fitted: tuple[LGBMDefaultModel, pd.DataFrame]) -> None:
    """``shap_dependence_assets_yuan.png`` read "1e6" with no unit; a feature moving the
    log-odds by +-0.02 filled the plot as if it mattered."""
    model, X = fitted
    gs = sg.global_shap(model, X, sample=200, seed=1)
    values = np.asarray(gs.explanation.values, dtype=float)
    used = [gs.feature_names.index(f) for f in gs.used_features()]
    typical = np.percentile(np.abs(values[:, used]), 99)
    weakest = min(gs.used_features(), key=lambda f: np.abs(values[:, gs.feature_names.index(f)]).max())
    fig = sg.plot_dependence(gs, weakest)
    ax = fig.axes[0]
    lo, hi = ax.get_ylim()
    assert lo == pytest.approx(-hi) and hi >= typical  # the weak feature looks weak
    assert hi >= np.abs(values[:, gs.feature_names.index(weakest)]).max()  # and nothing is cut off
    yuan = next(f for f in gs.used_features() if f.endswith("_yuan"))
    ax = sg.plot_dependence(gs, yuan).axes[0]
    ax.figure.canvas.draw()
    assert ax.get_xlabel().endswith("(yuan)")
    assert ax.xaxis.get_offset_text().get_text() == ""  # no "1e6" multiplier
    assert all("e" not in t.get_text() for t in ax.get_xticklabels())


def test_beeswarm_title_counts_the_households_it_shows(fitted: tuple[LGBMDefaultModel, pd.DataFrame]) -> None:
    model, X = fitted
    gs = sg.global_shap(model, X, sample=200, seed=1)
    title = sg.plot_beeswarm(gs).axes[0].get_title()
    assert f"{len(gs.index):,} households" in title and "sample" not in title
