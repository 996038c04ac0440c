"""Promotion gates: pure evaluation, no MLflow store needed."""

from __future__ import annotations

import json
import math

import pytest

from village_credit.registry.gates import DEFAULT_THRESHOLDS, GateReport, evaluate_gates

SCHEMA = [{"name": "age", "type": "long"}, {"name": "income", "type": "double"}]


def good_evidence(**over: float) -> dict:
    ev = {
        "discrimination": {"auc": 0.80, "ks": 0.45},
        "calibration": {"ece": 0.01, "hosmer_lemeshow_p": 0.40},
        "stability": {"score_psi": 0.02, "feature_psi": {"age": 0.01, "income": 0.05}},
        "fairness": {"equal_risk": {"max_gap_approval": 0.01, "max_gap_line": 0.02,
                                    "max_excess_approval": 0.005, "max_excess_line": 0.01,
                                    "rules": {"max_gap_approval": 0.40}},
                     "demographic_parity": {"min_ratio": 0.92}},
        "schema": list(SCHEMA),
    }
    for path, value in over.items():
        section, key = path.split("__")
        ev[section][key] = value
    return ev


def by_name(report: GateReport) -> dict:
    return {g.name: g for g in report.gates}


def test_all_good_evidence_passes_without_champion() -> None:
    rep = evaluate_gates(good_evidence(), None, None)
    assert rep.passed, rep.to_json()
    names = set(by_name(rep))
    assert {"auc_min", "auc_vs_champion", "ks_vs_champion", "ece_max", "hosmer_lemeshow_p_min",
            "score_psi_max", "feature_psi_max", "fairness_approval_excess_max",
            "fairness_line_excess_max", "fairness_parity_ratio_min", "schema_compatible"} <= names
    assert by_name(rep)["feature_psi_max"].value == pytest.approx(0.05)


def test_missing_evidence_fails_every_gate_never_silently_passes() -> None:
    rep = evaluate_gates({}, None, None)
    assert not rep.passed
    assert all(not g.passed for g in rep.gates)
    assert all("missing" in g.detail for g in rep.gates)
    assert not evaluate_gates(None).passed


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "0.9", None, True, [0.9]])
def test_non_numeric_evidence_fails(bad: object) -> None:
    ev = good_evidence()
    ev["discrimination"]["auc"] = bad
    g = by_name(evaluate_gates(ev))
    # "0.9" is a string holding a number: accepted as 0.9; everything else fails.
    assert g["auc_min"].passed is (bad == "0.9")


@pytest.mark.parametrize(
    ("over", "gate"),
    [
        ({"discrimination__auc": 0.60}, "auc_min"),
        ({"calibration__ece": 0.2}, "ece_max"),
        ({"calibration__hosmer_lemeshow_p": 0.001}, "hosmer_lemeshow_p_min"),
        ({"stability__score_psi": 0.3}, "score_psi_max"),
        ({"stability__feature_psi": {"age": 0.01, "income": 0.4}}, "feature_psi_max"),
        ({"fairness__demographic_parity": {"min_ratio": 0.7}}, "fairness_parity_ratio_min"),
    ],
)
def test_each_threshold_can_fail(over: dict, gate: str) -> None:
    rep = evaluate_gates(good_evidence(**over))
    assert not rep.passed
    assert [g.name for g in rep.failed] == [gate]


def paired(champion_version: str = "1", auc_diff: float = -0.005, ks_diff: float = 0.0) -> dict:
    """A paired comparison with the champion on one sample (what validate --challenger writes)."""
    return {"champion_version": champion_version, "auc_diff": auc_diff,
            "auc_diff_ci": [auc_diff - 0.01, auc_diff + 0.01], "auc_p_value": 0.4,
            "ks_diff": ks_diff, "n": 2000}


