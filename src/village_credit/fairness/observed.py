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

Per-group figures are fairlearn ``MetricFrame``'s, value for value
(:func:`~village_credit.fairness.audit.group_metrics`): one table per attribute with only the
metrics above (the full :func:`~village_credit.fairness.audit.fairness_audit`, with its
disparities and a dozen metrics, cost ``train`` on a small table more than the model's
fit). The calibration within groups is computed in that same frame, with
:func:`~village_credit.fairness.calibration.group_calibration`'s own metric functions on the
same slices (the outcome and the PD as sample parameters), so the numbers are
``group_calibration``'s to the bit and each attribute costs one frame, not two (a frame
computes all its differences and ratios eagerly: ~30 ms each on German credit).

A model without an approval cut-off (a table model that declares none) decides no
approval: its parity and TPR/FPR figures are "not applicable: no cut-off declared"
(:data:`NO_CUT_OFF`), by name, never a number computed from an all-False approval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import count, selection_rate

from village_credit.fairness.audit import (
    DecisionSystem,
    _arr,
    _default_rate,
    _fpr,
    _mean_of,
    _tpr,
    group_metrics,
)
from village_credit.fairness.calibration import (
    calibration_groups,
    calibration_metrics,
    calibration_params,
    checked_pd_and_outcome,
    observed_columns,
)
from village_credit.fairness.groups import FairnessInputError, check_sensitive
from village_credit.reporting.html import to_jsonable

__all__ = ["NO_CUT_OFF", "NO_PROTECTED", "decisions_evidence", "observed_outcome_evidence", "observed_rows_evidence",
           "observed_summary", "outcome_seen", "protected_groups", "table_outcome_support"]

MIN_OUTCOMES = 30
"""Observed outcomes a group needs before its gaps count."""


def protected_groups(frame: pd.DataFrame, columns: Sequence[str], n_bands: int = 4) -> pd.DataFrame:
    """One label column per declared protected attribute: categories as they are, numbers
    (e.g. age) in ``n_bands`` quantile bands labelled ``low-high``; a missing value is refused.

    >>> import pandas as pd
    >>> t = pd.DataFrame({"age": [22, 25, 31, 40, 52, 67, 70, 35], "sex": list("fmfmfmfm")})
    >>> protected_groups(t, ["age", "sex"], n_bands=2)["age"].tolist()
    ['22-39', '22-39', '22-39', '40-70', '40-70', '40-70', '40-70', '22-39']
    >>> protected_groups(t.astype(str), ["age"], n_bands=2)["age"].tolist()  # numbers read as text (CSV)
    ['22-39', '22-39', '22-39', '40-70', '40-70', '40-70', '40-70', '22-39']
    """
    out = {}
    for c in columns:
        if c not in frame.columns:
            raise FairnessInputError(f"protected attribute {c!r} is not a column of the sample")
        s = frame[c]
        if s.isna().any():
            raise FairnessInputError(f"protected attribute {c!r} has {int(s.isna().sum())} missing value(s)")
        if not pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            number = pd.to_numeric(s, errors="coerce")  # a CSV's numbers arrive as text
            if number.notna().all():
                s = number
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


NO_CUT_OFF = ("no cut-off declared: the model decides no approval, so approval parity and the "
              "TPR/FPR gaps cannot be measured")
"""Why the approval figures of a model without an approval cut-off (a table model) are not applicable."""


def _gap(values: pd.Series) -> float:
    v = values.dropna()
    return float(v.max() - v.min()) if len(v) >= 2 else math.nan


def _ratio(values: pd.Series) -> float:
    v = values.dropna()
    return float(v.min() / v.max()) if len(v) >= 2 and v.max() > 0 else math.nan


