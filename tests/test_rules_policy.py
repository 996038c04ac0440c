"""Policy loading and validation: every error names the file, the key path and the problem."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from village_credit.errors import PolicyError, VillageCreditError
from village_credit.rules import Policy, list_policies, load_policy, score_rules

SHIPPED = ["jinxiang_2022", "jinxiang_2022_no_age_cutoff", "rencheng_2025", "tongxiang", "xx_county"]


def test_shipped_policies_listed_and_load():
    assert set(SHIPPED) <= set(list_policies())
    for name in SHIPPED:
        p = load_policy(name)
        assert p.name == name and Path(p.source).is_file()
        assert issubclass(PolicyError, VillageCreditError)


def test_jinxiang_matches_domain_table():
    p = load_policy("jinxiang_2022")
    assert p.base_points == 30 and len(p.base_conditions) == 5
    assert len(p.bonuses) == 8 and len(p.deductions) == 11 and len(p.veto_rules) == 6
    assert {d.item: d.points for d in p.deductions}["pollution"] == -20
    assert sum(d.points for d in p.deductions) == -120
    assert p.yuan_per_point == 1000 and p.cap == 100_000
    assert (p.max_rate, p.lpr) == (0.08, 0.037)
    windows = {d.condition.spec["window_years"] for d in p.deductions} | \
              {r.condition.spec["window_years"] for r in p.veto_rules}
    assert windows <= {1, 2, 3}
    assert load_policy("rencheng_2025").cap == 300_000


def _write(tmp_path: Path, data: dict, name: str = "mine.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _jx() -> dict:
    return load_policy("jinxiang_2022").to_dict()


def _broken(mutate) -> dict:
    d = copy.deepcopy(_jx())
    mutate(d)
    return d


CASES = [
    ("unknown top key", lambda d: d.update(colour="red"), "colour", "unknown key"),
    ("missing level", lambda d: d["bonuses"]["family"]["components"][0]["levels"].pop("town"),
     "bonuses.family.components[0].levels.town", "missing level"),
    ("unknown level", lambda d: d["bonuses"]["family"]["components"][0]["levels"].update(planet=5),
     "levels.planet", "unknown level"),
    ("negative cap", lambda d: d["credit_line"].update(cap=-5), "credit_line.cap", "greater than or equal to 0, got -5"),
    ("zero window", lambda d: d["deductions"]["traffic"].update(window_years=0),
     "deductions.traffic.window_years", "bad window"),
    ("fractional window", lambda d: d["vetoes"]["crime"].update(window_years=1.5),
     "vetoes.crime.window_years", "bad window"),
    ("missing window", lambda d: d["vetoes"]["cult"].pop("window_years"),
     "vetoes.cult.window_years", "missing"),
    ("positive deduction", lambda d: d["deductions"]["hygiene"].update(points=10),
     "deductions.hygiene.points", "less than or equal to 0, got 10"),
    ("grade order", lambda d: d["grades"]["cutoffs"].update(B1=35), "grades.cutoffs.B1", "fall"),
    ("missing grade", lambda d: d["grades"]["cutoffs"].pop("C2"), "grades.cutoffs.C2", "Field required"),
    ("lpr above max", lambda d: d["rate"].update(lpr=0.09), "rate.lpr", "above the maximum"),
    ("rate band", lambda d: d["rate"].update(points_at_lpr=10), "rate.points_at_lpr", "above"),
    ("missing section", lambda d: d.pop("rate"), "rate", "Field required"),
    ("bad condition key", lambda d: d["base"]["conditions"]["age"].update(maxx=3),
     "base.conditions.age.maxx", "unknown key"),
    ("two condition kinds", lambda d: d["vetoes"]["crime"].update(column="head_age"),
     "vetoes.crime", "exactly one"),
    ("event on non-date", lambda d: d["vetoes"]["crime"].update(event="head_age"),
     "vetoes.crime.event", "not a date column"),
    ("label without zh", lambda d: d["bonuses"]["party"]["label"].pop("zh"),
     "bonuses.party.label.zh", "Field required"),
    ("combine", lambda d: d["bonuses"]["party"].update(combine="product"), "bonuses.party.combine", "sum"),
    ("negative tier cap", lambda d: d["credit_line"].update(
        tiers={"big": {"when": {"column": "individual_business", "equals": True}, "cap": -1}}),
     "credit_line.tiers.big.cap", "greater than or equal to 0, got -1"),
]


@pytest.mark.parametrize("case,mutate,key,problem", CASES, ids=[c[0] for c in CASES])
def test_validation_errors_name_file_key_problem(tmp_path, case, mutate, key, problem):
    path = _write(tmp_path, _broken(mutate))
    with pytest.raises(PolicyError) as e:
        load_policy(path)
    msg = str(e.value)
    assert str(path) in msg, msg
    assert key in msg, msg
    assert problem in msg, msg


def test_unknown_name_and_missing_file(tmp_path):
    with pytest.raises(PolicyError, match="jinxiang_2022"):
        load_policy("no_such_policy")
    with pytest.raises(PolicyError, match="not found"):
        load_policy(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(PolicyError, match="bad.yaml"):
        load_policy(bad)


def test_user_policy_extends_shipped_and_works_as_path(rule_households, tmp_path):
    path = tmp_path / "pilot.yaml"
    path.write_text("extends: jinxiang_2022\nname: pilot\ncredit_line: {cap: 40000}\n"
                    "base: {conditions: {age: {column: head_age, min: 18, max: 70}}}\n", encoding="utf-8")
    h = rule_households(2, head_age=[65, 40], hon_moral_model="national")
    d = score_rules(h, str(path)).decisions  # a path works wherever a name does
    assert d["rule_points"].tolist() == [80.0, 80.0]
    assert d["credit_line"].tolist() == [40_000.0, 40_000.0]
    assert load_policy(path).source == str(path)


def test_extends_chain_errors(tmp_path):
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text(f"extends: {b}\nname: a\n")
    b.write_text(f"extends: {a}\nname: b\n")
    with pytest.raises(PolicyError, match="circular"):
        load_policy(a)
    c = tmp_path / "c.yaml"
    c.write_text("extends: nothing_here\nname: c\n")
    with pytest.raises(PolicyError, match="extends"):
        load_policy(c)


def test_to_yaml_text_round_trip_scores_identically(rule_households):
    h = rule_households(4, head_age=[30, 61, 45, 70], hon_family=["county", "none", "village", "town"],
                   ded_traffic_date=["2024-01-01", None, None, None], veto_crime_date=[None, None, "2023-01-01", None])
    for name in SHIPPED:
        p = load_policy(name)
        q = Policy.from_yaml_text(p.to_yaml_text())
        assert q.to_dict() == p.to_dict()
        a, b = score_rules(h, p), score_rules(h, q)
        assert a.decisions.equals(b.decisions) and a.items.equals(b.items)


def test_required_columns_cover_policy_inputs():
    p = load_policy("tongxiang")
    req = set(p.required_columns)
    assert {"head_age", "party_member", "hon_party", "ded_traffic_date", "veto_crime_date",
            "private_debt_yuan", "income_migrant", "new_agri_operator"} <= req
    assert "snapshot_date" not in req
    assert "head_age" not in load_policy("jinxiang_2022_no_age_cutoff").required_columns


def test_credit_line_vectorised_api_for_model_points():
    p = load_policy("jinxiang_2022")
    pts = np.array([55.5, 200.0, -5.0, 40.0, np.nan])
    line = p.credit_line(pts, eligible=[True, True, True, False, True], vetoed=[False, False, False, False, False])
    assert line.tolist() == [55_500.0, 100_000.0, 0.0, 0.0, 0.0]
    assert p.credit_line(pts, vetoed=True).tolist() == [0.0] * 5
