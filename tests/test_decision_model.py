"""DecisionModel for every blend strategy: exact additivity, policy decisions, I/O."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from village_credit.data.generator import GeneratorConfig, generate_households
from village_credit.data.schema import TRUTH_COLUMNS
from village_credit.errors import SchemaError
from village_credit.models.blend import STRATEGIES, fit_blend
from village_credit.models.decision import DECISION_COLUMNS, DecisionModel
from village_credit.models.features import HouseholdFeatures

N_TREES = 40


@pytest.fixture(scope="module")
def households() -> pd.DataFrame:
    return generate_households(GeneratorConfig(n_households=3000, seed=11))


@pytest.fixture(scope="module")
def splits(households: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    v = households["village_code"].astype(str)
    villages = np.sort(v.unique())
    calib_v, test_v = set(villages[::5]), set(villages[1::5])
    train = households[~v.isin(calib_v | test_v)]
    return train, households[v.isin(calib_v)], households[v.isin(test_v)]


def _fit(splits: tuple, strategy: str, policy: str = "jinxiang_2022", seed: int = 0) -> DecisionModel:
    train, calib, _ = splits
    return fit_blend(train, train["default_12m"], calib, calib["default_12m"], policy=policy,
                     strategy=strategy, gbm_params={"n_estimators": N_TREES}, seed=seed,
                     metadata={"reference_profile": {"points": {"mean": 1.0}}})


@pytest.fixture(scope="module")
def models(splits: tuple) -> dict[str, DecisionModel]:
    return {s: _fit(splits, s) for s in STRATEGIES}


@pytest.fixture(scope="module")
def test_rows(splits: tuple) -> pd.DataFrame:
    return splits[2].drop(columns=TRUTH_COLUMNS)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_contributions_sum_exactly_to_points(models: dict, test_rows: pd.DataFrame, strategy: str) -> None:
    m = models[strategy]
    d = m.decide(test_rows)
    c = m.contributions(test_rows)
    assert len(test_rows) > 300
    assert list(c.columns) == m.codes and c.index.equals(test_rows.index)
    np.testing.assert_allclose(c.to_numpy().sum(axis=1), d["points"].to_numpy(), rtol=0, atol=1e-6)
    # points and PD agree through the saved scaling; predict_pd is the same PD
    np.testing.assert_allclose(m.scaling.pd(d["points"]), d["pd"], rtol=1e-12)
    np.testing.assert_allclose(m.predict_pd(test_rows), d["pd"], rtol=1e-9)
    # the booster's own raw score agrees with the additive model part
    feats = c[[k for k in m.codes if k.startswith("model:")]].to_numpy().sum(axis=1)
    raw = m.booster.predict(m.features.transform(test_rows), raw_score=True)
    expected = -m.scaling.factor * m.coefficients.k_gbm * (raw - m.explainer.contributions(
        m.features.transform(test_rows))[:, -1])
    np.testing.assert_allclose(feats, expected, atol=1e-6)
    if strategy == "gbm_only":
        assert not any(k.startswith("rule:") for k in m.codes)
    else:
        assert sum(k.startswith("rule:") for k in m.codes) == len(m.policy.item_codes)


def test_additive_points_uses_the_table_explainer(models: dict) -> None:
    assert models["additive_points"].explainer.is_fast
    assert not models["stacking"].explainer.is_fast


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_decide_shape_order_and_policy(models: dict, test_rows: pd.DataFrame, strategy: str) -> None:
    m = models[strategy]
    shuffled = test_rows.sample(frac=1.0, random_state=3)
    d = m.decide(shuffled)
    assert list(d.columns) == DECISION_COLUMNS
    assert len(d) == len(shuffled) and d.index.equals(shuffled.index)
    assert (d["household_id"].to_numpy() == shuffled["household_id"].to_numpy()).all()
    assert (d["status"] == "scored").all()
    assert (d.loc[d["vetoed"], "credit_line"] == 0).all()
    assert (d.loc[~d["eligible"], "credit_line"] == 0).all()
    assert d.loc[d["vetoed"], "grade"].eq("E2").all()
    assert d.loc[d["vetoed"], "reason_codes"].str.startswith("veto:").all()
    cap = m.policy.cap
    assert d["credit_line"].between(0, cap).all()
    assert d.loc[d["approved"], "rate"].between(m.policy.lpr, m.policy.max_rate).all()


def test_some_vetoed_and_elderly_in_sample(models: dict, test_rows: pd.DataFrame) -> None:
    d = models["additive_points"].decide(test_rows)
    assert d["vetoed"].sum() > 0
    # Jinxiang: age 60+ loses the base item but is not gated: the model can still lend
    old = test_rows["head_age"].to_numpy() > 60
    assert d.loc[old, "eligible"].all() and (d.loc[old, "credit_line"] > 0).any()
    c = models["additive_points"].contributions(test_rows)
    assert (c.loc[old, "rule:base"] <= c.loc[~old, "rule:base"].max()).all()


def test_hard_age_gate_wins(splits: tuple, test_rows: pd.DataFrame) -> None:
    m = _fit(splits, "boost_from_rules", policy="xx_county")
    rows = test_rows.head(50).copy()
    rows["head_age"] = 70
    d = m.decide(rows)
    assert (d["status"] == "scored").all()
    assert (~d["eligible"]).all() and (d["credit_line"] == 0).all()
    long = m.reason_codes(rows, top_k=2)
    decisive = long["kind"].isin(["veto", "eligibility"])
    # decisive reasons come first for every household, each has the age gate among them
    down = long[long["direction"] == "down"]
    first_non = down[~down["kind"].isin(["veto", "eligibility"])].groupby("row")["rank"].min()
    last_dec = long[decisive].groupby("row")["rank"].max()
    assert set(long.loc[long["kind"] == "eligibility", "row"]) == set(range(len(rows)))
    assert long.loc[long["kind"] == "eligibility", "code"].str.startswith("ineligible:").all()
    assert (last_dec.reindex(first_non.index).fillna(0) < first_non).all()


def test_reason_codes_long(models: dict, test_rows: pd.DataFrame) -> None:
    m = models["stacking"]
    rows = test_rows.head(200)
    long = m.reason_codes(rows, top_k=3)
    assert list(long.columns) == ["household_id", "row", "rank", "direction", "kind", "code",
                                  "label_en", "label_zh", "points"]
    assert set(long["row"]) <= set(range(len(rows)))
    feat = long[long["kind"].isin(["rule", "model"])]
    assert (feat.loc[feat["direction"] == "down", "points"] < 0).all()
    assert (feat.loc[feat["direction"] == "up", "points"] > 0).all()
    assert feat.groupby(["row", "direction"]).size().max() <= 3
    assert (long["label_zh"].str.len() > 0).all()
    # points in the long table are the household's contributions
    c = m.contributions(rows)
    r = feat.iloc[0]
    assert c.iloc[int(r["row"])][r["code"]] == pytest.approx(r["points"])


def test_save_load_round_trip(models: dict, test_rows: pd.DataFrame, tmp_path: Path) -> None:
    for strategy, m in models.items():
        d = m.save(tmp_path / strategy)
        names = sorted(p.name for p in d.iterdir())
        assert names == ["booster.txt", "model.json", "policy.yaml"]
        assert not any(p.suffix in {".pkl", ".pickle", ".joblib"} for p in d.iterdir())
        spec = json.loads((d / "model.json").read_text(encoding="utf-8"))
        assert spec["metadata"]["reference_profile"] == {"points": {"mean": 1.0}}
        loaded = DecisionModel.load(d)
        pd.testing.assert_frame_equal(loaded.decide(test_rows), m.decide(test_rows))
        pd.testing.assert_frame_equal(loaded.contributions(test_rows), m.contributions(test_rows))
        assert loaded.scaling == m.scaling and loaded.coefficients == m.coefficients


class _WithANewFeature(HouseholdFeatures):
    """A newer feature builder: every column a saved model knows, and one it does not."""

    def transform(self, households: pd.DataFrame) -> pd.DataFrame:
        out = super().transform(households)
        return out.assign(newer_feature=1.0)


def test_a_model_saved_before_a_feature_was_added_decides_as_it_did(models: dict, test_rows: pd.DataFrame,
                                                                     tmp_path: Path) -> None:
    """Issue 25 added ``income_per_head``: a version registered before it still scores, on
    its own columns, with the decisions it gave; a column the model needs and the builder
    no longer makes is still refused by name."""
    m = models["additive_points"]
    loaded = DecisionModel.load(m.save(tmp_path / "m"))
    loaded.features = _WithANewFeature(**m.features.get_params())
    pd.testing.assert_frame_equal(loaded.decide(test_rows), m.decide(test_rows))
    loaded.feature_names = [*loaded.feature_names, "gone_feature"]
    with pytest.raises(SchemaError, match=r"missing \['gone_feature'\]"):
        loaded.decide(test_rows)


def test_bad_rows_quarantined_not_dropped(models: dict, test_rows: pd.DataFrame) -> None:
    m = models["additive_points"]
    rows = test_rows.head(100).copy()
    rows["education"] = rows["education"].astype(object)
    rows.loc[rows.index[3], "head_age"] = -5
    rows.loc[rows.index[7], "education"] = "phd"
    d = m.decide(rows)
    assert len(d) == len(rows) and d.index.equals(rows.index)
    bad = d["status"] == "quarantined"
    assert list(np.flatnonzero(bad)) == [3, 7]
    assert "head_age" in d["quarantine_reason"].iloc[3]
    assert "education" in d["quarantine_reason"].iloc[7]
    assert d.loc[bad, ["pd", "points", "credit_line"]].isna().all().all()
    assert (d.loc[~bad, "quarantine_reason"] == "").all()
    assert m.contributions(rows).iloc[[3, 7]].isna().all().all()
    good = m.decide(rows.drop(index=rows.index[[3, 7]]))
    pd.testing.assert_frame_equal(d.loc[~bad], good)


def test_deterministic(splits: tuple, models: dict, test_rows: pd.DataFrame) -> None:
    again = _fit(splits, "additive_points")
    assert again.booster.model_to_string() == models["additive_points"].booster.model_to_string()
    pd.testing.assert_frame_equal(again.decide(test_rows), models["additive_points"].decide(test_rows))


def test_input_example_and_columns(models: dict) -> None:
    m = models["additive_points"]
    ex = m.input_example(5)
    assert len(ex) == 5 and list(ex.columns) == m.input_columns
    assert not set(TRUTH_COLUMNS) & set(ex.columns)
    assert (m.decide(ex)["status"] == "scored").all()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-200, 400, allow_nan=False), min_size=1, max_size=50),
       st.lists(st.booleans(), min_size=50, max_size=50))
def test_line_bounded_and_monotone_in_pd(models_points: list[float], flags: list[bool]) -> None:
    m = _POLICY_MODEL
    p = np.asarray(models_points)
    elig = np.ones(len(p), dtype=bool)
    veto = np.zeros(len(p), dtype=bool)
    dec = m.policy_decisions(p, elig, veto)
    line = dec["credit_line"].to_numpy()
    assert np.all((line >= 0) & (line <= m.policy.cap))
    order = np.argsort(m.scaling.pd(p), kind="stable")  # increasing PD
    assert np.all(np.diff(line[order]) <= 1e-9)
    v = np.asarray(flags[: len(p)])
    assert np.all(m.policy_decisions(p, elig, v)["credit_line"].to_numpy()[v] == 0)
    assert np.all(m.policy_decisions(p, ~v, veto)["credit_line"].to_numpy()[v] == 0)


@pytest.fixture(scope="module", autouse=True)
def _policy_model(models: dict) -> None:
    global _POLICY_MODEL
    _POLICY_MODEL = models["additive_points"]


_POLICY_MODEL: DecisionModel


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_pd_only_path_equals_full_path_and_skips_treeshap(models: dict, test_rows: pd.DataFrame,
                                                          strategy: str, tmp_path: Path) -> None:
    """``predict_pd`` of a non-additive model takes the raw-score path (no TreeSHAP): the
    same PD as the SHAP-based ``decide``, also for a quarantined row and missing values."""
    fresh = DecisionModel.load(models[strategy].save(tmp_path / strategy))
    rows = test_rows.head(400).copy()
    rows["head_age"] = rows["head_age"].astype("float64")
    rows.iloc[3, rows.columns.get_loc("head_age")] = np.nan  # quarantined: NaN PD on both paths
    pd_only = fresh.predict_pd(rows)
    terms = fresh._gbm_terms(fresh._transform(rows.drop(index=rows.index[3])), contributions=False)
    if fresh.explainer.is_fast:  # additive: its tables are the cheap path
        assert strategy == "additive_points" and np.abs(terms[:, :-1]).sum() > 0
    else:  # PD-only path: no per-feature SHAP columns were computed
        assert not np.any(terms[:, :-1])
    full = fresh.decide(rows)["pd"]
    assert np.isnan(pd_only.iloc[3]) and np.isnan(full.iloc[3])
    np.testing.assert_allclose(pd_only.to_numpy(), full.to_numpy(), rtol=1e-12, atol=1e-15)
