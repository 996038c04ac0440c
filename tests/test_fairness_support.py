"""Outcome support: diagnostics, neutralised rule items, exploration design, group recalibration, gate."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from village_credit.data import GeneratorConfig, generate_households
from village_credit.fairness.support import (
    expected_loss,
    exploration_design,
    headline,
    support_diagnostics,
)
from village_credit.models.blend import fit_blend
from village_credit.models.features import HouseholdFeatures
from village_credit.models.splits import split_by_village
from village_credit.models.support import constant_items, neutral_items_for, neutralise_items
from village_credit.registry.gates import evaluate_gates
from village_credit.rules import load_policy, score_rules
from village_credit.validation.recalibration import (
    RecalibratedDecisionModel,
    fit_group_offsets,
    group_recalibrate,
)

GBM = {"n_estimators": 60, "learning_rate": 0.1, "num_leaves": 8, "min_child_samples": 30}


@pytest.fixture(scope="module")
def hh() -> pd.DataFrame:
    return generate_households(GeneratorConfig(n_households=5000, seed=3))


@pytest.fixture(scope="module")
def fitted(hh: pd.DataFrame) -> dict:
    sp = split_by_village(hh, (0.6, 0.2, 0.2), seed=3)
    tr, ca, ho = sp.frames(hh)
    tro, cao = tr[tr.outcome_observed], ca[ca.outcome_observed]
    out = {"train": tr, "calib": ca, "holdout": ho}
    for neut in (False, True):
        out[neut] = fit_blend(tro, tro.default_12m, cao, cao.default_12m, policy="jinxiang_2022",
                              features=HouseholdFeatures(), gbm_params=GBM, seed=3,
                              neutralise_constant_items=neut)
    return out


# --------------------------------------------------------------------------- neutralised items
def test_base_item_never_varies_among_observed_outcomes(hh: pd.DataFrame) -> None:
    spec = neutral_items_for(hh, "jinxiang_2022", hh["outcome_observed"])
    assert list(spec) == ["base"]  # bonuses and deductions vary among observed households
    assert spec["base"]["value"] == 30.0 and spec["base"]["n_observed_varied"] == 0
    assert spec["base"]["n_other_values"] >= int((hh.head_age > 60).sum())  # every elderly household
    assert "cannot be learned" in spec["base"]["reason"]


def test_min_varied_keeps_items_that_vary_alike() -> None:
    items = pd.DataFrame({"a": [30.0] * 95 + [0.0] * 5 + [0.0] * 50, "b": ([0.0] * 9 + [10.0]) * 15})
    observed = np.r_[np.ones(100, bool), np.zeros(50, bool)]
    assert constant_items(items, observed) == {}  # 5 observed rows differ: it varied
    spec = constant_items(items, observed, min_varied=10)
    assert list(spec) == ["a"]  # b varies alike in both; a's variation lives in the unobserved
    out = neutralise_items(items, spec)
    assert (out["a"] == 30.0).all() and out["b"].equals(items["b"])


def test_blend_does_not_apply_a_neutralised_item(fitted: dict) -> None:
    plain, neut = fitted[False], fitted[True]
    assert "neutralised_items" not in plain.metadata
    assert set(neut.metadata["neutralised_items"]) == {"base"}
    ho = fitted["holdout"]
    c_neut, c_plain = neut.contributions(ho), plain.contributions(ho)
    col = next(c for c in c_neut.columns if c.endswith("base") and c != "base")
    assert np.allclose(c_neut[col].to_numpy(float), 0.0)
    old = (ho.head_age > 60).to_numpy()
    assert np.abs(c_plain[col].to_numpy(float)[old]).min() > 0  # the plain blend moved the elderly
    # identical decisions for the observed (base = 30) rows up to the refit's noise: the item
    # only matters where it differs
    p_n, p_p = neut.predict_pd(ho).to_numpy(), plain.predict_pd(ho).to_numpy()
    assert p_n[old].mean() < p_p[old].mean()


def test_neutralised_items_survive_save_and_load(fitted: dict, tmp_path) -> None:
    from village_credit.models.decision import DecisionModel

    m = fitted[True]
    back = DecisionModel.load(m.save(tmp_path / "m"))
    ho = fitted["holdout"]
    assert back.metadata["neutralised_items"]["base"]["value"] == 30.0
    np.testing.assert_allclose(back.predict_pd(ho).to_numpy(), m.predict_pd(ho).to_numpy())


# --------------------------------------------------------------------------- diagnostics
def test_support_diagnostics_flags_groups_never_observed(fitted: dict) -> None:
    tr = fitted["train"].reset_index(drop=True)
    obs = tr["outcome_observed"].to_numpy(bool)
    items = score_rules(tr, load_policy("jinxiang_2022")).items.reset_index(drop=True)
    X = fitted[False].features.transform(tr).reset_index(drop=True)
    sup = support_diagnostics(tr, obs, items=items, features=X, min_observed=100)
    groups = {g["group"]: g for g in sup["groups"]}
    age = tr["head_age"].to_numpy()
    assert groups["65-69"]["n"] == int(((age >= 65) & (age < 70)).sum())
    assert groups["65-69"]["n_observed"] == 0 and groups["70+"]["n_observed"] == 0
    assert {"65-69", "70+"} <= set(sup["extrapolated_groups"])
    assert "base" in groups["70+"]["unseen_columns"]  # 0 points: never seen with an outcome
    assert "<60|other" not in sup["extrapolated_groups"]
    assert groups["formerly_poor"]["n_observed"] == int((obs & tr.formerly_poor.to_numpy(bool)).sum())
    row = next(c for c in sup["columns"] if c["group"] == "70+" and c["column"] == "base")
    assert row["share_unseen"] == 1.0 and row["median_support"] == 0.0
    json.dumps(sup)  # JSON-safe


def test_support_diagnostics_rejects_misaligned_inputs(hh: pd.DataFrame) -> None:
    from village_credit.fairness.groups import FairnessInputError

    with pytest.raises(FairnessInputError, match="observed mask"):
        support_diagnostics(hh, np.ones(3, bool))


def test_headline_ratios_both_ways(fitted: dict) -> None:
    ho = fitted["holdout"].reset_index(drop=True)
    p = fitted[False].predict_pd(ho).to_numpy()
    rows = {r["group"]: r for r in headline(ho, p)}
    m = (ho.head_age >= 70).to_numpy()
    assert rows["70+"]["pred_true_ratio"] == pytest.approx(p[m].mean() / ho.true_pd[m].mean())
    assert rows["70+"]["pred_observed_ratio"] is None  # nobody observed: no observed rate
    g = ho.outcome_observed.to_numpy(bool)
    assert rows["all"]["observed_default_rate"] == pytest.approx(ho.default_12m[g].mean())
    assert rows["70+"]["ceiling_true_ratio"] is None  # no ceiling given: null, never a plausible number


def test_headline_splits_a_groups_miss_into_the_ceiling_and_the_models_own(fitted: dict) -> None:
    """With the information ceiling's PD, each group's predicted / true has the ceiling's own
    ratio beside it, and the two multiply to the model's: pred / true = ceiling / true x pred / ceiling."""
    ho = fitted["holdout"].reset_index(drop=True)
    p = fitted[False].predict_pd(ho).to_numpy()
    tp = ho.true_pd.to_numpy(float)
    old = (ho.head_age >= 70).to_numpy()
    ceiling = np.where(old, 0.8 * tp, tp)  # a ceiling that misses the 70+ by -20 % and no one else
    rows = {r["group"]: r for r in headline(ho, p, ceiling_pd=ceiling)}
    assert rows["70+"]["ceiling_true_ratio"] == pytest.approx(0.8)
    assert rows["60-64"]["ceiling_true_ratio"] == pytest.approx(1.0)
    for r in rows.values():
        assert r["pred_true_ratio"] == pytest.approx(r["ceiling_true_ratio"] * r["pred_ceiling_ratio"])
    from village_credit.fairness.groups import FairnessInputError

    with pytest.raises(FairnessInputError, match="ceiling PDs"):
        headline(ho, p, ceiling_pd=ceiling[:-1])


