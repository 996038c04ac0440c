"""Blend coefficients: the stored form of ``L = k0 + k_rule * rule_points + k_gbm * trees``.

Why a module of its own: :mod:`~village_credit.models.decision` stores the coefficients and
:mod:`~village_credit.models.blend` fits them and builds the DecisionModel; keeping the
value type here lets both import it from below, so neither imports the other back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from village_credit.errors import ConfigError

STRATEGIES = ("stacking", "boost_from_rules", "additive_points", "gbm_only")
"""Blend strategies (see :mod:`~village_credit.models.blend`)."""


@dataclass(frozen=True)
class BlendCoefficients:
    """``L = k0 + k_rule * rule_points + k_gbm * trees``, plus the fitted pieces behind it."""

    strategy: str
    k0: float
    k_rule: float
    k_gbm: float
    detail: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "detail", {k: float(v) for k, v in self.detail.items()})
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"blend strategy {self.strategy!r} is not one of {', '.join(STRATEGIES)}")

    def logit(self, rule_points: ArrayLike, trees: ArrayLike) -> NDArray[np.float64]:
        return self.k0 + self.k_rule * np.asarray(rule_points, dtype=np.float64) \
            + self.k_gbm * np.asarray(trees, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BlendCoefficients:
        try:
            return cls(strategy=str(d["strategy"]), k0=float(d["k0"]), k_rule=float(d["k_rule"]),
                                  k_gbm=float(d["k_gbm"]), detail={k: float(v) for k, v in d.get("detail", {}).items()})
        except KeyError as exc:
            raise ConfigError(f"blend coefficients lack key {exc.args[0]!r}") from exc
