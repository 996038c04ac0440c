"""Recalibration: a miscalibrated model turns grades red; the recalibrated version is green
on fresh data from the same population; lineage recorded; nothing promoted.

Honest miscalibration: the model is trained on the generator's standard population
(4 % default rate) and validated on a riskier one (``target_default_rate=0.12``: the
generator shifts its latent intercept, i.e. a base-rate shift). The calibrator
recalibrates on one sample of the risky population (seed 202) and validates on a
fresh, independent one (seed 303).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Iterator

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from village_credit.cli import app as cli_app
from village_credit.errors import ConfigError
from village_credit.models.calibration import Calibrator
from village_credit.models.decision import DecisionModel
from village_credit.models.scaling import sigmoid
from village_credit.registry import load_model, promote
from village_credit.registry.tracking import data_fingerprint
from village_credit.validation.stability import psi_from_profile
from village_credit.validation.kit import validate_model
from village_credit.validation.recalibration import (
    DECISION_CLASS,
    RecalibratedDecisionModel,
    recalibrate,
)

pytestmark = pytest.mark.slow
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@pytest.fixture(scope="module")
def store(validation_kit, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("recal")
    old = mlflow.get_tracking_uri()
    uri = validation_kit.make_store(root)
    dm = validation_kit.cached_model(tmp_path_factory)
    v1 = validation_kit.register_model(dm, root)
    yield {"root": root, "uri": uri, "v1": v1, "dm": dm}
    mlflow.set_tracking_uri(old)


@pytest.fixture(scope="module")
def recalibrated(validation_kit, store: dict) -> dict:
    calib = validation_kit.population(3000, seed=202, rate=validation_kit.RISKY_RATE)
    res = recalibrate(store["v1"], calib, out_dir=store["root"] / "recal", seed=0)
    return {"res": res, "calib": calib}


@pytest.fixture(scope="module")
def fresh(validation_kit, store: dict, recalibrated: dict) -> dict:
    """Parent and recalibrated model validated on FRESH data of the risky population."""
    data = validation_kit.population(3000, seed=303, rate=validation_kit.RISKY_RATE)
    before, _, _ = validate_model(store["v1"], data, store["root"] / "before", log_to_mlflow=False)
    after, _, _ = validate_model(recalibrated["res"].model_uri, data, store["root"] / "after",
                                 log_to_mlflow=False)
    return {"before": before, "after": after}


def _lights(res: dict) -> dict:
    return res["calibration"]["lights"]


def test_miscalibrated_red_then_recalibrated_green_on_fresh_data(recalibrated: dict, fresh: dict
                                                                 ) -> None:
    before, after, res = fresh["before"], fresh["after"], recalibrated["res"]
    # the verdict's back-test judges pools of grades (>= 5 expected defaults), Holm-adjusted
    pools_before, pools_after = before["calibration"]["pools"], after["calibration"]["pools"]
    assert _lights(before)["red"] >= max(4, len(pools_before) - 2), pools_before
    assert _lights(after)["red"] == 0, pools_after
    assert _lights(after)["green"] >= len(pools_after) - 1, pools_after
    assert after["calibration"]["ece"] < before["calibration"]["ece"] / 2
    assert after["calibration"]["hosmer_lemeshow"]["p_value"] > 0.01
    if res.method == "platt":  # Platt keeps the ranking: same AUC on the same households
        assert after["discrimination"]["auc"] == pytest.approx(before["discrimination"]["auc"],
                                                               abs=1e-3)


def test_before_after_figures_on_the_calibrators_sample(recalibrated: dict) -> None:
    res = recalibrated["res"]
    assert res.method in ("platt", "isotonic")
    assert set(res.calibrator["cv_scores"]) == {"platt", "isotonic"}  # chosen by CV
    # the validation verdict's own back-test (pools, Holm), not a count of raw red grades
    assert res.before["lights"]["red"] >= max(4, len(res.before["pools"]) - 2), res.before["pools"]
    assert res.after["lights"]["red"] == 0, res.after["pools"]
    assert res.after["lights"]["green"] >= len(res.after["pools"]) - 1, res.after["pools"]
    assert res.after["brier"] < res.before["brier"] and res.after["ece"] < res.before["ece"]
    assert res.after["mean_pd"] == pytest.approx(res.after["default_rate"], abs=0.01)
    data = json.loads(res.report_json.read_text())
    assert {"before", "after", "calibrator", "parent"} <= set(data)
    # the reliability chart is the validation report's own (one renderer): before and after, bin by bin
    page = res.report_html.read_text()
    for name in ("before", "after"):
        tab = res.before["reliability"] if name == "before" else res.after["reliability"]
        ys = [float(y) for y in re.findall(rf'class="point" data-series="{name}: observed" data-x="[^"]*" '
                                           r'data-y="([^"]*)"', page)]
        expected = tab["observed_rate"].to_numpy(float)
        np.testing.assert_allclose(ys, expected[np.isfinite(expected)], rtol=1e-5)
        assert len(ys) >= 5


def test_new_version_registered_with_lineage_and_not_promoted(validation_kit, store: dict, recalibrated: dict
                                                              ) -> None:
    res = recalibrated["res"]
    client = MlflowClient()
    mv = client.get_model_version(validation_kit.NAME, res.version)
    assert res.version == "2" and mv.aliases == []  # not promoted, no alias moved
    tags = mv.tags
    assert tags["parent_version"] == "1" and tags["parent_model_uri"] == store["v1"]
    assert tags["sample_fingerprint"] == data_fingerprint(recalibrated["calib"])
    assert tags["recalibration_method"] == res.method
    assert tags["parent_artifact_sha256"].startswith("sha256:")
    run = client.get_run(res.run_id)
    assert run.data.tags["decision_class"] == DECISION_CLASS
    arts = {a.path for a in client.list_artifacts(res.run_id, "recalibration")}
    assert "recalibration/recalibration_report.json" in arts
    with pytest.raises(Exception):
        client.get_model_version_by_alias(validation_kit.NAME, "champion")
    loaded = mlflow.pyfunc.load_model(res.model_uri).unwrap_python_model().model
    assert isinstance(loaded, RecalibratedDecisionModel)
    assert loaded.lineage[-1]["parent_version"] == "1"
    # the toolkit's one loader names the class it loaded (MLflow keeps it under ``config``)
    own = load_model(res.model_uri, require_gate=False)
    assert own.decision_class == DECISION_CLASS and isinstance(own.decision_model, RecalibratedDecisionModel)


def _households(validation_kit, n: int = 400) -> object:
    return validation_kit.population(n, seed=404, rate=validation_kit.RISKY_RATE).drop(
        columns=["true_pd", "default_12m", "granted_hist", "outcome_observed"])


def test_platt_wrapper_is_exactly_additive(validation_kit, store: dict) -> None:
    dm: DecisionModel = store["dm"]
    hh = _households(validation_kit)
    cal = Calibrator("platt", "logit", a=0.8, b=0.6)
    rm = RecalibratedDecisionModel.wrap(dm, cal, {"note": "test"})
    base, new = dm.decide(hh), rm.decide(hh)
    z = dm.scaling.logit(base["points"].to_numpy())
    np.testing.assert_allclose(new["pd"], sigmoid(0.8 * z + 0.6), rtol=1e-10)
    np.testing.assert_allclose(new["points"], dm.scaling.points(0.8 * z + 0.6), rtol=1e-10)
    c0, c1 = dm.contributions(hh), rm.contributions(hh)
    np.testing.assert_allclose(c1.sum(axis=1), new["points"], rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(c1.iloc[:, 1:], 0.8 * c0.iloc[:, 1:], rtol=1e-10, atol=1e-10)
    # the policy decides from the new points: same function of points as the parent's
    pol = dm.policy_decisions(new["points"], new["eligible"], new["vetoed"])
    assert (pol["grade"].to_numpy() == new["grade"].to_numpy()).all()


def test_isotonic_wrapper_moves_only_the_base(validation_kit, store: dict, tmp_path: Path) -> None:
    dm: DecisionModel = store["dm"]
    hh = _households(validation_kit)
    xs = [-6.0, -4.0, -3.0, -2.0, 0.0]
    cal = Calibrator("isotonic", "logit", x_thresholds=xs, y_thresholds=[0.01, 0.03, 0.03, 0.2, 0.6])
    rm = RecalibratedDecisionModel.wrap(dm, cal)
    base, new = dm.decide(hh), rm.decide(hh)
    z = dm.scaling.logit(base["points"].to_numpy())
    np.testing.assert_allclose(new["pd"], cal.transform(z), rtol=1e-9)
    c0, c1 = dm.contributions(hh), rm.contributions(hh)
    np.testing.assert_allclose(c1.sum(axis=1), new["points"], rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(c1.iloc[:, 1:], c0.iloc[:, 1:], rtol=1e-12)
    # save / load round trip, and wrapping twice chains the maps
    rm.save(tmp_path / "m")
    again = RecalibratedDecisionModel.load(tmp_path / "m")
    np.testing.assert_allclose(again.decide(hh)["pd"], new["pd"], rtol=1e-12)
    twice = RecalibratedDecisionModel.wrap(again, Calibrator("platt", "logit", a=1.0, b=0.5))
    zz = np.log(cal.transform(z)) - np.log1p(-cal.transform(z))
    np.testing.assert_allclose(twice.decide(hh)["pd"], sigmoid(zz + 0.5), rtol=1e-8)
    dm.save(tmp_path / "plain")
    with pytest.raises(ConfigError, match="recalibration.json"):
        RecalibratedDecisionModel.load(tmp_path / "plain")


def test_score_reference_profile_is_mapped(validation_kit, store: dict) -> None:
    """The stored score bins move with the map: PSI on training-like data is unchanged."""
    dm: DecisionModel = store["dm"]
    hh = validation_kit.population(1500, seed=11)  # the training population
    cal = Calibrator("platt", "logit", a=1.1, b=1.0)
    rm = RecalibratedDecisionModel.wrap(dm, cal)
    p0 = dm.metadata["reference_profile"]["columns"]["score"]
    p1 = rm.metadata["reference_profile"]["columns"]["score"]
    assert p1["expected"] == pytest.approx(p0["expected"])
    psi0 = psi_from_profile(p0, dm.decide(hh)["points"])
    psi1 = psi_from_profile(p1, rm.decide(hh)["points"])
    assert psi1 == pytest.approx(psi0, abs=1e-3)
    assert "score" in dm.metadata["reference_profile"]["columns"]  # parent untouched


def test_cli_recalibrate_without_registering(validation_kit, store: dict, tmp_path: Path) -> None:
    path = tmp_path / "calib.parquet"
    validation_kit.population(2000, seed=505, rate=validation_kit.RISKY_RATE).to_parquet(path)
    app = cli_app
    runner = CliRunner()
    res = runner.invoke(app, ["recalibrate", "--model", store["v1"], "--input", str(path),
                              "--method", "platt", "--no-register", "--output", str(tmp_path / "o"),
                              "--tracking-uri", store["uri"]])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout[res.stdout.index("{"):])
    assert out["method"] == "platt" and out["version"] is None
    assert (tmp_path / "o" / "decision_model" / "recalibration.json").is_file()
    res = runner.invoke(app, ["recalibrate", "--model", store["v1"], "--input", str(path),
                              "--method", "spline", "--tracking-uri", store["uri"]])
    assert res.exit_code == 2


def test_goes_through_the_promotion_gates(validation_kit, recalibrated: dict, fresh: dict) -> None:
    """The third party's evidence on fresh data feeds the normal gates; nothing is automatic."""
    res = recalibrated["res"]
    ev = fresh["after"]["evidence"]
    assert ev["calibration"]["ece"] == pytest.approx(fresh["after"]["calibration"]["ece"])
    out = promote(validation_kit.NAME, res.version, ev)
    names = {g.name for g in out.report.gates}
    assert any("ece" in n for n in names) and any("auc" in n for n in names)
    assert out.promoted == (not out.report.failed)


