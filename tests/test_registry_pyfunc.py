"""The decision model logged as a pyfunc from code, registered, gated and loaded fresh.

Uses the real ``DecisionModel`` (fitted small by ``models.blend.fit_blend``) and a
real sqlite MLflow store in a temp dir.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path
from typing import Iterator

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.models import Model

from village_credit.registry import configure, promote
from village_credit.registry.pyfunc_model import (
    DECISION_PYFUNC_PATH,
    INPUT_SCHEMA_KEY,
    default_pip_requirements,
    log_decision_model,
    model_input_schema,
)

pytestmark = pytest.mark.slow

TRUTH = ["true_pd", "default_12m", "granted_hist", "outcome_observed"]
NAME = "village-credit"

# argv: the batch, then one or more model URIs; one JSON line per model, in their order.
# Before each load the package of the model loaded before is forgotten (as in a fresh
# process), so each model imports ``village_credit`` from its own code_paths ("code").
LOAD_AND_SCORE = """
import json, sys
import mlflow, pandas as pd
x = pd.read_parquet(sys.argv[1])
for uri in sys.argv[2:]:
    for name in [n for n in sys.modules if n.partition(".")[0] == "village_credit"]:
        del sys.modules[name]
    out = mlflow.pyfunc.load_model(uri).predict(x)
    print(json.dumps({"n": len(out), "status": out["status"].tolist(),
                      "reasons": out["quarantine_reason"].tolist(),
                      "pd": out["pd"].astype(float).round(10).fillna(-1.0).tolist(),
                      "columns": list(out.columns),
                      "code": sys.modules["village_credit"].__file__}))
