"""The one finder of a saved decision model's folder (``models.saved_folder``), as the
explain API and the registry's loader both use it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from village_credit.errors import ConfigError
from village_credit.explain.api import load_decision_model
from village_credit.models.examples import example_model
from village_credit.models.saved_folder import DECISION_MODEL_ARTIFACT, FORMAT, find_saved_model


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object, object]:
    model, holdout = example_model()
    return model.save(tmp_path_factory.mktemp("saved") / "m"), model, holdout


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_the_saved_folder_itself_and_below(saved, tmp_path: Path) -> None:
    folder, _, _ = saved
    assert json.loads((folder / "model.json").read_text())["format"] == FORMAT
    assert find_saved_model(folder) == folder
    # a download of a logged pyfunc: the folder under artifacts/decision_model
    logged = tmp_path / "download"
    _copy(folder, logged / "artifacts" / DECISION_MODEL_ARTIFACT)
    (logged / "MLmodel").write_text("flavors: {}\n")
    assert find_saved_model(logged) == logged / "artifacts" / DECISION_MODEL_ARTIFACT
    # deeper, under another name: still found
    deep = tmp_path / "deep"
    _copy(folder, deep / "x" / "y" / "kept")
    assert find_saved_model(deep) == deep / "x" / "y" / "kept"


def test_a_folder_named_decision_model_wins_and_a_foreign_model_json_is_not_one(saved, tmp_path: Path) -> None:
    folder, _, _ = saved
    root = tmp_path / "root"
    _copy(folder, root / "a_other")
    _copy(folder, root / "z" / DECISION_MODEL_ARTIFACT)
    (root / "0_foreign").mkdir()
    (root / "0_foreign" / "model.json").write_text(json.dumps({"format": "someone-else/1"}))
    assert find_saved_model(root) == root / "z" / DECISION_MODEL_ARTIFACT
    only_foreign = tmp_path / "foreign"
    (only_foreign / "m").mkdir(parents=True)
    (only_foreign / "m" / "model.json").write_text("[1, 2]")  # JSON, but not a mapping
    assert find_saved_model(only_foreign) is None
    with pytest.raises(ConfigError, match="no saved decision model found"):
        load_decision_model(str(only_foreign))


def test_the_declared_path_is_taken_even_when_its_format_is_wrong(saved, tmp_path: Path) -> None:
    """The model's own MLmodel names its folder: its load then says what is wrong with it
    (rather than a search below finding some other folder)."""
    folder, _, _ = saved
    root = tmp_path / "logged"
    declared = _copy(folder, root / "artifacts" / "declared")
    _copy(folder, root / "artifacts" / DECISION_MODEL_ARTIFACT)
    spec = json.loads((declared / "model.json").read_text())
    spec["format"] = "village-credit/decision-model/999"
    (declared / "model.json").write_text(json.dumps(spec))
    assert find_saved_model(root, "artifacts/declared") == declared
    assert find_saved_model(root) == root / "artifacts" / DECISION_MODEL_ARTIFACT
    assert find_saved_model(root, "artifacts/missing") == root / "artifacts" / DECISION_MODEL_ARTIFACT


def test_explain_loads_what_the_finder_finds(saved, tmp_path: Path) -> None:
    folder, model, holdout = saved
    logged = _copy(folder, tmp_path / "download" / "artifacts" / DECISION_MODEL_ARTIFACT).parent.parent
    loaded = load_decision_model(str(logged))
    assert loaded.decide(holdout).equals(model.decide(holdout))
