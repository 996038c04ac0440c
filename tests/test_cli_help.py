"""``village-credit --help`` groups the commands by workflow, panels in workflow order."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from village_credit.cli import app
from village_credit.commands import PANELS


def test_help_lists_every_command_under_its_workflow_panel() -> None:
    r = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "100"})
    assert r.exit_code == 0, r.output
    positions = [r.output.find(f"─ {panel} ─") for panel in PANELS]
    assert all(p >= 0 for p in positions), r.output
    assert positions == sorted(positions)  # data first, score last
    # each command sits in the panel whose heading is the nearest above it
    expected = {"generate": "Data", "anonymise": "Data", "rules": "Rules", "policies": "Rules",
                "train": "Train", "demo": "Train", "explain": "Explain and audit",
                "fairness": "Explain and audit", "validate": "Validate", "monitor": "Validate",
                "promote": "Registry", "models": "Registry", "score": "Score"}
    for command, panel in expected.items():
        at = re.search(rf"│ {re.escape(command)}\s", r.output)
        assert at is not None, (command, r.output)
        above = max((p, name) for p, name in zip(positions, PANELS, strict=True) if p < at.start())
        assert above[1] == panel, (command, above[1])


def test_generic_commands_speak_of_rows_not_households_and_train_takes_a_store() -> None:
    """Issue 26 item 6: train, score, validate and explain serve any table; their help never
    says "household" except for the generator's own option, and train takes --tracking-uri."""
    runner = CliRunner()
    for command in ("train", "score", "validate", "explain"):
        r = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert r.exit_code == 0, r.output
        text = " ".join(r.output.split()).lower()
        assert "household" not in text.replace("--n-households", "").replace("data.n_households", ""), (
            command, r.output)
        if command == "train":
            assert "--tracking-uri" in text and "mlflow_tracking_uri" in text