# --------------------------------------------------------------------------- exploration design
def test_exploration_design_sample_size_and_loss() -> None:
    n = 1000
    hh = pd.DataFrame({"head_age": np.r_[np.full(500, 72), np.full(500, 40)], "formerly_poor": False})
    observed = np.r_[np.zeros(500, bool), np.ones(500, bool)]
    p = np.full(n, 0.04)
    d = exploration_design(hh, observed, p, precision=0.5, relative=True, confidence=0.95).set_index("group")
    need = math.ceil(1.959964 ** 2 * 0.04 * 0.96 / 0.02 ** 2)  # 369
    assert d.at["70+", "n_needed"] == need and d.at["70+", "n_to_explore"] == need
    assert d.at["70+", "share_of_refused"] == pytest.approx(need / 500)
    assert d.at["70+", "expected_loss"] == pytest.approx(need * 0.04 * 50_000 * 0.45)
    tight = exploration_design(hh, observed, p, precision=0.1).set_index("group")
    assert not tight.at["70+", "feasible"]  # 9,220 needed from 500 refused


@given(st.floats(0.01, 0.3), st.floats(0.1, 0.9))
@settings(max_examples=30, deadline=None)
def test_exploration_need_falls_with_looser_precision(p: float, prec: float) -> None:
    hh = pd.DataFrame({"head_age": np.full(50, 75), "formerly_poor": False})
    obs = np.zeros(50, bool)
    a = exploration_design(hh, obs, np.full(50, p), precision=prec).set_index("group").at["70+", "n_needed"]
    b = exploration_design(hh, obs, np.full(50, p), precision=prec * 1.5).set_index("group").at["70+", "n_needed"]
    assert b <= a


