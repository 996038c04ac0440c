"""Outcome support: which decisions rest on outcomes actually observed, and which are extrapolation.

Why: a model learns only from households with an observed outcome. When the old rules
never lent to a group (Jinxiang: nobody over 60), every decision about that group is
extrapolation, and nothing in an approval-rate audit says so. This module says it, per
protected group (:data:`~village_credit.data.groups.SUPPORT_GROUPS`: 60-64, 65-69,
70+, formerly poor, and the age-band x formerly-poor intersections):

* :func:`support_diagnostics`: per group, the households and how many have an observed
  outcome (and observed defaults); per group and per column (rule item or model
  feature), the share of the group's households whose value is **never seen with an
  outcome** (no observed training row has that value, or for a numeric column with many
  values, lies in that quantile bin) and the median number of observed rows that share
  the value. A group with fewer than ``min_observed`` observed outcomes is
  ``extrapolated``; a column where at least ``unseen_share`` of a group's households
  have unseen values is listed in that group's ``unseen_columns``.
* :func:`headline`: the figures both ways, per group: predicted / true mean PD and
  predicted / observed mean PD (observed = default rate of the group's households with
  an observed outcome; null when there are none, which is the point), with the signed
  equal-risk approval and line gaps (worst checked decile, sign kept: negative = the
  protected group gets less than others of equal true risk).
* :func:`exploration_design`: per group, the exploration sample needed to estimate its
  default rate within a chosen precision, the share of its refused households that is,
  and the expected loss of lending to them.
* :func:`expected_loss`: sum of PD x line x LGD over approved households.

Loss convention: loss given default ``LGD`` = 0.45 (the Basel foundation value for
senior unsecured claims) unless given; exposure = the credit line.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import pandas as pd
from scipy.stats import norm
from statsmodels.stats.proportion import proportion_confint

from village_credit.data.groups import FORMERLY_POOR, SUPPORT_AGE_BANDS
from village_credit.data.groups import support_groups
from village_credit.errors import FairnessInputError
from village_credit.reporting.html import to_jsonable

__all__ = [
    "DEFAULT_LGD",
    "EXPLORATION_LINE",
    "explored_calibration",
    "exploration_design",
    "expected_loss",
    "headline",
    "support_diagnostics",
    "support_memberships",
]

DEFAULT_LGD = 0.45
EXPLORATION_LINE = 50_000.0
"""Yuan lent per exploration household: the ordinary households' trial line (domain notes)."""
_MAX_EXACT_VALUES = 20


def support_memberships(households: pd.DataFrame) -> pd.DataFrame:
    """Support groups plus the age-band x formerly-poor intersections (boolean columns)."""
    g = support_groups(households)
    for name, _, _ in SUPPORT_AGE_BANDS:
        g[f"{name}|{FORMERLY_POOR}"] = g[name] & g[FORMERLY_POOR]
    g["<60|other"] = ~g[[b[0] for b in SUPPORT_AGE_BANDS]].any(axis=1) & ~g[FORMERLY_POOR]
    return g


def explored_calibration(households: pd.DataFrame, explored: Any, pd_pred: Any, *,
                         alpha: float = 0.05) -> dict[str, dict[str, Any]]:
    """Did the remedy work? Calibration of the **explored** households of each support group.

    ``explored``: bool mask of households lent to *only* by the exploration grant (an
    observed outcome the old rules would not have produced); ``pd_pred``: the model's PD.
    Per group (:func:`support_memberships`): ``n_explored``, ``observed_defaults``,
    ``observed_rate``, ``mean_pd``, ``gap = mean_pd - observed_rate`` and its ``1 - alpha``
    CI (the exact Clopper-Pearson interval of the observed rate, mean PD held fixed).
    A group with no explored household has ``n_explored = 0`` and null figures: nothing
    measured, never a plausible number.

    >>> import numpy as np, pandas as pd
    >>> from village_credit.fairness.support import explored_calibration
    >>> hh = pd.DataFrame({"head_age": [72] * 40 + [45] * 40, "formerly_poor": [False] * 80,
    ...                    "default_12m": [1] * 4 + [0] * 36 + [0] * 40})
    >>> out = explored_calibration(hh, np.r_[np.ones(40, bool), np.zeros(40, bool)], np.full(80, 0.10))
    >>> row = out["70+"]
    >>> row["n_explored"], row["observed_rate"], round(row["gap"], 3), [round(v, 3) for v in row["gap_ci"]]
    (40, 0.1, 0.0, [-0.137, 0.072])
    >>> out["60-64"]["n_explored"], out["60-64"]["gap"]
    (0, None)
    """
    mask = np.asarray(explored, dtype=bool)
    p = np.asarray(pd_pred, dtype=float)
    if mask.shape[0] != len(households) or p.shape[0] != len(households):
        raise FairnessInputError(f"explored_calibration: {len(households)} households, {mask.shape[0]} "
                                 f"explored flags and {p.shape[0]} PDs")
    if "default_12m" not in households.columns:
        raise FairnessInputError("explored_calibration: households need the observed outcome 'default_12m'")
    y = households["default_12m"].to_numpy(dtype=float)
    out: dict[str, dict[str, Any]] = {}
    for group, member in support_memberships(households).items():
        sel = member.to_numpy(bool) & mask & np.isfinite(p) & np.isfinite(y)
        n, d = int(sel.sum()), int(y[sel].sum())
        if n == 0:
            out[str(group)] = {"n_explored": 0, "observed_defaults": 0, "observed_rate": None,
                               "mean_pd": None, "gap": None, "gap_ci": None}
            continue
        lo, hi = proportion_confint(d, n, alpha=alpha, method="beta")
        mean_pd = float(p[sel].mean())
        out[str(group)] = {"n_explored": n, "observed_defaults": d, "observed_rate": d / n,
                           "mean_pd": mean_pd, "gap": mean_pd - d / n,
                           "gap_ci": [mean_pd - float(hi), mean_pd - float(lo)], "alpha": alpha}
    return out


