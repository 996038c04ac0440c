"""The observed-outcome evidence computes calibration within groups in its approval frame:
the numbers must be ``group_calibration``'s own, to the bit, and the frames one per attribute.

Why: ``train``'s fairness stage used two fairlearn ``MetricFrame``s per protected attribute
(approval/TPR/FPR, then calibration); they are one now. These tests fail if the merged
frame's calibration figures drift from ``group_calibration`` by any amount, or if a second
frame per attribute comes back.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from village_credit.fairness import DecisionSystem, group_calibration
from village_credit.fairness.groups import FairnessInputError
from village_credit.fairness.observed import NO_CUT_OFF, observed_outcome_evidence

FIELDS = {"mean_pd": "mean_pd", "observed_ci_low": "observed_ci_low", "observed_ci_high": "observed_ci_high",
          "pred_observed_ratio": "pred_observed_ratio", "citl_p": "citl_p"}


def _sample(seed: int, n: int) -> tuple[DecisionSystem, pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.01, 0.6, n)
    y = (rng.random(n) < p).astype(int)
    groups = pd.DataFrame({"age": rng.choice(["18-30", "31-45", "46-60", "61-75"], n),
                           "sex": rng.choice(["f", "m"], n, p=[0.3, 0.7])})
    line = np.where(p < 0.3, rng.uniform(1e3, 5e4, n), 0.0)
    return DecisionSystem("model", approved=p < 0.3, pd=p, credit_line=line), groups, y


def _same(a: object, b: object) -> bool:
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    return a == b


@pytest.mark.parametrize("seed,n,decided", [(0, 200, True), (1, 200, False), (2, 57, True), (3, 1000, True)])
def test_calibration_in_the_approval_frame_is_group_calibrations(seed: int, n: int, decided: bool) -> None:
    system, groups, y = _sample(seed, n)
    ev = observed_outcome_evidence(system, groups, y, min_outcomes=10,
                                   no_decision=None if decided else NO_CUT_OFF)
    ref = group_calibration(groups, system.pd, y)
    for feat in groups.columns:
        rows = {r["group"]: r for r in ev["by_feature"][feat]["groups"]}
        want = ref[ref.feature == feat].set_index("group")
        assert sorted(rows) == sorted(str(g) for g in want.index)
        for g, r in rows.items():
            for key, col in FIELDS.items():
                assert _same(r[key], float(want.loc[g, col])), (feat, g, key, r[key], want.loc[g, col])
            assert r["defaults"] == float(want.loc[g, "defaults"])
            assert r["n"] == int(want.loc[g, "n"])
        kept = [r for r in rows.values() if r["n"] >= 10]
        assert ev["by_feature"][feat]["min_calibration_p"] == min(r["citl_p"] for r in kept)


def test_one_frame_per_attribute(monkeypatch: pytest.MonkeyPatch) -> None:
    """One per-group table (MetricFrame's figures, :func:`group_metrics`) per attribute."""
    from village_credit.fairness import observed

    made: list[int] = []
    real = observed.group_metrics

    def counting(*args: object, **kwargs: object) -> object:
        made.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(observed, "group_metrics", counting)
    system, groups, y = _sample(4, 300)
    observed_outcome_evidence(system, groups, y)
    assert len(made) == groups.shape[1]


def test_a_missing_pd_is_still_refused() -> None:
    system, groups, y = _sample(5, 100)
    system.pd[3] = np.nan
    with pytest.raises(FairnessInputError, match="missing"):
        observed_outcome_evidence(system, groups, y)
