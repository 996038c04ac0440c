"""The grade back-test as a test with its nominal error rate: pooled thin grades, Holm.

Why: judged grade by grade, with no minimum size and no multiplicity control, the old
rules flagged a model calibrated by construction in 98.5 % of draws on the demo's grades
(rank order broken on point estimates) and FAILed it in 9.9 % (some grade red among
nine); docs/benchmarks.md, "Is the CONDITIONAL verdict a finding?". The rules here
(owner's decision, docs/registry.md "The grade back-test"):

* grades whose expected number of defaults (sum of PDs on the tested rows) is below
  ``min_expected`` are pooled with the adjacent grade towards the middle of the scale
  until every pool reaches it (or the whole scale is one pool);
* each pool gets the per-grade tests (``calibration.grade_calibration``'s binomial and
  Jeffreys tests, same direction); the family-wise error across the pools is held by
  Holm (``stability.holm``, the monitor's one implementation), light from the adjusted
  p: green >= ``green_p``, amber below, red below ``red_p``;
* the rank order is broken only where a worse pool's default rate is significantly
  below the better neighbour's (one-sided Fisher exact test, Holm across the adjacent
  pairs, amber below ``green_p``); point-estimate reversals are listed as information;
* no row, or a single pool: "not testable" with NaN p, never a pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from village_credit.validation._checks import ValidationInputError
from village_credit.validation.calibration import grade_calibration, traffic_light
from village_credit.validation.stability import holm

__all__ = ["MIN_EXPECTED_DEFAULTS", "grade_backtest", "pool_thin_grades"]

MIN_EXPECTED_DEFAULTS = 5.0


def pool_thin_grades(expected: Sequence[float], n: Sequence[int],
                     min_expected: float = MIN_EXPECTED_DEFAULTS) -> list[list[int]]:
    """Positions (in grade order) of each pool; grades without rows belong to none.

    The thin pool farthest from the middle of the scale is merged first, with its
    neighbour towards the middle (the other one where there is none that way; at the
    middle, the thinner neighbour), until every pool's expected defaults reach
    ``min_expected`` or one pool is left.

    >>> from village_credit.validation.backtest import pool_thin_grades
    >>> pool_thin_grades([20.0, 12.0, 6.0, 4.0, 1.0, 0.5], [900, 300, 80, 30, 6, 2])
    [[0], [1], [2], [3, 4, 5]]
    >>> pool_thin_grades([1.0, 2.0], [10, 10])
    [[0, 1]]
    """
    e = np.asarray(expected, dtype=float)
    nn = np.asarray(n, dtype=float)
    if e.shape != nn.shape:
        raise ValidationInputError(f"expected and n need one value per grade: {e.shape} vs {nn.shape}")
    pools = [[i] for i in np.flatnonzero(nn > 0).tolist()]
    mid = (e.size - 1) / 2.0

    def total(pool: list[int]) -> float:
        return float(e[pool].sum())

    while len(pools) > 1:
        thin = [k for k, pool in enumerate(pools) if total(pool) < min_expected]
        if not thin:
            break
        centre = [(pools[k][0] + pools[k][-1]) / 2.0 for k in range(len(pools))]
        k = max(thin, key=lambda j: (abs(centre[j] - mid), -j))  # farthest out; left first on ties
        left, right = k - 1 if k > 0 else None, k + 1 if k + 1 < len(pools) else None
        if right is None or (left is not None and centre[k] > mid):
            j = left
        elif left is None or centre[k] < mid:
            j = right
        else:  # at the middle with neighbours on both sides: the thinner one
            j = left if total(pools[left]) <= total(pools[right]) else right
        a, b = sorted((k, int(j)))
        pools[a:b + 1] = [pools[a] + pools[b]]
    return pools


def _pool_table(grades: Any, y: Any, pd_pred: Any, raw: pd.DataFrame,
                members: list[list[int]], green_p: float, red_p: float, alternative: Any,
                light_test: Any) -> pd.DataFrame:
    """``grade_calibration`` on the pools: each row relabelled with its pool's name."""
    names = ["+".join(str(raw["grade"].iloc[i]) for i in m) for m in members]
    to_pool = {raw["grade"].iloc[i]: name for m, name in zip(members, names, strict=True) for i in m}
    g = np.asarray(grades, dtype=object)
    labels = np.array([to_pool[v] for v in g], dtype=object)
    tab = grade_calibration(labels, y, pd_pred, names, green_p, red_p, alternative, light_test)
    tab.insert(1, "grades", [", ".join(str(raw["grade"].iloc[i]) for i in m) for m in members])
    tab.insert(4, "expected_defaults", tab["n"] * tab["predicted_pd"])
    return tab


