"""Validation statistics, each checked against an independent reference."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.metrics import roc_auc_score

from village_credit.errors import VillageCreditError
from village_credit.validation import (
    ValidationConfig,
    ValidationInputError,
    auc_delong,
    brier,
    expected_calibration_error,
    hosmer_lemeshow,
    ks_statistic,
    psi,
    reference_profile,
    roc_points,
    validation_report,
    write_validation_report,
)
from village_credit.validation.calibration import (
    grade_calibration,
    jeffreys_p_value,
    reliability_table,
    spiegelhalter,
)
from village_credit.validation.discrimination import (
    cap_points,
    delong_paired,
    delong_test,
    gini,
    rank_ordering,
)
from village_credit.validation.drift import drift_report, write_drift_report
from village_credit.validation.stability import (
    alert_level,
    csi_table,
    migration_matrix,
    migration_summary,
    psi_from_profile,
    psi_table,
)

GRADES = ["A1", "A2", "B1", "B2", "C1", "C2", "D1", "D2", "E1", "E2"]


def _sim(n: int, seed: int, ties: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Calibrated PDs, outcomes drawn from them, and a noisy risk score."""
    rng = np.random.default_rng(seed)
    p = rng.beta(1.2, 14.0, n)
    y = (rng.random(n) < p).astype(int)
    s = np.log(p / (1 - p)) + rng.normal(0.0, 0.8, n)
    if ties:
        s = np.round(s, 1)
    return y, p, s


def _grade_of(p: np.ndarray) -> np.ndarray:
    edges = np.quantile(p, np.linspace(0, 1, 11)[1:-1])
    return np.asarray(GRADES, dtype=object)[np.searchsorted(edges, p, side="right")]


