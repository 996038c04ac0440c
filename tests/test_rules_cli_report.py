"""The ``rules`` / ``policies`` commands and the programme report (credit villages, 952)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from village_credit.cli import app as cli_app
from village_credit.errors import SchemaError
from village_credit.rules import Policy, programme_report, score_rules
from village_credit.rules.report import ReportStandard


def _app() -> typer.Typer:
    return cli_app


def test_rules_command_writes_decisions_and_items(rule_households, tmp_path):
    h = rule_households(4, party_member=True, hon_family="county", ded_traffic_date=["2024-03-01", None, None, None],
                   veto_crime_date=[None, None, "2024-01-01", None])
    src = tmp_path / "hh.parquet"
    h.to_parquet(src, index=False)
    out = tmp_path / "out.parquet"
    r = CliRunner().invoke(_app(), ["rules", "--input", str(src), "--policy", "jinxiang_2022", "--output", str(out)])
    assert r.exit_code == 0, r.output
    assert "approved" in r.output
    got = pd.read_parquet(out)
    assert got["rule_points"].tolist() == [60.0, 70.0, 70.0, 70.0]
    assert got["credit_line"].tolist() == [60_000.0, 70_000.0, 0.0, 70_000.0]
    assert {"household_id", "base", "bonus_party", "ded_traffic", "veto_codes", "grade"} <= set(got.columns)
    meta = pq.read_schema(out).metadata
    assert Policy.from_yaml_text(meta[b"village_credit.policy_yaml"].decode()).name == "jinxiang_2022"


def test_rules_command_reports_missing_columns_and_bad_policy(rule_households, tmp_path):
    src = tmp_path / "hh.parquet"
    rule_households(2).drop(columns=["head_age", "hon_talent"]).to_parquet(src, index=False)
    r = CliRunner().invoke(_app(), ["rules", "--input", str(src), "--output", str(tmp_path / "o.parquet")])
    assert r.exit_code == 2 and "head_age" in r.output and "hon_talent" in r.output
    r = CliRunner().invoke(_app(), ["rules", "--input", str(src), "-p", "nope", "--output", str(tmp_path / "o.parquet")])
    assert r.exit_code == 2 and "nope" in r.output


def test_policies_command_lists_and_shows():
    r = CliRunner().invoke(_app(), ["policies"])
    assert r.exit_code == 0 and "jinxiang_2022" in r.output and "tongxiang" in r.output
    r = CliRunner().invoke(_app(), ["policies", "--show", "xx_county"])
    assert r.exit_code == 0 and "name: xx_county" in r.output


def _village(rule_households, code: str, town: str, n: int, n_a: int, n_granted_only: int, n_veto: int) -> pd.DataFrame:
    """n households: n_a graded A (40 pts), n_granted_only granted but not A (base with one
    deduction -> 20 pts), n_veto vetoed, rest: no line (61+, no honours -> 0 pts)."""
    rest = n - n_a - n_granted_only - n_veto
    age = [40] * (n_a + n_granted_only + n_veto) + [70] * rest
    fam = ["village"] * n_a + ["none"] * (n - n_a)
    ded = [None] * n_a + ["2024-03-01"] * n_granted_only + [None] * (n - n_a - n_granted_only)
    veto = [None] * (n_a + n_granted_only) + ["2024-01-01"] * n_veto + [None] * rest
    h = rule_households(n, head_age=age, hon_family=fam, ded_traffic_date=ded, veto_crime_date=veto,
                   village_code=code, township_code=town)
    h["household_id"] = [f"{code}-{i}" for i in range(n)]
    return h


def _programme(rule_households) -> pd.DataFrame:
    h = pd.concat([
        _village(rule_households, "V1", "T1", 20, 12, 0, 0),   # 60 % A, 60 % granted -> credit village
        _village(rule_households, "V2", "T1", 20, 11, 0, 0),   # 55 % A: not > 55 %
        _village(rule_households, "V3", "T1", 20, 12, 0, 0),
        _village(rule_households, "V4", "T1", 20, 12, 0, 0),
        _village(rule_households, "V5", "T1", 20, 12, 0, 0),   # T1: 4/5 = 80 % > 75 %
        _village(rule_households, "V6", "T2", 20, 12, 0, 8),   # 8 vetoed: still 60 % A and granted
        _village(rule_households, "V7", "T2", 20, 8, 0, 0),    # 40 % A, T2: 1/2 credit villages
    ], ignore_index=True)
    return h


def test_programme_report_credit_village_and_township(rule_households):
    h = _programme(rule_households)
    d = score_rules(h, "jinxiang_2022").decisions
    y = pd.Series(0.0, index=h.index)
    rep = programme_report(h, d, outcome=y)
    v = rep.villages.set_index("village_code")
    assert v.loc["V1", "a_share"] == pytest.approx(0.6) and v.loc["V1", "granted_share"] == pytest.approx(0.6)
    assert v.loc["V1", "on_file_share"] == 1.0 and v.loc["V1", "npl_ratio"] == 0.0
    assert bool(v.loc["V1", "meets_952"]) and bool(v.loc["V1", "is_credit_village"])
    assert not bool(v.loc["V2", "is_credit_village"])  # 55 % is not more than 55 %
    assert v.loc["V7", "a_share"] == pytest.approx(0.4) and not bool(v.loc["V7", "is_credit_village"])
    t = rep.townships.set_index("township_code")
    assert t.loc["T1", "credit_villages"] == 4 and t.loc["T1", "credit_village_share"] == pytest.approx(0.8)
    assert bool(t.loc["T1", "is_credit_township"]) and not bool(t.loc["T2", "is_credit_township"])
    assert rep.summary()["credit_townships"] == 1
    assert bool(v.loc["V6", "is_credit_village"])
    assert v.loc["V1", "granted_share"] >= 79 / 140  # county average (79 of 140 on file granted)


def test_granted_share_below_county_average_blocks_credit_village(rule_households):
    h = pd.concat([_village(rule_households, "V1", "T1", 20, 12, 0, 0), _village(rule_households, "V2", "T1", 20, 20, 0, 0)], ignore_index=True)
    d = score_rules(h, "jinxiang_2022").decisions
    y = pd.Series(0.0, index=h.index)
    v = programme_report(h, d, outcome=y).villages.set_index("village_code")
    assert not bool(v.loc["V1", "is_credit_village"]) and bool(v.loc["V2", "is_credit_village"])
    loose = programme_report(h, d, outcome=y, standard=ReportStandard(require_above_average=False))
    assert loose.villages["is_credit_village"].all()


def test_programme_report_npl_and_on_file_and_unknown_outcome(rule_households):
    h = _village(rule_households, "V1", "T1", 20, 20, 0, 0)  # everyone A and granted 40,000
    d = score_rules(h, "jinxiang_2022").decisions
    y = pd.Series(np.r_[1.0, np.zeros(19)], index=h.index)  # 1 default of 20 -> 5 % > 2 %
    v = programme_report(h, d, outcome=y).villages.iloc[0]
    assert v["npl_ratio"] == pytest.approx(0.05) and v["default_rate"] == pytest.approx(0.05)
    assert not bool(v["meets_952"]) and not bool(v["is_credit_village"])
    # outcome unknown -> nullable NA where the NPL test decides; on_file from decisions present
    rep = programme_report(h, d.iloc[:17])  # 3 households without a file
    v = rep.villages.iloc[0]
    assert v["on_file"] == 17 and v["on_file_share"] == pytest.approx(17 / 20)
    assert v["meets_952"] is False or bool(v["meets_952"]) is False  # 85 % < 90 % settles it
    rep = programme_report(h, d)
    assert pd.isna(rep.villages["meets_952"].iloc[0]) and pd.isna(rep.townships["is_credit_township"].iloc[0])
    std = ReportStandard(npl_max=0.10)
    assert bool(programme_report(h, d, outcome=y, standard=std).villages["is_credit_village"].iloc[0])


def test_programme_report_errors(rule_households):
    h = rule_households(2)
    d = score_rules(h, "jinxiang_2022").decisions
    with pytest.raises(SchemaError, match="village_code"):
        programme_report(h.drop(columns=["village_code"]), d)
    with pytest.raises(SchemaError, match="grade"):
        programme_report(h, d.drop(columns=["grade"]))


def test_report_from_chunk_sums_equals_report_of_the_whole() -> None:
    """The batch scorer adds per-chunk village sums; the result must not depend on chunking."""
    import numpy as np
    import pandas as pd

    from village_credit.data import GeneratorConfig, generate_households
    from village_credit.rules import (
        add_village_sums,
        load_policy,
        programme_report,
        report_from_village_sums,
        score_rules,
        village_sums,
    )

    hh = generate_households(GeneratorConfig(n_households=1500, seed=21, n_townships=3, villages_per_township=4))
    dec = score_rules(hh, load_policy("jinxiang_2022")).decisions
    whole = programme_report(hh, dec, outcome="default_12m")
    cuts = np.array_split(np.arange(len(hh)), 7)
    parts = [village_sums(hh.iloc[c], dec.iloc[c], outcome="default_12m") for c in cuts]
    chunked = report_from_village_sums(add_village_sums(parts))
    pd.testing.assert_frame_equal(whole.villages.reset_index(drop=True), chunked.villages.reset_index(drop=True),
                                  check_dtype=False)
    pd.testing.assert_frame_equal(whole.townships, chunked.townships, check_dtype=False)


def test_unknown_lang_is_refused_before_any_work(rule_households, tmp_path):
    src = tmp_path / "hh.parquet"
    rule_households(2).to_parquet(src, index=False)
    out = tmp_path / "o.parquet"
    r = CliRunner().invoke(_app(), ["rules", "--input", str(src), "--output", str(out), "--lang", "fr"])
    assert r.exit_code == 2 and "--lang" in r.output and "fr" in r.output
    assert not out.exists() and not list(tmp_path.glob("o*"))
    r = CliRunner().invoke(_app(), ["rules", "--input", str(src), "--output", str(out), "--lang", "zh"])
    assert r.exit_code == 0, r.output
    assert out.exists() and "金乡" in r.output


def test_cli_lang_choices_are_the_policy_label_languages():
    from village_credit.commands.rules import Lang
    from village_credit.rules.policy import LABEL_LANGUAGES

    assert tuple(m.value for m in Lang) == LABEL_LANGUAGES
