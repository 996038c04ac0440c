"""The one model loader: every MLflow URI form, and the promotion record checked at the point of use.

Real decision model (the scoring tests' small ``fit_blend``), real sqlite MLflow store,
real ``promote``; aliases moved by hand with ``MlflowClient().set_registered_model_alias``,
as a user of the MLflow UI would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from village_credit.cli import app
from village_credit.registry import UngatedModelError, configure, load_model, promote
from village_credit.registry.loading import resolve_uri
from village_credit.registry.pyfunc_model import log_decision_model
from village_credit.scoring.outputs import read_model_metadata

if TYPE_CHECKING:
    from conftest import ScoringEnv

pytestmark = pytest.mark.slow
runner = CliRunner()


@pytest.fixture(scope="session")
def env(scoring_env: ScoringEnv) -> ScoringEnv:
    return scoring_env


def _register(env: ScoringEnv, name: str):
    from village_credit.models.decision import DecisionModel

    configure(env.tracking_uri)
    dm = DecisionModel.load(env.root / "decision_model")
    with mlflow.start_run():
        return log_decision_model(env.root / "decision_model", input_example=dm.input_example(5),
                                  registered_model_name=name)


def _client(env: ScoringEnv) -> MlflowClient:
    return MlflowClient(tracking_uri=env.tracking_uri, registry_uri=env.tracking_uri)


def _score(env: ScoringEnv, out: Path, *args: str):
    return runner.invoke(app, ["score", "--tracking-uri", env.tracking_uri, "--input",
                               str(env.parquet), "--output", str(out), "--no-progress", *args])


def test_alias_set_by_hand_on_a_never_gated_version_is_refused(env: ScoringEnv, tmp_path: Path) -> None:
    name = "vc-hand-alias"
    info = _register(env, name)
    version = str(info.registered_model_version)
    _client(env).set_registered_model_alias(name, "champion", version)  # the UI's alias pencil

    res = _score(env, tmp_path / "refused", "--model", f"models:/{name}@champion")
    assert res.exit_code == 2, res.output
    msg = " ".join(res.stderr.split())
    assert f"{name} v{version}" in msg and "no promotion record" in msg
    assert f"village-credit promote --model-name {name} --version {version}" in msg
    assert not (tmp_path / "refused" / "decisions").exists()  # nothing scored

    res = _score(env, tmp_path / "anyway", "--model", f"models:/{name}@champion", "--allow-ungated")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["model"]["gated"] is False and "allow-ungated" in summary["model"]["gate"]
    assert summary["scored"] > 0 and "UNGATED" in res.stderr
    meta = read_model_metadata(tmp_path / "anyway")
    assert meta["village_credit.model_gated"] == "False"
    assert "allow-ungated" in meta["village_credit.model_gate"]


def test_promoted_version_loads_under_every_uri_form(env: ScoringEnv, tmp_path: Path) -> None:
    name = "vc-uri-forms"
    info = _register(env, name)
    v = str(info.registered_model_version)
    promote(name, v, {}, override_reason="loader test: gates are tested elsewhere", override_by="test suite", override_until="2099-12-31",
            client=_client(env))
    forms = [f"models:/{name}@champion", f"models:/{name}/{v}", f"models:/{name}/latest",
             info.model_uri, f"runs:/{info.run_id}/model"]
    assert info.model_uri.startswith("models:/m-")
    for uri in forms:
        ident = resolve_uri(uri)
        assert (ident.name, ident.version) == (name, v), uri
        loaded = load_model(uri, tmp_path / f"dl{forms.index(uri)}")
        assert loaded.gate.gated and loaded.gate.by_override, uri
        assert loaded.decision_model.__class__.__name__ == "DecisionModel"
        assert loaded.artifact_sha256 == loaded.gate.expected_digest

    # a local model folder: no registry identity, so no promotion record
    local = loaded.local_dir
    with pytest.raises(UngatedModelError, match="not a registered model version"):
        load_model(str(local))
    assert load_model(str(local), allow_ungated=True).gate.loaded_ungated


def test_artifacts_changed_after_promotion_are_refused(env: ScoringEnv, tmp_path: Path) -> None:
    name = "vc-tampered"
    info = _register(env, name)
    v = str(info.registered_model_version)
    promote(name, v, {}, override_reason="loader test", override_by="test suite", override_until="2099-12-31", client=_client(env))
    assert load_model(f"models:/{name}@champion", tmp_path / "ok").gate.gated
    # edit one byte of the stored policy, as someone with write access to the store could
    src = _client(env).get_model_version(name, v).source
    root = Path(mlflow.artifacts.download_artifacts(src, dst_path=str(tmp_path / "probe")))
    rel = next(p for p in root.rglob("policy.yaml")).relative_to(root)
    store_file = Path(_client(env).get_logged_model(info.model_id).artifact_location
                      .removeprefix("file://")) / rel
    store_file.write_text(store_file.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    with pytest.raises(UngatedModelError, match="changed since promotion"):
        load_model(f"models:/{name}@champion", tmp_path / "bad")


def test_version_that_failed_its_gates_is_refused(env: ScoringEnv, tmp_path: Path) -> None:
    name = "vc-rejected"
    info = _register(env, name)
    v = str(info.registered_model_version)
    res = promote(name, v, {}, client=_client(env))  # no evidence: every gate fails
    assert not res.promoted
    _client(env).set_registered_model_alias(name, "champion", v)
    with pytest.raises(UngatedModelError, match="failed its promotion gates"):
        load_model(f"models:/{name}@champion", tmp_path)


def test_a_download_of_its_own_is_removed_when_the_process_ends(env: ScoringEnv, tmp_path: Path) -> None:
    """Without a destination folder the loader downloads to a temporary one and removes it
    (each `score` run used to leave a vc-model-* copy of the model in the temp folder)."""
    import subprocess
    import sys

    name = "vc-own-download"
    info = _register(env, name)
    promote(name, str(info.registered_model_version), {}, override_reason="loader test", override_by="test suite", override_until="2099-12-31",
            client=_client(env))
    script = ("import sys; from village_credit.registry import configure, load_model\n"
              "configure(sys.argv[1]); loaded = load_model(sys.argv[2])\n"
              "print(loaded.local_dir, loaded.local_dir.is_dir())\n")
    out = subprocess.run([sys.executable, "-c", script, env.tracking_uri, f"models:/{name}@champion"],
                         capture_output=True, text=True, check=True, cwd=tmp_path)
    local, existed = out.stdout.strip().splitlines()[-1].rsplit(" ", 1)
    assert existed == "True" and Path(local).name.startswith("vc-model-")
    assert not Path(local).exists()


def test_load_model_downloads_without_mlflow_progress_bars(env: ScoringEnv, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch, capfd) -> None:
    """score_file/load_model in a script or notebook: no "Downloading artifacts" bar per
    file, unless the user asks for MLflow's bars (then they are theirs)."""
    import os

    name = "vc-quiet-downloads"
    info = _register(env, name)
    promote(name, str(info.registered_model_version), {}, override_reason="loader test: gates tested elsewhere",
            override_by="test suite", override_until="2099-12-31", client=_client(env))
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    capfd.readouterr()
    load_model(f"models:/{name}@champion", tmp_path / "quiet")
    assert "Downloading artifacts" not in capfd.readouterr().err
    assert "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR" not in os.environ  # the caller's environment as it was
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "true")  # asked for: shown (the check can fail)
    load_model(f"models:/{name}@champion", tmp_path / "loud")
    assert "Downloading artifacts" in capfd.readouterr().err


