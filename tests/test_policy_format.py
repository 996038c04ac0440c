"""The declared policy file format: its committed JSON Schema, the shipped policies
against it, and the model's checks (errors name file, key and problem)."""

from __future__ import annotations

import copy
import json
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from village_credit.errors import PolicyError
from village_credit.file_formats import write_json_schema
from village_credit.rules import list_policies, load_policy
from village_credit.rules.policy import Policy
from village_credit.rules.policy_format import (
    GRADE_BANDS,
    PolicyFile,
    policy_json_schema,
    validate_policy,
)

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_FILE = ROOT / "schemas" / "policy.schema.json"
SHIPPED = sorted((ROOT / "src" / "village_credit" / "rules" / "policies").glob("*.yaml"))
COMMENT = "# yaml-language-server: $schema="

if TYPE_CHECKING:  # imported by the fixture: its format checkers' grammars cost ~1.5-3 CPU s
    import jsonschema  # at collection on every worker (docs/benchmarks.md)


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    import jsonschema

    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_committed_schema_is_the_generated_one(tmp_path: Path) -> None:
    """Regenerate with ``write_json_schema(policy_json_schema(), 'schemas/policy.schema.json')``."""
    fresh = write_json_schema(policy_json_schema(), tmp_path / "policy.schema.json")
    assert SCHEMA_FILE.read_text(encoding="utf-8") == fresh.read_text(encoding="utf-8")


def test_schema_fields_are_described_for_editors() -> None:
    defs = policy_json_schema()["$defs"]
    for name in ("PolicyFile", "CreditLineSpec", "RateSpec", "ConditionSpec", "DeductionSpec", "GradeCutoffs"):
        for key, prop in defs[name]["properties"].items():
            assert prop.get("description"), f"{name}.{key} has no description"
    assert "yuan" in defs["CreditLineSpec"]["properties"]["cap"]["description"]
    assert "years" in defs["ConditionSpec"]["properties"]["window_years"]["description"]


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_policy_validates(path: Path, validator) -> None:
    text = path.read_text(encoding="utf-8")
    first = text.splitlines()[0]
    # the editor's schema comment points at the committed schema (relative to the file)
    assert first.startswith(COMMENT)
    assert (path.parent / first[len(COMMENT):]).resolve() == SCHEMA_FILE
    raw = yaml.safe_load(text)
    assert list(validator.iter_errors(raw)) == []  # the file as written (an overlay if it extends)
    policy = load_policy(path.stem)
    assert isinstance(validate_policy(policy.to_dict(), str(path)), PolicyFile)  # resolved
    assert list(validator.iter_errors(policy.to_dict())) == []
    # the comment never travels: the resolved YAML a model or Parquet file stores has none
    assert COMMENT not in policy.to_yaml_text()
    assert Policy.from_yaml_text(policy.to_yaml_text()).to_dict() == policy.to_dict()
    assert Policy.from_yaml_text(text, source=str(path)).name == path.stem


def _jx() -> dict:
    return load_policy("jinxiang_2022").to_dict()


# problems the JSON Schema can say as well as the model (cross-field ones it cannot)
BROKEN = [
    ("unknown top key", lambda d: d.update(colour="red"), "colour"),
    ("negative cap", lambda d: d["credit_line"].update(cap=-5), "credit_line.cap"),
    ("zero window", lambda d: d["deductions"]["traffic"].update(window_years=0), "deductions.traffic.window_years"),
    ("fractional window", lambda d: d["vetoes"]["crime"].update(window_years=1.5), "vetoes.crime.window_years"),
    ("missing window", lambda d: d["vetoes"]["cult"].pop("window_years"), "vetoes.cult.window_years"),
    ("positive deduction", lambda d: d["deductions"]["hygiene"].update(points=10), "deductions.hygiene.points"),
    ("missing grade", lambda d: d["grades"]["cutoffs"].pop("C2"), "grades.cutoffs.C2"),
    ("missing section", lambda d: d.pop("rate"), "rate"),
    ("bad condition key", lambda d: d["base"]["conditions"]["age"].update(maxx=3), "base.conditions.age.maxx"),
    ("two condition kinds", lambda d: d["vetoes"]["crime"].update(column="head_age"), "vetoes.crime"),
    ("no condition", lambda d: d["vetoes"]["crime"].pop("event"), "vetoes.crime"),
    ("label without zh", lambda d: d["bonuses"]["party"]["label"].pop("zh"), "bonuses.party.label.zh"),
    ("combine", lambda d: d["bonuses"]["party"].update(combine="product"), "bonuses.party.combine"),
    ("text for a number", lambda d: d["rate"].update(max_rate="8%"), "rate.max_rate"),
    ("true for a number", lambda d: d["base"].update(points=True), "base.points"),
    ("empty components", lambda d: d["bonuses"]["party"].update(components=[]), "bonuses.party.components"),
    ("bad vetoed grade", lambda d: d["grades"].update(vetoed_grade="F"), "grades.vetoed_grade"),
]


