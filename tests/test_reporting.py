"""Tests for the shared HTML/JSON report helper."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
from village_credit.reporting import (
    HtmlReport,
    new_figure,
    to_jsonable,
    write_json,
    write_report,
)
from village_credit.reporting.html import ReportJSONEncoder, traffic_light_class


def test_to_jsonable_handles_numpy_pandas_and_nan() -> None:
    df = pd.DataFrame({"a": np.array([1, 2], dtype=np.int64), "b": [0.5, np.nan]})
    obj = {
        "i": np.int32(3),
        "f": np.float64(0.25),
        "nan": float("nan"),
        "inf": np.inf,
        "b": np.bool_(True),
        "arr": np.arange(3),
        "df": df,
        "s": pd.Series([1.0, 2.0], index=["x", "y"]),
        "ts": pd.Timestamp("2024-01-31"),
        "nat": pd.NaT,
        "t": (1, 2),
    }
    out = to_jsonable(obj)
    text = json.dumps(out, allow_nan=False)  # strict JSON must succeed
    back = json.loads(text)
    assert back["i"] == 3 and back["f"] == 0.25 and back["b"] is True
    assert back["nan"] is None and back["inf"] is None and back["nat"] is None
    assert back["arr"] == [0, 1, 2]
    assert back["df"] == [{"a": 1, "b": 0.5}, {"a": 2, "b": None}]
    assert back["s"] == {"x": 1.0, "y": 2.0}
    assert back["ts"].startswith("2024-01-31")
    assert json.loads(json.dumps({"x": np.float32(1.5)}, cls=ReportJSONEncoder)) == {"x": 1.5}


def test_traffic_light_class() -> None:
    assert traffic_light_class("green") == "tl-green"
    assert traffic_light_class(" RED ") == "tl-red"
    assert traffic_light_class("amber") == "tl-amber"
    assert traffic_light_class("fail") == "tl-red"
    assert traffic_light_class("A1") is None
    assert traffic_light_class(0.3) is None


def test_html_report_is_self_contained_and_json_round_trips(tmp_path) -> None:
    rep = HtmlReport("Validation <test>", subtitle="整村授信")
    rep.add_section("Calibration", "Per-grade table")
    rep.add_table(pd.DataFrame({"grade": ["A1", "B2"], "p": [0.5, 0.001],
                                "light": ["green", "red"], "flag": [True, False]}),
                  caption="grades")
    fig = new_figure()
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1])
    rep.add_figure(fig, caption="diag")
    rep.add_key_values({"model": "m:/1", "libs": {"numpy": np.__version__}})
    data = {"auc": np.float64(0.8), "table": pd.DataFrame({"x": [1, 2]})}
    html_path, json_path = write_report(rep, data, tmp_path / "out", stem="val")
    text = html_path.read_text(encoding="utf-8")
    assert "data:image/png;base64," in text
    assert 'class="tl-green"' in text and 'class="tl-red"' in text
    assert "Validation &lt;test&gt;" in text and "整村授信" in text
    assert "<script" not in text and "src=\"http" not in text
    back = json.loads(json_path.read_text(encoding="utf-8"))
    assert back == {"auc": 0.8, "table": [{"x": 1}, {"x": 2}]}


def test_a_tables_caption_stays_outside_its_scroll_box() -> None:
    """A wide table scrolls; its caption must not scroll with it (it wraps at the page's width)."""
    rep = HtmlReport("t")
    rep.add_table(pd.DataFrame({f"column_{i}": [i] for i in range(40)}), caption="what the table says")
    rep.add_table(pd.DataFrame({"x": [1]}))  # no caption: no figure around it
    body = rep.render()
    caption_at = body.index("what the table says")
    assert body.rindex("<figure", 0, caption_at) > body.rfind('<div class="table-wrap">', 0, caption_at)
    assert body.index('<div class="table-wrap">', caption_at) > caption_at  # the scroll box comes after
    assert "<caption>" not in body and body.count("<figure") == 1


def test_write_json_is_strict(tmp_path) -> None:
    p = write_json({"x": math.nan, "y": [np.float64(1.0)]}, tmp_path / "a.json")
    assert json.loads(p.read_text()) == {"x": None, "y": [1.0]}
    assert "NaN" not in p.read_text()


def test_numbers_in_tables_have_fixed_decimals_and_separators() -> None:
    from village_credit.reporting.html import format_number

    assert format_number(0.78) == "0.780"
    assert format_number(0.0008) == "0.0008"
    assert format_number(53800.0) == "53,800"
    assert format_number(3.0) == "3"
    assert format_number(float("nan")) == ""
    rep = HtmlReport("t")
    rep.add_table(pd.DataFrame({"auc": [0.779, 0.78], "line": [53800.4, 1234.0]}), yuan=("line",))
    html = rep.render()
    assert ">0.779<" in html and ">0.780<" in html and ">53,800<" in html and ">1,234<" in html
    assert "e+0" not in html and "e-0" not in html


def test_verdict_banner_is_coloured_by_its_word() -> None:
    rep = HtmlReport("t")
    rep.add_verdict("fail", " blend: gap too large")
    rep.add_verdict("pass", "")
    html = rep.render()
    assert '<div class="verdict tl-red"><b>FAIL</b>' in html and '<div class="verdict tl-green"><b>PASS</b>' in html
