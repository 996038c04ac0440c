"""The grade back-test the verdict reads: thin grades pooled, Holm across pools and pairs.

Each test builds outcomes with exact default counts per grade (no random draw decides
the result), so what is asserted is the rule, not a lucky seed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from village_credit.validation import validation_report, write_validation_report
from village_credit.validation.backtest import grade_backtest, pool_thin_grades
from village_credit.validation.calibration import grade_calibration
from village_credit.validation.discrimination import rank_ordering

ORDER = ["A1", "A2", "B1", "B2", "C1", "C2", "D1", "D2", "E1", "E2"]


def _sample(spec: list[tuple[str, int, float, int]]) -> tuple[np.ndarray, ...]:
    """Rows per (grade, households, PD, defaults): the first ``defaults`` rows default."""
    g, p, y = [], [], []
    for grade, n, pd_, d in spec:
        g += [grade] * n
        p += [pd_] * n
        y += [1] * d + [0] * (n - d)
    return np.array(g, dtype=object), np.array(y), np.array(p)


# a calibrated scale (defaults = n x PD in the large grades) with thin tail grades whose
# point estimates reverse (D2 2 of 12 below D1 2 of 6): what a calibrated model shows
# on a few households
THIN_TAIL = [("A1", 1300, 0.015, 20), ("A2", 860, 0.035, 30), ("B1", 210, 0.065, 14),
             ("B2", 80, 0.09, 7), ("C1", 50, 0.14, 7), ("C2", 15, 0.2, 3),
             ("D1", 6, 0.25, 2), ("D2", 12, 0.3, 2), ("E1", 2, 0.4, 1)]


def test_a_calibrated_sample_with_thin_tail_grades_is_green() -> None:
    g, y, p = _sample(THIN_TAIL)
    # the old rules: the point-estimate rank order is broken (D2 below D1, C2 below C1...)
    assert not rank_ordering(g, y, ORDER)["monotone"].all()
    bt = grade_backtest(g, y, p, ORDER)
    assert bt["not_testable"] is None
    assert bt["lights"] == {"green": len(bt["pools"]), "amber": 0, "red": 0}
    assert bt["rank_order_broken"] == []
    # every pool reaches 5 expected defaults; thin grades were pooled towards the middle
    assert (bt["pools"]["expected_defaults"] >= 5).all()
    assert {"C1+C2", "D1+D2+E1"} <= set(bt["pools"]["grade"])
    res = validation_report(y, p, None, g, ORDER)
    v = res["verdict"]
    assert not any("pool" in r or "rank order" in r or "back-test" in r for r in v["reasons"]), v
    # the raw per-grade table is still there, unadjusted, as information
    assert res["calibration"]["grades"].equals(grade_calibration(g, y, p, ORDER))


def test_a_real_reversal_between_two_large_grades_is_flagged() -> None:
    # A2 and B1 swapped in truth: B1 (600 households, PD 6 %) defaults at 2 %, A2 (800, PD 2 %) at 6 %
    g, y, p = _sample([("A1", 1500, 0.01, 15), ("A2", 800, 0.02, 48), ("B1", 600, 0.06, 12),
                       ("B2", 300, 0.1, 30)])
    bt = grade_backtest(g, y, p, ORDER, alternative="two-sided")
    assert bt["rank_order_broken"] == ["A2 > B1"]
    pair = bt["rank_order"].set_index("pair").loc["A2 > B1"]
    assert pair["reversed"] and pair["p_holm"] < 0.05 and pair["light"] == "amber"
    assert bt["pools"].set_index("grade").loc[["A2", "B1"], "light"].tolist() == ["red", "red"]
    verdict = validation_report(y, p, None, g, ORDER)["verdict"]
    assert any(r.startswith("rank order broken") and "A2 > B1" in r for r in verdict["conditions"])
    assert verdict["verdict"] == "fail"  # A2's excess defaults: a red pool (one-sided, as configured)


def test_a_point_estimate_reversal_that_is_noise_is_listed_not_judged() -> None:
    g, y, p = _sample([("A1", 400, 0.03, 13), ("A2", 400, 0.04, 12), ("B1", 400, 0.15, 60)])
    bt = grade_backtest(g, y, p, ORDER)
    assert bt["rank_order_broken"] == [] and len(bt["reversals"]) == 1
    assert bt["reversals"][0].startswith("A2 3.0% below A1 3.2%")
    verdict = validation_report(y, p, None, g, ORDER)["verdict"]
    assert verdict["verdict"] == "pass"
    assert any("not significant: A2 3.0% below A1" in s for s in verdict["information"])


def test_a_pooled_report_names_its_pools(tmp_path) -> None:
    g, y, p = _sample(THIN_TAIL)
    res = validation_report(y, p, None, g, ORDER)
    info = res["verdict"]["information"]
    assert any("D1+D2+E1 (n = 20)" in s and "C1+C2 (n = 65)" in s for s in info), info
    html = write_validation_report(res, tmp_path)[0].read_text(encoding="utf-8")
    assert "D1+D2+E1: 20 households" in html and "C1+C2: 65 households" in html
    # a table of one's own says rows, never households
    own = write_validation_report(res, tmp_path / "own", unit="rows")[0].read_text(encoding="utf-8")
    assert "D1+D2+E1: 20 rows" in own


def test_the_empty_and_single_pool_back_tests_are_not_testable() -> None:
    # one pool: 200 households with 2 expected defaults in all
    g, y, p = _sample([("A1", 100, 0.005, 1), ("A2", 100, 0.015, 1)])
    bt = grade_backtest(g, y, p, ORDER)
    assert bt["not_testable"].startswith("not testable: every grade pooled into one (A1+A2")
    assert bt["pools"][["binomial_p", "jeffreys_p", "p_holm"]].isna().all().all()
    assert bt["pools"]["light"].tolist() == ["n/a"] and bt["lights"]["green"] == 0
    verdict = validation_report(y, p, None, g, ORDER)["verdict"]
    assert verdict["verdict"] != "pass"
    assert any(c.startswith("grade back-test not testable") for c in verdict["conditions"])
    # no row in a model-set grade (every household graded by the policy)
    g, y, p = _sample(THIN_TAIL)
    res = validation_report(y, p, None, g, ORDER, policy_graded=np.ones(y.size, bool))
    bt = res["calibration"]["backtest"]
    assert bt["not_testable"] == "not testable: no row with an observed outcome in a model-set grade"
    assert res["calibration"]["pools"].empty and res["verdict"]["verdict"] != "pass"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 500), st.floats(0.0, 0.5)), min_size=1, max_size=10),
       st.floats(1.0, 10.0))
def test_pools_are_contiguous_cover_every_populated_grade_and_reach_the_minimum(
        grades: list[tuple[int, float]], min_expected: float) -> None:
    n = np.array([k for k, _ in grades])
    e = np.array([k * q for k, q in grades])
    pools = pool_thin_grades(e, n, min_expected)
    assert [i for pool in pools for i in pool] == np.flatnonzero(n > 0).tolist()
    for pool in pools:
        assert pool == sorted(pool)
    if len(pools) > 1:
        assert all(e[pool].sum() >= min_expected for pool in pools)
    frame = pd.DataFrame({"n": n})
    assert frame["n"].sum() == sum(n[pool].sum() for pool in pools)
