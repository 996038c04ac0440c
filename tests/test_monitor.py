"""Drift monitoring between vintages: the generator's vintage 2 of the townships hit by a
bad harvest must raise alerts; a bootstrap resample of vintage 1 must not."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

import mlflow
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from village_credit.commands.validation import register as register_commands
from village_credit.data.generator import (
    GeneratorConfig,
    drift_townships,
    generate_households,
    generate_vintage,
)
from village_credit.validation.kit import ValidationKitError, monitor

pytestmark = pytest.mark.slow
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@pytest.fixture(scope="module")
def vintages(tmp_path_factory: pytest.TempPathFactory) -> dict:
    cfg = GeneratorConfig(n_households=4000, seed=7)
    v1, v2 = generate_households(cfg), generate_vintage(cfg, 2)
    towns = drift_townships(cfg, 2)
    assert towns
    hit1 = v1[v1["township_code"].isin(towns)].reset_index(drop=True)
    hit2 = v2[v2["township_code"].isin(towns)].reset_index(drop=True)
    resample = v1.sample(len(v1), replace=True, random_state=1).reset_index(drop=True)
    root = tmp_path_factory.mktemp("vintages")
    paths = {}
    for name, df in (("hit1", hit1), ("hit2", hit2), ("v1", v1), ("resample", resample)):
        paths[name] = root / f"{name}.parquet"
        df.to_parquet(paths[name])
    return {"hit1": hit1, "hit2": hit2, "v1": v1, "resample": resample, "paths": paths}


@pytest.fixture(scope="module")
def model_uri(validation_kit, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("monitor-store")
    old = mlflow.get_tracking_uri()
    validation_kit.make_store(root)
    yield validation_kit.register_model(validation_kit.cached_model(tmp_path_factory), root, name="vc-monitor")
    mlflow.set_tracking_uri(old)


def test_raw_columns_flag_drifted_townships(vintages: dict, tmp_path: Path) -> None:
    res = monitor(None, vintages["hit1"], vintages["hit2"], tmp_path / "drift")
    assert res["mode"] == "raw columns" and res["alert"] == "red"
    assert "income_volatility" in res["red_columns"]
    cols = set(res["csi"]["column"])
    assert not cols & {"vintage", "household_id", "true_pd", "default_12m"}
    html = (tmp_path / "drift" / "drift_report.html").read_text()
    assert "data:image/png;base64," in html
    data = json.loads((tmp_path / "drift" / "drift_report.json").read_text())
    assert data["alert"] == "red" and data["thresholds"] == [0.1, 0.25]


def test_raw_columns_quiet_on_resample(vintages: dict) -> None:
    steps: list[tuple[str, int, int]] = []
    res = monitor(None, vintages["v1"], vintages["resample"], None, progress=lambda *a: steps.append(a))
    assert [d for _, d, _ in steps] == list(range(len(steps))) and steps[-1][0] == "done"
    assert len({t for _, _, t in steps}) == 1 and steps[-1][1] == steps[-1][2] >= 3
    assert res["alert"] == "green" and res["counts"]["amber"] == 0
    assert float(res["csi"]["csi"].max()) < 0.05


def test_model_features_and_score_drift(vintages: dict, model_uri: str, tmp_path: Path) -> None:
    drift = monitor(model_uri, vintages["hit1"], vintages["hit2"], tmp_path / "m")
    assert drift["mode"] == "model features and score"
    assert drift["alert"] == "red" and drift["score_alert"] in ("amber", "red")
    assert drift["score_psi"] > 0.1
    assert {"score", "pd", "income_volatility"} <= set(drift["csi"]["column"])
    assert drift["vs_training"]["alert"] in ("amber", "red")
    assert drift["model"]["model_version"] == "1"
    quiet = monitor(model_uri, vintages["v1"], vintages["resample"], None)
    assert quiet["alert"] == "green" and quiet["score_alert"] == "green"
    assert quiet["vs_training"]["alert"] == "green"


def test_thresholds_are_used_and_checked(vintages: dict) -> None:
    strict = monitor(None, vintages["v1"], vintages["resample"], None, thresholds=(0.0, 0.001))
    assert strict["alert"] == "red"
    with pytest.raises(ValidationKitError, match="thresholds"):
        monitor(None, vintages["v1"], vintages["resample"], None, thresholds=(0.3, 0.1))
    with pytest.raises(ValidationKitError, match="missing"):
        monitor(None, vintages["v1"], vintages["resample"].drop(columns=["head_age"]), None,
                columns=["head_age"])


def test_cli_monitor(vintages: dict, tmp_path: Path) -> None:
    app = typer.Typer()
    register_commands(app)
    runner = CliRunner()
    p = vintages["paths"]
    res = runner.invoke(app, ["monitor", "--reference", str(p["hit1"]), "--current", str(p["hit2"]),
                              "--output", str(tmp_path / "r"), "--fail-on", "red"])
    assert res.exit_code == 1, res.output
    out = json.loads(res.stdout[res.stdout.index("{"):])
    assert out["alert"] == "red" and Path(out["html"]).is_file()
    res = runner.invoke(app, ["monitor", "--reference", str(p["v1"]), "--current",
                              str(p["resample"]), "--output", str(tmp_path / "q")])
    assert res.exit_code == 0 and json.loads(res.stdout[res.stdout.index("{"):])["alert"] == "green"
    res = runner.invoke(app, ["monitor", "--reference", str(tmp_path / "nope.parquet"),
                              "--current", str(p["v1"]), "--output", str(tmp_path / "e")])
    assert res.exit_code == 2 and "not found" in res.output


def test_segments_flag_the_shocked_township(vintages: dict, tmp_path: Path) -> None:
    """Vintage 2 vs vintage 1 of the whole county: the township hit by the generator's
    documented shock is flagged by segment; a bootstrap resample flags nothing."""
    cfg = GeneratorConfig(n_households=4000, seed=7)
    towns = drift_townships(cfg, 2)
    v2 = generate_vintage(cfg, 2)
    res = monitor(None, vintages["v1"], v2, tmp_path / "seg")
    seg = res["segments"]
    assert set(seg["segment"]) >= {"township_code", "village_code", "age_band", "formerly_poor"}
    flagged_towns = set(seg[(seg["segment"] == "township_code") & seg["flagged"]]["value"])
    assert flagged_towns and flagged_towns <= set(towns), (flagged_towns, towns)
    hit = seg[(seg["segment"] == "township_code") & seg["value"].isin(towns)]
    assert (hit["default_rate_current"] > hit["default_rate_reference"]).all()
    assert any(s.startswith("township_code=") for s in res["flagged_segments"])
    assert "By segment" in (tmp_path / "seg" / "drift_report.html").read_text(encoding="utf-8")

    quiet = monitor(None, vintages["v1"], vintages["resample"], None)
    assert quiet["flagged_segments"] == []


def test_segments_with_a_model_test_realised_against_predicted(vintages: dict, model_uri: str) -> None:
    cfg = GeneratorConfig(n_households=4000, seed=7)
    towns = drift_townships(cfg, 2)
    res = monitor(model_uri, vintages["v1"], generate_vintage(cfg, 2), None)
    seg = res["segments"].set_index(["segment", "value"])
    for t in towns:
        row = seg.loc[("township_code", t)]
        assert np.isfinite(row["score_psi"]) and np.isfinite(row["calibration_p"])
    flagged = seg[seg["flagged"]].reset_index()
    assert set(flagged.loc[flagged["segment"] == "township_code", "value"]) <= set(towns)
    assert set(flagged.loc[flagged["segment"] == "township_code", "value"])
