"""Equal risk, equal treatment: approval and line gaps *within deciles of the true PD*.

Why: observational parity metrics cannot tell unfair treatment from a real difference
in risk. The synthetic data carries each household's true PD, so we can compare
households of the same risk directly: if an elderly household and a younger one are
in the same true-PD decile, a fair system approves them at the same rate and offers
them the same expected line.

Definitions (per decision system, per comparison, per decile of ``true_pd`` over the
whole population, ``pandas.qcut``):

* ``gap_approval = approval_rate(protected) - approval_rate(others)``: absolute
  difference in rate points as a fraction (0.05 = 5 points); negative = the protected
  group is approved less.
* ``gap_line = (mean_line(protected) - mean_line(others)) / mean_line(others)``: relative
  difference of the mean credit line over *all* households in the cell (rejected = 0),
  so it measures the expected line at equal risk. When the others' mean is 0 the
  denominator is the protected group's mean (gap 1.0), and 0/0 counts as no gap.
* A cell is *checked* when both groups have at least ``min_count`` households.
* Within a decile the two groups may still differ in risk (e.g. the elderly sit at the
  risky end of a decile), so a system that depends on the true PD alone can show a gap
  when its threshold cuts through a decile. ``n_substrata > 1`` removes most of that:
  each decile is split into that many finer quantile bins and the gap is the average
  of the per-bin gaps weighted by the protected group's counts (direct
  standardisation; default 5). ``n_substrata=1`` is the plain within-decile gap; the
  plain gaps are always in the table as ``gap_approval_raw`` and ``gap_line_raw``.

The summary per system takes the largest absolute gap over checked cells of every
comparison: ``max_gap_approval``, ``max_gap_line`` (NaN when the system has no lines),
``deciles_checked`` (number of checked cells), and ``passes_5pct`` (both maxima
<= 0.05; False when nothing could be checked). Comparisons default to elderly (60+) vs
others and formerly poor vs others.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, NamedTuple

import numpy as np
import pandas as pd

from village_credit.data.groups import ELDERLY_AGE, FORMERLY_POOR
from village_credit.fairness.audit import DecisionSystem, _arr
from village_credit.fairness.groups import FairnessInputError, check_sensitive

TARGET_GAP = 0.05
"""The programme's equal-risk approval-gap target (5 rate points)."""
TARGET_LINE_GAP = 0.10
"""The programme's equal-risk credit-line gap target (10 %, relative)."""
DEFAULT_COMPARISONS: dict[str, tuple[str, str]] = {
    "elderly": ("elderly", f"{ELDERLY_AGE}+"),
    "formerly_poor": ("formerly_poor", FORMERLY_POOR),
}
"""comparison name -> (sensitive column, label of the protected group)."""

COLUMNS = ["system", "comparison", "decile", "pd_low", "pd_high", "n_protected", "n_others",
           "approval_protected", "approval_others", "gap_approval", "gap_approval_raw",
           "line_protected", "line_others", "gap_line", "gap_line_raw", "checked"]


class EqualRiskResult(NamedTuple):
    """``table`` (tidy, one row per system x comparison x decile) and ``summary`` (per system)."""

    table: pd.DataFrame
    summary: dict[str, dict[str, Any]]


def _relative_gap(p: np.ndarray, o: np.ndarray) -> np.ndarray:
    den = np.where(o > 0, o, p)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (p - o) / np.where(den > 0, den, 1.0), 0.0)


