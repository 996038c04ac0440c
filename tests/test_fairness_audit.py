"""Fairness audit, sensitive groups and equal-risk gaps on constructed populations."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from village_credit.errors import VillageCreditError
from village_credit.fairness import (
    DecisionSystem,
    equal_risk_gaps,
    fairness_audit,
    sensitive_frame,
)
from village_credit.fairness.groups import FairnessInputError


def _population(n: int = 3000, seed: int = 1) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    hh = pd.DataFrame({"head_age": rng.integers(20, 85, n), "formerly_poor": rng.random(n) < 0.2})
    # elderly slightly riskier, so within-decile risk differs between groups
    tp = np.clip(rng.beta(1.2, 14, n) + 0.02 * (hh.head_age.to_numpy() >= 60), 0, 1)
    y = rng.random(n) < tp
    return hh, tp, y


def test_sensitive_frame_groups() -> None:
    hh = pd.DataFrame({"head_age": [30, 59, 60, 61, 64, 65, 90], "formerly_poor": [1, 0, 0, 1, 0, 1, 0]})
    s = sensitive_frame(hh, policy_age_max=60)
    # the one set of age bands (data.groups.AGE_BANDS), as calibration and the summary use
    assert s.age_band.tolist() == ["18-40", "41-59", "60-64", "60-64", "60-64", "65-69", "70+"]
    assert s.policy_age.tolist() == ["<=60", "<=60", "<=60", ">60", ">60", ">60", ">60"]
    assert s.elderly.tolist() == ["<60", "<60", "60+", "60+", "60+", "60+", "60+"]
    assert s.age_band_x_formerly_poor.iloc[5] == "65-69|formerly_poor"
    assert sensitive_frame(hh, policy_age_max=65).policy_age.tolist()[:6] == ["<=65"] * 6


@pytest.mark.parametrize("column", ["head_age", "formerly_poor"])
def test_missing_sensitive_values_raise(column: str) -> None:
    hh = pd.DataFrame({"head_age": [30.0, 70.0, 45.0, 50.0], "formerly_poor": [True, False, True, False]})
    hh[column] = hh[column].astype(object)
    hh.loc[[1, 3], column] = None
    with pytest.raises(FairnessInputError, match=rf"{column}.*2 missing") as info:
        sensitive_frame(hh)
    assert isinstance(info.value, VillageCreditError)


def test_missing_sensitive_column_raises() -> None:
    with pytest.raises(FairnessInputError, match="formerly_poor"):
        sensitive_frame(pd.DataFrame({"head_age": [40]}))


def test_approval_rates_match_groupby_and_ci_contains_estimate() -> None:
    hh, tp, y = _population()
    rng = np.random.default_rng(7)
    approved = rng.random(len(hh)) < np.where(hh.head_age >= 60, 0.4, 0.8)
    line = np.where(approved, rng.uniform(1e4, 1e5, len(hh)), 0)
    rate = rng.uniform(0.037, 0.08, len(hh))
    system = DecisionSystem("s", approved=approved, credit_line=line, rate=rate, pd=tp)
    sens = sensitive_frame(hh)
    res = fairness_audit([system], sens, y, true_pd=tp, n_boot=100, seed=3)
    bg = res.by_group
    for feat in ("age_band", "formerly_poor", "age_band_x_formerly_poor"):
        got = bg[(bg.feature == feat) & (bg.metric == "approval_rate") & (bg.group != "(all)")].set_index("group")
        want = pd.Series(approved).groupby(sens[feat].to_numpy()).mean()
        np.testing.assert_allclose(got.value.sort_index(), want.sort_index())
        assert (got.ci_low <= got.value + 1e-12).all() and (got.value <= got.ci_high + 1e-12).all()
    # credit framing: TPR = approval among non-defaulters, FPR = approval among defaulters
    tpr = bg[(bg.feature == "formerly_poor") & (bg.metric == "tpr")].set_index("group").value
    fpr = bg[(bg.feature == "formerly_poor") & (bg.metric == "fpr")].set_index("group").value
    g = sens.formerly_poor.to_numpy()
    for grp in ("formerly_poor", "other"):
        assert tpr[grp] == pytest.approx(approved[(g == grp) & ~y].mean())
        assert fpr[grp] == pytest.approx(approved[(g == grp) & y].mean())
    line_appr = bg[(bg.feature == "elderly") & (bg.metric == "mean_rate_approved")].set_index("group").value
    assert line_appr["60+"] == pytest.approx(rate[approved & (hh.head_age.to_numpy() >= 60)].mean())
    json.dumps(res.to_dict(), allow_nan=False)  # strict JSON


def test_bootstrap_is_seeded() -> None:
    hh, tp, y = _population(800)
    approved = tp < 0.1
    sens = sensitive_frame(hh)
    runs = [fairness_audit([DecisionSystem("s", approved=approved)], sens, y, n_boot=60, seed=s)
            for s in (5, 5, 6)]
    pd.testing.assert_frame_equal(runs[0].by_group, runs[1].by_group)
    pd.testing.assert_frame_equal(runs[0].disparities, runs[1].disparities)
    assert not np.allclose(runs[0].by_group.ci_low.fillna(0), runs[2].by_group.ci_low.fillna(0))


def test_four_fifths_flag_on_constructed_example() -> None:
    # group a approves 50/100, group b 39/100 (ratio 0.78), group c 45/100 (ratio 0.9 of a)
    groups = np.repeat(["a", "b", "c"], 100)
    approved = np.concatenate([np.arange(100) < 50, np.arange(100) < 39, np.arange(100) < 45])
    y = np.zeros(300, bool)
    y[::10] = True
    sens = pd.DataFrame({"g": groups})
    res = fairness_audit([DecisionSystem("s", approved=approved)], sens[["g"]], y, n_boot=50, min_group=30)
    d = res.disparity_summary()["s"]["g"]
    assert d["demographic_parity_ratio"] == pytest.approx(0.78)
    assert d["demographic_parity_difference"] == pytest.approx(0.11)
    assert d["four_fifths_pass"] is False
    keep = groups != "b"
    res2 = fairness_audit([DecisionSystem("s", approved=approved[keep])], sens[["g"]][keep], y[keep], n_boot=0)
    d2 = res2.disparity_summary()["s"]["g"]
    assert d2["demographic_parity_ratio"] == pytest.approx(0.9) and d2["four_fifths_pass"] is True


def _fairlearn_disparities(y_good: np.ndarray, y_pred: np.ndarray, groups: np.ndarray) -> list[float]:
    """fairlearn's three public disparity functions, each on its own (the reference)."""
    import warnings

    from fairlearn.metrics import (
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
    )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [float(f(y_good, y_pred, sensitive_features=groups))
                for f in (demographic_parity_ratio, demographic_parity_difference, equalized_odds_difference)]