def test_expected_loss_counts_approved_only() -> None:
    assert expected_loss([0.1, 0.5], [1000.0, 1000.0], [True, False], lgd=0.5) == pytest.approx(50.0)


# --------------------------------------------------------------------------- group recalibration
def test_fit_group_offsets_recovers_and_shrinks() -> None:
    rng = np.random.default_rng(0)
    n = 40_000
    z = rng.normal(-3, 1, n)
    G = (rng.random((n, 2)) < 0.3).astype(float)
    y = (rng.random(n) < 1 / (1 + np.exp(-(z + G @ np.array([0.6, -0.4]))))).astype(float)
    d = fit_group_offsets(z, y, G, prior_sd=5.0)
    np.testing.assert_allclose(d, [0.6, -0.4], atol=0.08)
    few = fit_group_offsets(z[:200], y[:200], G[:200], prior_sd=0.1)
    assert np.all(np.abs(few) < np.abs(d))  # a tight prior keeps the model's own estimate


def test_group_recalibration_moves_only_members_and_round_trips(fitted: dict, tmp_path) -> None:
    m = fitted[False]
    sample = pd.concat([fitted["train"], fitted["calib"]])
    sample = sample[sample.outcome_observed]
    rec = group_recalibrate(m, sample, prior_sd=1.0, seed=0)
    assert set(rec.group_offsets) == {"60-64", "65-69", "70+", "formerly_poor"}
    assert rec.group_offsets["70+"] == 0.0  # nobody observed: the prior keeps 0
    ho = fitted["holdout"]
    back = RecalibratedDecisionModel.load(rec.save(tmp_path / "rec"))
    assert back.group_offsets == pytest.approx(rec.group_offsets)
    np.testing.assert_allclose(back.predict_pd(ho).to_numpy(), rec.predict_pd(ho).to_numpy())
    c = rec.contributions(ho)
    pts = rec.decide(ho, top_k=1)["points"].to_numpy(float)
    num = c.select_dtypes("number")
    np.testing.assert_allclose(num.sum(axis=1).to_numpy(), pts, atol=1e-6)  # still additive


# --------------------------------------------------------------------------- gate
def _ev(support: dict | None) -> dict:
    fair = {"equal_risk": {"max_gap_approval": 0.01, "max_gap_line": 0.02, "max_excess_approval": 0.005,
                           "max_excess_line": 0.01, "rules": {"max_gap_approval": 0.3}},
            "demographic_parity": {"min_ratio": 0.95}}
    if support is not None:
        fair["outcome_support"] = support
    return {"fairness": fair}


