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
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from doc_blocks import ROOT, section_blocks
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from servers import NO_JOB_WORKERS, free_port, running_server
from typer.testing import CliRunner

from village_credit.cli import app

pytestmark = pytest.mark.slow

ADMIN, ADMIN_PW = "admin", "admin-pass-for-tests-1"
SCORER, SCORER_PW = "scorer", "scorer-pass-for-tests-1"
NAME = "vc-served"


DOC = ROOT / "docs" / "registry.md"
SECTION = "A credit center's tracking server (MLflow authentication)"


def _doc_blocks() -> tuple[str, str]:
    """The section's shell and Python blocks, exactly as docs/registry.md has them."""
    found = section_blocks(DOC, SECTION)
    shell = [b.code for b in found if b.lang == "bash"]
    python = [b.code for b in found if b.lang == "python"]
    assert len(shell) == 1 and len(python) == 1, f"{DOC.name}: expected one bash and one python block"
    return shell[0], python[0]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The server started by the docs' shell block, run by bash in a scratch folder.

    What differs from a reader's paste, and why: the ``pip install`` line is checked
    (the extra is installed) instead of run; the placeholders get test passwords; port
    5000 becomes a free port, with one worker and no job workers (a busy CI machine).
    """
    pytest.importorskip("flask_wtf")  # what `pip install 'mlflow[auth]'` adds
    shell, _ = _doc_blocks()
    root = tmp_path_factory.mktemp("auth-server")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    install = "pip install 'mlflow[auth]'"
    assert shell.startswith(install)
    script = (shell.split("\n", 1)[1].replace("<a long secret>", ADMIN_PW)
              .replace("--port 5000", f"--port {port} --workers 1"))
    assert str(port) in script and "<" not in script.replace("<<'EOF'", ""), script
    env = {**os.environ, **NO_JOB_WORKERS,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    with running_server(["bash", "-euo", "pipefail", "-c", script], url, root / "server.log",
                        what="the docs' mlflow server", env=env, cwd=root):
        _, python = _doc_blocks()
        admin = {**os.environ, "MLFLOW_TRACKING_USERNAME": ADMIN, "MLFLOW_TRACKING_PASSWORD": ADMIN_PW}
        code = python.replace("http://127.0.0.1:5000", url).replace('"<password>"', repr(SCORER_PW))
        setup = subprocess.run([sys.executable, "-c", code], env=admin, capture_output=True, text=True,
                               timeout=120, check=False)
        assert setup.returncode == 0, f"the docs' account setup failed:\n{setup.stderr[-3000:]}"
        yield url


def _as(mp: pytest.MonkeyPatch, url: str, user: str, password: str) -> None:
    mp.setenv("MLFLOW_TRACKING_URI", url)
    mp.setenv("MLFLOW_TRACKING_USERNAME", user)
    mp.setenv("MLFLOW_TRACKING_PASSWORD", password)
    mlflow.set_tracking_uri(url)
    mlflow.set_registry_uri(url)


def test_scoring_account_reads_and_scores_but_cannot_move_aliases(
        server: str, scoring_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:

    from village_credit.models.decision import DecisionModel
    from village_credit.registry import configure, load_model, promote
    from village_credit.registry.pyfunc_model import log_decision_model

    env = scoring_env  # the trained test model
    old = mlflow.get_tracking_uri()
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        # the admin: log the model once, register it as two versions, promote v1 (v2 is a
        # never-gated version: one upload through the server, not two, for the same proof)
        _as(monkeypatch, server, ADMIN, ADMIN_PW)
        configure(server)
        dm = DecisionModel.load(env.root / "decision_model")
        with mlflow.start_run():
            info = log_decision_model(env.root / "decision_model",
                                      input_example=dm.input_example(5),
                                      registered_model_name=NAME)
        second = mlflow.register_model(info.model_uri, NAME)
        versions = [str(info.registered_model_version), str(second.version)]
        assert versions == ["1", "2"]
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


def test_docs_auth_setup_as_written(server: str, scoring_env, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/registry.md's two blocks, run as written (fixture ``server``), give the
    accounts the page promises; a wrong password is one line and exit code 2."""
    from mlflow.server import get_app_client

    _as(monkeypatch, server, ADMIN, ADMIN_PW)
    auth = get_app_client("basic-auth", tracking_uri=server)
    assert auth.get_user("scorer").username == "scorer"
    perm = auth.get_user_permission("calibrator", "registered_model", "village-credit")
    assert perm.permission == "EDIT", perm.to_json()

    _as(monkeypatch, server, SCORER, "not-the-password")
    res = CliRunner().invoke(app, ["score", "--model", "models:/village-credit@champion",
                                   "--input", str(scoring_env.parquet), "--output",
                                   str(tmp_path / "scores"), "--no-progress"])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "HTTP 401" in lines[0] and "MLFLOW_TRACKING_PASSWORD" in lines[0], res.stderr
    assert "not-the-password" not in res.output + res.stderr and "Traceback" not in res.stderr
