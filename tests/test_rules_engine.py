"""Hand-computed examples from the Jinxiang table (domain.md s.2) and the other policies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from village_credit.errors import SchemaError
from village_credit.rules import load_policy, score_rules
from village_credit.rules.engine import DECISION_COLUMNS
from village_credit.rules.policy import split_codes


def score(h: pd.DataFrame, policy: str = "jinxiang_2022", eval_date=None):
    return score_rules(h, load_policy(policy), eval_date)


def test_seed_example_party_member_family_honour_traffic(rule_households):
    # 30 base + 10 party member + 30 county civilised family - 10 traffic = 60 -> 60,000 yuan
    h = rule_households(party_member=True, hon_family="county", ded_traffic_date="2024-03-01")
    r = score(h)
    d = r.decisions.iloc[0]
    assert d["rule_points"] == 60.0
    assert d["credit_line"] == 60_000.0
    assert bool(d["approved"]) and bool(d["eligible"]) and not bool(d["vetoed"])
    items = r.items.iloc[0]
    assert items["base"] == 30 and items["bonus_party"] == 10 and items["bonus_family"] == 30
    assert items["ded_traffic"] == -10
    assert list(r.decisions.columns) == DECISION_COLUMNS


def test_veto_gives_line_zero_and_code(rule_households):
    h = rule_households(2, party_member=True, veto_financial_date=["2023-05-01", pd.NaT])
    d = score(h).decisions
    assert d["credit_line"].tolist() == [0.0, 40_000.0]
    assert d["vetoed"].tolist() == [True, False]
    assert split_codes(d["veto_codes"].iloc[0]) == ["veto_financial"]
    assert d["grade"].iloc[0] == "E2" and np.isnan(d["rate"].iloc[0])
    assert d["rule_points"].iloc[0] == 40.0  # points are still shown, the veto wins


def test_several_vetoes_all_listed(rule_households):
    h = rule_households(veto_crime_date="2024-01-01", veto_illegal_land_date="2022-12-01")
    codes = split_codes(score(h).decisions["veto_codes"].iloc[0])
    assert codes == ["veto_crime", "veto_illegal_land"]


def test_age_61_no_base_under_jinxiang_but_base_without_cutoff(rule_households):
    h = rule_households(2, head_age=[61, 60], hon_courtyard="village")
    j = score(h).decisions
    assert j["rule_points"].tolist() == [10.0, 40.0]  # 60 is still inside 18-60
    assert j["credit_line"].tolist() == [10_000.0, 40_000.0]
    n = score(h, "jinxiang_2022_no_age_cutoff").decisions
    assert n["rule_points"].tolist() == [40.0, 40.0]


def test_xx_county_age_gate_and_white_list(rule_households):
    h = rule_households(4, head_age=[66, 65, 40, 40], full_civil_capacity=[True, True, True, False],
                   hon_virtue=[True, True, False, False])
    d = score(h, "xx_county").decisions
    assert d["eligible"].tolist() == [False, True, True, True]
    assert d["ineligible_codes"].tolist() == ["inelig_age", "", "", ""]
    # 66: ineligible despite 50 points; 65: 50 points; clean base 30 -> on the white list;
    # no base (no civil capacity) 0 points < 30 -> not approved
    assert d["rule_points"].tolist() == [50.0, 50.0, 30.0, 0.0]
    assert d["approved"].tolist() == [False, True, True, False]
    assert d["credit_line"].tolist() == [0.0, 50_000.0, 30_000.0, 0.0]
    assert load_policy("xx_county").validity_years == 1


def test_expired_and_future_deductions_ignored(rule_households):
    # traffic window 1 year, pollution 2 years; eval = snapshot 2024-06-30
    h = rule_households(5, ded_traffic_date=["2023-06-30", "2023-07-01", "2024-07-01", "2024-06-30", pd.NaT],
                   ded_pollution_date=["2022-07-01", "2022-06-30", pd.NaT, pd.NaT, pd.NaT])
    items = score(h).items
    # exactly one window ago has served its observation period; a later event is future
    assert items["ded_traffic"].tolist() == [0.0, -10.0, 0.0, -10.0, 0.0]
    assert items["ded_pollution"].tolist() == [-20.0, 0.0, 0.0, 0.0, 0.0]


def test_explicit_eval_date_vs_snapshot(rule_households):
    h = rule_households(2, snapshot_date=["2024-06-30", "2026-06-30"], veto_cult_date="2023-01-01")
    # each row at its own snapshot: 1.5 years (inside the 3-year window) vs 3.5 years
    assert score(h).decisions["vetoed"].tolist() == [True, False]
    # explicit date applies to every row: str, date and Timestamp all work
    for ev in ("2025-12-31", pd.Timestamp("2025-12-31"), pd.Timestamp("2025-12-31").date()):
        assert score(h, eval_date=ev).decisions["vetoed"].tolist() == [True, True]
    assert score(h, eval_date="2027-06-30").decisions["vetoed"].tolist() == [False, False]
    assert score(h, eval_date="2022-12-31").decisions["vetoed"].tolist() == [False, False]  # future event


def test_highest_honour_level_only_and_party_levels_add(rule_households):
    h = rule_households(3, party_member=[True, True, False], hon_party=["county", "national", "none"],
                   hon_moral_model=["national", "none", "city"])
    it = score(h).items
    assert it["bonus_party"].tolist() == [30.0, 60.0, 0.0]
    assert it["bonus_moral_model"].tolist() == [50.0, 0.0, 30.0]


def test_max_points_all_bonuses_capped_line(rule_households):
    h = rule_households(hon_moral_model="national", hon_family="county", hon_courtyard="city",
                   hon_talent="national", party_member=True, hon_party="national",
                   hon_veteran_brave=True, hon_virtue=True, hon_frugal_ceremony=True)
    for pol, cap in (("jinxiang_2022", 100_000), ("rencheng_2025", 300_000)):
        d = score(h, pol).decisions.iloc[0]
        assert d["rule_points"] == 30 + 50 + 30 + 40 + 50 + 60 + 20 + 20 + 10
        assert d["credit_line"] == cap
        assert d["rate"] == pytest.approx(0.037)
        assert d["grade"] == "A1"


def test_negative_points_line_zero_not_floored(rule_households):
    h = rule_households(head_age=70, ded_pollution_date="2024-01-01", ded_hygiene_date="2024-02-01")
    d = score(h).decisions.iloc[0]
    assert d["rule_points"] == -30.0 and d["credit_line"] == 0.0 and not d["approved"]
    assert d["grade"] == "D2"


def test_tongxiang_six_nos_and_strong_borrower_tier(rule_households):
    h = rule_households(5, ded_hygiene_date=["2024-01-01", pd.NaT, pd.NaT, pd.NaT, pd.NaT],
                   private_debt_yuan=[0, 30000, 29999, 0, 0], major_bad_credit=[False, False, False, True, False],
                   new_agri_operator=[False, False, False, False, True],
                   hon_moral_model=["none", "none", "none", "none", "national"])
    d = score(h, "tongxiang").decisions
    assert d["veto_codes"].tolist() == ["veto_village_rules", "veto_over_indebted", "",
                                        "veto_negative_credit_report", ""]
    assert d["credit_line"].tolist()[2] == 30_000.0
    # strong borrower: 80 points at 2,000 yuan per point
    assert d["credit_line"].iloc[4] == 160_000.0
    pol = load_policy("tongxiang")
    assert pol.credit_line([80.0], households=h.iloc[[4]]).tolist() == [160_000.0]
    assert pol.credit_line([80.0]).tolist() == [80_000.0]  # no households -> default tier


def test_rate_and_grade_on_model_points():
    pol = load_policy("jinxiang_2022")
    pts = np.array([-1e9, -40, -39.9, 0, 29.99, 30, 59.9, 60, 80, 130, 1e9, np.nan])
    assert pol.grade(pts).tolist() == ["E2", "E1", "E1", "C1", "B1", "A2", "A2", "A1", "A1", "A1", "A1", "E2"]
    r = pol.rate(pts)
    assert np.nanmin(r) >= 0.037 and np.nanmax(r) <= 0.08
    assert r[5] == pytest.approx(0.08) and r[9] == pytest.approx(0.037)
    assert np.all(np.diff(r[:-1]) <= 1e-12)


def test_missing_columns_listed_all(rule_households):
    h = rule_households().drop(columns=["head_age", "hon_family", "ded_traffic_date"])
    with pytest.raises(SchemaError) as e:
        score(h)
    msg = str(e.value)
    assert "head_age" in msg and "hon_family" in msg and "ded_traffic_date" in msg and "3" in msg


def test_snapshot_required_only_without_eval_date(rule_households, rule_columns):
    h = rule_households().drop(columns=["snapshot_date"])
    with pytest.raises(SchemaError, match="snapshot_date"):
        score(h)
    assert score(h, eval_date=rule_columns.snapshot).decisions["rule_points"].iloc[0] == 30.0


def test_unknown_honour_level_in_data_is_an_error(rule_households):
    h = rule_households(hon_family="province")
    with pytest.raises(SchemaError, match="hon_family"):
        score(h)


def test_index_preserved_and_categorical_and_string_dates(rule_households):
    h = rule_households(3, hon_family=["none", "county", "village"]).set_index(pd.Index([10, 5, 7]))
    h["hon_family"] = h["hon_family"].astype("category")
    h["ded_traffic_date"] = ["2024-01-01", None, None]
    r = score(h)
    assert list(r.decisions.index) == [10, 5, 7] and list(r.items.index) == [10, 5, 7]
    assert r.decisions["rule_points"].tolist() == [20.0, 60.0, 40.0]


def test_labels_zh_en_for_every_code():
    for name in ("jinxiang_2022", "tongxiang", "xx_county"):
        pol = load_policy(name)
        for code in pol.item_codes + pol.veto_codes + pol.ineligible_codes:
            assert set(pol.labels[code]) == {"en", "zh"} and pol.labels[code]["zh"]


def test_standalone_vetoes_and_eligibility_match_scoring(rule_households):
    h = rule_households(3, head_age=[17, 40, 70], veto_petition_date=[pd.NaT, "2024-01-01", pd.NaT])
    pol = load_policy("xx_county")
    d = score(h, "xx_county").decisions
    v = pol.vetoes(h)
    e = pol.eligibility(h, eval_date="2024-06-30")
    assert v["vetoed"].tolist() == d["vetoed"].tolist() == [False, True, False]
    assert e["eligible"].tolist() == d["eligible"].tolist() == [False, True, False]


def test_explain_lists_nonzero_items(rule_households):
    h = rule_households(party_member=True, ded_traffic_date="2024-03-01")
    ex = score(h).explain(0, lang="zh")
    assert ex["points"].sum() == 30
    assert "交通违法" in ex["label"].tolist()


def test_works_on_generator_output():
    gen = pytest.importorskip("village_credit.data.generator")
    df = gen.generate_households(gen.GeneratorConfig(n_households=500, seed=1))
    r = score_rules(df, "jinxiang_2022")
    assert len(r.decisions) == 500
    assert np.array_equal(r.items.to_numpy().sum(axis=1), r.decisions["rule_points"].to_numpy())
