"""Group fairness audit of credit decisions: fairlearn's metrics, group by group.

Why decisions, not models: the audit must compare rule points, the GBM and the blend
side by side, and later any mitigated variant; all of them end in the same per-household
arrays (approved, line, rate, PD), so a :class:`DecisionSystem` is just those arrays.

Credit framing of the confusion matrix (documented once, used everywhere):

* the *positive label* is a **good outcome** (no 90+ dpd default in 12 months,
  ``y_good = 1 - default``); the *positive prediction* is **approved**;
* ``tpr`` = approval rate among households that did not default (good ones served);
* ``fpr`` = approval rate among households that defaulted (bad ones let through);
* ``tnr = 1 - fpr`` (defaulters rejected), ``fnr = 1 - tpr`` (good households rejected:
  the "left behind" error);
* the equalized odds difference is fairlearn's: the larger of the between-group
  ranges of ``tpr`` and ``fpr``.

Other per-group metrics: ``approval_rate`` (fairlearn's selection rate), ``mean_line``
(over *all* households, rejected = 0, so it mixes access and size), ``mean_line_approved``,
``mean_rate_approved``, ``default_rate`` (observed ``y``), ``auc`` (of the PD against
default, or of ``-score`` when there is no PD; NaN when a group has one class only),
``mean_pd`` and ``calibration_gap = mean_pd - default_rate``, ``mean_true_pd`` when the
synthetic truth is given, and ``n``.

Uncertainty: seeded percentile bootstrap over households (``n_boot`` replicates,
``numpy.random.default_rng(seed)``) for the rates, the mean line and the disparities.
It is vectorised (one matrix product per chunk of replicates) rather than MetricFrame's
own ``n_boot``, which recomputes every metric per group per replicate and is far slower.
Disparities compare only groups with at least ``min_group`` households (a group of five
can swing a ratio to zero); excluded groups are listed, and still appear in ``by_group``
with wide intervals.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd
from fairlearn.metrics import (
    count,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import roc_auc_score

from village_credit.fairness.groups import FairnessInputError, check_sensitive
from village_credit.reporting.html import to_jsonable as json_safe

FOUR_FIFTHS = 0.8
DISPARITY_METRICS: tuple[str, ...] = (
    "demographic_parity_ratio",
    "demographic_parity_difference",
    "equalized_odds_difference",
    "four_fifths_pass",
)
ALL_GROUP = "(all)"


def _arr(x: Any, name: str, n: int | None, dtype: Any = float) -> np.ndarray | None:
    if x is None:
        return None
    a = np.asarray(x.to_numpy() if isinstance(x, (pd.Series, pd.Index)) else x)
    if a.ndim != 1:
        raise FairnessInputError(f"{name} must be one-dimensional, got shape {a.shape}")
    if n is not None and len(a) != n:
        raise FairnessInputError(f"{name} has {len(a)} values, expected {n}")
    if dtype is bool:
        if a.dtype != bool:
            fa = pd.to_numeric(pd.Series(a), errors="coerce")
            bad = int(fa.isna().sum())
            if bad:
                raise FairnessInputError(f"{name} has {bad} missing or non-boolean value(s)")
            a = fa.to_numpy() != 0
        return a.astype(bool)
    return a.astype(float)


@dataclass
class DecisionSystem:
    """One decision system: a name and per-household arrays, aligned with the sensitive frame.

    ``approved`` (bool) is required; ``credit_line`` (yuan, 0 when rejected), ``rate``,
    ``pd`` (predicted probability of default) and ``score`` (higher = better, e.g. points)
    are optional; metrics needing a missing array come out NaN.

    Examples
    --------
    >>> import pandas as pd
    >>> from village_credit.fairness import DecisionSystem
    >>> decisions = pd.DataFrame({"approved": [True, False, True], "credit_line": [50_000.0, 0.0, 30_000.0],
    ...                           "pd": [0.02, 0.20, 0.05], "points": [80, 40, 70]})
    >>> system = DecisionSystem.from_decisions("rules", decisions)
    >>> system.name, system.approved.tolist(), system.score.tolist()
    ('rules', [True, False, True], [80.0, 40.0, 70.0])
    """

    name: str
    approved: np.ndarray
    credit_line: np.ndarray | None = None
    rate: np.ndarray | None = None
    pd: np.ndarray | None = None
    score: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.approved = _arr(self.approved, f"{self.name}.approved", None, bool)  # type: ignore[assignment]
        n = len(self.approved)
        for attr in ("credit_line", "rate", "pd", "score"):
            setattr(self, attr, _arr(getattr(self, attr), f"{self.name}.{attr}", n))
        if self.credit_line is not None:
            # A rejected household has no line, whatever the upstream frame says.
            self.credit_line = np.where(self.approved, np.nan_to_num(self.credit_line), 0.0)

    def __len__(self) -> int:
        return len(self.approved)

    @property
    def risk(self) -> np.ndarray | None:
        """Risk ranking used for AUC: the PD, else minus the score."""
        if self.pd is not None:
            return self.pd
        return None if self.score is None else -self.score

    @classmethod
    def from_decisions(
        cls,
        name: str,
        decisions: pd.DataFrame,
        *,
        pd_col: str = "pd",
        score_cols: tuple[str, ...] = ("score", "points", "rule_points"),
    ) -> "DecisionSystem":
        """Build from a decisions frame (rules engine / DecisionModel output columns)."""
        if "approved" not in decisions.columns:
            raise FairnessInputError(f"decisions for {name!r} lack the 'approved' column")
        score_col = next((c for c in score_cols if c in decisions.columns), None)
        get = lambda c: decisions[c] if c is not None and c in decisions.columns else None  # noqa: E731
        return cls(
            name=name,
            approved=decisions["approved"],
            credit_line=get("credit_line"),
            rate=get("rate"),
            pd=get(pd_col),
            score=get(score_col),
        )


# --------------------------------------------------------------------------- metrics
def _ratio(num: np.ndarray, den: np.ndarray) -> float:
    d = float(np.sum(den))
    return float(np.sum(num)) / d if d > 0 else math.nan


def _tpr(y_good, y_pred) -> float:
    return _ratio((y_pred == 1) & (y_good == 1), y_good == 1)


def _fpr(y_good, y_pred) -> float:
    return _ratio((y_pred == 1) & (y_good == 0), y_good == 0)


def _tnr(y_good, y_pred) -> float:
    return _ratio((y_pred == 0) & (y_good == 0), y_good == 0)


def _fnr(y_good, y_pred) -> float:
    return _ratio((y_pred == 0) & (y_good == 1), y_good == 1)


def _default_rate(y_good, y_pred) -> float:
    return float(1.0 - np.mean(y_good)) if len(y_good) else math.nan


def _mean_of(y_good, y_pred, values) -> float:
    v = np.asarray(values, dtype=float)
    return float(np.mean(v)) if len(v) else math.nan


def _mean_if_approved(y_good, y_pred, values) -> float:
    v = np.asarray(values, dtype=float)[np.asarray(y_pred) == 1]
    return float(np.nanmean(v)) if len(v) and not np.isnan(v).all() else math.nan


def _auc(y_good, y_pred, risk) -> float:
    y_bad = 1 - np.asarray(y_good)
    if y_bad.min(initial=1) == y_bad.max(initial=0):
        return math.nan
    return float(roc_auc_score(y_bad, risk))


def _calibration_gap(y_good, y_pred, pd_) -> float:
    return float(np.mean(pd_) - (1.0 - np.mean(y_good))) if len(y_good) else math.nan


def _metric_spec(system: DecisionSystem, true_pd: np.ndarray | None):
    """fairlearn metric callables and their per-sample parameters for one system."""
    metrics: dict[str, Callable] = {
        "n": count,
        "approval_rate": selection_rate,
        "tpr": _tpr,
        "fpr": _fpr,
        "tnr": _tnr,
        "fnr": _fnr,
        "default_rate": _default_rate,
    }
    params: dict[str, dict[str, Any]] = {}

    def add(name: str, fn: Callable, values: np.ndarray | None, kw: str) -> None:
        if values is not None:
            metrics[name] = fn
            params[name] = {kw: values}

    add("mean_line", _mean_of, system.credit_line, "values")
    add("mean_line_approved", _mean_if_approved, system.credit_line, "values")
    add("mean_rate_approved", _mean_if_approved, system.rate, "values")
    add("auc", _auc, system.risk, "risk")
    add("mean_pd", _mean_of, system.pd, "values")
    add("calibration_gap", _calibration_gap, system.pd, "pd_")
    add("mean_true_pd", _mean_of, true_pd, "values")
    return metrics, params


# --------------------------------------------------------------------------- bootstrap
def bootstrap_weights(n: int, n_boot: int, rng: np.random.Generator, chunk: int) -> Iterable[np.ndarray]:
    """Yield (chunk x n) multiplicity matrices of households resampled with replacement."""
    done = 0
    while done < n_boot:
        b = min(chunk, n_boot - done)
        idx = rng.integers(0, n, size=(b, n))
        flat = (idx + (np.arange(b) * n)[:, None]).ravel()
        yield np.bincount(flat, minlength=b * n).reshape(b, n).astype(float)
        done += b


def _boot_group_stats(
    codes: np.ndarray, n_groups: int, approved: np.ndarray, y_good: np.ndarray,
    line: np.ndarray | None, n_boot: int, seed: int,
) -> dict[str, np.ndarray]:
    """Bootstrap replicates (n_boot x n_groups) of approval, tpr, fpr, default rate, mean line."""
    n = len(codes)
    onehot = np.zeros((n, n_groups))
    onehot[np.arange(n), codes] = 1.0
    a = approved.astype(float)
    g = y_good.astype(float)
    cols = [onehot, onehot * a[:, None], onehot * g[:, None], onehot * (a * g)[:, None]]
    if line is not None:
        cols.append(onehot * line[:, None])
    X = np.hstack(cols)
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_boot, int(2e7 // max(n, 1))))  # keep each weight matrix near 160 MB max
    sums = np.vstack([W @ X for W in bootstrap_weights(n, n_boot, rng, chunk)])
    k = n_groups
    cnt, appr, good, appr_good = (sums[:, i * k:(i + 1) * k] for i in range(4))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {
            "approval_rate": appr / cnt,
            "tpr": appr_good / good,
            "fpr": (appr - appr_good) / (cnt - good),
            "default_rate": 1.0 - good / cnt,
        }
        out["tnr"] = 1.0 - out["fpr"]
        out["fnr"] = 1.0 - out["tpr"]
        if line is not None:
            out["mean_line"] = sums[:, 4 * k:5 * k] / cnt
    return out


def _pct_ci(reps: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(all="ignore"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lo = np.nanquantile(reps, alpha / 2, axis=0)
            hi = np.nanquantile(reps, 1 - alpha / 2, axis=0)
    return lo, hi


def _range_ratio(rates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per replicate: min/max ratio and max-min difference over the group axis."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        mx = np.nanmax(rates, axis=-1)
        mn = np.nanmin(rates, axis=-1)
        ratio = np.where(mx > 0, mn / np.where(mx > 0, mx, 1.0), np.nan)
    return ratio, mx - mn


# --------------------------------------------------------------------------- result
@dataclass
class AuditResult:
    """Audit output: ``by_group`` (tidy: system, feature, group, n, metric, value, ci_low,
    ci_high, small_group) and ``disparities`` (system, feature, metric, value, ci_low,
    ci_high, groups_compared, groups_excluded)."""

    by_group: pd.DataFrame
    disparities: pd.DataFrame
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def systems(self) -> list[str]:
        return list(dict.fromkeys(self.by_group["system"]))

    def metric(self, metric: str, feature: str) -> pd.DataFrame:
        """Wide view: one row per group, one column per system (for charts and reading)."""
        d = self.by_group[(self.by_group.metric == metric) & (self.by_group.feature == feature)]
        return d.pivot(index="group", columns="system", values="value")

    def disparity_summary(self) -> dict[str, dict[str, dict[str, Any]]]:
        """``{system: {feature: {metric: value, metric_ci: [lo, hi], groups_excluded: [...]}}}``.

        ``four_fifths_pass`` is a bool (point estimate of the ratio >= 0.8) and
        ``four_fifths_pass_share`` the share of bootstrap replicates that pass.
        """
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for r in self.disparities.itertuples(index=False):
            d = out.setdefault(r.system, {}).setdefault(r.feature, {})
            if r.metric == "four_fifths_pass":
                d[r.metric] = None if pd.isna(r.value) else bool(r.value)
                d["four_fifths_pass_share"] = json_safe(r.ci_low)
            else:
                d[r.metric] = json_safe(r.value)
                d[f"{r.metric}_ci"] = [json_safe(r.ci_low), json_safe(r.ci_high)]
            d["groups_excluded"] = [g for g in str(r.groups_excluded).split("; ") if g]
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: params, per-group records, nested disparities."""
        return {
            "params": json_safe(self.params),
            "by_group": records(self.by_group),
            "disparities": self.disparity_summary(),
        }