def _naive_delong(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """O(m*n) structural components straight from DeLong et al. (1988)."""
    scores = np.atleast_2d(scores)
    pos, neg = scores[:, y == 1], scores[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    psi_k = (pos[:, :, None] > neg[:, None, :]) + 0.5 * (pos[:, :, None] == neg[:, None, :])
    aucs = psi_k.mean(axis=(1, 2))
    v10 = psi_k.mean(axis=2)
    v01 = psi_k.mean(axis=1)
    cov = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
    return aucs, cov


# ----------------------------------------------------------------- discrimination


@pytest.mark.parametrize("ties", [False, True])
def test_auc_and_delong_se_match_naive_structural_components(ties: bool) -> None:
    y, p, s = _sim(600, seed=1, ties=ties)
    auc, se, lo, hi = auc_delong(y, s)
    naive_auc, naive_cov = _naive_delong(y, s)
    assert auc == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert auc == pytest.approx(naive_auc[0], abs=1e-12)
    assert se == pytest.approx(np.sqrt(naive_cov[0, 0]), rel=1e-9)
    z = stats.norm.ppf(0.975)
    assert lo == pytest.approx(auc - z * se) and hi == pytest.approx(auc + z * se)
    assert gini(y, s) == pytest.approx(2 * auc - 1)


def test_delong_se_roughly_matches_bootstrap() -> None:
    y, _, s = _sim(800, seed=2)
    _, se, _, _ = auc_delong(y, s)
    rng = np.random.default_rng(7)
    idx = rng.integers(0, y.size, size=(300, y.size))
    boots = [roc_auc_score(y[i], s[i]) for i in idx]
    assert se == pytest.approx(np.std(boots, ddof=1), rel=0.2)


def test_delong_test_matches_naive_and_behaves() -> None:
    y, p, s = _sim(500, seed=3, ties=True)
    a, b, diff, z, pv = delong_test(y, s, p)
    aucs, cov = _naive_delong(y, np.vstack([s, p]))
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    assert (a, b) == pytest.approx(tuple(aucs))
    assert z == pytest.approx((aucs[0] - aucs[1]) / np.sqrt(var), rel=1e-9)
    assert pv == pytest.approx(2 * stats.norm.sf(abs(z)))
    # identical scores: no difference at all
    assert delong_test(y, s, s)[2:] == (0.0, 0.0, 1.0)
    # a monotone transform ranks identically
    assert delong_test(y, p, np.log(p))[4] == 1.0
    # true PD vs pure noise: overwhelming evidence
    y, p, _ = _sim(4000, seed=4)
    noise = np.random.default_rng(4).random(y.size)
    assert delong_test(y, p, noise)[4] < 1e-6


def test_paired_delong_ci_matches_an_independent_computation() -> None:
    """The champion/challenger comparison on one sample: difference, SE and CI from the
    O(m*n) kernel (not the midrank algorithm), and a paired bootstrap of the same rows."""
    y, p, s = _sim(500, seed=5, ties=True)
    out = delong_paired(y, s, p, alpha=0.10)
    aucs, cov = _naive_delong(y, np.vstack([s, p]))
    se = np.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    assert out["diff"] == pytest.approx(roc_auc_score(y, s) - roc_auc_score(y, p), abs=1e-12)
    assert out["se"] == pytest.approx(se, rel=1e-9)
    z = stats.norm.ppf(0.95)
    assert (out["ci_low"], out["ci_high"]) == pytest.approx((out["diff"] - z * se, out["diff"] + z * se))
    assert out["n"] == 500 and out["alpha"] == 0.10
    # the pairing matters: the paired SE is well below the SE of two independent AUCs
    unpaired = np.sqrt(cov[0, 0] + cov[1, 1])
    assert se < 0.8 * unpaired
    rng = np.random.default_rng(3)
    idx = rng.integers(0, y.size, size=(400, y.size))
    boots = [roc_auc_score(y[i], s[i]) - roc_auc_score(y[i], p[i]) for i in idx]
    assert out["se"] == pytest.approx(np.std(boots, ddof=1), rel=0.2)


def test_paired_delong_edge_cases_are_nan_or_exact_never_plausible() -> None:
    y, p, _ = _sim(300, seed=6)
    same = delong_paired(y, p, p)
    assert (same["diff"], same["se"], same["ci_low"], same["ci_high"], same["p_value"]) == (0, 0, 0, 0, 1)
    one_default = np.zeros(50, dtype=int)
    one_default[3] = 1
    out = delong_paired(one_default, np.linspace(0, 1, 50), np.linspace(1, 0, 50))
    assert all(np.isnan(out[k]) for k in ("se", "ci_low", "ci_high", "z", "p_value"))


def test_delong_p_values_roughly_uniform_under_null() -> None:
    """Two equally good but different noisy scores: p < 0.05 about 5 % of the time."""
    rng = np.random.default_rng(11)
    pvals = []
    for _ in range(200):
        p = rng.beta(2, 8, 300)
        y = (rng.random(300) < p).astype(int)
        lp = np.log(p / (1 - p))
        pvals.append(delong_test(y, lp + rng.normal(0, 1, 300), lp + rng.normal(0, 1, 300))[4])
    rate = np.mean(np.asarray(pvals) < 0.05)
    assert 0.01 <= rate <= 0.11
    assert stats.kstest(pvals, "uniform").pvalue > 0.001


def test_ks_matches_scipy_ks_2samp() -> None:
    for ties in (False, True):
        y, _, s = _sim(700, seed=5, ties=ties)
        ks, thr = ks_statistic(y, s)
        ref = stats.ks_2samp(s[y == 1], s[y == 0])
        assert ks == pytest.approx(ref.statistic, abs=1e-12)
        gap = abs(np.mean(s[y == 0] <= thr) - np.mean(s[y == 1] <= thr))
        assert gap == pytest.approx(ks)


def test_roc_and_cap_curves() -> None:
    y, _, s = _sim(400, seed=6, ties=True)
    roc = roc_points(y, s, max_points=None)
    assert roc.iloc[0][["fpr", "tpr"]].tolist() == [0.0, 0.0]
    assert roc.iloc[-1][["fpr", "tpr"]].tolist() == [1.0, 1.0]
    assert np.trapezoid(roc["tpr"], roc["fpr"]) == pytest.approx(roc_auc_score(y, s))
    cap = cap_points(y, s, max_points=None)
    assert cap.iloc[-1][["population_share", "defaults_share"]].tolist() == [1.0, 1.0]
    # accuracy ratio from the CAP equals the Gini
    area = np.trapezoid(cap["defaults_share"], cap["population_share"]) - 0.5
    perfect = 0.5 * (1 - y.mean())
    assert area / perfect == pytest.approx(gini(y, s), abs=1e-9)
    thin = roc_points(y, s, max_points=20)
    assert len(thin) <= 20 and thin.iloc[-1]["tpr"] == 1.0


def test_rank_ordering_flags_break() -> None:
    grades = ["A1"] * 10 + ["A2"] * 10 + ["B1"] * 10
    y = [0] * 9 + [1] + [0] * 7 + [1] * 3 + [0] * 8 + [1] * 2
    tab = rank_ordering(grades, y, ["A1", "A2", "B1", "B2"])
    assert tab["n"].tolist() == [10, 10, 10, 0]
    assert tab["default_rate"].iloc[:3].tolist() == pytest.approx([0.1, 0.3, 0.2])
    assert tab["monotone"].tolist() == [True, True, False, True]
    with pytest.raises(ValidationInputError, match="not in grade_order"):
        rank_ordering(["Z"], [0], ["A1"])


def test_bad_inputs_raise_project_errors() -> None:
    with pytest.raises(VillageCreditError, match="0/1"):
        auc_delong([0, 2, 1], [0.1, 0.2, 0.3])
    with pytest.raises(VillageCreditError, match="both defaults"):
        auc_delong([0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(VillageCreditError, match="length"):
        brier([0, 1], [0.1])
    with pytest.raises(VillageCreditError, match=r"\[0, 1\]"):
        brier([0, 1], [0.1, 1.2])


# ----------------------------------------------------------------- calibration


def test_brier_and_ece() -> None:
    y, p, _ = _sim(20000, seed=8)
    assert brier(y, p) == pytest.approx(np.mean((p - y) ** 2))
    assert expected_calibration_error(y, p) < 0.01
    assert expected_calibration_error(y, np.minimum(2 * p, 1)) > 0.05
    tab = reliability_table(y, p, n_bins=10)
    assert tab["n"].sum() == y.size and len(tab) == 10
    manual = np.sum(tab["n"] * (tab["observed_rate"] - tab["mean_predicted"]).abs()) / y.size
    assert expected_calibration_error(y, p) == pytest.approx(manual)
    # hand example, uniform bins: bin [0,0.5): p=.2,.4 y=0,1 ; bin [0.5,1]: p=.6,.8 y=1,1
    ece = expected_calibration_error([0, 1, 1, 1], [0.2, 0.4, 0.6, 0.8], 2, "uniform")
    assert ece == pytest.approx(0.5 * abs(0.5 - 0.3) + 0.5 * abs(1.0 - 0.7))


def test_hosmer_lemeshow_hand_example() -> None:
    # two groups of three: PDs {.1,.2,.3} with 1 default, {.6,.7,.8} with 3 defaults
    p = [0.1, 0.2, 0.3, 0.6, 0.7, 0.8]
    y = [0, 1, 0, 1, 1, 1]
    e1, e2 = 0.6, 2.1
    expect = (1 - e1) ** 2 / (e1 * (1 - e1 / 3)) + (3 - e2) ** 2 / (e2 * (1 - e2 / 3))
    stat, dof, pv = hosmer_lemeshow(y, p, groups=2, ddof=0)
    assert stat == pytest.approx(expect)
    assert dof == 2 and pv == pytest.approx(stats.chi2.sf(expect, 2))


def test_hl_and_spiegelhalter_detect_miscalibration() -> None:
    y, p, _ = _sim(5000, seed=9)
    # the PDs were not fitted on this sample, so dof = groups (ddof=0)
    assert hosmer_lemeshow(y, p, ddof=0)[2] > 0.05
    assert hosmer_lemeshow(y, np.minimum(2 * p, 1), ddof=0)[2] < 1e-6
    assert spiegelhalter(y, p)[1] > 0.05
    assert spiegelhalter(y, np.minimum(2 * p, 1))[1] < 1e-6


def test_hl_and_spiegelhalter_size_under_null() -> None:
    rng = np.random.default_rng(12)
    hl, sp = [], []
    for _ in range(200):
        p = rng.beta(2, 6, 400)
        y = (rng.random(400) < p).astype(int)
        hl.append(hosmer_lemeshow(y, p, ddof=0)[2])  # PDs not fitted on this sample
        sp.append(spiegelhalter(y, p)[1])
    assert 0.01 <= np.mean(np.asarray(hl) < 0.05) <= 0.11
    assert 0.01 <= np.mean(np.asarray(sp) < 0.05) <= 0.11


def test_spiegelhalter_formula_by_hand() -> None:
    p = np.array([0.1, 0.3, 0.8, 0.6])
    y = np.array([0, 1, 1, 0])
    num = sum((y - p) * (1 - 2 * p))
    den = np.sqrt(sum((1 - 2 * p) ** 2 * p * (1 - p)))
    z, pv = spiegelhalter(y, p)
    assert z == pytest.approx(num / den) and pv == pytest.approx(2 * stats.norm.sf(abs(num / den)))


def test_grade_tests_equal_scipy_references() -> None:
    y, p, _ = _sim(3000, seed=10)
    g = _grade_of(p)
    tab = grade_calibration(g, y, p, GRADES, alternative="greater")
    for row in tab.itertuples():
        ref = stats.binomtest(int(row.defaults), int(row.n), row.predicted_pd,
                              alternative="greater").pvalue
        assert row.binomial_p == pytest.approx(ref)
        jef = stats.beta.cdf(row.predicted_pd, row.defaults + 0.5, row.n - row.defaults + 0.5)
        assert row.jeffreys_p == pytest.approx(jef)
    two = jeffreys_p_value([5], [100], [0.02], "two-sided")[0]
    c = stats.beta.cdf(0.02, 5.5, 95.5)
    assert two == pytest.approx(2 * min(c, 1 - c))


def test_miscalibrated_pd_turns_grades_red_calibrated_stays_green() -> None:
    y, p, _ = _sim(20000, seed=13)
    g = _grade_of(p)
    good = grade_calibration(g, y, p, GRADES)
    assert (good["light"] != "red").all()
    assert (good["light"] == "green").sum() >= 8
    bad = grade_calibration(g, y, p / 2, GRADES)
    assert (bad["light"] == "red").sum() >= 9
    # over-prediction is only flagged two-sided
    over = grade_calibration(g, y, np.minimum(2 * p, 1), GRADES)
    assert (over["light"] == "green").all()
    over2 = grade_calibration(g, y, np.minimum(2 * p, 1), GRADES, alternative="two-sided")
    assert (over2["light"] == "red").sum() >= 9


def test_grade_calibration_empty_grade_and_light_levels() -> None:
    tab = grade_calibration(["A1"] * 50, [1] * 5 + [0] * 45, [0.1] * 50, ["A1", "A2"],
                            green_p=0.5, red_p=0.2)
    assert tab.loc[1, "light"] == "n/a" and np.isnan(tab.loc[1, "observed_rate"])
    # 5 of 50 at PD 0.1: Jeffreys posterior P(PD <= 0.1) is about one half
    jp = tab.loc[0, "jeffreys_p"]
    expect = "green" if jp >= 0.5 else ("amber" if jp >= 0.2 else "red")
    assert tab.loc[0, "light"] == expect


# ----------------------------------------------------------------- stability


def test_psi_hand_example() -> None:
    expected = np.arange(10.0)  # quantile edges at 2.25, 4.5, 6.75 with 4 bins
    actual = np.array([0.0, 1, 2, 3, 4, 5, 5, 5, 5, 9])
    tab = psi_table(expected, actual, bins=4)
    e = np.array([0.3, 0.2, 0.2, 0.3])
    a = np.array([0.3, 0.2, 0.4, 0.1])
    assert tab["expected_share"].tolist() == pytest.approx(e)
    assert tab["actual_share"].tolist() == pytest.approx(a)
    assert psi(expected, actual, bins=4) == pytest.approx(np.sum((a - e) * np.log(a / e)))


def test_psi_identical_vs_shifted() -> None:
    rng = np.random.default_rng(14)
    x = rng.normal(size=5000)
    assert psi(x, x) == pytest.approx(0.0, abs=1e-12)
    assert psi(x, rng.normal(size=5000)) < 0.02
    assert psi(x, rng.normal(1.0, 1.0, 5000)) > 0.25


def test_profile_is_json_and_matches_direct_psi() -> None:
    rng = np.random.default_rng(15)
    ref = pd.DataFrame({"income": rng.lognormal(10, 1, 3000),
                        "village": rng.choice(["v1", "v2", "v3"], 3000),
                        "poor": rng.random(3000) < 0.2,
                        "age": np.where(rng.random(3000) < 0.05, np.nan,
                                        rng.integers(18, 80, 3000))})
    score = rng.normal(600, 50, 3000)
    prof = reference_profile(ref, ["income", "village", "poor", "age"], score=score)
    prof = json.loads(json.dumps(prof, allow_nan=False))  # as stored with a model
    cur = ref.assign(income=ref["income"] * 1.8,
                     village=rng.choice(["v1", "v2", "v4"], 3000))
    assert psi_from_profile(prof["columns"]["score"], score) == pytest.approx(0.0, abs=1e-12)
    assert psi_from_profile(prof["columns"]["income"], cur["income"]) == pytest.approx(
        psi(ref["income"], cur["income"]))
    tab = csi_table(ref, cur, ["income", "village", "poor", "age"])
    by = tab.set_index("column")
    assert by.loc["income", "alert"] == "red" and by.loc["poor", "alert"] == "green"
    assert by.loc["age", "csi"] == pytest.approx(0.0, abs=1e-12)
    assert by.loc["village", "csi"] > 0.25  # v3 vanished, unseen v4 appeared
    loose = csi_table(ref, cur, ["income"], thresholds=(5.0, 10.0))
    assert loose.loc[0, "alert"] == "green"


def test_migration_matrix() -> None:
    prev = ["A1", "A1", "B1", "B1", None, "A2"]
    new = ["A1", "B1", "A1", "B1", "A1", "A2"]
    m = migration_matrix(prev, new, ["A1", "A2", "B1"])
    assert m.loc["A1", "B1"] == 1 and m.loc["B1", "A1"] == 1 and m.to_numpy().sum() == 5
    s = migration_summary(m)
    assert s == {"n": 5, "stable": 0.6, "upgrade": 0.2, "downgrade": 0.2}
    shares = migration_matrix(prev, new, ["A1", "A2", "B1"], normalize=True)
    assert shares.loc["A1"].sum() == pytest.approx(1.0)


# ----------------------------------------------------------------- report


def test_validation_report_writes_html_and_round_tripping_json(tmp_path) -> None:
    y, p, _ = _sim(3000, seed=16)
    rng = np.random.default_rng(17)
    points = np.round(600 - 50 / np.log(2) * np.log(p / (1 - p)))
    g = _grade_of(p)
    feats = pd.DataFrame({"income": rng.lognormal(10, 1, 3000),
                          "village": rng.choice(["v1", "v2"], 3000)})
    prof = reference_profile(feats, score=points)
    challenger = {"name": "halved", "pd": p / 2}
    res = validation_report(
        y, p, points, g, GRADES, features_df=feats.assign(income=feats.income * 2),
        reference_profile=prof, prev_grades=np.roll(g, 7), challenger=challenger,
        fairness_summary={"elderly": pd.DataFrame({"group": ["60+"], "gap": [0.01]})},
        repro={"model_uri": "models:/village-credit/3", "numpy": np.__version__},
        config=ValidationConfig(hl_ddof=0))
    disc, cal = res["discrimination"], res["calibration"]
    assert disc["auc"] == pytest.approx(roc_auc_score(y, -points))
    assert disc["rank_ordering_monotone"] == bool(rank_ordering(g, y, GRADES)["monotone"].all())
    assert res["stability"]["score_psi"] == pytest.approx(0.0, abs=1e-12)
    assert res["stability"]["csi"].set_index("column").loc["income", "alert"] == "red"
    # 300 households a grade: halving the PD is visible in the riskier grades
    assert res["challenger"]["calibration"]["lights"]["red"] >= 5
    assert cal["lights"]["red"] == 0
    html_path, json_path = write_validation_report(res, tmp_path)
    html = html_path.read_text(encoding="utf-8")
    # ROC, CAP, reliability, grade pools, score PSI, reliability champion vs challenger
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart"') == 6
    assert "data:image/png" not in html  # one way to draw a chart: inline SVG
    assert "tl-red" in html and "Reproducibility" in html and "models:/village-credit/3" in html
    back = json.loads(json_path.read_text(encoding="utf-8"))
    assert back["discrimination"]["auc"] == pytest.approx(disc["auc"])
    assert len(back["calibration"]["grades"]) == len(GRADES)
    assert back["migration"]["summary"]["n"] == 3000
    assert json.loads(json.dumps(back)) == back


def test_drift_report_from_table_and_profile_agree(tmp_path) -> None:
    rng = np.random.default_rng(18)
    ref = pd.DataFrame({"x": rng.normal(size=2000), "c": rng.choice(["a", "b"], 2000)})
    cur = ref.assign(x=ref["x"] + 0.5)
    from_table = drift_report(ref, cur)
    prof = json.loads(json.dumps(reference_profile(ref)))
    from_prof = drift_report(prof, cur)
    pd.testing.assert_frame_equal(from_table["csi"], from_prof["csi"])
    assert from_table["alert"] == alert_level(from_table["csi"]["csi"].max())
    assert from_table["counts"]["green"] == 1
    html_path, json_path = write_drift_report(from_table, tmp_path)
    assert "data:image/png;base64," in html_path.read_text(encoding="utf-8")
    assert json.loads(json_path.read_text())["alert"] == from_table["alert"]


def test_policy_graded_households_leave_the_grade_back_test() -> None:
    """Vetoed households are graded E2 by policy whatever their PD; they must not turn E2 red."""
    from village_credit.validation import validation_report
    from village_credit.validation.report import POLICY_GRADED

    rng = np.random.default_rng(12)
    n = 20_000
    pd_ = rng.uniform(0.005, 0.2, n)
    order = ["A", "B", "C"]
    grades = np.where(pd_ < 0.03, "A", np.where(pd_ < 0.08, "B", "C")).astype(object)
    y = (rng.random(n) < pd_).astype(int)
    vetoed = rng.random(n) < 0.05
    y[vetoed] = (rng.random(vetoed.sum()) < 0.5).astype(int)  # far riskier than their PD says
    grades[vetoed] = "C"  # the policy's worst grade
    mixed = validation_report(y, pd_, None, grades, order)["calibration"]["grades"]
    assert mixed.set_index("grade").loc["C", "light"] == "red"
    clean = validation_report(y, pd_, None, grades, order, policy_graded=vetoed)["calibration"]
    table = clean["grades"].set_index("grade")
    assert (table.loc[order, "light"] != "red").all()
    assert table.loc[POLICY_GRADED, "n"] == vetoed.sum()
    assert table.loc[POLICY_GRADED, "light"] == "n/a"
    assert clean["lights"]["red"] == 0


# ---------------------------------------------------------------- edge cases (issue 15)


@pytest.mark.parametrize("single", [1, 0])
def test_delong_with_a_single_default_or_non_default_has_no_variance(single: int) -> None:
    """One default (or one non-default): no DeLong variance, so no CI and no test."""
    rng = np.random.default_rng(3)
    y = np.full(300, 1 - single)
    y[17] = single
    a, b = rng.random(300), rng.random(300)
    auc, se, lo, hi = auc_delong(y, a)
    assert np.isfinite(auc) and np.isnan(se) and np.isnan(lo) and np.isnan(hi)
    _, _, diff, z, pv = delong_test(y, a, b)
    assert np.isfinite(diff) and np.isnan(z) and np.isnan(pv)
    # two of each class: finite again
    y[18] = single
    assert np.isfinite(auc_delong(y, a)[1])


def _jeffreys_interval(d: int, n: int) -> tuple[float, float]:
    """statsmodels' Jeffreys interval with Brown, Cai & DasGupta's (2001) boundary rule:
    lower bound 0 at zero defaults, upper bound 1 when all defaulted (statsmodels 0.15
    returns the raw beta quantiles there)."""
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(d, n, alpha=0.05, method="jeffreys")
    return (0.0 if d == 0 else lo), (1.0 if d == n else hi)


def test_jeffreys_boundary_cases_follow_the_jeffreys_interval() -> None:
    """PD 0 with 0 defaults, PD 1 with all defaulted, PD 1e-7 with 0 of 100: green."""
    cases = [(0, 100, 0.0), (100, 100, 1.0), (0, 100, 1e-7), (0, 5, 0.0), (7, 7, 1.0)]
    for d, n, pd_ in cases:
        lo, hi = _jeffreys_interval(d, n)
        assert lo <= pd_ <= hi  # the PD is inside the Jeffreys interval
        for alt in ("greater", "two-sided", "less"):
            assert jeffreys_p_value([d], [n], [pd_], alt)[0] >= 0.05, (d, n, pd_, alt)
    gc = grade_calibration(["A", "A", "B", "B"], [0, 0, 1, 1], [0.0, 0.0, 1.0, 1.0], ["A", "B"])
    assert gc["light"].tolist() == ["green", "green"]
    # but a clear miss is still caught on the side that has evidence
    assert jeffreys_p_value([0], [100], [0.2], "less")[0] < 0.01
    assert jeffreys_p_value([100], [100], [0.5], "greater")[0] < 0.01


def test_jeffreys_two_sided_agrees_with_statsmodels_interval() -> None:
    """Inside the 95 % Jeffreys interval <=> two-sided p >= 0.05, on a grid of cases."""
    for n in (1, 5, 40):
        for d in range(0, n + 1, max(1, n // 8)):
            lo, hi = _jeffreys_interval(d, n)
            for pd_ in np.linspace(0.0, 1.0, 41):
                inside = lo - 1e-9 <= pd_ <= hi + 1e-9
                far = min(abs(pd_ - lo), abs(pd_ - hi)) > 1e-6
                if far:
                    p = jeffreys_p_value([d], [n], [pd_], "two-sided")[0]
                    assert (p >= 0.05) == inside, (d, n, pd_, p, lo, hi)


def test_psi_counts_infinite_scores_alike_in_reference_and_current() -> None:
    """Two samples of one distribution with some infinite scores: PSI ~ 0."""
    rng = np.random.default_rng(5)

    def draw(seed: int) -> np.ndarray:
        r = np.random.default_rng(seed)
        x = r.normal(size=20_000)
        x[r.random(20_000) < 0.05] = np.inf
        x[r.random(20_000) < 0.05] = -np.inf
        return x

    ref, cur = draw(1), draw(2)
    prof = reference_profile(pd.DataFrame({"s": ref}))["columns"]["s"]
    assert abs(sum(prof["expected"]) + prof["missing_share"] - 1.0) < 1e-12
    assert psi(ref, cur) < 0.01
    assert psi(ref, ref) == pytest.approx(0.0, abs=1e-12)
    del rng


def test_over_prediction_in_every_grade_cannot_read_green() -> None:
    """Every grade over-predicted (one-sided lights all green): the verdict still fails,
    on the two-sided overall calibration test."""
    rng = np.random.default_rng(8)
    n = 20_000
    true_pd = np.clip(rng.lognormal(np.log(0.03), 0.8, n), 1e-4, 0.5)
    y = (rng.random(n) < true_pd).astype(int)
    pd_pred = np.clip(true_pd * 1.8, 0, 0.99)  # over-predicts everywhere
    order = ["A", "B", "C", "D"]
    grades = np.array(order)[np.searchsorted(np.quantile(pd_pred, [0.25, 0.5, 0.75]), pd_pred)]
    res = validation_report(y, pd_pred, -pd_pred, grades, order)
    cal = res["calibration"]
    assert cal["lights"]["green"] == 4  # the one-sided grade test sees nothing wrong
    assert cal["in_the_large"]["ratio"] < 0.7 and cal["in_the_large"]["p_value"] < 1e-6
    assert res["verdict"]["verdict"] == "fail"
    assert any("calibration in the large" in r for r in res["verdict"]["reasons"])
    # well calibrated on the same households: no calibration reason to fail
    ok = validation_report(y, true_pd, -true_pd, grades, order)
    assert not any("calibration in the large" in r for r in ok["verdict"]["failing"])


def test_one_hosmer_lemeshow_convention() -> None:
    """The report and pipeline.evaluate use the same stated convention (dof = groups)."""
    from village_credit.validation import HL_DDOF_INDEPENDENT, HL_GROUPS

    rng = np.random.default_rng(2)
    p = rng.uniform(0.01, 0.2, 5000)
    y = (rng.random(5000) < p).astype(int)
    res = validation_report(y, p, -p, np.array(["A"] * 5000), ["A"])
    hl = res["calibration"]["hosmer_lemeshow"]
    stat, dof, pv = hosmer_lemeshow(y, p, HL_GROUPS, HL_DDOF_INDEPENDENT)
    assert (hl["dof"], hl["p_value"]) == (dof, pv) and dof == HL_GROUPS
    assert ValidationConfig().hl_ddof == HL_DDOF_INDEPENDENT == 0


# ----------------------------------------------------------------- stability with its noise
@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.floats(0.0, 1.0), st.just(float("nan"))), min_size=1, max_size=40))
def test_holm_equals_statsmodels(p: list[float]) -> None:
    import gc
    from unittest import mock

    from statsmodels.stats.multitest import multipletests

    from village_credit.validation.stability import holm

    arr = np.asarray(p, dtype=float)
    got = holm(arr)
    ok = np.isfinite(arr)
    assert np.isnan(got[~ok]).all()
    if ok.any():
        # statsmodels runs gc.collect() on every call (0.3 s each in a pytest worker holding
        # models: 45 CPU s over the examples); the arithmetic compared is statsmodels' own.
        with mock.patch.object(gc, "collect", return_value=0):
            ref = multipletests(arr[ok], method="holm")[1]
        np.testing.assert_allclose(got[ok], ref, rtol=1e-12)


def test_psi_p_value_holds_its_level_under_no_change() -> None:
    """Two draws of one population: p < 0.05 in about 5 % of pairs, at 100 rows (chi2) and
    at 40 rows (merged bins, permutation), while the PSI itself often passes 0.1."""
    from village_credit.validation.stability import psi_test

    rng = np.random.default_rng(30)
    for n, method in ((100, "permutation"), (400, "chi2")):
        res = [psi_test(rng.normal(size=n), rng.normal(size=n), seed=i) for i in range(200)]
        assert {r["method"] for r in res} == {method}
        rate = np.mean([r["p_value"] < 0.05 for r in res])
        assert 0.01 <= rate <= 0.10, (n, rate)
    small = psi_test(rng.normal(size=30), rng.normal(size=200))
    assert small["bins"] == 5 and small["min_expected"] >= 5  # deciles of 3 rows, merged in pairs
    assert np.mean([psi_test(rng.normal(size=100), rng.normal(size=100))["psi"] > 0.1
                    for _ in range(50)]) > 0.3  # the fixed cut-off alone would cry wolf
    moved = psi_test(rng.normal(size=100), rng.normal(0.8, 1, size=100))
    assert moved["p_value"] < 0.001
    one = psi_test(np.zeros(50), np.zeros(50))
    assert one["method"] == "one bin" and np.isnan(one["psi"]) and np.isnan(one["p_value"])


def test_zero_share_moves_when_the_non_zero_share_doubles() -> None:
    from village_credit.validation.stability import reference_profile, zero_share_table

    rng = np.random.default_rng(31)
    ref = pd.DataFrame({"dpd": (rng.random(5000) < 0.016) * rng.integers(1, 90, 5000),
                        "age": rng.integers(18, 80, 5000)})
    doubled = ref.assign(dpd=(rng.random(5000) < 0.036) * rng.integers(1, 90, 5000))
    same = ref.assign(dpd=(rng.random(5000) < 0.016) * rng.integers(1, 90, 5000))
    t = zero_share_table(ref, doubled, ["dpd", "age"]).set_index("column")
    assert list(t.index) == ["dpd"]  # age is not zero-inflated
    assert t.loc["dpd", "ratio"] > 1.5 and t.loc["dpd", "alert"] in ("amber", "red")
    assert t.loc["dpd", "p_holm"] < 0.01
    assert zero_share_table(ref, same, ["dpd"])["alert"].tolist() == ["green"]
    # from a stored profile (what a registered model carries), the same answer
    prof = json.loads(json.dumps(reference_profile(ref)))
    from_prof = zero_share_table(None, doubled, ["dpd"], profile=prof)
    assert from_prof["alert"].tolist() == [t.loc["dpd", "alert"]]
    assert from_prof["p_value"].iloc[0] == pytest.approx(t.loc["dpd", "p_value"])
