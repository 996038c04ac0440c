"""What `village-credit train` prints after the main job: each figure once, one set of age
bands youngest first, and a word on why two calibration figures differ (issue 27)."""

from __future__ import annotations

import io
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
from rich.console import Console

from village_credit.commands.pipeline import _print_outcome_support
from village_credit.data.groups import AGE_BANDS
from village_credit.pipeline import approval_by_group


def _printed(fn, *args) -> str:
    buf = io.StringIO()
    fn(*args, Console(file=buf, width=80))
    return buf.getvalue()


def test_approval_table_uses_the_one_set_of_age_bands_youngest_first() -> None:
    rng = np.random.default_rng(0)
    ages = np.array([25, 45, 62, 67, 75] * 20)
    hh = pd.DataFrame({"head_age": ages, "formerly_poor": rng.integers(0, 2, len(ages)).astype(bool)})
    systems = [SimpleNamespace(name="blend", approved=ages < 70), SimpleNamespace(name="rules", approved=ages < 61)]
    table = approval_by_group(systems, hh)
    assert list(table.index[:5]) == list(AGE_BANDS)  # never "<60" last, never "65+"
    assert table.loc["70+", "blend"] == 0.0 and table.loc["65-69", "rules"] == 0.0
    assert set(table.index[5:]) == {"formerly_poor", "not formerly poor"}


def test_outcome_support_prints_each_comparisons_gap_once_and_explains_the_ratio() -> None:
    row = {"equal_risk_comparison": "elderly", "worst_gap_line": 0.927, "worst_gap_line_decile": 3.0,
           "pred_true_ratio": 0.9, "pred_observed_ratio": 0.7, "n": 100, "n_observed": 20}
    sup = {"extrapolated_groups": [], "min_observed": 300, "remedies": [], "headline": [
        {**row, "group": "all", "equal_risk_comparison": None, "worst_gap_line": None, "pred_observed_ratio": 1.3},
        {**row, "group": "60-64"}, {**row, "group": "65-69"}, {**row, "group": "70+", "pred_observed_ratio": None},
        {**row, "group": "70+|formerly_poor"},
        {**row, "group": "formerly_poor", "equal_risk_comparison": "formerly_poor", "worst_gap_line": -0.05,
         "worst_gap_line_decile": 7.0}]}
    out = _printed(_print_outcome_support, sup)
    assert out.count("+92.7%") == 1, out  # one figure per comparison, not per elderly band
    assert "heads aged 60+ vs under 60" in out and "(true-PD decile 3)" in out
    assert out.count("-5.0%") == 1 and "formerly poor vs other" in out
    assert "70+|formerly_poor" not in out  # intersections stay in summary.json
    sup["headline"][-1]["worst_gap_line"] = None  # no decile checked: says so, never a bare n/a
    flat = re.sub(r"\s+", " ", _printed(_print_outcome_support, sup))
    assert "formerly poor vs other, at equal true PD: n/a: no true-PD decile holds enough" in flat
    flat = re.sub(r"\s+", " ", out)
    assert "ECE above counts every hold-out household" in flat  # why pred / observed differs from ECE
    bands = [g for g in ("60-64", "65-69", "70+") if g in out]
    assert bands == ["60-64", "65-69", "70+"]
    assert "ceiling / true" not in out  # no ceiling figures (a real sample): no column of n/a


def test_outcome_support_shows_the_ceilings_ratio_beside_the_models() -> None:
    rows = [{"group": g, "n": 100, "n_observed": 20, "pred_true_ratio": pt, "ceiling_true_ratio": ct,
             "pred_observed_ratio": None} for g, pt, ct in (("all", 0.97, 0.95), ("70+", 1.302, 0.961))]
    flat = re.sub(r"\s+", " ", _printed(_print_outcome_support, {"min_observed": 300, "headline": rows}))
    assert "ceiling / true" in flat and "no model on these columns reaches" in flat
    line = next(ln for ln in _printed(_print_outcome_support, {"min_observed": 300, "headline": rows}).splitlines()
                if "70+" in ln)
    assert line.index("1.30") < line.index("0.96")  # the model's ratio, then the ceiling's