@pytest.mark.parametrize("case", ["mixed", "a_group_all_good", "a_group_all_bad", "nobody_approved_in_a_group",
                                  "everybody_approved", "one_row_group"])
def test_disparities_are_fairlearns_own_functions_figures(case: str) -> None:
    """The audit reads the three disparities off one MetricFrame; each must equal, to the
    bit (NaN where fairlearn gives NaN), the fairlearn function of that name, also in the
    degenerate groups where a rate divides by zero."""
    from village_credit.fairness.audit import _disparities

    rng = np.random.default_rng(len(case))
    n = 600
    groups = rng.choice(np.array(["a", "b", "c", "d"]), n)
    y_good = (rng.random(n) < 0.85).astype(int)
    y_pred = (rng.random(n) < 0.7).astype(int)
    a = groups == "a"
    if case == "a_group_all_good":
        y_good[a] = 1
    elif case == "a_group_all_bad":
        y_good[a] = 0
    elif case == "nobody_approved_in_a_group":
        y_pred[a] = 0
    elif case == "everybody_approved":
        y_pred[:] = 1
    elif case == "one_row_group":
        groups[groups == "d"] = "c"
        groups[7] = "d"
    ours = list(_disparities(y_good, y_pred, groups))
    ref = _fairlearn_disparities(y_good, y_pred, groups)
    assert np.array_equal(np.array(ours), np.array(ref), equal_nan=True), (ours, ref)


def test_small_groups_excluded_from_disparities_but_reported() -> None:
    groups = np.array(["big"] * 200 + ["other"] * 200 + ["tiny"] * 5)
    approved = np.concatenate([np.ones(200, bool), np.arange(200) < 180, np.zeros(5, bool)])
    y = np.zeros(405, bool)
    y[::7] = True
    res = fairness_audit([DecisionSystem("s", approved=approved)], pd.DataFrame({"g": groups}), y,
                         n_boot=40, min_group=30)
    d = res.disparity_summary()["s"]["g"]
    assert d["groups_excluded"] == ["tiny"]
    assert d["demographic_parity_ratio"] == pytest.approx(0.9)
    tiny = res.by_group[(res.by_group.group == "tiny") & (res.by_group.metric == "approval_rate")]
    assert tiny.small_group.all() and tiny.value.iloc[0] == 0


