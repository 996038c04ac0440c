"""A decision model whose log-odds pass through calibration maps (recalibrated versions).

Why here, in ``models``, and not beside :func:`village_credit.validation.recalibration.recalibrate`
which fits the maps: a registered recalibrated version is loaded by a bare MLflow client
with only the model's logged requirements, so loading it must not import the validation
kit (MLflow, matplotlib, fairlearn). Maps apply in order to the log-odds contributions
(column 0 = base); group offsets add shrunk per-group log-odds to the base of members.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from village_credit.data.groups import support_groups
from village_credit.errors import ConfigError
from village_credit.models.calibration import Calibrator
from village_credit.models.decision import DecisionModel

__all__ = ["GROUP_OFFSET_PREFIX", "RECALIBRATION_FILE", "RECALIBRATION_FORMAT",
           "RecalibratedDecisionModel", "apply_maps", "load_saved_model"]

RECALIBRATION_FILE = "recalibration.json"
RECALIBRATION_FORMAT = "village-credit/recalibration/1"
SCORE_NAME = "score"
#: Contribution code of a group recalibration offset (``recalibration:<group>``): its own
#: column, so that it appears as a reason where it moves a household's points.
GROUP_OFFSET_PREFIX = "recalibration:"


def apply_maps(maps: list[Calibrator], logit_contrib: np.ndarray) -> np.ndarray:
    """Log-odds contributions (column 0 = base) after the calibration maps, in order."""
    c = np.array(logit_contrib, dtype=np.float64, copy=True)
    if c.ndim != 2 or c.shape[0] == 0:
        return c
    for cal in maps:
        if cal.method == "platt":
            c *= cal.a
            c[:, 0] += cal.b
        else:
            z = c.sum(axis=1)
            c[:, 0] += cal.transform_logit(z) - z
    return c


def _map_points(maps: list[Calibrator], scaling: Any, points: np.ndarray) -> np.ndarray:
    z = scaling.logit(np.asarray(points, dtype=np.float64))
    return scaling.points(apply_maps(maps, z[:, None])[:, 0])


def _map_score_profile(entry: dict[str, Any], maps: list[Calibrator], scaling: Any
                       ) -> dict[str, Any] | None:
    """The reference entry of the points after a monotone map (``None`` if not monotone up)."""
    if entry.get("kind") != "numeric":
        return None
    edges = np.asarray(entry.get("edges", []), dtype=float)
    expected = np.asarray(entry["expected"], dtype=float)
    if edges.size == 0:
        return dict(entry)
    new = _map_points(maps, scaling, edges)
    if np.any(np.diff(new) < 0):
        return None
    uniq = np.unique(new)
    shares = np.zeros(uniq.size + 1)
    shares[0] += expected[0]
    # old bin j >= 1 starts at edges[j-1]; its values land in the new bin starting at f(edge)
    idx = np.searchsorted(uniq, new, side="right")
    np.add.at(shares, idx, expected[1:])
    out = dict(entry)
    out["edges"] = [float(e) for e in uniq]
    out["expected"] = [float(s) for s in shares]
    out["mapped_by_recalibration"] = True
    return out


class RecalibratedDecisionModel(DecisionModel):
    """A ``DecisionModel`` whose log-odds pass through calibration maps (module docstring)."""

    def __init__(self, *, calibrators: list[Calibrator] | None = None,
                 lineage: list[dict[str, Any]] | None = None,
                 group_offsets: dict[str, float] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calibrators: list[Calibrator] = list(calibrators or [])
        self.lineage: list[dict[str, Any]] = [dict(x) for x in (lineage or [])]
        # group-aware recalibration: log-odds added to each member household
        self.group_offsets = group_offsets or {}

    @property
    def group_offsets(self) -> dict[str, float]:
        """Log-odds added per support group (``data.groups.support_groups``) to its members."""
        return self._group_offsets

    @group_offsets.setter
    def group_offsets(self, offsets: dict[str, float]) -> None:
        self._group_offsets = {str(k): float(v) for k, v in (offsets or {}).items()}
        new = {GROUP_OFFSET_PREFIX + g: {"en": f"Group recalibration ({g})",
                                         "zh": f"分组校准（{g}）"}
               for g in self._group_offsets if GROUP_OFFSET_PREFIX + g not in self.labels}
        if new:  # a reason needs a label in both languages; never edit a parent's dict
            self.labels = {**self.labels, **new}

    @property
    def codes(self) -> list[str]:
        """The parent's contribution columns, then one per group offset."""
        return super().codes + [GROUP_OFFSET_PREFIX + g for g in self.group_offsets]

    @property
    def is_additive(self) -> bool:
        """True when every map is Platt: contributions are exactly the calibrated terms."""
        return all(c.is_additive for c in self.calibrators)

    @classmethod
    def wrap(cls, parent: DecisionModel, calibrator: Calibrator,
             lineage: dict[str, Any] | None = None) -> "RecalibratedDecisionModel":
        """``parent`` followed by ``calibrator`` (appended when the parent is already wrapped)."""
        maps = list(getattr(parent, "calibrators", [])) + [calibrator]
        records = [dict(x) for x in getattr(parent, "lineage", [])] + [dict(lineage or {})]
        meta = copy.deepcopy(parent.metadata)
        prof = meta.get("reference_profile")
        if isinstance(prof, dict) and SCORE_NAME in (prof.get("columns") or {}):
            mapped = _map_score_profile(prof["columns"][SCORE_NAME], [calibrator], parent.scaling)
            if mapped is None:
                del prof["columns"][SCORE_NAME]
            else:
                prof["columns"][SCORE_NAME] = mapped
        meta["recalibrated"] = {"maps": len(maps), "methods": [c.method for c in maps]}
        return cls(policy=parent.policy, features=parent.features, booster=parent.booster,
                   coefficients=parent.coefficients, scaling=parent.scaling, metadata=meta,
                   feature_names=list(parent.feature_names), labels=parent.labels,
                   validate=parent.validate, item_means=dict(parent.item_means),
                   calibrators=maps, lineage=records,
                   group_offsets=getattr(parent, "group_offsets", None))

    def _score(self, households: pd.DataFrame, eval_date: Any = None, **kwargs: Any) -> Any:
        s, reasons, n = super()._score(households, eval_date, **kwargs)  # maps use row totals only
        c = apply_maps(self.calibrators, s.logit_contrib)
        if self.group_offsets:  # one column per group: a reason where it moves the points
            off = np.array(list(self.group_offsets.values()))
            design = (_group_design(s.valid, list(self.group_offsets)) if len(c)
                      else np.zeros((0, off.size)))
            c = np.hstack([c, design * off])
        s = dataclasses.replace(s, logit_contrib=c)
        return s, reasons, n

    def recalibration_dict(self) -> dict[str, Any]:
        maps = []
        for i, cal in enumerate(self.calibrators):
            rec = self.lineage[i] if i < len(self.lineage) else {}
            maps.append({"calibrator": cal.to_dict(), "lineage": rec})
        out: dict[str, Any] = {"format": RECALIBRATION_FORMAT, "maps": maps}
        if self.group_offsets:
            out["group_offsets"] = dict(self.group_offsets)
        return out

    def save(self, path: str | Path) -> Path:
        d = super().save(path)
        (d / RECALIBRATION_FILE).write_text(
            json.dumps(self.recalibration_dict(), indent=2, ensure_ascii=False, sort_keys=True,
                       default=str), encoding="utf-8")
        return d

    @classmethod
    def load(cls, path: str | Path) -> "RecalibratedDecisionModel":
        d = Path(path)
        try:
            spec = json.loads((d / RECALIBRATION_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {d / RECALIBRATION_FILE}: {exc}") from exc
        if spec.get("format") != RECALIBRATION_FORMAT:
            raise ConfigError(f"{d / RECALIBRATION_FILE}: unknown format {spec.get('format')!r}, "
                              f"expected {RECALIBRATION_FORMAT!r}")
        maps = spec.get("maps") or []
        if not maps:
            raise ConfigError(f"{d / RECALIBRATION_FILE}: no calibration maps")
        model = super().load(d)
        model.calibrators = [Calibrator.from_dict(m["calibrator"]) for m in maps]
        model.lineage = [dict(m.get("lineage") or {}) for m in maps]
        model.group_offsets = {str(k): float(v) for k, v in (spec.get("group_offsets") or {}).items()}
        return model



def load_saved_model(path: str | Path) -> DecisionModel:
    """The model a saved folder holds: recalibrated (``recalibration.json``) or plain.

    >>> import tempfile
    >>> from village_credit.models.examples import example_model
    >>> from village_credit.models.recalibrated import load_saved_model
    >>> model, holdout = example_model()
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     print(type(load_saved_model(model.save(f"{tmp}/m"))).__name__)
    DecisionModel
    """
    d = Path(path)
    cls = RecalibratedDecisionModel if (d / RECALIBRATION_FILE).exists() else DecisionModel
    return cls.load(d)


def _group_design(households: pd.DataFrame, groups: list[str]) -> np.ndarray:
    """0/1 membership matrix (rows x ``groups``) from ``data.groups.support_groups``."""
    member = support_groups(households)
    unknown = [g for g in groups if g not in member.columns]
    if unknown:
        raise ConfigError(f"group offsets for unknown group(s) {unknown}; known: {list(member.columns)}")
    return member[groups].to_numpy(dtype=np.float64)
