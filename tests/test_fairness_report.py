"""Fairness report (HTML with embedded PNGs + JSON gate keys) and the ``fairness`` CLI command."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from village_credit.fairness import (
    DecisionSystem,
    equal_risk_gaps,
    fairness_audit,
    fairness_json,
    sensitive_frame,
    tradeoff_table,
    write_fairness_report,
)


def _inputs(n: int = 1500):
    rng = np.random.default_rng(2)
    hh = pd.DataFrame({"household_id": [f"H{i:05d}" for i in range(n)],
                       "head_age": rng.integers(20, 85, n), "formerly_poor": rng.random(n) < 0.2})
    tp = np.clip(rng.beta(1.2, 14, n), 0, 1)
    hh["true_pd"] = tp
    hh["default_12m"] = (rng.random(n) < tp).astype(int)
    young = hh.head_age.to_numpy() <= 60
    rules = DecisionSystem("rules", approved=young & (tp < 0.15), credit_line=np.full(n, 5e4), pd=tp + 0.01)
    blend = DecisionSystem("blend", approved=tp < 0.15, credit_line=np.full(n, 5e4), pd=tp)
    return hh, tp, [rules, blend]


def test_report_html_and_json_round_trip(tmp_path: Path) -> None:
    hh, tp, systems = _inputs()
    sens = sensitive_frame(hh)
    audit = fairness_audit(systems, sens, hh.default_12m, true_pd=tp, n_boot=30)
    gaps = equal_risk_gaps(systems, sens, tp)
    trade = tradeoff_table(systems, sens, hh.default_12m, true_pd=tp)
    reject = pd.DataFrame({"remedy": ["none", "parcelling"], "group": ["not_granted"] * 2,
                           "mean_pred_pd": [0.03, 0.05], "mean_true_pd": [0.06, 0.06], "bias": [-0.03, -0.01]})
    html_path, json_path = write_fairness_report(audit, gaps, trade, reject, tmp_path / "out")
    html = html_path.read_text(encoding="utf-8")
    assert len(re.findall(r'src="data:image/png;base64,[A-Za-z0-9+/=]{100,}"', html)) >= 5
    assert "<script" not in html and not re.search(r"(src|href)=\"https?:", html)
    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert data == json.loads(json.dumps(data, allow_nan=False))
    assert data == json.loads(json.dumps(fairness_json(audit, gaps, trade, reject), allow_nan=False))
    for s in ("rules", "blend"):
        assert isinstance(data["equal_risk"][s]["max_gap_approval"], float)
        assert "max_gap_line" in data["equal_risk"][s]
        for feat in ("age_band", "formerly_poor", "age_band_x_formerly_poor", "policy_age"):
            d = data["disparities"][s][feat]
            assert {"demographic_parity_ratio", "equalized_odds_difference", "four_fifths_pass"} <= set(d)
    assert data["disparities"]["rules"]["policy_age"]["four_fifths_pass"] is False
    # headline keys for registry.gates (primary system = last audited)
    assert data["equal_risk"]["system"] == "blend"
    assert data["equal_risk"]["max_gap_approval"] == data["equal_risk"]["blend"]["max_gap_approval"]
    assert data["demographic_parity"]["min_ratio"] == data["demographic_parity"]["blend"]["min_ratio"]
    assert {"approval_by_group", "equal_risk_by_decile", "tradeoff", "reject_bias"} <= set(data["figures"])


def test_cli_fairness_on_decision_files(tmp_path: Path) -> None:
    from village_credit.cli import app

    hh, tp, systems = _inputs(800)
    hh_path = tmp_path / "hh.parquet"
    hh.to_parquet(hh_path)
    paths = []
    for s in systems:
        dec = pd.DataFrame({"household_id": hh.household_id, "approved": s.approved,
                            "credit_line": s.credit_line, "pd": s.pd}).sample(frac=1, random_state=0)
        p = tmp_path / f"{s.name}.parquet"
        dec.to_parquet(p)
        paths.append(f"{s.name}={p}")
    out = tmp_path / "rep"
    args = ["fairness", "--input", str(hh_path), "--output", str(out), "--n-boot", "20"]
    for p in paths:
        args += ["--scores", p]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "fairness:" not in res.stderr  # the bar is transient: nothing left when not at a terminal
    data = json.loads((out / "fairness.json").read_text())
    # decisions were shuffled: alignment by household_id must recover the blend's approval rate
    blend_rate = [r for r in data["audit"] if r["system"] == "blend" and r["feature"] == "elderly"
                  and r["group"] == "(all)" and r["metric"] == "approval_rate"][0]["value"]
    assert blend_rate == float(np.mean(systems[1].approved))
    bad = hh.assign(formerly_poor=hh.formerly_poor.astype(object).where(hh.index > 2, None))
    bad.to_parquet(hh_path)
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2


def test_report_opens_with_verdict_identity_thresholds_and_human_labels(tmp_path: Path) -> None:
    from village_credit.fairness.report import fairness_verdict

    hh, tp, systems = _inputs()
    sens = sensitive_frame(hh)
    audit = fairness_audit(systems, sens, hh.default_12m, true_pd=tp, n_boot=20)
    gaps = equal_risk_gaps(systems, sens, tp)
    identity = {"model": "village-credit", "version": "7", "run_id": "abc123",
                "data_fingerprint": "vc-fp-1:xyz", "date": "2026-12-01",
                "override": "board decision 12: pilot county"}
    html_path, json_path = write_fairness_report(audit, gaps, out_dir=tmp_path, identity=identity,
                                                 limits={"approval_gap_max": 0.5})
    html = html_path.read_text(encoding="utf-8")
    data = json.loads(json_path.read_text(encoding="utf-8"))
    word, checks = fairness_verdict(data, {"approval_gap_max": 0.5})
    assert word in ("pass", "fail", "target missed", "undecided")
    # the verdict comes first, then the identity, before any statistics
    first = html.index('class="verdict')
    assert first < html.index("Model identity") < html.index("Disparities")
    assert f"<b>{word.upper()}</b>" in html
    for v in identity.values():
        assert v in html
    # a limit looser than the programme's target is shown and refused (issue 25): 0.05 applies
    assert "asked 0.5, target 0.05 applied" in html and "&lt;= 0.5" not in html
    approval = next(c for c in checks if c["check"] == "largest equal-risk approval gap")
    assert approval["limit"] == "<= 0.05"
    # human labels, zh and en; no codes in headers or group cells
    assert "Age band x formerly poor / 年龄段 x 脱贫户" in html
    assert ">age_band_x_formerly_poor<" not in html
    assert "70+ · formerly poor / 70+ · 脱贫户" in html  # the one set of age bands
    # every table scrolls horizontally instead of running off the page
    assert html.count("<table>") == html.count('<div class="table-wrap"><table>')
    # one narrow per-group table per system instead of one wide table
    assert html.count("Per-group metrics: ") == len(audit.systems)
    assert not re.search(r">\d\.\d+e[+-]\d+<", html)  # no scientific notation in cells
    assert re.search(r"<td>\d{1,3},\d{3}</td>", html)  # mean line in yuan, thousands separator


def test_run_fairness_reports_progress_step_by_step(tmp_path: Path) -> None:
    from village_credit.fairness.report import run_fairness

    hh, _, systems = _inputs(400)
    decisions = {s.name: pd.DataFrame({"household_id": hh.household_id, "approved": s.approved,
                                       "credit_line": s.credit_line, "pd": s.pd}) for s in systems}
    steps: list[tuple[str, int, int]] = []
    res = run_fairness(hh, decisions, out_dir=tmp_path, n_boot=5, progress=lambda *a: steps.append(a))
    assert res["json"].is_file()
    assert [d for _, d, _ in steps] == list(range(len(steps)))  # one step at a time, in order
    assert steps[-1] == ("done", len(steps) - 1, len(steps) - 1) and len(steps) >= 4
    assert "audit (bootstrap)" in [name for name, _, _ in steps]


def test_banner_never_reads_pass_while_a_programme_target_fails() -> None:
    """Issue 25: a gap over the programme's target is never a green PASS, whatever limits a
    caller passes; a gap within the ceiling's allowance reads 'target missed' (amber), and
    a model's own excess over the gate's limit reads FAIL."""
    from village_credit.fairness.report import fairness_verdict

    data = {"equal_risk": {"max_gap_approval": 0.09, "max_gap_line": 0.08, "ceiling_max_gap_approval": 0.08,
                           "ceiling_max_gap_line": 0.07, "max_excess_approval": 0.01, "max_excess_line": 0.02},
            "demographic_parity": {"min_ratio": 0.9}}
    for limits in (None, {"approval_gap_max": 0.25, "line_gap_max": 1.0}):
        word, rows = fairness_verdict(data, limits)
        assert word == "target missed"
        assert next(r for r in rows if r["check"] == "largest equal-risk approval gap")["result"] == "fail"
    data["equal_risk"]["max_excess_approval"] = 0.03  # the model's own part too large
    assert fairness_verdict(data)[0] == "fail"
    data["equal_risk"].update(max_gap_approval=0.04, max_excess_approval=0.01)
    assert fairness_verdict(data)[0] == "pass"
    # no truth: the equal-risk rows say why they do not apply; the observed-outcome gates decide
    word, rows = fairness_verdict({"demographic_parity": {"min_ratio": 0.9},
                                   "observed": {"min_calibration_p": 0.001, "max_tpr_gap": 0.01}})
    assert word == "fail"
    assert all(r["result"].startswith("not applicable") for r in rows if "equal-risk" in r["check"])