def _outcome_metrics(system: DecisionSystem, decided: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """fairlearn metrics (and their sample parameters) the evidence needs, nothing more:
    outcome counts and default rate; with decisions, approval, TPR, FPR and the mean line."""
    metrics: dict[str, Any] = {"n": count, "default_rate": _default_rate}
    params: dict[str, Any] = {}
    if decided:
        metrics.update(approval_rate=selection_rate, tpr=_tpr, fpr=_fpr)
        if system.credit_line is not None:
            metrics["mean_line"] = _mean_of
            params["mean_line"] = {"values": system.credit_line}
    return metrics, params


def observed_outcome_evidence(system: DecisionSystem, sensitive: pd.DataFrame, y: Any, *,
                              min_outcomes: int = MIN_OUTCOMES, alpha: float = 0.05,
                              no_decision: str | None = None) -> dict[str, Any]:
    """The observed-outcome fairness evidence of one decision system (module docstring).

    ``sensitive``: one label column per protected attribute, aligned with ``system`` and
    ``y`` (1 = defaulted). Pass only rows with an observed outcome. Returns a JSON-safe
    dict: ``by_feature`` (per attribute: ``groups`` rows and the ``max_tpr_gap``,
    ``max_fpr_gap``, ``min_approval_ratio``, ``min_line_ratio``, ``min_calibration_p``
    over groups with enough outcomes, ``thin_groups`` left out), and the same five
    figures over all attributes at the top. A figure that nothing could decide is None.

    ``no_decision``: why the system decides no approval (:data:`NO_CUT_OFF` for a model
    without a cut-off); its ``approved`` is then ignored, the approval, line and TPR/FPR
    figures are None and ``approval_not_applicable`` says why (the gates and reports say
    "not applicable: <why>" by name, never a number). Calibration and support still hold.

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
    >>> from village_credit.fairness.observed import NO_CUT_OFF
    >>> ev = observed_outcome_evidence(system, pd.DataFrame({"sex": sex}), y, no_decision=NO_CUT_OFF)
    >>> ev["min_approval_ratio"], ev["approval_not_applicable"][:20], ev["min_calibration_p"] > 0.01
    (None, 'no cut-off declared:', True)
    """
    n = len(system)
    if len(sensitive) != n:
        raise FairnessInputError(f"sensitive frame has {len(sensitive)} rows, the system {n}")
    if n == 0:
        raise FairnessInputError("observed-outcome evidence needs at least one row with an outcome")
    sens = check_sensitive(sensitive, n)
    yy = np.asarray(y, dtype=float)
    y_good = 1 - _arr(yy, "y", n, bool).astype(int)
    decided = no_decision is None
    metrics, params = _outcome_metrics(system, decided)
    calibrated = system.pd is not None
    if calibrated:  # calibration within groups in the same frame (group_calibration's metrics and figures)
        p, yy = checked_pd_and_outcome(system.pd, yy, n)
        metrics, params = {**metrics, **calibration_metrics()}, {**params, **calibration_params(p, yy)}
    y_pred = system.approved.astype(int) if decided else np.zeros(n, dtype=int)
    by_feature: dict[str, Any] = {}
    for feat in sens.columns:
        w, _ = group_metrics(metrics, y_good, y_pred, sens[feat].to_numpy(), params)
        w.index = [str(g) for g in w.index]
        w["defaults"] = (w["n"] * w["default_rate"]).round()  # exact: n - sum(y_good), integers
        if calibrated:
            observed_columns(w, alpha)
        keep = w["n"] >= min_outcomes
        k = w[keep]
        by_feature[feat] = {
            "groups": [{"group": str(g), **{m: r.get(m) for m in (
                "n", "defaults", "approval_rate", "mean_line", "tpr", "fpr", "default_rate", "mean_pd",
                "observed_ci_low", "observed_ci_high", "pred_observed_ratio", "citl_p") if m in r}}
                for g, r in w.to_dict(orient="index").items()],
            "thin_groups": [str(g) for g in w.index[~keep]],
            "max_tpr_gap": _gap(k["tpr"]) if decided else math.nan,
            "max_fpr_gap": _gap(k["fpr"]) if decided else math.nan,
            "min_approval_ratio": _ratio(k["approval_rate"]) if decided else math.nan,
            "min_line_ratio": _ratio(k["mean_line"]) if "mean_line" in k else math.nan,
            "min_calibration_p": float(k["citl_p"].min()) if "citl_p" in k and k["citl_p"].notna().any()
            else math.nan,
        }
        if not decided:
            by_feature[feat]["approval_not_applicable"] = no_decision

    def worst(key: str, fn: Any) -> float:
        vals = [f[key] for f in by_feature.values() if not math.isnan(f[key])]
        return fn(vals) if vals else math.nan

    out = {"system": system.name, "n_outcomes": n, "n_defaults": int(yy.sum()), "min_outcomes": min_outcomes,
           "attributes": list(sens.columns),
           "max_tpr_gap": worst("max_tpr_gap", max), "max_fpr_gap": worst("max_fpr_gap", max),
           "min_approval_ratio": worst("min_approval_ratio", min),
           "min_line_ratio": worst("min_line_ratio", min),
           "min_calibration_p": worst("min_calibration_p", min),
           **({} if decided else {"approval_not_applicable": no_decision}),
           "by_feature": by_feature}
    return to_jsonable(out)


def table_outcome_support(groups: pd.DataFrame, y: Any, min_observed: int) -> dict[str, Any]:
    """Outcome support of a table's training rows per protected group (gate ``outcome_support``).

    Every training row of a table carries its outcome (rows without one are quarantined),
    so a group's support is its count of training outcomes: a group with fewer than
    ``min_observed`` is decided by extrapolation from the other groups, and is listed.
    Group names are ``attribute: label``. The keys are those of
    :func:`~village_credit.fairness.support.support_diagnostics` that the gate reads.

    >>> import pandas as pd
    >>> g = pd.DataFrame({"sex": ["f"] * 40 + ["m"] * 10})
    >>> sup = table_outcome_support(g, [0, 1] * 25, min_observed=30)
    >>> sup["extrapolated_groups"], [(r["group"], r["n_observed"]) for r in sup["groups"]]
    (['sex: m'], [('sex: f', 40), ('sex: m', 10)])
    """
    if min_observed < 1:
        raise FairnessInputError(f"min_observed must be >= 1, got {min_observed}")
    yy = np.asarray(y, dtype=float)
    if len(yy) != len(groups):
        raise FairnessInputError(f"y has {len(yy)} values, the groups {len(groups)} rows")
    rows = []
    for col in groups.columns:
        frame = pd.DataFrame({"g": groups[col].astype(str).to_numpy(), "y": yy})
        counts = frame.groupby("g")["y"].agg(["size", "sum"])
        for label, r in counts.iterrows():
            n = int(r["size"])
            rows.append({"group": f"{col}: {label}", "n": n, "n_observed": n,
                         "n_observed_defaults": int(r["sum"]), "extrapolated": n < min_observed})
    return to_jsonable({"min_observed": int(min_observed), "groups": rows,
                        "extrapolated_groups": [r["group"] for r in rows if r["extrapolated"]],
                        "remedies": [], "basis": "training rows of a table (every row has its outcome)"})


def observed_summary(evidence: dict[str, Any]) -> dict[str, Any]:
    """The observed-outcome evidence as a report section: one line of figures and one
    table of groups per attribute (what the validation report's fairness section shows).

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.05, 0.4, 300)
    >>> ev = observed_outcome_evidence(DecisionSystem("model", approved=p < 0.3, pd=p),
    ...                                pd.DataFrame({"sex": np.where(np.arange(300) % 2, "f", "m")}),
    ...                                (rng.random(300) < p).astype(int), no_decision=NO_CUT_OFF)
    >>> s = observed_summary(ev)
    >>> s["approval parity, TPR / FPR gaps"][:37], list(s["sex"].columns)[:3]
    ('not applicable: no cut-off declared: ', ['group', 'n', 'defaults'])
    """
    why = evidence.get("approval_not_applicable")

    def num(v: Any) -> str:
        return "n/a" if v is None else f"{float(v):.3f}"

    out: dict[str, Any] = {
        "observed outcomes": f"{evidence.get('n_outcomes')} rows with an outcome ({evidence.get('n_defaults')} "
                             f"defaults); groups with fewer than {evidence.get('min_outcomes')} outcomes are "
                             "shown but left out of the gaps",
        "smallest within-group calibration p": num(evidence.get("min_calibration_p")),
        "approval parity, TPR / FPR gaps": (f"not applicable: {why}" if why else
                                            f"smallest approval ratio {num(evidence.get('min_approval_ratio'))}, "
                                            f"largest TPR gap {num(evidence.get('max_tpr_gap'))}, "
                                            f"largest FPR gap {num(evidence.get('max_fpr_gap'))}"),
        "equal-risk gaps": "available on synthetic data only (no true PD here)",
    }
    for feat, f in (evidence.get("by_feature") or {}).items():
        out[feat] = pd.DataFrame(f.get("groups") or [])
    return out


NO_PROTECTED = "no protected attribute declared (feature spec: protected)"
"""Why a table model has no fairness evidence: its spec declares no protected attribute."""


def decisions_evidence(decisions: pd.DataFrame, rows: pd.DataFrame, y: Any, protected: Sequence[str],
                       *, min_outcomes: int = MIN_OUTCOMES) -> dict[str, Any]:
    """The fairness evidence of a model's decisions on labelled ``rows`` without a truth,
    over the ``protected`` attributes its spec declares: what the gates read
    (``observed``, ``demographic_parity``), for ``train`` and ``validate`` alike.

    ``decisions``: one row per row of ``rows`` (``pd``; ``approved`` only when the model
    has a cut-off, else approval figures are "not applicable: no cut-off declared";
    ``credit_line`` if it sets lines). Nothing declared: ``{"not_applicable": ...}``.

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> rows = pd.DataFrame({"age": rng.integers(20, 70, 400), "sex": rng.choice(["f", "m"], 400)})
    >>> p = rng.uniform(0.05, 0.5, 400)
    >>> ev = decisions_evidence(pd.DataFrame({"pd": p}), rows, (rng.random(400) < p).astype(int), ["age", "sex"])
    >>> ev["demographic_parity"]["not_applicable"][:19], sorted(ev["observed"]["by_feature"])
    ('no cut-off declared', ['age', 'sex'])
    >>> decisions_evidence(pd.DataFrame({"pd": p}), rows, np.zeros(400), [])
    {'not_applicable': 'no protected attribute declared (feature spec: protected)'}
    """
    cols = [str(c) for c in protected]
    if not cols:
        return {"not_applicable": NO_PROTECTED}
    decided = "approved" in decisions.columns
    n = len(decisions)
    line = decisions["credit_line"].to_numpy(float) if "credit_line" in decisions.columns else None
    system = DecisionSystem(name="model", approved=(decisions["approved"].to_numpy(bool) if decided
                                                    else np.zeros(n, dtype=bool)),
                            credit_line=None if line is None or np.isnan(line).all() else np.nan_to_num(line),
                            pd=decisions["pd"].to_numpy(float))
    groups = protected_groups(rows, cols).reset_index(drop=True)
    observed = observed_outcome_evidence(system, groups, y, min_outcomes=min_outcomes,
                                         no_decision=None if decided else NO_CUT_OFF)
    parity = ({"system": "model", "min_ratio": observed["min_approval_ratio"]} if decided
              else {"system": "model", "not_applicable": NO_CUT_OFF})
    return {"observed": observed, "primary_system": "model", "demographic_parity": parity,
            "equal_risk_note": "equal-risk gaps: available on synthetic data only (no true PD here)"}


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