def _support_counts(col: pd.Series, observed: np.ndarray) -> np.ndarray:
    """Per row: how many observed rows share its value (or its quantile bin when numeric and varied)."""
    v = col
    if pd.api.types.is_numeric_dtype(v) and v.nunique(dropna=True) > _MAX_EXACT_VALUES:
        x = v.to_numpy(dtype=float)
        edges = np.unique(np.nanquantile(x[observed], np.linspace(0, 1, _MAX_EXACT_VALUES + 1))
                          ) if observed.any() else np.array([])
        key = np.where(np.isnan(x), -2, np.searchsorted(edges, x, side="left"))
        # outside the observed range is unseen: below the minimum or above the maximum
        if edges.size:
            key = np.where(~np.isnan(x) & ((x < edges[0]) | (x > edges[-1])), -1, key)
        codes = pd.Series(key)
    else:
        codes = pd.Series(pd.factorize(v.astype(object).where(v.notna(), "<NA>"))[0])
    counts = codes[observed].value_counts()
    out = codes.map(counts).fillna(0).to_numpy(dtype=float)
    if pd.api.types.is_numeric_dtype(v) and v.nunique(dropna=True) > _MAX_EXACT_VALUES:
        out = np.where(codes.to_numpy() == -1, 0.0, out)
    return out


def support_diagnostics(households: pd.DataFrame, observed: Any, *, items: pd.DataFrame | None = None,
                        features: pd.DataFrame | None = None, min_observed: int = 300,
                        unseen_share: float = 0.05) -> dict[str, Any]:
    """Outcome support of every protected group (see module docstring). JSON-safe dict.

    ``households``: the training population (observed or not), with ``head_age``,
    ``formerly_poor`` and, for defaults, ``default_12m``; ``observed``: bool mask of rows
    with an observed outcome; ``items``: rule item points of the same rows;
    ``features``: the model's feature matrix of the same rows.
    Keys: ``min_observed``, ``groups`` (records), ``columns`` (records, group x column,
    only columns with unseen values in some group), ``extrapolated_groups``.

    Examples
    --------
    >>> from village_credit.data import GeneratorConfig, generate_households
    >>> hh = generate_households(GeneratorConfig(n_households=200, seed=7))
    >>> from village_credit.fairness import support_diagnostics
    >>> support = support_diagnostics(hh, hh["outcome_observed"].to_numpy(bool), min_observed=30)
    >>> [(g["group"], g["n"], g["n_observed"]) for g in support["groups"]][:3]
    [('60-64', 21, 3), ('65-69', 15, 0), ('70+', 16, 0)]
    >>> "70+" in support["extrapolated_groups"]  # no 70+ household was ever lent to
    True
    """
    obs = np.asarray(observed, dtype=bool)
    n = len(households)
    if obs.shape[0] != n:
        raise FairnessInputError(f"observed mask has {obs.shape[0]} rows, households have {n}")
    for name, frame in (("items", items), ("features", features)):
        if frame is not None and len(frame) != n:
            raise FairnessInputError(f"{name} have {len(frame)} rows, households have {n}")
    if min_observed < 1:
        raise FairnessInputError(f"min_observed must be >= 1, got {min_observed}")
    member = support_memberships(households)
    y = households["default_12m"].to_numpy(dtype=float) if "default_12m" in households else None
    cols: list[tuple[str, str, np.ndarray]] = []
    for kind, frame in (("rule item", items), ("feature", features)):
        if frame is None:
            continue
        for c in frame.columns:
            cols.append((kind, str(c), _support_counts(frame[c].reset_index(drop=True), obs)))
    groups, col_rows = [], []
    for g in member.columns:
        m = member[g].to_numpy(bool)
        n_g, n_obs = int(m.sum()), int((m & obs).sum())
        unseen: list[str] = []
        for kind, c, sup in cols:
            if not n_g:
                continue
            share = float(np.mean(sup[m] == 0))
            if share > 0:
                col_rows.append({"group": g, "kind": kind, "column": c, "n_group": n_g,
                                 "share_unseen": share, "median_support": float(np.median(sup[m]))})
            if share >= unseen_share:
                unseen.append(c)
        groups.append({
            "group": g, "n": n_g, "n_observed": n_obs,
            "share_observed": n_obs / n_g if n_g else math.nan,
            "n_observed_defaults": int(np.nansum(y[m & obs])) if y is not None else None,
            "extrapolated": bool(n_g > 0 and n_obs < min_observed),
            "unseen_columns": unseen,
        })
    ext = [r["group"] for r in groups if r["extrapolated"] and r["group"] != "<60|other"]
    return to_jsonable({"min_observed": int(min_observed), "unseen_share": float(unseen_share),
                        "n": n, "n_observed": int(obs.sum()), "groups": groups, "columns": col_rows,
                        "extrapolated_groups": ext})


