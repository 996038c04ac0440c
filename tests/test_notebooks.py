"""The analyst notebooks run top to bottom, are committed without outputs, and each
``.ipynb`` is paired (jupytext, percent format) with a ``.py`` that holds the same
cells and passes ruff.

Each notebook is executed with nbclient (kernel ``python3``, the interpreter running
the tests, a fresh kernel per notebook) in ``notebooks/`` on a small population, with
MLflow pointed at a temporary sqlite store and temporary files kept in a scratch
folder of the test's own (in RAM where the box has ``/dev/shm``, else under pytest's
``tmp_path``), so a test run never writes into the repository (its ``mlruns/`` or
``notebooks/``). A cell that raises fails the test with the cell's traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXPECTED = [
    "01_households.ipynb",
    "02_rules_vs_model.ipynb",
    "03_explanations.ipynb",
    "04_fairness_elderly_formerly_poor.ipynb",
    "05_validate_and_promote.ipynb",
    "06_batch_scoring.ipynb",
    "07_policy_lab.ipynb",
]
TEST_HOUSEHOLDS = 3000
CELL_TIMEOUT_S = 300
RAM_DIR = Path("/dev/shm")
RAM_DIR_MIN_FREE = 1 << 30  # a notebook's scratch holds a few MB (models, parquet files, reports)


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def _repo_files(folder: Path) -> set[str]:
    skip = {".ipynb_checkpoints", "__pycache__"}
    return {str(p.relative_to(folder)) for p in folder.rglob("*")
            if not any(part in skip for part in p.relative_to(folder).parts)}


def test_every_notebook_is_present():
    assert [p.name for p in NOTEBOOKS] == EXPECTED


def _cells(nb) -> list[tuple[str, str]]:
    return [(c["cell_type"], c["source"].strip("\n")) for c in nb["cells"]]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_pair_is_in_sync(path: Path):
    """The .py (percent format) and the .ipynb hold the same cells, and both say they are paired.

    After editing one side: ``jupytext --sync notebooks/*.ipynb`` (or save in JupyterLab
    with jupytext installed, which writes both).
    """
    jupytext = pytest.importorskip("jupytext")
    script = path.with_suffix(".py")
    assert script.is_file(), f"{path.name} has no paired {script.name}"
    nb = jupytext.read(path)
    py = jupytext.read(script)
    assert nb.metadata.get("jupytext", {}).get("formats") == "ipynb,py:percent"
    assert py.metadata.get("jupytext", {}).get("formats") == "ipynb,py:percent"
    a, b = _cells(nb), _cells(py)
    diff = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    assert a == b, (f"{path.name} and {script.name} differ from cell {diff} on; "
                    "run `jupytext --sync notebooks/*.ipynb`")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_valid_nbformat_4_5(path: Path):
    """Each notebook is valid for the format it declares (what nbconvert and JupyterLab's
    contents API check): nbformat 4.5, every cell with a unique ``id``. Cell ids under a
    4.4 declaration made Jupyter answer "Notebook validation failed"."""
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    nbformat.validate(nb)  # raises ValidationError naming the offending cell
    assert (nb.nbformat, nb.nbformat_minor) == (4, 5), f"{path.name} declares {nb.nbformat}.{nb.nbformat_minor}"
    ids = [c.get("id") for c in nb.cells]
    assert all(ids) and len(set(ids)) == len(ids), f"{path.name}: missing or repeated cell ids"


def test_notebook_sources_pass_ruff():
    """The .py side is linted like the package (pyflakes, pycodestyle errors, imports, bugbear)."""
    pytest.importorskip("ruff")
    scripts = [str(p.with_suffix(".py")) for p in NOTEBOOKS]
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache",
                           "--select", "E4,E7,E9,F,I,B", *scripts],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_no_notebook_builder_left():
    """One source of truth per notebook: the paired .py, not a generator script."""
    assert not (NOTEBOOK_DIR / "_build.py").exists()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_committed_without_outputs(path: Path):
    """Outputs stay out of git: no outputs, no execution counts, no widget state."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    code = [(i, c) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"]
    dirty = [i for i, c in code if c.get("outputs") or c.get("execution_count") is not None]
    assert not dirty, f"{path.name}: code cells {dirty} have outputs or execution counts"
    assert "widgets" not in nb.get("metadata", {}), f"{path.name}: metadata holds widget state"
    assert nb["metadata"].get("kernelspec", {}).get("name") == "python3"


def _ram_dir() -> Path | None:
    """``/dev/shm`` when it is a writable folder with room to spare, else None (not Linux,
    or a container's small default)."""
    try:
        if RAM_DIR.is_dir() and os.access(RAM_DIR, os.W_OK | os.X_OK) \
                and shutil.disk_usage(RAM_DIR).free >= RAM_DIR_MIN_FREE:
            return RAM_DIR
    except OSError:
        pass
    return None


@pytest.fixture
def notebook_scratch(tmp_path: Path) -> Iterator[Path]:
    """A notebook's throw-away MLflow store and temporary files: in RAM where there is one.

    Why: every MLflow write is a sqlite commit, and each commit waits for fsync (3-4 ms
    on the development box's disk); notebook 07 logs 40 child runs and spent about half
    its wall time waiting on the disk (docs/benchmarks.md, "Test suite time, ninth
    pass"). What the notebook computes and shows does not depend on where its scratch
    store lives. Removed after the test, passed or failed (a failure's traceback is in
    the cell's error); under ``tmp_path`` where no RAM folder is available.
    """
    ram = _ram_dir()
    if ram is None:
        yield tmp_path
        return
    scratch = Path(tempfile.mkdtemp(prefix="vc-notebook-test-", dir=ram))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def test_notebook_scratch_falls_back_to_tmp_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Where no RAM folder is usable, the scratch is pytest's tmp_path (other systems, small /dev/shm)."""
    monkeypatch.setattr(sys.modules[__name__], "RAM_DIR", tmp_path / "absent")
    assert _ram_dir() is None
    monkeypatch.setattr(sys.modules[__name__], "RAM_DIR", tmp_path)
    assert _ram_dir() == tmp_path
    monkeypatch.setattr(sys.modules[__name__], "RAM_DIR_MIN_FREE", 1 << 62)
    assert _ram_dir() is None


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs_top_to_bottom(path: Path, notebook_scratch: Path, monkeypatch: pytest.MonkeyPatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")

    # The kernel inherits this environment: a throw-away MLflow store, a small
    # population, temporary files in the scratch folder, a non-interactive plot backend.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{(notebook_scratch / 'mlflow.db').as_posix()}")
    monkeypatch.setenv("VC_NOTEBOOK_HOUSEHOLDS", str(TEST_HOUSEHOLDS))
    tmp = notebook_scratch / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYTHONHASHSEED", "0")

    before = _repo_files(NOTEBOOK_DIR)
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
        allow_errors=False,
    )
    client.execute()  # raises CellExecutionError naming the failing cell

    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    # warnings are not silenced wholesale: none may surface (a missing CJK glyph is a
    # UserWarning; every notebook filters only named, understood warnings)
    warned = [o.get("text", "")[:300] for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "stream" and o.get("name") == "stderr"
              and ("Warning" in o.get("text", "") or "Glyph" in o.get("text", ""))]
    assert not warned, warned
    assert _repo_files(NOTEBOOK_DIR) == before, "executing the notebook wrote files into notebooks/"
