"""The main job's next-step hint follows the gates (issue 25 item 1): it never sends a
user to validate-then-promote when a gate no validation can change has failed."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from village_credit.commands.pipeline import _print_next_steps


def _result(verdict: str, failed: list[str]) -> SimpleNamespace:
    return SimpleNamespace(run_model_uri="runs:/abc/model", promoted=False, registered_model_name="vc",
                           model_version="3", validation={"verdict": verdict},
                           gates={"gates": {"failed": failed}})


def _lines(capsys: pytest.CaptureFixture[str], result: SimpleNamespace) -> list[str]:
    _print_next_steps(result)
    return capsys.readouterr().out.splitlines()


def test_a_model_gate_failure_offers_the_override_not_a_new_validation(capsys) -> None:
    out = _lines(capsys, _result("pass", ["fairness_line_excess_max", "validation_verdict"]))
    hint = next(line for line in out if "not promoted (failed" in line)
    assert "failed fairness_line_excess_max)" in hint  # the verdict gate is not what blocks it
    assert "village-credit promote --model-name vc --version 3 --override-by <who>" in hint
    assert not any("to promote it: validate" in line for line in out)
    assert any("--allow-ungated" in line for line in out)  # research scoring stays possible


def test_only_the_verdict_missing_or_conditional_asks_for_a_signed_validation(capsys) -> None:
    out = _lines(capsys, _result("conditional", ["validation_verdict"]))
    assert any("village-credit validate --model models:/vc/3" in line for line in out)
    assert not any("not promoted (failed" in line for line in out)


def test_a_fail_verdict_offers_neither_promotion_path(capsys) -> None:
    out = _lines(capsys, _result("fail", ["validation_verdict", "ece_max"]))
    assert not any("village-credit promote" in line or "village-credit validate" in line for line in out)
    assert any("--allow-ungated" in line for line in out)
