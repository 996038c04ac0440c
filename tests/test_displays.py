"""The plotting displays draw the right data: checked on the drawn artists, not on pixels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.text import Text

from village_credit.binning import bin_index
from village_credit.reporting import displays as D
from village_credit.validation.calibration import reliability_table


def _rule_like(n: int = 3000, seed: int = 0):
    """A points standard: few distinct PDs, so quantile bins collapse (6 of 10 here)."""
    rng = np.random.default_rng(seed)
    levels = np.array([0.01, 0.015, 0.02, 0.03, 0.05, 0.08])
    p = rng.choice(levels, size=n, p=[0.3, 0.2, 0.2, 0.15, 0.1, 0.05])
    true_pd = np.clip(p * rng.lognormal(0, 0.3, n), 0, 1)
    y = rng.random(n) < true_pd
    return y, p, true_pd


def test_reliability_averages_truth_over_the_same_bins_as_the_prediction():
    y, p, true_pd = _rule_like()
    disp = D.ReliabilityDisplay.from_predictions(y, p, true_pd=true_pd, n_bins=10)
    t = disp.table
    assert len(t) < 10  # ties collapse bins: the old notebook cut 10 deciles to this length
    # each bin's truth is the mean true PD of exactly the households in that bin
    for _, row in t.iterrows():
        members = bin_index(p, 10) == row["bin"]
        assert row["mean_predicted"] == pytest.approx(p[members].mean())
        assert row["n"] == members.sum()
        assert row["mean_true_pd"] == pytest.approx(true_pd[members].mean())
    xy = disp.truth_line_.get_xydata()
    np.testing.assert_allclose(xy[:, 0], t["mean_predicted"])
    np.testing.assert_allclose(xy[:, 1], t["mean_true_pd"])
    # the top bins show the riskiest households' truth, not the middle deciles'
    assert xy[-1, 1] > xy[0, 1]
    np.testing.assert_allclose(disp.observed_line_.get_xydata()[:, 1], t["observed_rate"])


def test_reliability_matches_the_validation_table():
    y, p, true_pd = _rule_like(seed=1)
    disp = D.ReliabilityDisplay.from_predictions(y, p, true_pd=true_pd)
    tab = reliability_table(y, p, true_pd=true_pd)
    np.testing.assert_allclose(disp.table["mean_predicted"], tab["mean_predicted"])
    np.testing.assert_allclose(disp.table["mean_true_pd"], tab["mean_true_pd"])
    np.testing.assert_array_equal(disp.table["n"], tab["n"])


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=5, max_size=200), st.integers(1, 12))
def test_reliability_bins_cover_every_row(ps, n_bins):
    p = np.array(ps)
    y = p > 0.5
    t = D.ReliabilityDisplay.compute(y, p, true_pd=p, n_bins=n_bins)
    assert t["n"].sum() == len(p)
    assert len(t) <= n_bins
    assert (np.diff(t["mean_predicted"]) >= 0).all()


def test_score_distribution_shares_sum_to_one_per_group():
    rng = np.random.default_rng(0)
    s = rng.normal(size=500)
    g = np.where(rng.random(500) < 0.3, "default", "no default")
    disp = D.ScoreDistributionDisplay.from_predictions(s, g, bins=20)
    for _, d in disp.table.groupby("group"):
        assert d["share"].sum() == pytest.approx(1.0)
    assert set(disp.table["group"]) == {"default", "no default"}


def _by_group():
    rows = []
    for g, n_in in (("elderly_60plus", 40), ("formerly_poor", 25)):
        for in_group, n in ((True, n_in), (False, 100 - n_in)):
            for i, f in enumerate(["a", "b", "c"]):
                rows.append({"group": g, "in_group": in_group, "n": n, "feature": f,
                             "label_en": f"feature {f}", "label_zh": f"特征{f}",
                             "mean_abs_shap": (i + 1) * (2.0 if in_group else 1.0), "mean_shap": 0.0})
    return pd.DataFrame(rows)


def test_group_importance_bars_are_the_table_and_legend_sits_below_the_axes():
    tab = _by_group()
    disp = D.GroupImportanceDisplay.from_table(tab, top_n=2, lang="en")
    assert len(disp.ax_) == 2
    ax = disp.ax_[0]
    widths = sorted(round(b.get_width(), 6) for b in ax.patches)
    assert widths == sorted([2.0, 3.0, 4.0, 6.0])  # top 2 features, group and others
    got = disp.plotted.query("group == 'elderly_60plus' and in_group")["mean_abs_shap"].tolist()
    assert got == [4.0, 6.0]
    disp.figure_.canvas.draw()
    legend_box = ax.get_legend().get_window_extent()
    axes_box = ax.get_window_extent()
    assert legend_box.y1 <= axes_box.y0 + 1  # under the axes: covers no bar


def test_chinese_labels_fall_back_to_english_with_a_notice_without_a_cjk_font(monkeypatch):
    monkeypatch.setattr(D, "cjk_font", lambda: None)
    disp = D.GroupImportanceDisplay.from_table(_by_group(), lang="zh")
    ticks = [t.get_text() for t in disp.ax_[0].get_yticklabels()]
    assert ticks and all(t.startswith("feature") for t in ticks)
    assert disp.notice == D.CJK_FONT_HINT
    assert D.CJK_FONT_HINT in [t.get_text() for t in disp.figure_.texts]


def test_chinese_labels_are_drawn_with_a_cjk_font_when_installed(monkeypatch):
    if D.cjk_font() is None:
        monkeypatch.setattr(D, "cjk_font", lambda: "DejaVu Sans")  # the branch, not the glyphs
    disp = D.GroupImportanceDisplay.from_table(_by_group(), lang="zh")
    ticks = [t.get_text() for t in disp.ax_[0].get_yticklabels()]
    assert all(t.startswith("特征") for t in ticks)
    assert disp.notice is None
    fam = D.cjk_font()
    assert all(t.get_fontfamily()[0] == fam for t in disp.ax_[0].get_yticklabels())


def test_approval_by_group_bars_and_intervals():
    tab = pd.DataFrame({"system": ["rules", "rules", "blend", "blend"], "group": ["<60", "60+"] * 2,
                        "n": [700, 300, 700, 300], "value": [0.9, 0.4, 0.92, 0.9],
                        "ci_low": [0.88, 0.35, 0.9, 0.86], "ci_high": [0.92, 0.45, 0.94, 0.93]})
    disp = D.ApprovalByGroupDisplay.from_table(tab, group_order=["<60", "60+"])
    assert [b.get_height() for b in disp.bars_["rules"]] == pytest.approx([0.9, 0.4])
    assert [b.get_height() for b in disp.bars_["blend"]] == pytest.approx([0.92, 0.9])
    labels = [t.get_text() for t in disp.ax_.get_xticklabels()]
    assert labels == ["<60\n(n=700)", "60+\n(n=300)"]


def test_equal_risk_panels_and_hollow_unchecked_cells():
    rows = []
    for comp in ("elderly", "formerly_poor"):
        for d in range(1, 11):
            rows.append({"system": "blend", "comparison": comp, "decile": d, "gap_approval": 0.01 * d,
                         "checked": d < 9})
    disp = D.EqualRiskDisplay.from_table(pd.DataFrame(rows), comparison_labels={"elderly": "60+"})
    assert len(disp.ax_) == 2
    lines = disp.ax_[0].get_lines()
    main = lines[0].get_xydata()
    np.testing.assert_allclose(main[:, 1], [0.01 * d for d in range(1, 11)])
    hollow = lines[1]
    assert hollow.get_markerfacecolor() == "white"
    np.testing.assert_allclose(hollow.get_xdata(), [9, 10])
    assert disp.ax_[0].get_title() == "60+ vs others"


def _trade():
    return pd.DataFrame({
        "option": ["policy:jinxiang_2022", "policy:jinxiang_2022_no_age_cutoff", "gbm", "blend",
                   "blend + ThresholdOptimizer (demographic_parity)"],
        "approval_rate": [0.55, 0.7, 0.9, 0.92, 0.73],
        "true_pd_approved": [0.030, 0.031, 0.035, 0.036, 0.029],
        "er_max_gap_approval": [0.4, 0.1, 0.06, 0.06, 0.02],
        "approval_gap_elderly": [0.5, 0.05, 0.03, 0.03, 0.01],
    })


def test_tradeoff_shows_the_approval_rate_of_every_option():
    disp = D.TradeoffDisplay.from_table(_trade())
    pts = disp.points
    assert disp.x == "er_max_gap_approval" and disp.y == "true_pd_approved"
    np.testing.assert_allclose(pts["approval_rate"], _trade()["approval_rate"])
    bars = sorted(b.get_width() for b in disp.ax_[1].patches)
    assert bars == pytest.approx(sorted(_trade()["approval_rate"]))
    # the scatter carries numbers, not long names: no overprinted labels
    assert [a.get_text() for a in disp.labels_] == ["1", "2", "3", "4", "5"]
    names = [t.get_text() for t in disp.ax_[1].get_yticklabels()]
    assert any("ThresholdOptimizer" in n for n in names)
    assert "best" not in " ".join(ax.get_title() for ax in disp.ax_)
    offsets = np.asarray(disp.ax_[0].collections[0].get_offsets())
    np.testing.assert_allclose(sorted(offsets[:, 0]), sorted(_trade()["er_max_gap_approval"]))


def _label_boxes(disp):
    disp.figure_.canvas.draw()
    return [Text.get_window_extent(a) for a in disp.labels_]  # the numbers, not their leader lines


def test_tradeoff_axes_start_at_zero_and_coinciding_options_stay_readable():
    """A 0.02-point risk difference must not fill the y-axis; options at the same spot
    (4 and 5 in notebook 04) keep a readable number each, and small markers sit on top."""
    t = _trade()
    t.loc[4, ["true_pd_approved", "er_max_gap_approval"]] = [0.0361, 0.061]  # on top of "blend"
    disp = D.TradeoffDisplay.from_table(t)
    ax = disp.ax_[0]
    assert ax.get_ylim()[0] == 0 and ax.get_xlim()[0] == 0
    y_lo, y_hi = ax.get_ylim()
    assert (t["true_pd_approved"].max() - t["true_pd_approved"].min()) / (y_hi - y_lo) < 0.3
    boxes = _label_boxes(disp)
    assert len(boxes) == len(t)
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    sizes = disp.ax_[0].collections[0].get_sizes()
    assert list(sizes) == sorted(sizes, reverse=True)  # drawn largest first


def test_percent_tick_labels_say_the_tick_value():
    """The NPL panel of notebook 06 labelled 2.5 % as "2%" and 12.5 % as "13%"."""
    v = pd.DataFrame({"npl_ratio": [0.0, 0.02, 0.06, 0.125], "is_credit_village": pd.array([True, True, False, False],
                                                                                       dtype="boolean")})
    disp = D.CreditVillageDisplay.from_table(v, {"npl_ratio": ("<=", 0.02)})
    ax = disp.ax_[0]
    disp.figure_.canvas.draw()
    lo, hi = ax.get_ylim()
    for loc, label in zip(ax.get_yticks(), ax.get_yticklabels(), strict=True):
        if lo <= loc <= hi:
            assert float(label.get_text().replace("%", "").replace("\N{MINUS SIGN}", "-")) == pytest.approx(loc * 100)


def test_grade_back_test_hatches_grades_with_few_households():
    """Grade E1 with n = 1 drew a full-height green 100 % bar."""
    g = pd.DataFrame({"grade": ["A1", "E1"], "n": [1341, 1], "predicted_pd": [0.015, 0.4],
                      "observed_rate": [0.009, 1.0], "light": ["green", "green"]})
    disp = D.GradeBackTestDisplay.from_table(g)
    big, small = disp.bars_
    assert disp.small_ == [False, True]
    assert small.get_hatch() == "///" and small.get_facecolor()[3] == 0  # an outline, not a solid bar
    assert big.get_hatch() is None and big.get_facecolor()[3] == 1
    assert small.get_height() == pytest.approx(1.0)  # the data is still drawn
    assert "fewer than 30 households" in disp.ax_.get_xlabel()


def test_formats_fixed_decimals_and_yuan():
    assert D.fmt_rate(0.78) == "0.780"
    assert D.fmt_rate(float("nan")) == ""
    assert D.fmt_yuan(53800.0) == "53,800"
    assert D.fmt_yuan(1234567.4) == "1,234,567"
    assert D.fmt_number(0.78) == "0.780" and D.fmt_number(53800.0) == "53,800"
    assert D.fmt_number(0.0008) == "0.0008" and D.fmt_number(float("nan")) == "NaN"
    assert "e" not in D.fmt_number(1.5e-7) + D.fmt_number(2.5e9)


def test_grade_back_test_labels_do_not_overlap_and_bars_are_the_rates():
    g = pd.DataFrame({"grade": ["A1", "D2", "E1", "E2", "vetoed (graded by policy)"],
                      "n": [1341, 0, 0, 0, 173], "predicted_pd": [0.015, np.nan, np.nan, np.nan, 0.048],
                      "observed_rate": [0.009, np.nan, np.nan, np.nan, 0.133],
                      "light": ["green", "n/a", "n/a", "n/a", "n/a"]})
    disp = D.GradeBackTestDisplay.from_table(g)
    assert [b.get_height() for b in disp.bars_] == pytest.approx([0.009, 0, 0, 0, 0.133])
    np.testing.assert_allclose(disp.predicted_.get_ydata(), g["predicted_pd"])
    assert disp.tick_labels[-1] == "vetoed\nn=173" and disp.tick_labels[0] == "A1\nn=1,341"
    fig = disp.figure_
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in disp.ax_.get_xticklabels()]
    assert all(a.x1 <= b.x0 for a, b in zip(boxes, boxes[1:], strict=False))  # left to right, no overlap
    assert "vetoed (graded by policy)" in disp.ax_.get_xlabel()


def test_credit_village_display_draws_every_test():
    v = pd.DataFrame({"on_file_share": [0.95, 0.80, 0.99], "granted_share": [0.6, 0.7, 0.4],
                      "npl_ratio": [0.01, 0.0, np.nan], "a_share": [0.6, 0.7, 0.8],
                      "npl_at_most_county": pd.array([True, True, pd.NA], dtype="boolean"),
                      "is_credit_village": pd.array([True, False, False], dtype="boolean")})
    tests = {"on_file_share": (">=", 0.9), "granted_share": (">=", 0.5), "npl_ratio": ("<=", 0.02),
             "a_share": (">", 0.55), "npl_at_most_county": ("is", True)}
    disp = D.CreditVillageDisplay.from_table(v, tests)
    assert len(disp.ax_) == len(tests)
    r = disp.results.set_index("test")
    assert r.loc["on_file_share", "fail"] == 1  # the village the old two-test scatter hid
    assert r.loc["granted_share", "fail"] == 1 and r.loc["npl_ratio", "unknown"] == 1
    assert r.loc["npl_at_most_county", "pass"] == 2 and r.loc["npl_at_most_county", "unknown"] == 1
    offsets = np.asarray(disp.ax_[0].collections[0].get_offsets())
    np.testing.assert_allclose(offsets[:, 1], v["on_file_share"])
    colors = disp.ax_[0].collections[0].get_facecolors()
    assert tuple(np.round(colors[0][:3], 2)) != tuple(np.round(colors[1][:3], 2))


def test_from_estimator_scores_with_the_estimator():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    X = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400)})
    y = (X["a"] + rng.normal(size=400) > 1).astype(int)
    clf = LogisticRegression().fit(X, y)
    disp = D.ReliabilityDisplay.from_estimator(clf, X, y, n_bins=5)
    direct = D.ReliabilityDisplay.compute(y, clf.predict_proba(X)[:, 1], n_bins=5)
    pd.testing.assert_frame_equal(disp.table, direct)
    assert disp.name == "LogisticRegression"
    dist = D.ScoreDistributionDisplay.from_estimator(clf, X, np.where(y == 1, "default", "none"), bins=10)
    assert dist.table.groupby("group")["share"].sum().round(6).eq(1).all()
    with pytest.raises(Exception, match="predict_pd nor predict_proba"):
        D.predicted_pd(object(), X)


def test_reliability_curves_of_two_models_share_one_axes():
    rng = np.random.default_rng(4)
    p = rng.beta(1, 20, 2000)
    y = rng.random(2000) < p
    a = D.ReliabilityDisplay(reliability_table(y, p)).plot(label="champion")
    D.ReliabilityDisplay(reliability_table(y, np.clip(p * 1.3, 0, 1))).plot(ax=a.ax_, diagonal=False,
                                                                            label="challenger")
    labels = [line.get_label() for line in a.ax_.get_lines()]
    assert labels == ["perfect calibration", "champion: observed default rate",
                      "challenger: observed default rate"]
    xmax = a.ax_.get_xlim()[1]
    assert all(line.get_xdata().max() <= xmax for line in a.ax_.get_lines()[1:])  # no curve cut off


def test_validation_score_distribution_has_an_x_label_and_its_legend_off_the_bars():
    from village_credit.validation.report import _plot_psi

    tab = pd.DataFrame({"bin": [f"b{i}" for i in range(10)], "expected_share": [0.1] * 10,
                        "actual_share": [0.05, 0.15, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]})
    import xml.etree.ElementTree as ET

    ns = "{http://www.w3.org/2000/svg}"
    root = ET.fromstring(_plot_psi(tab, "Score"))  # inline SVG since issue 26 (no matplotlib)
    (xlabel,) = [t for t in root.iter(f"{ns}text") if t.get("class") == "xlabel"]
    assert xlabel.text == "score bin (edges from the reference)"
    legend = next(g for g in root.iter(f"{ns}g") if g.get("class") == "legend").find(f"{ns}rect")
    lx, lw = float(legend.get("x")), float(legend.get("width"))
    bars = [e for e in root.iter(f"{ns}rect") if e.get("class") == "bar"]
    assert len(bars) == 20
    assert all(float(b.get("x")) + float(b.get("width")) < lx for b in bars)  # beside the bars, never over
    assert lx + lw <= float(root.get("width"))  # and inside the picture
