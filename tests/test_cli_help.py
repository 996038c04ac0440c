"""``village-credit --help`` groups the commands by workflow, panels in workflow order."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys

from typer.testing import CliRunner

from village_credit.cli import COMMANDS, app, command_help
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


def _modules_after(code: str) -> set[str]:
    """Module names imported by a fresh interpreter after running ``code``."""
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
                         capture_output=True, text=True, check=True, env={**os.environ, "COLUMNS": "100"})
    return set(out.stdout.split())


def test_help_imports_no_command_module_and_no_heavy_stack() -> None:
    # the listing reads each command's docstring from its source (cli.command_help)
    mods = _modules_after("from typer.testing import CliRunner; from village_credit.cli import app\n"
                          "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output\n"
                          "assert 'Score every row with the model' in r.output, r.output")
    loaded = {m for m in mods if m.startswith("village_credit.commands.") and not m.split(".")[-1].startswith("_")}
    assert loaded == set()
    assert not {"lightgbm", "mlflow", "shap", "sklearn", "pandas"} & mods


def test_a_command_imports_only_its_own_module() -> None:
    mods = _modules_after("from typer.testing import CliRunner; from village_credit.cli import app\n"
                          "r = CliRunner().invoke(app, ['policies']); assert r.exit_code == 0, r.output")
    loaded = {m for m in mods if m.startswith("village_credit.commands.") and not m.split(".")[-1].startswith("_")}
    assert loaded == {"village_credit.commands.rules"}


def test_every_listed_command_resolves_to_its_function_with_its_docstring() -> None:
    import inspect

    for name in COMMANDS:
        module, _, function = COMMANDS[name][0].partition(":")
        func = getattr(importlib.import_module(f"village_credit.commands.{module}"), function)
        assert command_help(name) == inspect.cleandoc(func.__doc__ or ""), name
