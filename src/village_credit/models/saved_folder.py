"""Where a saved decision model lies: its format tag and the one finder of its folder.

Why a module of its own: the registry's loader finds the folder in a downloaded version
before it imports any model code (``village-credit score``'s process imports LightGBM
only once the store has answered), so this reads JSON and paths only.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["DECISION_MODEL_ARTIFACT", "FORMAT", "find_saved_model"]

#: ``format`` tag of the ``model.json`` that ``DecisionModel.save`` writes.
FORMAT = "village-credit/decision-model/1"
#: Artifact name of the saved decision-model folder inside a logged MLflow pyfunc model.
DECISION_MODEL_ARTIFACT = "decision_model"


def _holds_saved_model(d: Path) -> bool:
    """Whether ``d`` holds a ``model.json`` that ``DecisionModel.save`` wrote (its format tag)."""
    try:
        return json.loads((d / "model.json").read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def find_saved_model(root: str | Path, declared: str | Path | None = None) -> Path | None:
    """The saved decision-model folder in ``root``, or None: the one reader of where it lies.

    A saved folder itself, a logged MLflow model (its ``MLmodel`` declares the
    ``decision_model`` artifact's path as ``declared``, relative to ``root``) or a
    download with the folder somewhere below. In order: ``declared``, ``root``, a folder
    named ``decision_model``, any other folder holding a decision model's ``model.json``.
    """
    root = Path(root)
    if declared and (root / declared / "model.json").is_file():
        return root / declared  # declared by the model itself: its load names a wrong format
    for d in (root, root / "artifacts" / DECISION_MODEL_ARTIFACT):
        if _holds_saved_model(d):
            return d
    found = [p.parent for p in sorted(root.rglob("model.json")) if _holds_saved_model(p.parent)]
    named = [d for d in found if d.name == DECISION_MODEL_ARTIFACT]
    return (named or found or [None])[0]