def expected_loss(pd_: Any, credit_line: Any, approved: Any = None, lgd: float = DEFAULT_LGD) -> float:
    """Sum of PD x line x LGD over approved households (yuan).

    Examples
    --------
    >>> from village_credit.fairness import expected_loss
    >>> expected_loss([0.10, 0.02], [10_000, 50_000], approved=[True, True], lgd=0.45)  # 0.45 * (1000 + 1000)
    900.0
    """
    p = np.asarray(pd_, dtype=float)
    line = np.asarray(credit_line, dtype=float)
    a = np.ones(p.shape, bool) if approved is None else np.asarray(approved, dtype=bool)
    if not (p.shape == line.shape == a.shape):
        raise FairnessInputError("expected_loss: pd, credit_line and approved differ in length")
    return float(np.nansum(np.where(a, p * line * lgd, 0.0)))


def _worst_signed(table: pd.DataFrame, comparison: str, column: str) -> tuple[float, float]:
    t = table[(table.comparison == comparison) & table.checked.astype(bool)]
    if t.empty or t[column].isna().all():
        return math.nan, math.nan
    i = t[column].abs().idxmax()
    return float(t.at[i, column]), float(t.at[i, "decile"])


def headline(households: pd.DataFrame, pd_pred: Any, *, equal_risk_table: pd.DataFrame | None = None,
             system: str = "blend", observed: Any = None, ceiling_pd: Any = None) -> list[dict[str, Any]]:
    """Per protected group: predicted / true and predicted / observed mean PD, signed gaps.

    ``households`` needs ``true_pd`` for the true ratio (else null) and ``default_12m``;
    ``observed`` (default ``households["outcome_observed"]``) marks whose outcome counts as
    observed. ``equal_risk_table`` (``equal_risk_gaps(...).table``) gives the signed worst
    gap of ``system`` per comparison (elderly rows for the age bands). ``ceiling_pd`` (the
    information ceiling's PD, :func:`~village_credit.fairness.ceiling.household_ceiling_pd`)
    adds ``ceiling_true_ratio``: how near its true PD the best PD these columns allow comes
    for the group, so a group's miss splits into what no model on these columns avoids and
    the model's own part (``pred_ceiling_ratio``); null without it.

    Examples
    --------
    >>> from village_credit.data import GeneratorConfig, generate_households
    >>> hh = generate_households(GeneratorConfig(n_households=200, seed=7))
    >>> from village_credit.fairness import headline
    >>> rows = headline(hh, 1.2 * hh["true_pd"])  # a model that overstates every PD by 20 %
    >>> [(r["group"], round(r["pred_true_ratio"], 2)) for r in rows[:2]]
    [('all', 1.2), ('60-64', 1.2)]
    """
    p = np.asarray(pd_pred, dtype=float)
    if len(p) != len(households):
        raise FairnessInputError(f"{len(p)} predictions for {len(households)} households")
    c = None if ceiling_pd is None else np.asarray(ceiling_pd, dtype=float)
    if c is not None and len(c) != len(p):
        raise FairnessInputError(f"{len(c)} ceiling PDs for {len(households)} households")
    if observed is None:
        observed = households["outcome_observed"].to_numpy(bool) if "outcome_observed" in households \
            else np.ones(len(p), bool)
    obs = np.asarray(observed, dtype=bool)
    tp = households["true_pd"].to_numpy(dtype=float) if "true_pd" in households else None
    y = households["default_12m"].to_numpy(dtype=float) if "default_12m" in households else None
    member = support_memberships(households)
    member.insert(0, "all", True)
    tab = None
    if equal_risk_table is not None and len(equal_risk_table):
        tab = equal_risk_table[equal_risk_table.system == system]
    rows = []
    for g in member.columns:
        m = member[g].to_numpy(bool) & np.isfinite(p)
        if not m.any():
            continue
        mp = float(p[m].mean())
        mo = m & obs
        obs_rate = float(y[mo].mean()) if (y is not None and mo.any()) else math.nan
        true = float(tp[m].mean()) if tp is not None else math.nan
        comp = "formerly_poor" if g == FORMERLY_POOR else ("elderly" if g[:2] in ("60", "65", "70") else None)
        gap_a = gap_l = dec = math.nan
        if tab is not None and comp is not None:
            gap_a, _ = _worst_signed(tab, comp, "gap_approval")
            gap_l, dec = _worst_signed(tab, comp, "gap_line")
        mc = float(c[m].mean()) if c is not None else math.nan
        has_true = bool(true) and not math.isnan(true)
        rows.append({
            "group": g, "n": int(m.sum()), "n_observed": int(mo.sum()), "mean_pd": mp, "mean_true_pd": true,
            "observed_default_rate": obs_rate,
            "pred_true_ratio": mp / true if has_true else math.nan,
            "ceiling_true_ratio": mc / true if has_true and not math.isnan(mc) else math.nan,
            "pred_ceiling_ratio": mp / mc if mc and not math.isnan(mc) else math.nan,
            "pred_observed_ratio": mp / obs_rate if obs_rate and not math.isnan(obs_rate) else math.nan,
            "equal_risk_comparison": comp, "worst_gap_approval": gap_a, "worst_gap_line": gap_l,
            "worst_gap_line_decile": dec,
        })
    return to_jsonable(rows)