def _gate(ev: dict, **th) -> object:
    return {g.name: g for g in evaluate_gates(ev, th).gates}["outcome_support"]


def test_outcome_support_gate() -> None:
    ext = {"extrapolated_groups": ["65-69", "70+"], "min_observed": 300, "remedies": []}
    g = _gate(_ev(ext))
    assert not g.passed and g.value == 2.0 and "70+" in g.detail
    # a remedy listed is not a remedy shown to work: it is measured on the explored households
    listed = _gate(_ev({**ext, "remedies": ["exploration grant"]}))
    assert not listed.passed and "not measured" in listed.detail
    assert _gate(_ev({"extrapolated_groups": [], "remedies": []})).passed
    assert not _gate(_ev({"remedies": []})).passed  # malformed section fails
    assert not _gate(_ev(None), outcome_support_required=True).passed
    assert _gate(_ev(None)).passed  # older evidence without the section, not required


def test_group_recalibration_map_from_its_own_sample(fitted: dict) -> None:
    from village_credit.models.calibration import fit_calibrator

    m = fitted[False]
    ca = fitted["calib"][fitted["calib"].outcome_observed]
    everyone = pd.concat([fitted["train"], fitted["calib"]])
    everyone = everyone[everyone.outcome_observed]
    rec = group_recalibrate(m, everyone, map_sample=ca, prior_sd=0.5)
    z = m.scaling.logit(m.decide(ca, top_k=1)["points"].to_numpy(float))
    ref = fit_calibrator(z, ca["default_12m"].to_numpy(float), method="platt", input="logit")
    assert rec.calibrators[-1].a == pytest.approx(ref.a) and rec.calibrators[-1].b == pytest.approx(ref.b)
    info = rec.lineage[-1]
    assert info["rows_used"] == len(everyone) and info["group_rows"]["formerly_poor"] > 0


def test_outcome_support_gate_measures_whether_the_remedy_worked() -> None:
    """Issue 25: calibration of each extrapolated group's explored households, with a CI,
    against the stated limit (outcome_support_calibration_max)."""
    from village_credit.fairness.support import explored_calibration

    rng = np.random.default_rng(5)
    n = 4000
    hh = pd.DataFrame({"head_age": rng.choice([45, 62, 67, 74], n), "formerly_poor": rng.random(n) < 0.2})
    true_pd = np.where(hh["head_age"] >= 65, 0.15, 0.05)
    hh["default_12m"] = (rng.random(n) < true_pd).astype(int)
    explored = rng.random(n) < 0.25
    ext = {"extrapolated_groups": ["65-69", "70+"], "min_observed": 300, "remedies": ["exploration grant"]}
    good = explored_calibration(hh, explored, true_pd)
    assert good["70+"]["n_explored"] == int((explored & (hh["head_age"] >= 70)).sum())
    g = _gate(_ev({**ext, "explored_calibration": good}))
    assert g.passed and g.value == 0.0 and "70+: predicted 0.150" in g.detail
    # a model that still predicts the under-60 risk for the elderly: the remedy did not work
    bad = explored_calibration(hh, explored, np.full(n, 0.02))
    g = _gate(_ev({**ext, "explored_calibration": bad}))
    assert not g.passed and g.value > 0 and "did not work" in g.detail
    lo, hi = bad["70+"]["gap_ci"]
    assert hi < -0.05 and g.value == pytest.approx(max(-0.05 - hi, -0.05 - bad["65-69"]["gap_ci"][1]))
    # the limit is stated and applied, not implied
    assert _gate(_ev({**ext, "explored_calibration": bad}), outcome_support_calibration_max=0.2).passed
    # a group without explored households was not measured: that is no pass
    none = explored_calibration(hh, np.zeros(n, bool), true_pd)
    assert none["70+"]["gap"] is None
    g = _gate(_ev({**ext, "explored_calibration": none}))
    assert not g.passed and "not measured for 65-69, 70+" in g.detail
