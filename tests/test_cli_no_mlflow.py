"""``village-credit score``'s own process never imports MLflow (issue 31 item 4, seventh
pass): the store process does the store's side, and the command loads the decision pyfunc
from the checked download by the same script's code without MLflow
(``registry.loading._mlflow_free_pyfunc``), which must give the very model MLflow's load
gives, or step aside.

No wall-clock limits: what the command's process imported is checked, and every output
and message against the same command run in-process (``CliRunner``: MLflow's load, in turn).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from village_credit.cli import app
from village_credit.registry.decision_face import DecisionPyfuncFace, input_columns_of
from village_credit.registry.loading import _load_fetched, _mlflow_free_pyfunc, fetch_model
from village_credit.scoring import read_decisions, read_quarantine

_SPY = """
import atexit, sys
atexit.register(lambda: print('MLFLOW', sorted(m for m in sys.modules if m == 'mlflow' or m.startswith('mlflow.')),
                              'village_credit.models.decision' in sys.modules, flush=True))
from village_credit.cli import app
app()
"""


def _program(args: list[str], tmp: Path) -> subprocess.CompletedProcess[str]:
    """The CLI as the program (``sys.argv``), its temporary files in ``tmp/tmpdir``."""
    tmpdir = tmp / "tmpdir"
    tmpdir.mkdir(exist_ok=True)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "TMPDIR": str(tmpdir), "COLUMNS": "200",
           "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", _SPY, *args], check=False, capture_output=True,
                          text=True, env=env)


def test_the_programs_process_never_imports_mlflow_and_scores_as_mlflows_load(scoring_env, tmp_path: Path
                                                                               ) -> None:
    args = ["-i", str(scoring_env.parquet), "-m", scoring_env.model_uri, "--tracking-uri",
            scoring_env.tracking_uri, "--chunk-rows", "1000", "--workers", "2", "--no-progress"]
    res = _program(["score", *args, "-o", str(tmp_path / "program")], tmp_path)
    assert res.returncode == 0, res.stderr
    marker = [x for x in res.stdout.splitlines() if x.startswith("MLFLOW")]
    assert marker == ["MLFLOW [] True"], res.stdout[-2000:]  # the model decided, MLflow never imported
    printed = json.loads(res.stdout[:res.stdout.index("MLFLOW")])
    assert list((tmp_path / "tmpdir").iterdir()) == []  # the download went with the model

    inproc = CliRunner().invoke(app, ["score", *args, "-o", str(tmp_path / "in_turn")])
    assert inproc.exit_code == 0, inproc.output
    before = json.loads((tmp_path / "in_turn" / "summary.json").read_text(encoding="utf-8"))
    assert printed["model"] == before["model"]
    for key in ("rows_read", "scored", "quarantined", "problems", "chunks", "reconciled"):
        assert printed[key] == before[key], key
    for read in (read_decisions, read_quarantine):
        pd.testing.assert_frame_equal(read(tmp_path / "program"), read(tmp_path / "in_turn"))


def test_an_output_folder_refused_leaves_the_store_unopened(scoring_env, tmp_path: Path) -> None:
    """``--output`` is checked before the store is opened (the store process is forked after
    the check, and opens the store only when told): refused, a store that does not exist
    yet is not created, and the message and exit code are the in-turn run's."""
    blocker = tmp_path / "a_file"
    blocker.write_text("x", encoding="utf-8")
    db = tmp_path / "never" / "mlflow.db"
    args = ["-i", str(scoring_env.parquet), "-m", scoring_env.model_uri, "--tracking-uri",
            f"sqlite:///{db.as_posix()}", "--no-progress", "-o", str(blocker)]
    res = _program(["score", *args], tmp_path)
    inproc = CliRunner().invoke(app, ["score", *args])
    assert res.returncode == inproc.exit_code == 2, (res.stderr, inproc.output)
    line = " ".join(res.stderr[res.stderr.index("error:"):].split())
    assert line == " ".join(inproc.output[inproc.output.index("error:"):].split())
    assert "is a file" in line
    assert not db.parent.exists()
    assert [x for x in res.stdout.splitlines() if x.startswith("MLFLOW")] == ["MLFLOW [] False"]


def _inputs(scoring_env, n: int = 300) -> pd.DataFrame:
    return pd.read_parquet(scoring_env.parquet).head(n)


