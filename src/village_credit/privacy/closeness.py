"""t-closeness of the outcome: the last repair of a release, and what the insider learns from it.

Why t-closeness and not l-diversity for ``default_12m`` (issue 28 item 4): at a 4 % default
rate a class whose households all repaid only tells the insider what the base rate already
says (96 %), while distinct 2-diversity would need classes of about 25 households. What must
not happen is a class that *raises* a household's default probability far above the base rate
(a class of five with three defaults: 60 %). t-closeness bounds exactly that: in every class
the outcome's distribution differs from the release's by at most ``t`` (variational distance;
for a binary outcome ``|p_class - p_all|``, which is pycanon's t too).

The recoding (recoding.local_recode) meets it by generalisation; this module checks the
released table itself, after the bank / keeper protection withheld rows and the released
household size capped ``dependents`` (both can change a class), and suppresses any class that
still breaches it, again until none does (the overall rate moves with what is withheld).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from village_credit.privacy.recoding import variational_distance


def class_distances(table: pd.DataFrame, qis: Sequence[str], values: pd.Series | np.ndarray) -> pd.Series:
    """Per row: the variational distance between its class's distribution of ``values`` (classes
    on the released ``qis``) and the whole table's (an independent count of pycanon's t).

    >>> import pandas as pd
    >>> t = pd.DataFrame({"village": ["a"] * 5 + ["b"] * 5})
    >>> class_distances(t, ["village"], [0, 0, 0, 0, 0, 1, 1, 0, 0, 0]).round(2).tolist()
    [0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2]
    """
    cols = [q for q in qis if q in table.columns]
    codes = pd.factorize(pd.Series(np.asarray(values), index=table.index))[0]
    if not len(table):
        return pd.Series(dtype=float)
    if (codes < 0).any():
        raise ValueError("t-closeness: the sensitive attribute has missing values")
    dist = np.bincount(codes) / len(codes)
    cls = table.groupby(cols, dropna=False, observed=True, sort=False).ngroup().to_numpy() if cols \
        else np.zeros(len(table), dtype=np.int64)
    counts = np.zeros((int(cls.max()) + 1, len(dist)))
    np.add.at(counts, (cls, codes), 1)
    d = variational_distance(counts, counts.sum(axis=1), dist)
    return pd.Series(d[cls], index=table.index)


def enforce_t_closeness(table: pd.DataFrame, qis: Sequence[str], targets: Mapping[str, pd.Series],
                        t: float) -> pd.Series:
    """Rows to withhold so that every remaining class is within ``t`` of the remaining table, for
    every target (``name -> values`` aligned with ``table``): whole classes, every breaching one
    each round, until none breaches the distribution of what is left. Returns a mask over ``table.index``."""
    drop = pd.Series(False, index=table.index)
    while True:
        keep = table.index[~drop.to_numpy()]
        if not len(keep):
            return drop
        worst = pd.Series(0.0, index=keep)
        for values in targets.values():
            worst = np.maximum(worst, class_distances(table.loc[keep], qis, values.loc[keep]))
        breach = worst > t + 1e-12
        if not breach.any():
            return drop
        drop.loc[breach[breach].index] = True


def outcome_homogeneity(table: pd.DataFrame, attackers: Mapping[str, Sequence[str]],
                        outcome: pd.Series | np.ndarray) -> dict[str, Any]:
    """The homogeneity attack on a binary outcome, both ways, per holder: households whose class
    (on the holder's columns) holds only "repaid" (``repaid_certain``: the cost of a rare outcome,
    reported) or only "defaulted" (``default_certain``: the target is 0), and the largest default
    rate any class shows (``max_default_posterior``, against ``base_rate``) with its distance ``t``.

    >>> import pandas as pd
    >>> t = pd.DataFrame({"village": ["a"] * 5 + ["b"] * 5})
    >>> out = outcome_homogeneity(t, {"insider": ["village"]}, [0, 0, 0, 0, 0, 1, 1, 0, 0, 0])
    >>> out["insider"]["repaid_certain_share"], out["insider"]["default_certain_n"], out["insider"]["t"]
    (0.5, 0, 0.2)
    """
    y = pd.Series(np.asarray(outcome), index=table.index).astype(float)
    out: dict[str, Any] = {}
    for name, knows in attackers.items():
        cols = [c for c in knows if c in table.columns]
        if not cols or not len(table):
            out[name] = {"base_rate": None, "repaid_certain_share": None, "repaid_certain_n": None,
                         "default_certain_n": None, "max_default_posterior": None, "t": None}
            continue
        rate = y.groupby([table[c] for c in cols], dropna=False, observed=True, sort=False).transform("mean")
        base = float(y.mean())
        out[name] = {"base_rate": round(base, 6),
                     "repaid_certain_share": round(float((rate == 0).mean()), 6),
                     "repaid_certain_n": int((rate == 0).sum()),
                     "default_certain_n": int((rate == 1).sum()),
                     "max_default_posterior": round(float(rate.max()), 6),
                     "t": round(float((rate - base).abs().max()), 6)}
    return out


__all__ = ["class_distances", "enforce_t_closeness", "outcome_homogeneity"]