def test_equal_risk_zero_for_truth_only_system_and_large_for_age_cutoff() -> None:
    hh, tp, _ = _population(6000)
    sens = sensitive_frame(hh)
    cut = np.quantile(tp, 0.7)  # a threshold on the true PD that depends on nothing else
    truth = DecisionSystem("truth_only", approved=tp <= cut, credit_line=np.where(tp <= cut, 5e4, 0))
    aged = DecisionSystem("age_cutoff", approved=(tp <= cut) & (hh.head_age.to_numpy() <= 60),
                          credit_line=np.where((tp <= cut) & (hh.head_age.to_numpy() <= 60), 5e4, 0))
    res = equal_risk_gaps([truth, aged], sens, tp, n_substrata=5)
    s = res.summary
    assert s["truth_only"]["deciles_checked"] > 10
    assert s["truth_only"]["max_gap_approval"] <= 0.05 and s["truth_only"]["passes_5pct"]
    assert s["age_cutoff"]["max_gap_approval"] > 0.5 and not s["age_cutoff"]["passes_5pct"]
    assert s["age_cutoff"]["by_comparison"]["elderly"]["max_gap_line"] > 0.5
    # a threshold at a decile boundary gives exactly zero gaps even without sub-strata
    edge = np.quantile(tp, 0.6)
    exact = DecisionSystem("edge", approved=tp <= edge, credit_line=np.where(tp <= edge, 5e4, 0))
    raw = equal_risk_gaps([exact], sens, tp, n_substrata=1)
    assert raw.summary["edge"]["max_gap_approval"] == pytest.approx(0, abs=1e-12)
    assert raw.summary["edge"]["max_gap_line"] == pytest.approx(0, abs=1e-12)
    t = res.table
    assert set(t.comparison) == {"elderly", "formerly_poor"} and t.decile.max() == 10


def test_equal_risk_rejects_missing_true_pd() -> None:
    hh, tp, _ = _population(200)
    tp = tp.copy()
    tp[3] = np.nan
    with pytest.raises(FairnessInputError, match="true_pd has 1 missing"):
        equal_risk_gaps([DecisionSystem("s", approved=np.ones(200, bool))], sensitive_frame(hh), tp)


@pytest.mark.parametrize("case", ["mixed", "a_group_all_good", "nobody_approved_in_a_group", "one_row_group",
                                  "unsorted_labels"])
def test_group_metrics_are_metricframes_figures(case: str) -> None:
    """The audit's per-group table (its own slicing, for speed) equals fairlearn's
    ``MetricFrame.by_group`` and ``.overall`` to the bit, with the audit's own metrics and
    sample parameters, NaN where a rate divides by zero, groups in ``MetricFrame``'s order."""
    import warnings

    from fairlearn.metrics import MetricFrame

    from village_credit.fairness.audit import _metric_spec, group_metrics

    rng = np.random.default_rng(len(case))
    n = 500
    groups = rng.choice(np.array(["b", "a", "c", "70+"]), n)
    tp = np.clip(rng.beta(1.2, 14, n), 0, 1)
    y_good = (rng.random(n) >= tp).astype(int)
    approved = rng.random(n) < 0.7
    a = groups == "a"
    if case == "a_group_all_good":
        y_good[a] = 1
    elif case == "nobody_approved_in_a_group":
        approved[a] = False
    elif case == "one_row_group":
        groups[groups == "c"] = "b"
        groups[3] = "c"
    elif case == "unsorted_labels":
        groups = np.where(groups == "a", "zz", np.where(groups == "b", "10", groups))
    rate = np.where(tp < 0.1, 0.08, 0.12)
    rate[::4] = np.nan
    system = DecisionSystem("s", approved=approved, credit_line=rng.random(n) * 1e5, rate=rate, pd=tp)
    metrics, params = _metric_spec(system, tp)
    y_pred = system.approved.astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mf = MetricFrame(metrics=metrics, y_true=y_good, y_pred=y_pred,
                         sensitive_features=pd.Series(groups, name="g"), sample_params=params)
        by, overall = group_metrics(metrics, y_good, y_pred, pd.Series(groups, name="g"), params)
    pd.testing.assert_frame_equal(by, mf.by_group.astype(float), check_exact=True)
    pd.testing.assert_series_equal(overall, mf.overall.astype(float), check_exact=True, check_names=False)
