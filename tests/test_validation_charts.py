"""The validation report's charts (inline SVG): every mark is there and says its number.

Why: an SVG chart is drawn from the report's tables by hand-written code; a chart that
lost a grade, a bin or a point would still look like a chart. Each test parses the SVG
and checks its marks one for one against the table it was drawn from.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from village_credit.reporting.html import HtmlReport
from village_credit.reporting.svg import SvgChart, nice_ticks, percent_labels
from village_credit.validation import reference_profile, validation_report, write_validation_report
from village_credit.validation.report import (
    _plot_cap,
    _plot_grades,
    _plot_psi,
    reliability_svg,
    _plot_roc,
)

NS = "{http://www.w3.org/2000/svg}"
GRADES = [f"G{i:02d}" for i in range(1, 10)]


@pytest.fixture(scope="module")
def report() -> dict:
    """A validation result with every chart: challenger, reference profile, thin grades."""
    rng = np.random.default_rng(16)
    n = 3000
    p = rng.beta(2, 12, n)
    y = (rng.random(n) < p).astype(int)
    edges = [0.03, 0.06, 0.09, 0.12, 0.16, 0.2, 0.25, 0.3]
    g = np.asarray(GRADES, dtype=object)[np.searchsorted(edges, p)]
    points = np.round(600 - 50 / np.log(2) * np.log(p / (1 - p)))
    feats = pd.DataFrame({"income": rng.lognormal(10, 1, n)})
    prof = reference_profile(feats, score=points)
    return validation_report(y, p, points, g, GRADES, features_df=feats, reference_profile=prof,
                             challenger={"name": "halved", "pd": p / 2})


def _svg(text: str) -> ET.Element:
    root = ET.fromstring(text)
    assert root.tag == f"{NS}svg"
    return root


def _marks(root: ET.Element, tag: str, cls: str, series: str | None = None) -> list[ET.Element]:
    return [e for e in root.iter(f"{NS}{tag}") if e.get("class") == cls
            and (series is None or e.get("data-series") == series)]


def test_grade_chart_has_one_bar_and_one_predicted_mark_per_pool(report: dict) -> None:
    pools = report["calibration"]["pools"]
    root = _svg(_plot_grades(pools, "rows"))
    bars = _marks(root, "rect", "bar", "observed")
    pred = _marks(root, "line", "point", "predicted")
    assert len(bars) == len(pred) == len(pools) >= 3
    np.testing.assert_allclose([float(b.get("data-y")) for b in bars], pools["observed_rate"], rtol=1e-5)
    np.testing.assert_allclose([float(m.get("data-y")) for m in pred], pools["predicted_pd"], rtol=1e-5)
    # each bar carries its pool's light colour, and names its pool in the hover title
    colours = {"green": "#4caf50", "amber": "#ffb300", "red": "#e53935"}
    for bar, (_, row) in zip(bars, pools.iterrows(), strict=True):
        assert bar.get("fill") == colours.get(row["light"], "#bdbdbd")
        assert bar.find(f"{NS}title").text.startswith(f"{row['grade']}: ")
    labels = ["".join(t.itertext()) for t in root.iter(f"{NS}text")]
    for _, row in pools.iterrows():
        assert f"n={int(row['n']):,}" in "".join(labels)


def test_thin_pools_are_hatched_outlines_and_said_so() -> None:
    pools = pd.DataFrame({"grade": ["A", "B", "vetoed (graded by policy)"], "n": [200, 12, 40],
                          "predicted_pd": [0.05, 0.2, 0.5], "observed_rate": [0.04, 0.25, np.nan],
                          "light": ["green", "amber", "n/a"]})
    svg = _plot_grades(pools, "rows")
    root = _svg(svg)
    bars = _marks(root, "rect", "bar", "observed")
    assert ["-hatch" in b.get("fill") for b in bars] == [False, True, False]
    assert float(bars[2].get("data-y")) == 0.0  # no observed rate: an empty bar, not a missing one
    assert "hatched: fewer than 30 rows (weak evidence)" in svg
    assert "vetoed (graded by policy): no traffic light" in svg
    assert "bar colour = traffic light (Jeffreys test, Holm across the pools); grey = not tested" in svg
    assert "(binomial test, Holm" in _plot_grades(pools, "rows", test="binomial")


def test_reliability_chart_has_one_point_per_bin_at_its_values(report: dict) -> None:
    tab = report["calibration"]["reliability"]
    root = _svg(reliability_svg([("model", tab)]))
    pts = _marks(root, "circle", "point", "model: observed")
    assert len(pts) == len(tab) == 10
    np.testing.assert_allclose([float(c.get("data-x")) for c in pts], tab["mean_predicted"], rtol=1e-5)
    np.testing.assert_allclose([float(c.get("data-y")) for c in pts], tab["observed_rate"], rtol=1e-5)
    (line,) = _marks(root, "polyline", "line", "model: observed")
    assert int(line.get("data-n")) == len(line.get("points").split()) == len(tab)


def test_reliability_with_the_truth_draws_the_truth_curve_and_observed_dots() -> None:
    tab = pd.DataFrame({"bin": [0, 1, 2], "n": [50, 50, 50], "mean_predicted": [0.05, 0.1, 0.2],
                        "observed_rate": [0.04, 0.12, 0.18], "mean_true_pd": [0.05, 0.11, 0.19]})
    root = _svg(reliability_svg([("model", tab)]))
    assert len(_marks(root, "circle", "point", "model: mean true PD")) == 3
    assert [float(c.get("data-y")) for c in _marks(root, "circle", "point", "model: observed")] == [0.04, 0.12, 0.18]


def test_roc_and_cap_lines_pass_through_every_point(report: dict) -> None:
    disc = report["discrimination"]
    for svg, frame, cols in ((_plot_roc(disc, report["challenger"]), disc["roc"], ("fpr", "tpr")),
                             (_plot_cap(disc, report["sample"]["default_rate"]), disc["cap"],
                              ("population_share", "defaults_share"))):
        root = _svg(svg)
        (line,) = _marks(root, "polyline", "line", "model")
        xy = np.array([[float(v) for v in pt.split(",")] for pt in line.get("points").split()])
        assert len(xy) == len(frame)
        # back from pixels to the data (the plot area: 58 px from the left, 30 from the top)
        width, height = 440 - 58 - 16, 400 - 30 - 46
        np.testing.assert_allclose((xy[:, 0] - 58) / width, frame[cols[0]], atol=0.01 / width)
        np.testing.assert_allclose(1 - (xy[:, 1] - 30) / height, frame[cols[1]], atol=0.01 / height)
    assert len(_marks(_svg(_plot_roc(disc, report["challenger"])), "polyline", "line", "challenger")) == 1


def test_psi_chart_has_two_bars_per_bin(report: dict) -> None:
    tab = report["stability"]["score_bins"]
    root = _svg(_plot_psi(tab, "Score", "rows"))
    ref, sample = _marks(root, "rect", "bar", "reference"), _marks(root, "rect", "bar", "sample")
    assert len(ref) == len(sample) == len(tab)
    np.testing.assert_allclose([float(b.get("data-y")) for b in ref], tab["expected_share"], rtol=1e-5)
    np.testing.assert_allclose([float(b.get("data-y")) for b in sample], tab["actual_share"], rtol=1e-5)
    texts = {"".join(t.itertext()) for t in root.iter(f"{NS}text")}
    assert {str(b) for b in tab["bin"]} <= texts


def test_written_report_embeds_every_chart_as_valid_svg(report: dict, tmp_path) -> None:
    html_path, _ = write_validation_report(report, tmp_path, unit="rows")
    page = html_path.read_text(encoding="utf-8")
    charts = re.findall(r"<svg .*?</svg>", page, flags=re.DOTALL)
    assert len(charts) == 6  # ROC, CAP, reliability, pools, score PSI, champion vs challenger
    titles = [_svg(c).get("aria-label") for c in charts]
    assert titles == ["ROC", "Cumulative accuracy profile", "Reliability: model",
                      "Predicted PD vs observed rate by pool of grades", "Score distribution", "Reliability"]
    assert "households" not in page.split("<h2>Discrimination")[1].split("<h2>Reproducibility")[0]
    # ids are global to the page: every chart's clip path and hatch patterns are its own
    ids = re.findall(r' id="([^"]+)"', page)
    assert len(ids) == len(set(ids)) >= 6
    for ref in re.findall(r'url\(#([^)]+)\)', page):
        assert ref in ids


def test_svg_helpers() -> None:
    assert nice_ticks(0, 0.33) == [0.0, 0.1, 0.2, 0.3]
    assert nice_ticks(0, 0.12) == [0.0, 0.025, 0.05, 0.075, 0.1]
    assert nice_ticks(0, 1.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert percent_labels([0.0, 0.1, 0.2]) == ["0%", "10%", "20%"]
    assert percent_labels([0.0, 0.025]) == ["0.0%", "2.5%"]
    chart = SvgChart(200, 150, x=(0, 1), y=(0, 1))
    chart.line([0, np.nan, 1], [0, 0.5, 1], series="s", markers=True)
    root = _svg(chart.render())
    assert len(_marks(root, "circle", "point", "s")) == 2  # the NaN point is left out, not drawn at 0
    with pytest.raises(ValueError, match="expected an <svg> element"):
        HtmlReport("x").add_svg("<img src='a.png'/>")