def records(df: pd.DataFrame | None) -> list[dict[str, Any]]:
    """DataFrame -> JSON-safe list of row dicts."""
    if df is None:
        return []
    return [json_safe(r) for r in df.to_dict(orient="records")]


# --------------------------------------------------------------------------- audit
_DISPARITY_FUNCTIONS: dict[str, Callable] = {"selection_rate": selection_rate, "tpr": true_positive_rate,
                                              "fpr": false_positive_rate}


def group_metrics(metrics: dict[str, Callable], y_true: np.ndarray, y_pred: np.ndarray,
                  groups: np.ndarray | pd.Series, sample_params: dict[str, dict[str, Any]] | None = None,
                  ) -> tuple[pd.DataFrame, pd.Series]:
    """``MetricFrame(...).by_group`` and ``.overall``, value for value, without its slicing.

    Why: fairlearn's ``MetricFrame`` hands each metric its group's rows through
    ``np.stack`` of a pandas column, which converts the column element by element (one
    ``asanyarray`` per household per metric per group: ~1.2M calls and ~90 % of a
    1,500-household audit's time). Here each metric is called on the same rows as plain
    arrays (``fn(y_true[rows], y_pred[rows], **params[rows])``), groups in the order of
    pandas' sorted ``groupby`` that ``MetricFrame`` uses, missing labels dropped as it
    drops them; so the same functions see the same numbers. tests/test_fairness_audit.py
    holds the result to ``MetricFrame`` itself.
    """
    params = {name: {k: np.asarray(v) for k, v in p.items()} for name, p in (sample_params or {}).items()}
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)

    def row(idx: np.ndarray | slice) -> pd.Series:
        values = {name: fn(y_true[idx], y_pred[idx], **{k: v[idx] for k, v in params.get(name, {}).items()})
                  for name, fn in metrics.items()}
        return pd.Series(values) if values else pd.Series(dtype=float)

    codes, labels = pd.factorize(np.asarray(groups, dtype=object), sort=True)  # NaN -> -1: dropped
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(labels) + 1))
    by = pd.DataFrame([row(order[bounds[j]:bounds[j + 1]]) for j in range(len(labels))],
                      index=pd.Index(labels, name=getattr(groups, "name", None)))
    return by, row(slice(None))


