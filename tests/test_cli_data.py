"""The data commands: generate streams a file; check-data reports problems and loses no row."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from village_credit.cli import app


def test_generate_then_check_data(tmp_path: Path) -> None:
    out = tmp_path / "h.parquet"
    runner = CliRunner()
    res = runner.invoke(app, ["generate", "--output", str(out), "--n-households", "800", "--seed", "3",
                              "--chunk-rows", "300"])
    assert res.exit_code == 0, res.output
    df = pd.read_parquet(out)
    assert len(df) == 800
    res = runner.invoke(app, ["check-data", "--input", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["valid"] == 800

    bad = df.copy()
    bad.loc[5, "head_age"] = -4
    bad.loc[9, "education"] = "phd-in-astrology"
    bad_path = tmp_path / "bad.parquet"
    bad.to_parquet(bad_path, index=False)
    q = tmp_path / "q.parquet"
    res = runner.invoke(app, ["check-data", "--input", str(bad_path), "--quarantine", str(q)])
    assert res.exit_code == 1
    summary = json.loads(res.output)
    assert summary["valid"] + summary["quarantined"] == 800
    assert summary["quarantined"] == 2
    problems = pd.read_parquet(q)
    assert set(zip(problems["row_number"], problems["column"])) == {(5, "head_age"), (9, "education")}


def test_check_data_on_unreadable_file_names_it(tmp_path: Path) -> None:
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    res = CliRunner().invoke(app, ["check-data", "--input", str(broken)])
    assert res.exit_code == 2
    assert "broken.parquet" in res.output
