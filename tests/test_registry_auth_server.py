"""A credit center's MLflow: tracking server with MLflow's own authentication.

``mlflow server --app-name basic-auth`` on 127.0.0.1 (a real server subprocess on a free
port). The admin (the model-risk officer) logs, registers and promotes; the scoring
account has READ only: it loads and scores ``@champion`` through the one loader, and
cannot move an alias (MLflow answers PERMISSION_DENIED), so it cannot point production
at an ungated version. Setup as in docs/registry.md ("A credit center's tracking server").
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from typer.testing import CliRunner

from village_credit.cli import app

pytestmark = pytest.mark.slow

ADMIN, ADMIN_PW = "admin", "admin-pass-for-tests-1"
SCORER, SCORER_PW = "scorer", "scorer-pass-for-tests-1"
NAME = "vc-served"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("auth-server")
    ini = root / "basic_auth.ini"
    ini.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{(root / 'auth.db').as_posix()}\n"
        f"admin_username = {ADMIN}\nadmin_password = {ADMIN_PW}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        # cache successful password checks (PBKDF2 per request is slow on a busy machine)
        "auth_cache_ttl_seconds = 60\n",
        encoding="utf-8")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "MLFLOW_AUTH_CONFIG_PATH": str(ini),
           "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-only-secret",
           "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no background job workers
    log = open(root / "server.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth",
         "--backend-store-uri", f"sqlite:///{(root / 'mlflow.db').as_posix()}",
         "--artifacts-destination", str(root / "artifacts"),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 240  # bounded: a loaded CI machine starts it in ~1 min
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail("mlflow server did not start:\n"
                            + (root / "server.log").read_text(errors="replace")[-3000:])
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def _as(mp: pytest.MonkeyPatch, url: str, user: str, password: str) -> None:
    mp.setenv("MLFLOW_TRACKING_URI", url)
    mp.setenv("MLFLOW_TRACKING_USERNAME", user)
    mp.setenv("MLFLOW_TRACKING_PASSWORD", password)
    mlflow.set_tracking_uri(url)
    mlflow.set_registry_uri(url)


def test_scoring_account_reads_and_scores_but_cannot_move_aliases(
        server: str, scoring_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.server import get_app_client

    from village_credit.models.decision import DecisionModel
    from village_credit.registry import configure, load_model, promote
    from village_credit.registry.pyfunc_model import log_decision_model

    env = scoring_env  # the trained test model
    old = mlflow.get_tracking_uri()
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        # the admin: create the scoring account, log + register two versions, promote v1
        _as(monkeypatch, server, ADMIN, ADMIN_PW)
        get_app_client("basic-auth", tracking_uri=server).create_user(SCORER, SCORER_PW)
        configure(server)
        dm = DecisionModel.load(env.root / "decision_model")
        versions = []
        for _ in range(2):
            with mlflow.start_run():
                info = log_decision_model(env.root / "decision_model",
                                          input_example=dm.input_example(5),
                                          registered_model_name=NAME)
            versions.append(str(info.registered_model_version))
        assert promote(NAME, versions[0], {}, override_reason="auth test: gates tested elsewhere", override_by="test suite", override_until="2099-12-31"
                       ).promoted

        # the scoring account: reads and loads the gated champion ...
        _as(monkeypatch, server, SCORER, SCORER_PW)
        loaded = load_model(f"models:/{NAME}@champion", tmp_path / "dl")
        assert loaded.gate.gated and loaded.version == versions[0]
        res = CliRunner().invoke(app, ["score", "--model", f"models:/{NAME}@champion",
                                       "--input", str(env.parquet), "--output",
                                       str(tmp_path / "scores"), "--no-progress"])
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["model"]["gated"] is True
        # ... but cannot move @champion onto the never-gated v2, nor write tags
        client = MlflowClient(tracking_uri=server, registry_uri=server)
        with pytest.raises(MlflowException, match="PERMISSION_DENIED|Permission denied"):
            client.set_registered_model_alias(NAME, "champion", versions[1])
        with pytest.raises(MlflowException, match="PERMISSION_DENIED|Permission denied"):
            client.set_model_version_tag(NAME, versions[1], "promotion.record", "forged.json")
        assert client.get_model_version_by_alias(NAME, "champion").version == versions[0]

        # and without credentials nothing at all
        monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
        monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
        with pytest.raises(MlflowException):
            MlflowClient(tracking_uri=server).get_registered_model(NAME)
    finally:
        mlflow.set_tracking_uri(old)
        mlflow.set_registry_uri(old)