def test_environment_mismatches_name_unsatisfied_requirements(tmp_path) -> None:
    """The loader's own dependency check (MLflow's scans every installed package): an
    unsatisfied pin and a missing package are named, satisfied ones are not."""
    import importlib.metadata

    from village_credit.registry.loading import _environment_mismatches

    numpy_version = importlib.metadata.version("numpy")
    (tmp_path / "requirements.txt").write_text(
        f"numpy=={numpy_version}\npandas==0.0.1\nno-such-package-vc==1.0\n# a comment\n", encoding="utf-8")
    found = _environment_mismatches(tmp_path, {"python_version": "2.7.18"})
    assert [m.split(" ")[0] for m in found] == ["pandas", "no-such-package-vc", "python"]
    assert "required: pandas==0.0.1" in found[0] and "uninstalled" in found[1]
    (tmp_path / "requirements.txt").write_text(f"numpy=={numpy_version}\n", encoding="utf-8")
    import sys

    assert _environment_mismatches(tmp_path, {"python_version": f"{sys.version_info.major}."
                                                                f"{sys.version_info.minor}.0"}) == []


def test_a_model_still_held_is_not_deserialised_again() -> None:
    """Two loads of the same version in one process: download, digest and gate run both
    times, the pyfunc is parsed once while the first is held (model load once per process)."""
    import gc

    from village_credit.registry import load_model
    from village_credit.registry.examples import ExampleStore

    store = ExampleStore()  # a throwaway sqlite store in a temporary folder
    try:
        store.champion("demo")
        first = load_model("models:/demo@champion", store.root / "a")
        second = load_model("models:/demo@champion", store.root / "b")
        assert second.pyfunc is first.pyfunc and second.decision_model is first.decision_model
        assert second.artifact_sha256 == first.artifact_sha256 and second.gate.gated
        assert second.local_dir != first.local_dir  # downloaded and hashed again
        digest = first.artifact_sha256
        del first, second
        gc.collect()
        from village_credit.registry.loading import _LOADED

        assert digest not in _LOADED  # nothing kept once nobody holds the model
    finally:
        store.close()