def grade_backtest(grades: Any, y: Any, pd_pred: Any, grade_order: Sequence[Any],
                   green_p: float = 0.05, red_p: float = 0.01,
                   alternative: Literal["greater", "two-sided", "less"] = "greater",
                   light_test: Literal["jeffreys", "binomial", "min"] = "jeffreys",
                   min_expected: float = MIN_EXPECTED_DEFAULTS) -> dict[str, Any]:
    """The back-test the verdict reads: pools, their Holm-adjusted lights, the rank order.

    Returns ``grades`` (the raw per-grade table of ``grade_calibration``, unadjusted:
    information), ``pools`` (one row per pool: ``grade`` its name, e.g. ``D1+D2+E1``,
    ``grades``, ``n``, ``defaults``, ``expected_defaults``, ``predicted_pd``,
    ``observed_rate``, ``binomial_p``, ``jeffreys_p``, ``p_holm``, ``light``),
    ``rank_order`` (one row per adjacent pair: rates, ``reversed`` on the point
    estimates, one-sided Fisher ``p_value``, ``p_holm``, ``light`` green / amber),
    ``lights`` (pool counts), ``rank_order_broken`` (pairs amber), ``reversals``
    (point-estimate reversals that are not significant: information), ``pool_summary`` (each
    pool of more than one grade: ``{"pool": "D1+D2", "n": 18}``)
    and ``not_testable`` (the reason, or None).

    >>> import numpy as np
    >>> from village_credit.validation.backtest import grade_backtest
    >>> rng = np.random.default_rng(0)
    >>> p = np.r_[np.full(2000, 0.02), np.full(600, 0.08), np.full(20, 0.2), np.full(5, 0.4)]
    >>> g = np.repeat(["A", "B", "C", "D"], [2000, 600, 20, 5])
    >>> y = (rng.random(p.size) < p).astype(int)
    >>> bt = grade_backtest(g, y, p, ["A", "B", "C", "D"])
    >>> bt["pools"]["grade"].tolist(), bt["not_testable"], bt["lights"]["red"]
    (['A', 'B', 'C+D'], None, 0)
    >>> grade_backtest(["A"] * 50, [0] * 50, [0.01] * 50, ["A", "B"])["not_testable"][:14]
    'not testable: '
    >>> grade_backtest([], [], [], ["A", "B"])["not_testable"]
    'not testable: no row with an observed outcome in a model-set grade'
    """
    if np.asarray(y).size == 0:  # every tested row gone (e.g. all graded by policy)
        raw = pd.DataFrame({"grade": list(grade_order), "n": 0, "defaults": 0, "predicted_pd": np.nan,
                            "observed_rate": np.nan, "binomial_p": np.nan, "jeffreys_p": np.nan,
                            "light": "n/a"})
    else:
        raw = grade_calibration(grades, y, pd_pred, grade_order, green_p, red_p, alternative,
                                light_test)
    expected = (raw["n"] * raw["predicted_pd"].fillna(0.0)).to_numpy(float)
    members = pool_thin_grades(expected, raw["n"].to_numpy(), min_expected)
    pools = (_pool_table(grades, y, pd_pred, raw, members, green_p, red_p, alternative, light_test)
             if members else pd.DataFrame(columns=["grade", "grades", "n", "defaults",
                                                   "expected_defaults", "predicted_pd", "observed_rate",
                                                   "binomial_p", "jeffreys_p", "light"]))
    names = pools["grade"].tolist()
    light_col = {"jeffreys": "jeffreys_p", "binomial": "binomial_p"}.get(light_test)
    light_p = (pools[light_col] if light_col else np.fmin(pools["jeffreys_p"], pools["binomial_p"]))
    not_testable = None
    if not members:
        not_testable = "not testable: no row with an observed outcome in a model-set grade"
    elif len(members) == 1:
        not_testable = (f"not testable: every grade pooled into one ({names[0]}: n = {int(pools['n'].iloc[0])}"
                        f", {pools['expected_defaults'].iloc[0]:.1f} expected defaults; "
                        f"a pool needs {min_expected:g}); calibration in the large judges the whole")
        light_p = np.full(1, np.nan)
        pools[["binomial_p", "jeffreys_p"]] = np.nan
    pools["p_holm"] = holm(np.asarray(light_p, dtype=float))
    pools["light"] = traffic_light(pools["p_holm"], green_p, red_p)
    ranks = _rank_order(pools, green_p)
    summary = [{"pool": name, "n": int(n)} for name, n, m in zip(names, pools["n"], members, strict=True)
               if len(m) > 1]
    return {
        "grades": raw, "pools": pools, "rank_order": ranks, "min_expected": float(min_expected),
        "lights": {k: int((pools["light"] == k).sum()) for k in ("green", "amber", "red")},
        "rank_order_broken": ranks.loc[ranks["light"] == "amber", "pair"].tolist(),
        "reversals": [f"{r.worse} {r.worse_rate:.1%} below {r.better} {r.better_rate:.1%} "
                      f"(one-sided Fisher p {r.p_value:.2g}, Holm {r.p_holm:.2g})"
                      for r in ranks.itertuples() if r.reversed and r.light != "amber"],
        "pool_summary": summary, "not_testable": not_testable,
    }


def _rank_order(pools: pd.DataFrame, green_p: float) -> pd.DataFrame:
    """Adjacent pools, better first: is the worse pool's default rate significantly lower?"""
    rows = []
    for a, b in zip(pools.iloc[:-1].itertuples(), pools.iloc[1:].itertuples(), strict=True):
        table = [[int(b.defaults), int(b.n - b.defaults)], [int(a.defaults), int(a.n - a.defaults)]]
        p = float(stats.fisher_exact(table, alternative="less")[1])  # odds(worse) < odds(better)
        rows.append({"pair": f"{a.grade} > {b.grade}", "better": a.grade, "worse": b.grade,
                     "better_rate": float(a.observed_rate), "worse_rate": float(b.observed_rate),
                     "reversed": bool(b.observed_rate < a.observed_rate), "p_value": p})
    out = pd.DataFrame(rows, columns=["pair", "better", "worse", "better_rate", "worse_rate",
                                      "reversed", "p_value"])
    out["p_holm"] = holm(out["p_value"].to_numpy(float))
    out["light"] = np.where(out["p_holm"] < green_p, "amber", "green").astype(object)
    return out
