"""Rule items the observed outcomes cannot speak to: neutralised in the blend.

Why: a rule item whose value never varied among the households with an observed
outcome (e.g. Jinxiang's ``base`` item: 30 points for every household the old rules lent
to, 0 for every household over 60) has an effect the data cannot identify. Applying the
rule-points slope learned from the *other* items to it would move the refused
households' risk with no evidence behind it. Such an item is *neutralised*: every
household is given the value the observed households had, so its contribution is zero
for all, and the model's metadata says which item, which value and why.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from village_credit.rules.engine import score_rules
from village_credit.rules.policy import load_policy

__all__ = ["NEUTRALISED_KEY", "constant_items", "exploration_weights", "neutral_items_for", "neutralise_items"]

NEUTRALISED_KEY = "neutralised_items"
"""Model metadata key: ``{item: {"value", "n_observed", "reason"}}``."""


def constant_items(items: pd.DataFrame, observed: Any = None, min_varied: int = 1,
                   max_observed_share: float = 0.1) -> dict[str, dict[str, Any]]:
    """Items whose value (practically) never varied among the rows with an observed outcome.

    ``items``: rule item points (one column per item, ``RuleScores.items``) of the
    population the model decides for; ``observed``: bool mask of rows with an observed
    outcome (default: all). An item is returned when fewer than ``min_varied`` observed
    rows differ from the observed rows' most common value (``min_varied=1``: it never
    varied) **and** the observed rows are at most ``max_observed_share`` of all rows that
    differ (its variation lives where outcomes are missing; with ``min_varied=1`` this
    always holds). Rare bonuses and deductions that vary alike in both are kept.
    Returns ``{item: {"value", "n_observed", "n_observed_varied", "n_other_values",
    "reason"}}``; empty when no row is observed.
    """
    obs = np.ones(len(items), bool) if observed is None else np.asarray(observed, dtype=bool)
    if obs.shape[0] != len(items):
        raise ValueError(f"observed mask has {obs.shape[0]} rows, items have {len(items)}")
    n_obs = int(obs.sum())
    if n_obs == 0:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for col in items.columns:
        vals = items[col].to_numpy(dtype=float)
        seen = pd.Series(vals[obs])
        value = float(seen.mode().iloc[0])
        n_var = int((seen != value).sum())
        n_other = int(np.sum(vals[~obs] != value))
        if n_var >= max(1, min_varied) or (n_var and n_var > max_observed_share * (n_var + n_other)):
            continue
        how = "never varied" if n_var == 0 else f"differed from it for only {n_var}"
        out[str(col)] = {
            "value": value, "n_observed": n_obs, "n_observed_varied": n_var, "n_other_values": n_other,
            "reason": (f"{col} = {value:g} for the {n_obs} households with an observed outcome ({how}), "
                       f"but differs for {n_other} without one: its effect on default cannot be learned, "
                       "so it is not applied"),
        }
    return out


def neutral_items_for(households: pd.DataFrame, policy: Any, observed: Any, eval_date: Any = None,
                      min_varied: int = 1, max_observed_share: float = 0.1) -> dict[str, dict[str, Any]]:
    """:func:`constant_items` of ``policy``'s rule items over ``households`` (observed or not)."""
    items = score_rules(households, load_policy(policy), eval_date).items
    return constant_items(items, observed, min_varied=min_varied, max_observed_share=max_observed_share)


def neutralise_items(items: pd.DataFrame, spec: dict[str, dict[str, Any]] | None) -> pd.DataFrame:
    """``items`` with each neutralised item set to its observed value (a copy; unchanged if none)."""
    if not spec:
        return items
    out = items.copy()
    for col, info in spec.items():
        if col in out.columns:
            out[col] = float(info["value"])
    return out


def exploration_weights(households: pd.DataFrame, policy: Any, eval_date: Any = None) -> np.ndarray:
    """Design weights of the observed households: 1 if the old rules lent, 1 / share if explored.

    Why: the observed outcomes are a stratified sample of the households the PD decides
    for (no veto): every household the old rules granted, plus a random ``share`` of the
    refused ones (the exploration grant). Unweighted, the refused stratum (all elderly
    households, and younger ones refused for capacity or bad credit) counts ``1 / share``
    times too little, so wherever the two strata share features the model learns the
    granted households' risk and the other stratum's mix, not the population's; each
    explored household stands for ``1 / share`` refused ones. ``share`` is estimated from
    the rows themselves (explored / refused without a veto), never from a truth column.
    Rows without an observed outcome get weight 0; vetoed rows are never explored and are
    not in the denominator (their risk is not identified by any weight).

    >>> import pandas as pd
    >>> from village_credit.data import GeneratorConfig, generate_households
    >>> from village_credit.models.support import exploration_weights
    >>> hh = generate_households(GeneratorConfig(n_households=3000, seed=3, exploration_share=0.1))
    >>> w = exploration_weights(hh, "jinxiang_2022")
    >>> explored = hh["outcome_observed"] & ~hh["granted_hist"]
    >>> float(w[hh["granted_hist"].to_numpy()].max()), bool(w[explored.to_numpy()].min() > 5)
    (1.0, True)
    """
    missing = [c for c in ("outcome_observed", "granted_hist") if c not in households.columns]
    if missing:
        raise ValueError(f"exploration weights need the columns {missing} (which households were "
                         "granted by the old rules, which have an observed outcome)")
    observed = households["outcome_observed"].to_numpy(dtype=bool)
    granted = households["granted_hist"].to_numpy(dtype=bool)
    vetoed = score_rules(households, load_policy(policy), eval_date).decisions["vetoed"].to_numpy(dtype=bool)
    refused = ~granted & ~vetoed
    explored = observed & ~granted
    if not explored.any():
        return observed.astype(np.float64)  # no exploration: nothing to weight
    share = explored.sum() / max(int(refused.sum()), 1)
    return np.where(granted & observed, 1.0, np.where(explored, 1.0 / share, 0.0))