def _disparities(y_good: np.ndarray, y_pred: np.ndarray, groups: np.ndarray) -> tuple[float, float, float]:
    """fairlearn's demographic parity ratio and difference and equalized odds difference
    (between groups, worst case) from one table of the three rates they read.

    Why one table: ``demographic_parity_ratio``, ``demographic_parity_difference`` and
    ``equalized_odds_difference`` each build their own ``MetricFrame`` over the same rows
    (selection rate twice, then TPR and FPR). The figures are those three functions' own:
    the same fairlearn metrics on the same rows (:func:`group_metrics`), then
    ``MetricFrame``'s ``ratio`` / ``difference`` between groups (minimum over maximum;
    largest distance to the minimum) and the larger of the TPR and FPR differences
    (tests/test_fairness_audit.py compares them).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        by, _ = group_metrics(_DISPARITY_FUNCTIONS, y_good, y_pred, groups)
        ratio = by.agg("min", axis=0) / by.agg("max", axis=0)
        diff = (by - by.agg("min", axis=0)).abs().max()
    return float(ratio["selection_rate"]), float(diff["selection_rate"]), float(diff[["tpr", "fpr"]].max())


def fairness_audit(
    systems: list[DecisionSystem],
    sensitive: pd.DataFrame,
    y_true: Any,
    true_pd: Any = None,
    n_boot: int = 200,
    seed: int = 0,
    min_group: int = 30,
    alpha: float = 0.05,
    features: list[str] | None = None,
) -> AuditResult:
    """Audit each decision system over each sensitive feature (column of ``sensitive``).

    ``y_true`` is the observed default flag (1 = defaulted), one per household; the
    positive label for fairlearn is its complement (a good outcome, see module docstring).

    Examples
    --------
    >>> from village_credit.data import GeneratorConfig, generate_households
    >>> hh = generate_households(GeneratorConfig(n_households=200, seed=7))
    >>> from village_credit.fairness import fairness_audit, policy_change_systems, sensitive_frame
    >>> systems = policy_change_systems(hh)  # the rule standard with and without its age cutoff
    >>> audit = fairness_audit(systems, sensitive_frame(hh), hh["default_12m"], n_boot=20, seed=0,
    ...                        features=["elderly"])
    >>> audit.metric("approval_rate", "elderly").round(2)
    system  policy:jinxiang_2022  policy:jinxiang_2022_no_age_cutoff
    group
    (all)                   0.77                                0.86
    60+                     0.50                                0.83
    <60                     0.86                                0.86
    """
    if not systems:
        raise FairnessInputError("fairness_audit needs at least one decision system")
    names = [s.name for s in systems]
    if len(set(names)) != len(names):
        raise FairnessInputError(f"decision system names must be unique, got {names}")
    n = len(systems[0])
    sens = check_sensitive(sensitive, n)
    feats = list(features or sens.columns)
    missing = [f for f in feats if f not in sens.columns]
    if missing:
        raise FairnessInputError(f"sensitive features {missing} not in the sensitive frame")
    y = _arr(y_true, "y_true", n, bool)
    assert y is not None
    y_good = (~y).astype(int)
    tp = _arr(true_pd, "true_pd", n)
    if tp is not None and np.isnan(tp).any():
        raise FairnessInputError(f"true_pd has {int(np.isnan(tp).sum())} missing value(s)")

    rows: list[dict[str, Any]] = []
    disp: list[dict[str, Any]] = []
    for si, system in enumerate(systems):
        if len(system) != n:
            raise FairnessInputError(f"system {system.name!r} has {len(system)} households, expected {n}")
        y_pred = system.approved.astype(int)
        metrics, params = _metric_spec(system, tp)
        for fi, feat in enumerate(feats):
            groups = sens[feat].to_numpy()
            by, overall = group_metrics(metrics, y_good, y_pred, groups, params)
            labels = [str(g) for g in by.index]
            codes = pd.Categorical(groups, categories=labels).codes
            reps = _boot_group_stats(codes, len(labels), system.approved, y_good.astype(bool),
                                     system.credit_line, n_boot, seed + 1009 * si + 31 * fi) if n_boot else {}
            all_reps = _boot_group_stats(np.zeros(n, dtype=int), 1, system.approved, y_good.astype(bool),
                                         system.credit_line, n_boot, seed + 1009 * si + 31 * fi + 7) if n_boot else {}
            counts = by["n"].to_numpy(dtype=float)
            for metric in by.columns:
                vals = by[metric].to_numpy(dtype=float)
                lo = hi = np.full(len(labels), np.nan)
                olo = ohi = math.nan
                if metric in reps:
                    lo, hi = _pct_ci(reps[metric], alpha)
                    olo, ohi = (float(v[0]) for v in _pct_ci(all_reps[metric], alpha))
                for j, g in enumerate(labels):
                    rows.append(dict(system=system.name, feature=feat, group=g, n=int(counts[j]),
                                     metric=metric, value=float(vals[j]), ci_low=float(lo[j]),
                                     ci_high=float(hi[j]), small_group=bool(counts[j] < min_group)))
                rows.append(dict(system=system.name, feature=feat, group=ALL_GROUP, n=n, metric=metric,
                                 value=float(overall[metric]), ci_low=olo, ci_high=ohi, small_group=False))

            # ---- disparities over groups large enough to compare
            keep = counts >= min_group
            kept = [g for g, k in zip(labels, keep) if k]
            excluded = "; ".join(g for g, k in zip(labels, keep) if not k)
            base = dict(system=system.name, feature=feat, groups_compared=len(kept), groups_excluded=excluded)
            if len(kept) < 2:
                for m in DISPARITY_METRICS:
                    disp.append({**base, "metric": m, "value": math.nan, "ci_low": math.nan, "ci_high": math.nan})
                continue
            mask = np.isin(groups, kept)
            dpr, dpd, eod = _disparities(y_good[mask], y_pred[mask], groups[mask])
            ci: dict[str, tuple[float, float]] = {}  # four_fifths_pass: (share passing, same)
            if reps:
                ratio_r, diff_r = _range_ratio(reps["approval_rate"][:, keep])
                _, tdiff = _range_ratio(reps["tpr"][:, keep])
                _, fdiff = _range_ratio(reps["fpr"][:, keep])
                eod_r = np.fmax(tdiff, fdiff)
                for m, r in (("demographic_parity_ratio", ratio_r), ("demographic_parity_difference", diff_r),
                             ("equalized_odds_difference", eod_r)):
                    lo_, hi_ = _pct_ci(r[:, None], alpha)
                    ci[m] = (float(lo_[0]), float(hi_[0]))
                # share of replicates passing the four-fifths rule, as its "interval"
                pass_share = float(np.nanmean(ratio_r >= FOUR_FIFTHS))
                ci["four_fifths_pass"] = (pass_share, pass_share)
            for m, v in (("demographic_parity_ratio", dpr), ("demographic_parity_difference", dpd),
                         ("equalized_odds_difference", eod),
                         ("four_fifths_pass", math.nan if math.isnan(dpr) else float(dpr >= FOUR_FIFTHS))):
                lo_, hi_ = ci.get(m, (math.nan, math.nan))
                disp.append({**base, "metric": m, "value": v, "ci_low": lo_, "ci_high": hi_})

    by_group = pd.DataFrame(rows, columns=["system", "feature", "group", "n", "metric", "value",
                                           "ci_low", "ci_high", "small_group"])
    disparities = pd.DataFrame(disp, columns=["system", "feature", "metric", "value", "ci_low", "ci_high",
                                              "groups_compared", "groups_excluded"])
    return AuditResult(by_group, disparities,
                       params=dict(n=n, n_boot=n_boot, seed=seed, min_group=min_group, alpha=alpha,
                                   systems=names, features=feats, four_fifths=FOUR_FIFTHS,
                                   positive_label="good outcome (no default)",
                                   positive_prediction="approved"))
