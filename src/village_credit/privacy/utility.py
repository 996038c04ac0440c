"""What anonymisation costs: the default model trained on raw vs anonymised records.

Why the same households: the comparison must show the cost of *generalisation*, not of
a different sample, so both tables hold exactly the released households (matched by
``household_id``), split into the same train / calibration / hold-out villages (by the
raw village, since the released one may be generalised). Both models are the default
blend (``ExperimentConfig`` defaults: policy, strategy, GBM parameters) with the same seed.

The fairness audit is the project's own (fairlearn through ``fairness_audit``) over the
hold-out's sensitive groups taken from the *raw* hold-out, so a group difference is a
difference in decisions, never in group membership.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from village_credit.config import ExperimentConfig
from village_credit.fairness.audit import DecisionSystem, fairness_audit
from village_credit.fairness.groups import sensitive_frame
from village_credit.models.blend import fit_blend
from village_credit.models.scaling import PointsScaling
from village_credit.models.splits import split_by_village
from village_credit.privacy.errors import PrivacyError
from village_credit.validation.discrimination import auc_delong, delong_paired


def _fit_and_decide(train: pd.DataFrame, calib: pd.DataFrame, holdouts: dict[str, pd.DataFrame],
                    cfg: Any) -> dict[str, pd.DataFrame]:
    m = cfg.model
    model = fit_blend(train, train["default_12m"].to_numpy(), calib, calib["default_12m"].to_numpy(),
                      policy=cfg.policy, strategy=m.strategy, gbm_params=dict(m.gbm), seed=cfg.seed,
                      scaling=PointsScaling.from_pdo(m.pdo, m.base_points, m.base_odds))
    return {name: model.decide(h, top_k=1) for name, h in holdouts.items()}


def utility_comparison(raw: pd.DataFrame, anonymised: pd.DataFrame, *, seed: int = 0,
                       n_boot: int = 50) -> dict[str, Any]:
    """AUC and fairness-audit differences of the default model, raw vs anonymised training data.

    ``raw``: household table with exact values; ``anonymised``: its released form (fewer
    rows if households were suppressed); matched on ``household_id``. Returns
    ``auc`` (raw model on raw hold-out, anonymised model on anonymised hold-out, and on
    the raw hold-out), ``auc_difference`` (anonymised - raw, like for like) with its paired
    DeLong 95 % CI ``auc_difference_ci`` (both models score the same hold-out households, so
    a difference can be told from the noise of one hold-out), approval
    rates by group and the fairness disparities of both models with their differences.
    """
    if "household_id" not in raw.columns or "household_id" not in anonymised.columns:
        raise PrivacyError("utility_comparison: both tables need household_id to match households")
    raw_ids = pd.Index(raw["household_id"])
    if not raw_ids.is_unique:
        raise PrivacyError("utility_comparison: household_id is not unique in the raw table")
    pos = raw_ids.get_indexer(pd.Index(anonymised["household_id"]))
    if (pos < 0).any():
        raise PrivacyError(f"utility_comparison: {int((pos < 0).sum())} anonymised household(s) not in the raw table")
    r = raw.iloc[pos].reset_index(drop=True)
    a = anonymised.reset_index(drop=True)
    cfg = ExperimentConfig()
    cfg.seed = seed
    split = split_by_village(r, (0.6, 0.2, 0.2), seed=seed)
    parts_r, parts_a = split.frames(r), split.frames(a)
    dec_r = _fit_and_decide(parts_r[0], parts_r[1], {"raw": parts_r[2]}, cfg)["raw"]
    dec_a = _fit_and_decide(parts_a[0], parts_a[1], {"anon": parts_a[2], "raw": parts_r[2]}, cfg)
    hold = parts_r[2]
    y = hold["default_12m"].to_numpy()
    if y.min() == y.max():
        raise PrivacyError("utility_comparison: the hold-out has a single outcome class; AUC is undefined")
    auc = {
        "raw_model_raw_holdout": float(auc_delong(y, dec_r["pd"].to_numpy(float))[0]),
        "anon_model_anon_holdout": float(auc_delong(y, dec_a["anon"]["pd"].to_numpy(float))[0]),
        "anon_model_raw_holdout": float(auc_delong(y, dec_a["raw"]["pd"].to_numpy(float))[0]),
    }
    paired = delong_paired(y, dec_a["anon"]["pd"].to_numpy(float), dec_r["pd"].to_numpy(float))
    sens = sensitive_frame(hold.reset_index(drop=True))
    systems = [DecisionSystem(name=name, approved=(d["credit_line"] > 0).to_numpy(bool),
                              credit_line=d["credit_line"].to_numpy(float), rate=d["rate"].to_numpy(float),
                              pd=d["pd"].to_numpy(float), score=d["points"].to_numpy(float))
               for name, d in (("raw", dec_r), ("anonymised", dec_a["anon"]))]
    audit = fairness_audit(systems, sens, y, true_pd=hold["true_pd"].to_numpy(), n_boot=n_boot, seed=seed)
    disp = audit.disparities
    wide = disp.pivot_table(index=["feature", "metric"], columns="system", values="value").reset_index()
    wide = wide.reindex(columns=["feature", "metric", "raw", "anonymised"])  # a system whose values are all NaN
    wide["difference"] = wide["anonymised"] - wide["raw"]
    approval = {}
    for name, d in (("raw", dec_r), ("anonymised", dec_a["anon"])):
        ok = (d["credit_line"] > 0).to_numpy(bool)
        approval[name] = {f"{feat}={g}": round(float(ok[(sens[feat] == g).to_numpy()].mean()), 6)
                          for feat in ("age_band", "formerly_poor") for g in sorted(sens[feat].unique())}
    return {
        "n_households": len(r), "n_train": len(parts_r[0]), "n_calibration": len(parts_r[1]),
        "n_holdout": len(hold), "holdout_default_rate": float(y.mean()),
        "auc": {k: round(v, 6) for k, v in auc.items()},
        "auc_difference": round(auc["anon_model_anon_holdout"] - auc["raw_model_raw_holdout"], 6),
        "auc_difference_ci": [_num(paired["ci_low"]), _num(paired["ci_high"])],
        "approval_by_group": approval,
        "fairness_disparities": [
            {"feature": row.feature, "metric": row.metric, "raw": _num(row.raw),
             "anonymised": _num(row.anonymised), "difference": _num(row.difference)}
            for row in wide.itertuples(index=False)
        ],
        "max_abs_fairness_difference": _num(np.nanmax(np.abs(wide["difference"].to_numpy(float)))
                                            if len(wide) else float("nan")),
    }


def _num(v: Any) -> float | None:
    v = float(v)
    return None if np.isnan(v) else round(v, 6)


__all__ = ["utility_comparison"]