def test_the_mlflow_free_load_is_mlflows_load(scoring_store, tmp_path: Path) -> None:
    """Same decision class, configuration, input contract and decisions (Arrow face and
    ``predict``) as ``mlflow.pyfunc.load_model`` gives for the same verified copy."""
    uri = scoring_store.model_uri
    fetched = fetch_model(uri, tmp_path / "dl")
    free = _load_fetched(uri, fetched, True, False, without_mlflow=True)
    full = _load_fetched(uri, fetched, True, False)
    assert isinstance(free.pyfunc, DecisionPyfuncFace)
    assert type(full.pyfunc).__name__ == "PyFuncModel"
    assert type(free.decision_model) is type(full.decision_model)
    assert free.decision_class == full.decision_class and free.spec == full.spec
    a, b = free.pyfunc.unwrap_python_model(), full.pyfunc.unwrap_python_model()
    assert (a.top_k, a.input_types, a.required_inputs) == (b.top_k, b.input_types, b.required_inputs)
    assert input_columns_of(free.pyfunc.metadata) == input_columns_of(full.pyfunc.metadata)
    assert free.pyfunc.metadata.get_input_schema() is None and full.pyfunc.metadata.get_input_schema() is None
    df = _inputs(scoring_store)
    got, want = a.predict_arrow(df.copy()), b.predict_arrow(df.copy())
    assert isinstance(got, pa.Table) and got.equals(want)
    pd.testing.assert_frame_equal(free.pyfunc.predict(df.copy()), full.pyfunc.predict(df.copy()))
    with pytest.raises(Exception, match="Model is missing inputs") as err:
        a.predict_arrow(df.drop(columns=[a.required_inputs[0]]))
    assert type(err.value).__name__ == "MissingInputsError"


def test_the_mlflow_free_load_steps_aside_when_it_could_differ(scoring_store, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Another script than this toolkit's (an older model's), an inference-config override:
    MLflow's load, as before."""
    uri = scoring_store.model_uri
    fetched = fetch_model(uri, tmp_path / "dl")
    assert isinstance(_mlflow_free_pyfunc(uri, fetched.local), DecisionPyfuncFace)
    monkeypatch.setenv("MLFLOW_PYFUNC_INFERENCE_CONFIG", json.dumps({"top_k": 2}))
    assert _mlflow_free_pyfunc(uri, fetched.local) is None
    monkeypatch.delenv("MLFLOW_PYFUNC_INFERENCE_CONFIG")
    other = tmp_path / "older"
    shutil.copytree(fetched.local, other)
    with (other / "decision_pyfunc.py").open("a", encoding="utf-8") as fh:
        fh.write("\n# an older toolkit's script\n")
    assert _mlflow_free_pyfunc(uri, other) is None
    older = _load_fetched(uri, type(fetched)(fetched.ident, other, fetched.digest, fetched.gate), True, False,
                          without_mlflow=True)
    assert type(older.pyfunc).__name__ == "PyFuncModel"


@pytest.mark.slow
def test_a_recalibrated_model_loads_identically(validation_kit, tmp_path_factory: pytest.TempPathFactory,
                                                tmp_path: Path) -> None:
    """A custom ``decision_class`` (the recalibrated wrapper): the same class and decisions."""
    from village_credit.validation.recalibration import DECISION_CLASS, recalibrate

    root = tmp_path_factory.mktemp("recal_free")
    validation_kit.make_store(root)
    v1 = validation_kit.register_model(validation_kit.cached_model(tmp_path_factory), root)
    calib = validation_kit.population(1500, seed=202, rate=validation_kit.RISKY_RATE)
    uri = recalibrate(v1, calib, out_dir=root / "recal", seed=0).model_uri
    fetched = fetch_model(uri, tmp_path / "dl")
    free = _load_fetched(uri, fetched, False, False, without_mlflow=True)
    full = _load_fetched(uri, fetched, False, False)
    assert isinstance(free.pyfunc, DecisionPyfuncFace)
    assert type(free.decision_model) is type(full.decision_model)
    assert f"{type(free.decision_model).__module__}:{type(free.decision_model).__name__}" == DECISION_CLASS
    df = validation_kit.population(200, seed=5, rate=validation_kit.RISKY_RATE)
    got = free.pyfunc.unwrap_python_model().predict_arrow(df.copy())
    assert got.equals(full.pyfunc.unwrap_python_model().predict_arrow(df.copy()))