@pytest.mark.parametrize("case,mutate,key", BROKEN, ids=[c[0] for c in BROKEN])
def test_model_and_json_schema_refuse_the_same_files(case, mutate, key, validator) -> None:
    data = copy.deepcopy(_jx())
    mutate(data)
    with pytest.raises(PolicyError) as e:
        validate_policy(data, "mine.yaml")
    assert str(e.value).startswith(f"mine.yaml: {key}"), str(e.value)
    assert list(validator.iter_errors(data)), f"the JSON Schema accepts '{case}'"


def test_an_overlay_may_leave_keys_out_and_delete_with_null(validator) -> None:
    overlay = {"extends": "jinxiang_2022", "name": "pilot", "credit_line": {"cap": 40000},
               "base": {"conditions": {"age": None, "fixed_income": {"max": 3}}}}
    assert list(validator.iter_errors(overlay)) == []
    # still checked: types, ranges and unknown keys inside the overlay
    for bad in ({"credit_line": {"capp": 1}}, {"credit_line": {"cap": -1}}, {"rate": {"lpr": "low"}}):
        assert list(validator.iter_errors({"extends": "jinxiang_2022", **bad})), bad
    # without extends a file must be whole
    assert list(validator.iter_errors({"name": "pilot", "credit_line": {"cap": 40000}}))


cutoffs = st.lists(st.integers(-100, 100), min_size=9, max_size=9)


@settings(max_examples=60, deadline=None)
@given(cutoffs)
def test_grade_cutoffs_accepted_exactly_when_they_fall(values: list[int]) -> None:
    data = _jx()
    data["grades"]["cutoffs"] = dict(zip(GRADE_BANDS[:-1], values))
    falls = all(a > b for a, b in pairwise(values))
    if falls:
        assert validate_policy(data, "p.yaml").grades.cutoffs.as_dict() == dict(zip(GRADE_BANDS[:-1], values))
    else:
        first = next(GRADE_BANDS[i + 1] for i, (a, b) in enumerate(pairwise(values)) if b >= a)
        with pytest.raises(PolicyError, match=f"p.yaml: grades.cutoffs.{first}: cut-offs must fall"):
            validate_policy(data, "p.yaml")


def test_every_error_at_once_with_the_keys_allowed(tmp_path: Path) -> None:
    data = _jx()
    data["rate"]["lpr"] = 0.5
    data["bonuses"]["party"]["colour"] = "red"
    data["vetoes"]["crime"]["window_years"] = 0
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(PolicyError) as e:
        load_policy(path)
    lines = str(e.value).splitlines()
    assert all(line.startswith(f"{path}: ") for line in lines) and len(lines) == 3
    assert f"{path}: bonuses.party.colour: unknown key (allowed: label, combine, components)" in lines
    assert any("rate.lpr: LPR is above the maximum rate 0.08, got 0.5" in line for line in lines)
    assert any("vetoes.crime.window_years: bad window" in line for line in lines)


def test_shipped_list_matches_the_files() -> None:
    assert list_policies() == [p.stem for p in SHIPPED]