def exploration_design(households: pd.DataFrame, observed: Any, pd_estimate: Any, *, precision: float = 0.5,
                       relative: bool = True, confidence: float = 0.95, line: float = EXPLORATION_LINE,
                       lgd: float = DEFAULT_LGD, groups: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Exploration sample per group to estimate its default rate within ``precision``.

    Normal approximation: ``n = z^2 p (1 - p) / d^2`` with ``z`` the two-sided
    ``confidence`` quantile and ``d = precision * p`` (``relative``) or ``precision``.
    ``p`` is the group's mean ``pd_estimate`` over its refused households (the model's
    own PD: the best guess before exploring). The households already observed count
    towards ``n``; ``n_to_explore`` is the rest, ``share_of_refused`` its share of the
    group's refused households (``> 1``: not reachable by exploration alone; ``feasible``
    false), ``expected_defaults`` = n_to_explore x p and ``expected_loss`` = that x
    ``line`` x ``lgd`` (yuan). ``groups``: name -> boolean mask (default: the support
    groups and intersections).
    """
    if not (0 < confidence < 1) or not precision > 0:
        raise FairnessInputError("exploration_design: confidence must be in (0, 1) and precision > 0")
    obs = np.asarray(observed, dtype=bool)
    p_est = np.asarray(pd_estimate, dtype=float)
    if not (len(obs) == len(p_est) == len(households)):
        raise FairnessInputError("exploration_design: households, observed and pd_estimate differ in length")
    masks = dict(groups) if groups is not None else {c: v.to_numpy(bool)
                                                     for c, v in support_memberships(households).items()}
    z = float(norm.ppf(0.5 + confidence / 2))
    rows = []
    for g, mask in masks.items():
        m = np.asarray(mask, dtype=bool)
        refused = m & ~obs
        n_ref, n_obs = int(refused.sum()), int((m & obs).sum())
        ps = p_est[refused & np.isfinite(p_est)]
        p = float(ps.mean()) if ps.size else math.nan
        if math.isnan(p) or p <= 0 or p >= 1:
            n_need = math.nan
        else:
            d = precision * p if relative else precision
            n_need = math.ceil(z * z * p * (1 - p) / (d * d))
        n_more = max(0, n_need - n_obs) if not math.isnan(n_need) else math.nan
        share = n_more / n_ref if n_ref and not math.isnan(n_more) else (0.0 if n_more == 0 else math.nan)
        rows.append({"group": g, "n_refused": n_ref, "n_observed": n_obs, "pd_estimate": p, "n_needed": n_need,
                     "n_to_explore": n_more, "share_of_refused": share,
                     "feasible": bool(not math.isnan(share) and share <= 1),
                     "expected_defaults": n_more * p if not math.isnan(n_more) else math.nan,
                     "expected_loss": n_more * p * line * lgd if not math.isnan(n_more) else math.nan})
    return pd.DataFrame(rows)