"""


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory, generated_households) -> Iterator[dict]:
    from village_credit.models.blend import fit_blend

    root = tmp_path_factory.mktemp("pyfunc")
    old = mlflow.get_tracking_uri()
    uri = f"sqlite:///{root.as_posix()}/mlflow.db"
    configure(uri)
    df = generated_households(700, seed=3)
    tr, ca = df.iloc[:450], df.iloc[450:]
    dm = fit_blend(tr, tr["default_12m"], ca, ca["default_12m"], policy="jinxiang_2022",
                   gbm_params={"n_estimators": 15, "num_leaves": 7}, seed=0)
    dm.save(root / "decision_model")
    with mlflow.start_run() as run:
        info = log_decision_model(root / "decision_model", input_example=dm.input_example(5),
                                  registered_model_name=NAME)
    scoring = df.drop(columns=TRUTH).head(6).reset_index(drop=True)
    # A NaN in an integer column: MLflow's strict schema enforcement would reject the
    # whole batch; the lenient signature lets decide() quarantine just this row.
    scoring["head_age"] = scoring["head_age"].astype("float64")
    scoring.loc[2, "head_age"] = float("nan")
    scoring.to_parquet(root / "batch.parquet")
    yield {"root": root, "uri": uri, "info": info, "run_id": run.info.run_id, "dm": dm,
           "batch": root / "batch.parquet"}
    mlflow.set_tracking_uri(old)


def test_logged_model_carries_code_requirements_signature_and_example(logged: dict) -> None:
    info = logged["info"]
    assert info.registered_model_version == 1 or str(info.registered_model_version) == "1"
    local = Path(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(logged["root"] / "dl")))
    assert (local / "code" / "village_credit" / "models" / "decision.py").is_file()
    assert (local / DECISION_PYFUNC_PATH.name).is_file()
    assert any((local / "artifacts").rglob("booster.txt"))
    assert not list(local.rglob("*.pkl"))  # no pickles of custom classes
    reqs = (local / "requirements.txt").read_text()
    for lib in ("mlflow==", "lightgbm==", "pandas==", "pyyaml=="):
        assert lib in reqs.lower()
    assert set(default_pip_requirements()) <= set(reqs.split())
    sig = info.signature
    # the input contract is in the MLmodel metadata, not in the MLflow-enforced signature
    assert sig.inputs is None
    contract = Model.load(str(local / "MLmodel")).metadata[INPUT_SCHEMA_KEY]
    inputs = {c["name"]: c for c in contract}
    assert {"household_id", "head_age"} <= set(inputs) and not set(inputs) & set(TRUTH)
    assert inputs["head_age"]["type"] == "long" and inputs["snapshot_date"]["type"] == "datetime"
    assert model_input_schema(info.model_uri) == [{"name": c["name"], "type": c["type"]} for c in contract]
    outputs = {c.name for c in sig.outputs.inputs}
    assert {"household_id", "pd", "points", "grade", "credit_line", "rate", "eligible", "vetoed",
            "veto_reasons", "reason_codes", "status", "quarantine_reason"} <= outputs
    example = json.loads((local / "input_example.json").read_text())
    assert "household_id" in example["columns"]


def test_in_process_predict_quarantines_bad_rows(logged: dict) -> None:
    model = mlflow.pyfunc.load_model(logged["info"].model_uri)
    out = model.predict(pd.read_parquet(logged["batch"]))
    assert len(out) == 6
    assert out.loc[2, "status"] == "quarantined" and "head_age" in out.loc[2, "quarantine_reason"]
    assert (out.drop(index=2)["status"] == "scored").all()


def test_pyfunc_predict_quarantines_a_text_cell_and_equals_decide(
        logged: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """A non-numeric cell (as a CSV or JSON client sends it) quarantines its row only,
    and MLflow's own predict gives exactly the model's decisions (nothing is converted):
    float columns stay float, NaN for the quarantined rows (``np.log(p["pd"])`` works)."""
    monkeypatch.delenv("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", raising=False)
    model = mlflow.pyfunc.load_model(logged["info"].model_uri)
    batch = pd.read_parquet(logged["batch"])
    batch["head_age"] = batch["head_age"].astype(object)
    batch.loc[4, "head_age"] = "forty"
    out = model.predict(batch, params={"top_k": 2})
    assert out["status"].tolist() == ["scored", "scored", "quarantined", "scored", "quarantined", "scored"]
    assert "head_age: not a number" in out.loc[4, "quarantine_reason"]
    # exactly the model's decisions, dtypes included
    pd.testing.assert_frame_equal(out, logged["dm"].decide(batch, top_k=2))
    for col in ("pd", "points", "credit_line", "rate"):
        assert pd.api.types.is_float_dtype(out[col].dtype), (col, out[col].dtype)
        assert np.isnan(out.loc[4, col]) and np.isnan(out.loc[2, col])
    assert np.isfinite(np.log(out["pd"].drop(index=[2, 4]))).all()


def test_champion_loads_and_scores_in_fresh_process(logged: dict) -> None:
    from village_credit.registry import get_client
    from village_credit.registry.loading import version_digest
    from village_credit.registry.verdict import record_validation, run_tags

    client = get_client()  # the validator's PASS on a sample of its own (the first gate)
    run = client.create_run("0", tags=run_tags(
        NAME, "1", model_uri=f"models:/{NAME}/1", artifact_sha256=version_digest(NAME, "1", client=client),
        validator="V. Alidator", sample_fingerprint="vc-fp-1:sample", training_fingerprint=None,
        purpose="test validation"))
    record_validation(client, run.info.run_id, NAME, "1", {"verdict": "pass", "reasons": []},
                      validator="V. Alidator")
    res = promote(NAME, "1", {
        "discrimination": {"auc": 0.75, "ks": 0.4},
        "calibration": {"ece": 0.01, "hosmer_lemeshow_p": 0.5},
        "stability": {"score_psi": 0.01, "max_feature_psi": 0.05},
        "fairness": {"equal_risk": {"max_gap_approval": 0.01, "max_gap_line": 0.02,
                                    "max_excess_approval": 0.005, "max_excess_line": 0.01,
                                    "rules": {"max_gap_approval": 0.40}},
                     "demographic_parity": {"min_ratio": 0.9}},
    })
    assert res.promoted, res.report.to_json()
    env = {**os.environ, "MLFLOW_TRACKING_URI": logged["uri"]}
    out = subprocess.run([sys.executable, "-c", LOAD_AND_SCORE, str(logged["batch"]),
                          "models:/village-credit@champion"], env=env,
                         cwd=logged["root"], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["n"] == 6 and data["status"].count("quarantined") == 1
    assert "credit_line" in data["columns"]


def _pip_sources() -> tuple[list[str], dict[str, str]]:
    """pip's configured indexes, find-links and CA bundle as uv options and environment, so
    uv installs from where pip would (a mirror set in pip.conf, a local wheelhouse) and, as
    pip does, takes the best match across all of them (uv's default takes a package from the
    first index that has it)."""
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True,
                            text=True, check=False).stdout
    options = {"index-url": "--index-url", "extra-index-url": "--extra-index-url", "find-links": "--find-links"}
    args, env = ["--index-strategy", "unsafe-best-match"], dict(os.environ)
    for line in listed.splitlines():  # e.g. global.extra-index-url='https://a/simple https://b/simple'
        key, _, value = line.partition("=")
        name, value = key.rpartition(".")[2], value.strip().strip("'\"")
        if name == "cert":
            env["SSL_CERT_FILE"] = value
        for source in value.split() if name in options else ():
            args += [options[name], source]
    return args, env


def _model_requirements_env(requirements: Path, config: pytest.Config, tmp_path: Path) -> Path:
    """The python of a virtualenv holding exactly ``requirements`` (and what they pull in).

    A bare venv (not even pip) of this interpreter, filled by uv (a test extra) from pip's
    configured sources (:func:`_pip_sources`), not byte-compiled at install (of its ~14k
    files the load imports a few hundred). pip took ~40 CPU s here, ~25 of them finding the
    88 distributions on the indexes; uv resolves and installs the same requirements in ~4 s
    (docs/benchmarks.md, "Test suite time, ninth pass"). Built once per requirements text and interpreter and kept in pytest's
    cache (``.pytest_cache/d/``; ``pytest --cache-clear`` rebuilds it): its files cost as
    much again to delete. Without the cache plugin (``-p no:cacheprovider``) it is built
    in ``tmp_path``. The caller checks that ``village_credit`` is not importable there,
    whichever way it was built.
    """
    from uv import find_uv_bin

    text = requirements.read_text()
    key = hashlib.sha256(f"{sys.version}\n{text}".encode()).hexdigest()[:16]
    cache = getattr(config, "cache", None)
    home = cache.mkdir(f"model-requirements-venv-{key}") if cache is not None else tmp_path
    env_dir = home / "venv"
    if (env_dir / "requirements.txt").is_file() and (env_dir / "requirements.txt").read_text() == text:
        return env_dir / "bin" / "python"
    build = home / f"build-{os.getpid()}"
    shutil.rmtree(build, ignore_errors=True)
    venv.create(build, with_pip=False)
    uv = find_uv_bin()
    sources, env = _pip_sources()
    subprocess.run([uv, "pip", "install", "--quiet", "--python", str(build / "bin" / "python"),
                    *sources, "-r", str(requirements)], env=env, check=True)
    (build / "requirements.txt").write_text(text)  # written last: the venv is complete
    shutil.rmtree(env_dir, ignore_errors=True)
    try:
        build.rename(env_dir)  # a venv's python finds its prefix from where it is
    except OSError:  # another run finished the same venv first
        shutil.rmtree(build, ignore_errors=True)
    return env_dir / "bin" / "python"


def test_loads_in_fresh_virtualenv_with_only_model_requirements(logged: dict, tmp_path: Path,
                                                                 request: pytest.FixtureRequest) -> None:
    """Only the model's requirements.txt is installed: village_credit comes from code_paths."""
    local = Path(mlflow.artifacts.download_artifacts(logged["info"].model_uri,
                                                     dst_path=str(tmp_path / "model")))
    py = _model_requirements_env(local / "requirements.txt", request.config, tmp_path)
    no_package = subprocess.run([str(py), "-c", "import village_credit"], cwd=tmp_path, capture_output=True,
                                env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}, check=False)
    assert no_package.returncode != 0, "village_credit must come from the model's code_paths only"

    # a group-recalibrated version loads in the same bare environment (its class lives in
    # models/, not in the validation kit that fitted it: no matplotlib, no fairlearn there);
    # both models load in one process of that environment (its start-up is most of the cost)
    from village_credit.models.calibration import Calibrator
    from village_credit.models.recalibrated import RecalibratedDecisionModel
    from village_credit.validation.recalibration import DECISION_CLASS

    recal = RecalibratedDecisionModel.wrap(logged["dm"], Calibrator(method="platt", kind="logit", a=0.9, b=0.2))
    recal.group_offsets = {"70+": 0.3, "formerly_poor": -0.1}
    recal.save(tmp_path / "recalibrated")
    with mlflow.start_run():
        info = log_decision_model(tmp_path / "recalibrated", input_example=logged["dm"].input_example(5),
                                  decision_class=DECISION_CLASS)
    recal_local = Path(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(tmp_path / "recal")))
    assert set((recal_local / "requirements.txt").read_text().split()) <= set(
        (local / "requirements.txt").read_text().split())
    out = subprocess.run([str(py), "-c", LOAD_AND_SCORE, str(logged["batch"]), str(local), str(recal_local)],
                         cwd=tmp_path, capture_output=True, text=True, check=False,
                         env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr[-3000:]
    data, recal_data = (json.loads(line) for line in out.stdout.strip().splitlines()[-2:])
    assert data["n"] == 6 and data["status"].count("quarantined") == 1
    assert recal_data["n"] == 6 and recal_data["status"] == data["status"]
    assert recal_data["pd"] != data["pd"]  # the maps and offsets were applied
    # each model's code came from its own code_paths, not from the model loaded before it
    assert Path(data["code"]).is_relative_to(local), data["code"]
    assert Path(recal_data["code"]).is_relative_to(recal_local), recal_data["code"]


def test_mlflow_models_predict_from_the_shell(logged: dict) -> None:
    """``mlflow models predict -m models:/village-credit@champion`` with the JSON example."""
    from village_credit.registry import champion_version

    if champion_version(NAME) is None:
        promote(NAME, "1", {}, override_reason="shell test: gates covered elsewhere", override_by="test suite", override_until="2099-12-31")
    local = Path(mlflow.artifacts.download_artifacts(
        logged["info"].model_uri, dst_path=str(logged["root"] / "serving")))
    local = local / "serving_input_example.json"
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    env = {**os.environ, "MLFLOW_TRACKING_URI": logged["uri"]}
    out = subprocess.run([str(mlflow_cli), "models", "predict", "-m", f"models:/{NAME}@champion",
                          "-i", str(local), "-t", "json", "--env-manager", "local"],
                         env=env, cwd=logged["root"], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    preds = json.loads(out.stdout.strip().splitlines()[-1])["predictions"]
    assert len(preds) == 5 and all(p["status"] == "scored" for p in preds), preds


def _strict_json(text: str):
    """Parse as a JavaScript client would: NaN / Infinity are not JSON."""
    def _reject(token: str):
        raise ValueError(f"not JSON: {token}")
    return json.loads(text, parse_constant=_reject)


def test_scoring_server_answers_valid_json_with_null_for_quarantined_numbers(
        logged: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's own scoring server (what ``mlflow models serve`` runs): a quarantined
    row's PD, points and line come back as ``null``, and the body parses strictly."""
    from fastapi.testclient import TestClient
    from mlflow.pyfunc import scoring_server

    model = mlflow.pyfunc.load_model(logged["info"].model_uri)
    batch = pd.read_parquet(logged["batch"])
    body = {"dataframe_split": json.loads(batch.to_json(orient="split", date_format="iso"))}
    # init() marks the process as a serving environment; monkeypatch undoes it afterwards
    monkeypatch.setenv("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", "false")
    with TestClient(scoring_server.init(model)) as client:
        res = client.post("/invocations", json=body)
    assert res.status_code == 200, res.text[:2000]
    preds = _strict_json(res.text)["predictions"]  # fails on today's "pd": NaN
    assert len(preds) == 6 and preds[2]["status"] == "quarantined"
    assert preds[2]["pd"] is None and preds[2]["points"] is None
    assert all(isinstance(p["pd"], float) for i, p in enumerate(preds) if i != 2)
    # the batch scorer (context None) and, outside the server, pyfunc.predict keep floats
    inner = model.unwrap_python_model()
    monkeypatch.delenv("_MLFLOW_IS_IN_SERVING_ENVIRONMENT")
    assert pd.api.types.is_float_dtype(inner.predict(None, batch)["pd"].dtype)


def test_scoring_server_names_a_missing_column_in_the_first_line(logged: dict) -> None:
    from fastapi.testclient import TestClient
    from mlflow.pyfunc import scoring_server

    model = mlflow.pyfunc.load_model(logged["info"].model_uri)
    batch = pd.read_parquet(logged["batch"]).drop(columns=["land_mu"])
    body = {"dataframe_split": json.loads(batch.to_json(orient="split", date_format="iso"))}
    with TestClient(scoring_server.init(model)) as client:
        res = client.post("/invocations", json=body)
    assert res.status_code == 400
    message = _strict_json(res.text)["message"]
    first = message.splitlines()[0]
    assert "missing inputs" in first and "land_mu" in first and len(first) < 300, first[:500]