def test_champion_gates_read_the_paired_comparison_on_one_sample() -> None:
    champ = good_evidence()
    within = good_evidence()
    within["discrimination"]["vs_champion"] = paired(auc_diff=-0.005)
    rep = evaluate_gates(within, None, champ, champion_version="1")
    assert rep.passed, rep.to_json()
    assert "same 2000 rows" in by_name(rep)["auc_vs_champion"].detail
    assert "paired DeLong" in by_name(rep)["auc_vs_champion"].detail
    worse = good_evidence()
    worse["discrimination"]["vs_champion"] = paired(auc_diff=-0.03, ks_diff=-0.05)
    g = by_name(evaluate_gates(worse, None, champ, champion_version="1"))
    assert not g["auc_vs_champion"].passed and not g["ks_vs_champion"].passed
    assert g["auc_vs_champion"].value == pytest.approx(-0.03)
    assert g["auc_vs_champion"].threshold == -DEFAULT_THRESHOLDS["auc_tolerance"]
    assert evaluate_gates(worse, {"auc_tolerance": 0.05, "ks_tolerance": 0.1}, champ,
                          champion_version="1").passed


def test_two_numbers_from_two_samples_are_never_compared() -> None:
    """A candidate's AUC above the champion's recorded one is no comparison: it fails
    until both were scored on one sample, and against the current champion."""
    champ = good_evidence(discrimination__auc=0.70)
    better_looking = good_evidence(discrimination__auc=0.90)
    g = by_name(evaluate_gates(better_looking, None, champ, champion_version="3"))
    assert not g["auc_vs_champion"].passed and "one sample" in g["auc_vs_champion"].detail
    stale = good_evidence()
    stale["discrimination"]["vs_champion"] = paired(champion_version="2", auc_diff=0.01)
    g = by_name(evaluate_gates(stale, None, champ, champion_version="3"))
    assert not g["auc_vs_champion"].passed and "champion is v3" in g["auc_vs_champion"].detail


def test_champion_without_recorded_evidence_fails_relative_gates() -> None:
    g = by_name(evaluate_gates(good_evidence(), None, {}))
    assert not g["auc_vs_champion"].passed and "champion" in g["auc_vs_champion"].detail
    assert not g["schema_compatible"].passed


def test_a_gate_that_cannot_apply_says_so_by_name_and_does_not_block() -> None:
    ev = good_evidence()
    del ev["fairness"]
    assert not evaluate_gates(ev).passed  # no fairness evidence: the fairness gates fail ...
    na = {g: "no protected attribute declared" for g in (
        "fairness_approval_excess_max", "fairness_line_excess_max", "fairness_parity_ratio_min",
        "fairness_group_calibration_p_min", "fairness_tpr_gap_max", "fairness_gap_vs_rules",
        "outcome_support")}
    rep = evaluate_gates(ev, {"not_applicable": na})  # ... unless declared not applicable
    assert rep.passed, rep.to_json()
    g = by_name(rep)["fairness_parity_ratio_min"]
    assert g.comparator == "n/a" and g.detail == "not applicable: no protected attribute declared"
    assert "missing" not in json.dumps([x.detail for x in rep.gates if x.comparator == "n/a"])


def test_schema_compatibility() -> None:
    champ = good_evidence()
    changed = good_evidence()
    changed["schema"] = [{"name": "age", "type": "double"}, {"name": "income", "type": "double"},
                         {"name": "new", "type": "long"}]
    g = by_name(evaluate_gates(changed, None, champ))["schema_compatible"]
    assert not g.passed and g.value == 2.0 and "age: long->double" in g.detail
    sup = good_evidence()
    sup["schema"] = SCHEMA + [{"name": "new", "type": "long"}]
    sup["discrimination"]["vs_champion"] = paired(auc_diff=0.0)
    assert not evaluate_gates(sup, None, champ).passed
    assert evaluate_gates(sup, {"schema_mode": "superset"}, champ).passed


def test_fairness_keys_are_configurable() -> None:
    ev = good_evidence()
    ev["fairness"] = {"audit": {"approval": 0.01, "line": 0.01, "ratio": 0.95, "rules_approval": 0.3}}
    assert not evaluate_gates(ev).passed
    keys = {"approval_gap": "audit.approval", "line_gap": "audit.line", "parity_ratio": "audit.ratio",
            "baseline_approval_gap": "audit.rules_approval", "approval_excess": "audit.approval",
            "line_excess": "audit.line"}
    assert evaluate_gates(ev, {"fairness_keys": keys}).passed


