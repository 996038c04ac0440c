"""Fairness evidence from observed outcomes: what any labelled sample can show, truth or not.

Why: the equal-risk analysis needs the true PD, which only synthetic data carry. A real
sample has outcomes (for the households that were lent to) and the protected attributes
the user declares (households: age bands and formerly poor; a table: the feature spec's
``protected`` columns, e.g. age and sex for German credit). From those alone:

* **calibration within each group**: mean PD against the observed default rate with its
  Jeffreys interval and a two-sided calibration-in-the-large p
  (:func:`~village_credit.fairness.calibration.group_calibration`);
* **approval and line parity**: each group's approval rate and mean line against the
  best-treated group's (min / max ratios);
* **error-rate gaps among those with outcomes**: the largest between-group difference of
  the TPR (approval rate of households that repaid) and of the FPR (approval rate of
  households that defaulted);
* **outcome support**: observed outcomes (and defaults) per group; groups with fewer than
  ``min_outcomes`` are listed and left out of the gaps (a ratio of five households
  decides nothing).

Per-group figures come from fairlearn's ``MetricFrame`` (through
:func:`~village_credit.fairness.audit.fairness_audit` and ``group_calibration``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from village_credit.fairness.audit import ALL_GROUP, DecisionSystem, fairness_audit
from village_credit.fairness.calibration import calibration_groups, group_calibration
from village_credit.fairness.groups import FairnessInputError
from village_credit.reporting.html import to_jsonable

__all__ = ["observed_outcome_evidence", "protected_groups"]

MIN_OUTCOMES = 30
"""Observed outcomes a group needs before its gaps count."""


def protected_groups(frame: pd.DataFrame, columns: Sequence[str], n_bands: int = 4) -> pd.DataFrame:
    """One label column per declared protected attribute: categories as they are, numbers
    (e.g. age) in ``n_bands`` quantile bands labelled ``low-high``; a missing value is refused.

    >>> import pandas as pd
    >>> t = pd.DataFrame({"age": [22, 25, 31, 40, 52, 67, 70, 35], "sex": list("fmfmfmfm")})
    >>> protected_groups(t, ["age", "sex"], n_bands=2)["age"].tolist()
    ['22-39', '22-39', '22-39', '40-70', '40-70', '40-70', '40-70', '22-39']
    """
    out = {}
    for c in columns:
        if c not in frame.columns:
            raise FairnessInputError(f"protected attribute {c!r} is not a column of the sample")
        s = frame[c]
        if s.isna().any():
            raise FairnessInputError(f"protected attribute {c!r} has {int(s.isna().sum())} missing value(s)")
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) and s.nunique() > n_bands:
            codes = pd.qcut(s, n_bands, labels=False, duplicates="drop")
            lo = s.groupby(codes).min()
            hi = s.groupby(codes).max()
            hi_shown = {k: (lo[k + 1] - 1 if k + 1 in lo.index and float(lo[k + 1]).is_integer() else hi[k])
                        for k in lo.index}
            labels = {k: f"{lo[k]:g}-{hi_shown[k]:g}" for k in lo.index}
            out[c] = codes.map(labels).astype(object).to_numpy()
        else:
            out[c] = s.astype(str).to_numpy(dtype=object)
    return pd.DataFrame(out, index=frame.index)


def _gap(values: pd.Series) -> float:
    v = values.dropna()
    return float(v.max() - v.min()) if len(v) >= 2 else math.nan


def _ratio(values: pd.Series) -> float:
    v = values.dropna()
    return float(v.min() / v.max()) if len(v) >= 2 and v.max() > 0 else math.nan


def observed_outcome_evidence(system: DecisionSystem, sensitive: pd.DataFrame, y: Any, *,
                              min_outcomes: int = MIN_OUTCOMES, alpha: float = 0.05) -> dict[str, Any]:
    """The observed-outcome fairness evidence of one decision system (module docstring).

    ``sensitive``: one label column per protected attribute, aligned with ``system`` and
    ``y`` (1 = defaulted). Pass only rows with an observed outcome. Returns a JSON-safe
    dict: ``by_feature`` (per attribute: ``groups`` rows and the ``max_tpr_gap``,
    ``max_fpr_gap``, ``min_approval_ratio``, ``min_line_ratio``, ``min_calibration_p``
    over groups with enough outcomes, ``thin_groups`` left out), and the same five
    figures over all attributes at the top. A figure that nothing could decide is None.

    >>> from village_credit.fairness import observed_outcome_evidence
    >>> import numpy as np, pandas as pd
    >>> from village_credit.fairness import DecisionSystem
    >>> rng = np.random.default_rng(0)
    >>> sex = np.where(np.arange(400) % 2 == 0, "f", "m")
    >>> pd_ = rng.uniform(0.02, 0.3, 400)
    >>> y = (rng.random(400) < pd_).astype(int)
    >>> system = DecisionSystem("model", approved=pd_ < 0.2, pd=pd_, credit_line=np.where(pd_ < 0.2, 1e4, 0))
    >>> ev = observed_outcome_evidence(system, pd.DataFrame({"sex": sex}), y)
    >>> sorted(g["group"] for g in ev["by_feature"]["sex"]["groups"]), ev["min_calibration_p"] > 0.01
    (['f', 'm'], True)
    """
    n = len(system)
    if len(sensitive) != n:
        raise FairnessInputError(f"sensitive frame has {len(sensitive)} rows, the system {n}")
    if n == 0:
        raise FairnessInputError("observed-outcome evidence needs at least one row with an outcome")
    yy = np.asarray(y, dtype=float)
    audit = fairness_audit([system], sensitive, yy, n_boot=0, min_group=min_outcomes,
                           features=list(sensitive.columns))
    calib = (group_calibration(sensitive, system.pd, yy, alpha=alpha)
             if system.pd is not None else None)
    wide = audit.by_group.pivot_table(index=["feature", "group"], columns="metric", values="value",
                                      aggfunc="first")
    by_feature: dict[str, Any] = {}
    for feat in sensitive.columns:
        w = wide.loc[feat].drop(index=ALL_GROUP, errors="ignore").copy() if feat in wide.index.get_level_values(0) \
            else pd.DataFrame()
        w["defaults"] = (w["n"] * w["default_rate"]).round()
        if calib is not None:
            c = calib[calib.feature == feat].set_index("group")
            for col in ("mean_pd", "observed_ci_low", "observed_ci_high", "pred_observed_ratio", "citl_p"):
                w[col] = c[col].reindex(w.index)
        keep = w["n"] >= min_outcomes
        k = w[keep]
        by_feature[feat] = {
            "groups": [{"group": str(g), **{m: r.get(m) for m in (
                "n", "defaults", "approval_rate", "mean_line", "tpr", "fpr", "default_rate", "mean_pd",
                "observed_ci_low", "observed_ci_high", "pred_observed_ratio", "citl_p") if m in r}}
                for g, r in w.to_dict(orient="index").items()],
            "thin_groups": [str(g) for g in w.index[~keep]],
            "max_tpr_gap": _gap(k["tpr"]), "max_fpr_gap": _gap(k["fpr"]),
            "min_approval_ratio": _ratio(k["approval_rate"]),
            "min_line_ratio": _ratio(k["mean_line"]) if "mean_line" in k else math.nan,
            "min_calibration_p": float(k["citl_p"].min()) if "citl_p" in k and k["citl_p"].notna().any()
            else math.nan,
        }

    def worst(key: str, fn: Any) -> float:
        vals = [f[key] for f in by_feature.values() if not math.isnan(f[key])]
        return fn(vals) if vals else math.nan

    out = {"system": system.name, "n_outcomes": n, "n_defaults": int(yy.sum()), "min_outcomes": min_outcomes,
           "attributes": list(sensitive.columns),
           "max_tpr_gap": worst("max_tpr_gap", max), "max_fpr_gap": worst("max_fpr_gap", max),
           "min_approval_ratio": worst("min_approval_ratio", min),
           "min_line_ratio": worst("min_line_ratio", min),
           "min_calibration_p": worst("min_calibration_p", min),
           "by_feature": by_feature}
    return to_jsonable(out)


def outcome_seen(households: pd.DataFrame) -> np.ndarray:
    """Rows with an outcome a bank could see (lent to or explored): ``outcome_observed``; all when absent.

    The one definition the runner's hold-out validation, its fairness evidence and the
    third-party kit share.

    >>> import pandas as pd
    >>> from village_credit.fairness.observed import outcome_seen
    >>> outcome_seen(pd.DataFrame({"outcome_observed": [True, False]})).tolist(), outcome_seen(pd.DataFrame({"x": [1]})).tolist()
    ([True, False], [True])
    """
    if "outcome_observed" not in households.columns:
        return np.ones(len(households), dtype=bool)
    return households["outcome_observed"].to_numpy(dtype=bool)


def observed_rows_evidence(system: DecisionSystem, households: pd.DataFrame, y: Any) -> dict[str, Any]:
    """:func:`observed_outcome_evidence` on the rows a bank would have outcomes for (:func:`outcome_seen`).

    ``system``, ``households`` and ``y`` are aligned over every decided row; the groups are
    the calibration groups (age band, formerly poor).

    >>> import numpy as np
    >>> from village_credit.data import GeneratorConfig, generate_households
    >>> from village_credit.fairness import DecisionSystem
    >>> from village_credit.fairness.observed import observed_rows_evidence
    >>> hh = generate_households(GeneratorConfig(n_households=600, seed=1))
    >>> p = hh["true_pd"].to_numpy()
    >>> ev = observed_rows_evidence(DecisionSystem("m", approved=p < 0.2, pd=p), hh, hh["default_12m"].to_numpy())
    >>> sorted(ev["by_feature"])
    ['age_band', 'formerly_poor']
    """
    seen = outcome_seen(households)
    sub = DecisionSystem(name=system.name, approved=system.approved[seen],
                         credit_line=None if system.credit_line is None else system.credit_line[seen],
                         pd=None if system.pd is None else system.pd[seen])
    groups = calibration_groups(households.loc[seen])
    return observed_outcome_evidence(sub, groups.reset_index(drop=True), np.asarray(y, dtype=float)[seen])