def risk_deciles(true_pd: np.ndarray, n_deciles: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Decile code per household (0 = safest) and the bin edges; ties merge bins."""
    codes, edges = pd.qcut(true_pd, n_deciles, labels=False, retbins=True, duplicates="drop")
    return np.asarray(codes, dtype=int), np.asarray(edges, dtype=float)


def equal_risk_gaps(
    systems: list[DecisionSystem],
    sensitive: pd.DataFrame,
    true_pd: Any,
    n_deciles: int = 10,
    min_count: int = 50,
    comparisons: Mapping[str, tuple[str, str]] | None = None,
    target: float = TARGET_GAP,
    n_substrata: int = 5,
) -> EqualRiskResult:
    """Approval and line gaps between protected groups and others within true-PD deciles.

    Examples
    --------
    >>> from village_credit.data import GeneratorConfig, generate_households
    >>> hh = generate_households(GeneratorConfig(n_households=200, seed=7))
    >>> from village_credit.fairness import equal_risk_gaps, policy_change_systems, sensitive_frame
    >>> gaps = equal_risk_gaps(policy_change_systems(hh), sensitive_frame(hh), hh["true_pd"],
    ...                        n_deciles=2, min_count=10)
    >>> {name: round(s["by_comparison"]["elderly"]["max_gap_approval"], 2)
    ...  for name, s in gaps.summary.items()}
    {'policy:jinxiang_2022': 0.49, 'policy:jinxiang_2022_no_age_cutoff': 0.04}
    """
    comps = dict(comparisons or DEFAULT_COMPARISONS)
    n = len(sensitive)
    sens = check_sensitive(sensitive, n)
    tp = _arr(true_pd, "true_pd", n)
    assert tp is not None
    if np.isnan(tp).any():
        raise FairnessInputError(f"true_pd has {int(np.isnan(tp).sum())} missing value(s)")
    for name, (col, _lbl) in comps.items():
        if col not in sens.columns:
            raise FairnessInputError(f"comparison {name!r} needs sensitive column {col!r}")
    fine, fine_edges = risk_deciles(tp, n_deciles * n_substrata)
    n_fine = int(fine.max()) + 1
    k = -(-n_fine // n_substrata)
    edges = np.append(fine_edges[:-1][::n_substrata][:k], fine_edges[-1])
    frames = []
    summary: dict[str, dict[str, Any]] = {}
    for system in systems:
        if len(system) != n:
            raise FairnessInputError(f"system {system.name!r} has {len(system)} households, expected {n}")
        a = system.approved.astype(float)
        line = system.credit_line
        by_comp: dict[str, Any] = {}
        for cname, (col, lbl) in comps.items():
            prot = sens[col].to_numpy() == lbl
            cnt, rate, mline, gap_a, gap_l = _cell_gaps(fine, n_substrata, k, prot, a, line)
            checked = (cnt[:, 1] >= min_count) & (cnt[:, 0] >= min_count) & np.isfinite(gap_a)
            frames.append(pd.DataFrame({
                "system": system.name, "comparison": cname, "decile": np.arange(1, k + 1),
                "pd_low": edges[:-1], "pd_high": edges[1:],
                "n_protected": cnt[:, 1], "n_others": cnt[:, 0],
                "approval_protected": rate[:, 1], "approval_others": rate[:, 0], "gap_approval": gap_a,
                "gap_approval_raw": rate[:, 1] - rate[:, 0],
                "line_protected": mline[:, 1], "line_others": mline[:, 0], "gap_line": gap_l,
                "gap_line_raw": _relative_gap(mline[:, 1], mline[:, 0]) if line is not None else np.nan,
                "checked": checked,
            }, columns=COLUMNS))
            by_comp[cname] = _summarise(gap_a, gap_l, checked, line is not None, target)
        checked_all = [c for c in by_comp.values()]
        max_a = _nanmax([c["max_gap_approval"] for c in checked_all])
        max_l = _nanmax([c["max_gap_line"] for c in checked_all])
        n_checked = int(sum(c["deciles_checked"] for c in checked_all))
        summary[system.name] = {
            "max_gap_approval": max_a,
            "max_gap_line": max_l,
            "deciles_checked": n_checked,
            "passes_5pct": bool(n_checked > 0 and all(c["passes_5pct"] for c in checked_all)),
            "target": target,
            "min_count": min_count,
            "n_substrata": n_substrata,
            "by_comparison": by_comp,
        }
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    return EqualRiskResult(table, summary)


def _cell_gaps(fine: np.ndarray, n_sub: int, k: int, prot: np.ndarray, a: np.ndarray,
               line: np.ndarray | None) -> tuple[np.ndarray, ...]:
    """Counts, rates, mean lines (k x 2: others, protected) and gaps per decile.

    With ``n_sub > 1`` the gaps are directly standardised: within each decile, the gap
    of each sub-stratum (where both groups are present) is averaged with the protected
    group's counts as weights; rates and lines shown are the plain decile values.
    """
    nf = k * n_sub
    cell = fine * 2 + prot.astype(int)
    cnt_f = np.bincount(cell, minlength=2 * nf).reshape(nf, 2)
    apr_f = np.bincount(cell, weights=a, minlength=2 * nf).reshape(nf, 2)
    lin_f = (np.bincount(cell, weights=line, minlength=2 * nf).reshape(nf, 2)
             if line is not None else np.full((nf, 2), np.nan))
    dec_of = np.arange(nf) // n_sub
    agg = lambda m: np.vstack([np.bincount(dec_of, weights=m[:, j], minlength=k) for j in (0, 1)]).T  # noqa: E731
    cnt = agg(cnt_f)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = agg(apr_f) / cnt
        mline = agg(lin_f) / cnt
        if n_sub == 1:
            gap_a = rate[:, 1] - rate[:, 0]
            gap_l = _relative_gap(mline[:, 1], mline[:, 0])
        else:
            both = (cnt_f[:, 0] > 0) & (cnt_f[:, 1] > 0)
            w = np.where(both, cnt_f[:, 1], 0).astype(float)
            r_f = apr_f / np.maximum(cnt_f, 1)
            l_f = np.nan_to_num(lin_f / np.maximum(cnt_f, 1))
            wsum = np.bincount(dec_of, weights=w, minlength=k)
            gap_a = np.bincount(dec_of, weights=w * (r_f[:, 1] - r_f[:, 0]), minlength=k) / wsum
            lp = np.bincount(dec_of, weights=w * l_f[:, 1], minlength=k) / wsum
            lo = np.bincount(dec_of, weights=w * l_f[:, 0], minlength=k) / wsum
            gap_l = _relative_gap(lp, lo)
    if line is None:
        gap_l = np.full(k, np.nan)
    return cnt, rate, mline, gap_a, gap_l


def _nanmax(vals: list[float]) -> float:
    v = [x for x in vals if x is not None and not math.isnan(x)]
    return max(v) if v else math.nan


def _summarise(gap_a: np.ndarray, gap_l: np.ndarray, checked: np.ndarray, has_line: bool,
               target: float) -> dict[str, Any]:
    n_checked = int(checked.sum())
    max_a = float(np.max(np.abs(gap_a[checked]))) if n_checked else math.nan
    max_l = float(np.max(np.abs(gap_l[checked]))) if (n_checked and has_line) else math.nan
    ok = n_checked > 0 and max_a <= target and (not has_line or max_l <= target)
    return {"max_gap_approval": max_a, "max_gap_line": max_l, "deciles_checked": n_checked,
            "passes_5pct": bool(ok)}