def test_report_json_round_trip() -> None:
    rep = evaluate_gates(good_evidence(discrimination__auc=float("nan")))
    data = json.loads(rep.to_json())
    assert data["passed"] is False and data["failed"] == ["auc_min", "auc_vs_champion"]
    back = GateReport.from_dict(data)
    assert [g.name for g in back.gates] == [g.name for g in rep.gates]
    assert not any(isinstance(g["value"], float) and math.isnan(g["value"]) for g in data["gates"])


def test_missing_threshold_fails_gate() -> None:
    g = by_name(evaluate_gates(good_evidence(), {"ece_max": None}))["ece_max"]
    assert not g.passed and "threshold" in g.detail


def test_gap_vs_rules_gate_blocks_a_model_no_fairer_than_the_points_standard() -> None:
    ev = good_evidence()
    ev["fairness"]["equal_risk"]["max_gap_approval"] = 0.30  # rule standard: 0.40
    report = evaluate_gates(ev, {"approval_gap_max": 1.0, "gap_vs_rules_max_ratio": 0.6})
    gate = {g.name: g for g in report.gates}["fairness_gap_vs_rules"]
    assert not gate.passed and gate.value == pytest.approx(0.75)
    ev["fairness"]["equal_risk"]["max_gap_approval"] = 0.20
    report = evaluate_gates(ev, {"approval_gap_max": 1.0, "gap_vs_rules_max_ratio": 0.6})
    assert {g.name: g for g in report.gates}["fairness_gap_vs_rules"].passed
    del ev["fairness"]["equal_risk"]["rules"]
    report = evaluate_gates(ev, {"approval_gap_max": 1.0})
    assert not {g.name: g for g in report.gates}["fairness_gap_vs_rules"].passed


def test_a_model_without_a_cut_off_gets_not_applicable_approval_gates_never_a_number() -> None:
    """Issue 26: a table model decides no approval; its parity and TPR-gap gates say why by
    name (the observed evidence records it), while its within-group calibration is judged."""
    from village_credit.fairness.observed import NO_CUT_OFF

    fair = {"observed": {"min_calibration_p": 0.004, "max_tpr_gap": None, "min_approval_ratio": None,
                         "approval_not_applicable": NO_CUT_OFF, "min_outcomes": 30, "n_outcomes": 200},
            "demographic_parity": {"system": "model", "not_applicable": NO_CUT_OFF}}
    gates = by_name(evaluate_gates({"fairness": fair}))
    for name in ("fairness_parity_ratio_min", "fairness_tpr_gap_max"):
        assert gates[name].passed and gates[name].value is None
        assert gates[name].detail == f"not applicable: {NO_CUT_OFF}"
    # calibration is still judged, and a miscalibrated group still blocks
    assert not gates["fairness_group_calibration_p_min"].passed
    assert gates["fairness_group_calibration_p_min"].value == 0.004
    # without the declaration, a missing parity ratio fails as missing evidence
    fair["demographic_parity"] = {"system": "model", "min_ratio": None}
    assert not by_name(evaluate_gates({"fairness": fair}))["fairness_parity_ratio_min"].passed


def test_the_gate_table_states_the_verdict_gate_in_words() -> None:
    """A reviewer reads "fail" and the rule, not "2.000" against "<= 0.0000"."""
    from village_credit.registry.gates import GateReport
    from village_credit.registry.promotion import gate_table_markdown
    from village_credit.registry.verdict import ValidationRecord, verdict_gate

    rec = ValidationRecord("r1", "fail", "A. Validator", ["grade C1 red"], "sha256:ab", "vc-fp-1:s",
                           "vc-fp-1:t", "third-party validation")
    table = gate_table_markdown(GateReport([verdict_gate(rec, None, model_name="vc", version="2"),
                                            verdict_gate(None, None, model_name="vc", version="3")]))
    failed, missing = table.splitlines()[-2:]
    assert "| fail | pass; conditional only with an override; fail never | **FAIL** |" in failed
    assert "| no record | pass; conditional only with an override; fail never | **FAIL** |" in missing
    assert "0.0000" not in gate_table_markdown(GateReport([verdict_gate(None, None, model_name="vc", version="3")]))
