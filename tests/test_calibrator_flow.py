"""The calibrator's path end to end, following only the hints the commands print.

train (small; no Optuna trials and no global SHAP plots: tests/test_main_job.py runs
those) -> validate the champion -> recalibrate -> validate the new version -> promote ->
score -> rollback, through the CLI, in a real sqlite MLflow
store. Each next command is the one the previous command printed (with the
``<labelled sample>`` placeholder filled in): no ``--evidence``, no ``--thresholds``.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from village_credit.cli import app
from village_credit.data.generator import GeneratorConfig, generate_households

pytestmark = pytest.mark.slow

EXPERIMENT = """
name: flow
seed: 5
output_dir: {out}
data:
  n_households: 3000
  n_townships: 4
  villages_per_township: 10
  second_vintage: false
model:
  gbm: {{n_estimators: 80, learning_rate: 0.08, num_leaves: 8, min_child_samples: 30}}
  tuning: {{n_trials: 0}}
fairness:
  min_count: 15
  n_boot: 20
stages:
  shap: false
registry:
  model_name: vc-flow
  experiment: vc-flow
  validator: flow test (hold-out villages)
  # the model's own thresholds (looser than the toolkit backstop on this small data);
  # recorded for the registered model and applied to every later version
  gates: {{approval_gap_max: 0.4, line_gap_max: 1.0, line_excess_max: 1.0, approval_excess_max: 0.2,
          gap_vs_rules_max_ratio: 1.0,
          auc_tolerance: 0.08, ks_tolerance: 0.1, ece_max: 0.05, score_psi_max: 0.25,
          hosmer_lemeshow_p_min: 0.0}}
"""


def _printed_command(text: str, verb: str, sample: Path) -> list[str]:
    """The last ``village-credit <verb> ...`` command printed between backticks."""
    flat = " ".join(text.split())
    found = re.findall(r"`village-credit (" + verb + r"(?: [^`]*)?)`", flat)
    assert found, f"no printed `village-credit {verb}` hint in: {flat[-1500:]}"
    cmd = (found[-1].replace("<another labelled sample>", str(sample))
           .replace("<labelled sample>", str(sample)).replace("<who>", "'C. Alibrator'"))
    cmd = cmd.replace("<file>", "'<file>'").replace("<folder>", "'<folder>'")
    return shlex.split(cmd)


def test_calibrator_follows_the_printed_hints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def cli(*args: str, code: int | None = 0):
        res = runner.invoke(app, list(args))
        assert code is None or res.exit_code == code, f"{args}: {res.output}"
        return res

    exp = tmp_path / "flow.yaml"
    exp.write_text(EXPERIMENT.format(out=tmp_path / "out"), encoding="utf-8")
    cli("train", "--config", str(exp))
    trained = json.loads((tmp_path / "out" / "summary.json").read_text())
    # the training run's hold-out verdict is v1's validation record: it decided the promotion
    hold_out = trained["validation"]
    assert hold_out["validator"] == "flow test (hold-out villages)" and hold_out["record_run_id"]
    if hold_out["verdict"] == "fail":  # issue 25: a version whose own validation FAILs
        assert not trained["promoted"] and "refuses promotion" in trained["gates"]["refused"]
    v1_promoted = trained["promoted"]

    # the calibrator's own labelled samples (same population, other households)
    first, second = tmp_path / "sample1.parquet", tmp_path / "sample2.parquet"
    generate_households(GeneratorConfig(n_households=2500, seed=101, n_townships=4,
                                        villages_per_township=10)).to_parquet(first)
    generate_households(GeneratorConfig(n_households=2500, seed=202, n_townships=4,
                                        villages_per_township=10)).to_parquet(second)
    scoring_input = tmp_path / "households.parquet"
    generate_households(GeneratorConfig(n_households=600, seed=303)).drop(
        columns=["default_12m", "true_pd"]).to_parquet(scoring_input)

    # the thresholds were recorded for the model by the training run
    res = cli("validate", "--model", "models:/vc-flow/1", "--input", str(first),
              "--validator", "C. Alibrator", "--output", str(tmp_path / "val1"))
    v1_verdict = json.loads(res.stdout)["verdict"]
    flat = " ".join(res.stderr.split())
    assert ("already promoted" in flat) == v1_promoted
    assert ("recalibrate" in flat) == (v1_verdict != "pass")
    if v1_verdict == "fail":
        assert "promotion of v1 is refused" in flat and "`village-credit promote" not in flat
    if v1_verdict == "pass":  # nothing to recalibrate: the hint says so by giving none
        return

    res = cli(*_printed_command(res.stderr, "recalibrate", first),
              "--output", str(tmp_path / "recal"))
    new_version = json.loads(res.stdout)["version"]
    assert new_version == "2"
    assert ("--challenger models:/vc-flow@champion" in " ".join(res.stderr.split())) == v1_promoted

    res = cli(*_printed_command(res.stderr, "validate", second), "--output", str(tmp_path / "val2"))
    validated = json.loads(res.stdout)
    assert validated["version"] == "2" and (validated.get("challenger") is not None) == v1_promoted
    flat = " ".join(res.stderr.split())
    if validated["verdict"] == "fail":  # the v2 FAIL that used to be promoted is refused
        assert "refused" in flat and "`village-credit promote" not in flat
        res = cli("promote", "--model-name", "vc-flow", "--version", "2", code=1)
        assert "the validator's verdict refuses promotion" in " ".join(res.stderr.split())
        assert json.loads(res.stdout)["promoted"] is False
        return
    promote = [a.replace("<who>", "R. Officer").replace("<why>", "flow test").replace(
        "<YYYY-MM-DD>", "2099-12-31") for a in _printed_command(res.stderr, "promote", second)]
    res = cli(*promote, code=None)
    assert "thresholds: recorded for registered model 'vc-flow'" in " ".join(res.stderr.split())
    assert "evidence: validation run" in res.stderr
    promoted, promoted_stderr = json.loads(res.stdout), res.stderr
    assert promoted["thresholds"]["approval_gap_max"] == 0.4  # the model's, not the CLI default
    assert promoted["promoted"] == (res.exit_code == 0)
    rows = {r["version"]: r for r in json.loads(cli("models", "--model-name", "vc-flow", "--json").stdout)}
    assert rows["1"]["verdict"] == v1_verdict and rows["2"]["verdict"] == validated["verdict"]
    if not promoted["promoted"]:  # another gate stopped it, and says which
        assert rows["2"]["gate_state"] == "refused" and promoted["gates"]["failed"]
        return

    score = _printed_command(res.stderr, "score", second)
    score = [str(scoring_input) if a == "<file>" else
             str(tmp_path / "s2") if a == "<folder>" else a for a in score]
    res = cli(*score, "--no-progress")
    summary = json.loads(res.stdout)
    assert summary["model"]["version"] == "2" and summary["model"]["gated"] is True
    assert summary["scored"] > 0 and summary["reconciled"]
    if v1_promoted:
        res = cli(*_printed_command(promoted_stderr, "rollback", second))
        assert json.loads(res.stdout) == {"model_name": "vc-flow", "champion": "1", "demoted": "2"}
