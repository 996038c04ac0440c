"""Raw village records with personal data -> anonymiser -> main job -> nothing personal anywhere.

The whole toolkit runs on the anonymised table; the PII scanner then reads every file
the run produced (MLflow store and artifacts, reports, scores, the run's console log)
with the raw names as its name list, and must find nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from village_credit.cli import app
from village_credit.data import GeneratorConfig
from village_credit.privacy import generate_raw_records, scan_pii
from village_credit.privacy.raw_records import names_in

pytestmark = pytest.mark.slow

EXPERIMENT = """
name: from-raw
seed: 5
output_dir: {out}
data:
  source: {data}
model:
  gbm: {{n_estimators: 100, learning_rate: 0.08, num_leaves: 8, min_child_samples: 30}}
  # no Optuna: its trials log hyperparameters and fold AUCs only (no data to leak);
  # tests/test_main_job.py is the end-to-end run that tunes
  tuning: {{n_trials: 0}}
# no global SHAP: its files are the toolkit's own feature names, labels and protected
# group names with mean |SHAP| and group sizes (aggregates, no row, id or text of the
# data) and PNGs the scanner reads only by name; tests/test_main_job.py writes them
stages: {{shap: false}}
fairness: {{min_count: 15, n_boot: 20}}
registry:
  model_name: vc-private
  experiment: vc-private
  # gates are not under test here (privacy is): small data, loose thresholds
  gates: {{approval_excess_max: 1.0, line_excess_max: 10.0, group_calibration_p_min: 0.0, tpr_gap_max: 1.0,
          gap_vs_rules_max_ratio: 10.0, parity_ratio_min: 0.0, ece_max: 0.1, hosmer_lemeshow_p_min: 0.0}}
"""


def test_main_job_on_anonymised_raw_records_leaves_no_personal_data(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    raw_dir, work = tmp_path / "raw", tmp_path / "work"
    raw_dir.mkdir()
    work.mkdir()
    # Few, large villages so that k-anonymity suppresses little.
    raw = generate_raw_records(GeneratorConfig(n_households=5000, seed=3, n_townships=2,
                                               villages_per_township=5))
    raw_csv = raw_dir / "raw.csv"
    raw.to_csv(raw_csv, index=False)
    names = sorted(set(names_in(raw)))
    assert scan_pii(raw_csv, names=names), "the scanner must see the planted personal data"

    runner = CliRunner()
    key = raw_dir / "secret.key"
    assert runner.invoke(app, ["make-key", "--output", str(key)]).exit_code == 0
    households = work / "households.parquet"
    res = runner.invoke(app, ["anonymise", "--input", str(raw_csv), "--output", str(households),
                              "--key-file", str(key), "--quarantine", str(raw_dir / "quarantine.csv")])
    assert res.exit_code == 0, res.output
    table = pd.read_parquet(households)
    report = json.loads(households.with_suffix(".anonymisation.json").read_text())
    assert len(table) == report["n_released"]
    assert report["n_released"] + report["n_suppressed"] + report["n_quarantined"] == len(raw)

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}")
    monkeypatch.chdir(work)
    exp = work / "experiment.yaml"
    exp.write_text(EXPERIMENT.format(out=work / "out", data=households), encoding="utf-8")
    res = runner.invoke(app, ["train", "--config", str(exp)])
    (work / "run.log").write_text(res.output, encoding="utf-8")
    assert res.exit_code == 0, res.output
    summary = json.loads((work / "out" / "summary.json").read_text(encoding="utf-8"))
    if not summary["promoted"]:  # the verdict gate may refuse it (not under test): score it for research
        res = runner.invoke(app, ["score", "--model", summary["run_model_uri"], "--allow-ungated",
                                  "--input", str(households), "--output", str(work / "out" / "scores"),
                                  "--no-progress"])
        assert res.exit_code == 0, res.output
    assert (work / "out" / "scores" / "summary.json").exists()

    findings = scan_pii(work, names=names)
    assert findings == [], [f"{f.file}: {f.kind} at {f.location}" for f in findings[:10]]