def test_group_aware_recalibration_moves_only_group_members(validation_kit, store: dict, tmp_path: Path) -> None:
    from village_credit.data.groups import SUPPORT_GROUPS
    from village_credit.data.groups import support_groups

    sample = validation_kit.population(2000, seed=606, rate=validation_kit.RISKY_RATE)
    plain = recalibrate(store["v1"], sample, method="platt", register=False, out_dir=tmp_path / "p", seed=0)
    grp = recalibrate(store["v1"], sample, method="platt", register=False, out_dir=tmp_path / "g", seed=0,
                      group_aware=True, group_prior_sd=1.0)
    m_plain = RecalibratedDecisionModel.load(plain.model_dir)
    m_grp = RecalibratedDecisionModel.load(grp.model_dir)
    assert set(m_grp.group_offsets) == set(SUPPORT_GROUPS) and not m_plain.group_offsets
    assert any(abs(v) > 1e-6 for v in m_grp.group_offsets.values())
    rows = validation_kit.population(600, seed=707, rate=validation_kit.RISKY_RATE)
    member = support_groups(rows).any(axis=1).to_numpy()
    a, b = m_plain.predict_pd(rows).to_numpy(), m_grp.predict_pd(rows).to_numpy()
    np.testing.assert_allclose(a[~member], b[~member])  # the same map for non-members
    assert np.abs(a[member] - b[member]).max() > 0
