"""Points scaling: the one linear map between log-odds of default and points.

Why a class of its own: rules, the model and explanations meet in additive log-odds
(see ``design.md``), and the *policy* turns points into lines and rates. Scorecard
scaling ``points = offset - factor * ln(odds of default)`` with ``factor = PDO / ln 2``
is affine in the logit, so it preserves additivity: a contribution of ``c`` log-odds
is exactly ``-factor * c`` points, and the base value picks up the offset.

Default (``ModelConfig.pdo/base_points/base_odds``): **60 points at good:bad odds 49:1
(PD 2 %), 20 points to double the odds**. Why those numbers: on the Jinxiang policy
scale 10 points = 10,000 yuan, a typical household holds the 30-point base item plus a
bonus or two (40-70 points, i.e. 40,000-70,000 yuan), and programmes target a
non-performing ratio below 2 %. Anchoring PD 2 % at 60 points therefore puts a
typical good household's blended line where the rule standard would put it, while a
household at PD 8 % lands near 17 points (17,000 yuan) and PD >= 20 % at or below 0
(no line). Change the anchor in the experiment config, never in code.

Points and PD always agree: ``pd(points(logit)) == sigmoid(logit)`` (tested); the
scaling is saved with the model so the pair cannot drift apart.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from village_credit.errors import ConfigError

LN2 = math.log(2.0)


def sigmoid(logit: ArrayLike) -> NDArray[np.float64]:
    """Numerically stable logistic function (no overflow warnings at +-800)."""
    z = np.asarray(logit, dtype=np.float64)
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def logit(p: ArrayLike) -> NDArray[np.float64]:
    """Log-odds of a probability (``+-inf`` at 1 and 0)."""
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.log(p) - np.log1p(-p)


@dataclass(frozen=True)
class PointsScaling:
    """``points = offset - factor * logit(PD)``; higher points = lower risk.

    Examples
    --------
    >>> import numpy as np
    >>> from village_credit.models import PointsScaling
    >>> scaling = PointsScaling.from_pdo(20, 60, 49)  # 20 points double the odds; 60 points at odds 49:1
    >>> scaling.pdo
    20.0
    >>> scaling.points_from_pd(np.array([0.02, 0.04])).round(1)  # PD 2 % (odds 49:1) -> 60 points
    array([60. , 39.4])
    """

    offset: float
    factor: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.offset) and math.isfinite(self.factor) and self.factor > 0):
            raise ConfigError(
                f"points scaling needs a finite offset and a positive factor, got "
                f"offset={self.offset!r}, factor={self.factor!r}"
            )

    @classmethod
    def from_pdo(cls, pdo: float = 20.0, base_points: float = 60.0, base_odds: float = 49.0) -> "PointsScaling":
        """Scaling with ``base_points`` at good:bad odds ``base_odds`` and ``pdo`` points per doubling.

        ``base_odds`` is good:bad (49 means PD 1/50 = 2 %), the convention of scorecards.
        """
        if not (pdo > 0 and base_odds > 0 and math.isfinite(base_points)):
            raise ConfigError(
                f"points scaling: pdo and base_odds must be positive and base_points finite, got "
                f"pdo={pdo!r}, base_points={base_points!r}, base_odds={base_odds!r}"
            )
        factor = pdo / LN2
        # ln(odds of default) = -ln(base_odds) at base_points.
        offset = base_points - factor * math.log(base_odds)
        return cls(offset=float(offset), factor=float(factor))

    @classmethod
    def from_base_rate(cls, base_rate: float, pdo: float = 20.0, base_points: float = 60.0) -> "PointsScaling":
        """Scaling anchored on a table's own base rate: ``base_points`` at the training default rate.

        The Jinxiang anchor (60 points at PD 2 %) is a household-policy convention: on a
        table with a 30 % bad rate it gives most applicants negative points. For a table
        of one's own, the average applicant gets ``base_points`` and every ``pdo`` points
        halve (or double) the odds from there; negative points then mean odds of default
        more than ``2 ** (base_points / pdo)`` times the average (8x with the defaults).
        """
        if not (0.0 < base_rate < 1.0):
            raise ConfigError(f"points scaling: the base rate must be in (0, 1), got {base_rate!r}")
        return cls.from_pdo(pdo, base_points, (1.0 - base_rate) / base_rate)

    @property
    def pdo(self) -> float:
        return self.factor * LN2

    def points(self, logit_pd: ArrayLike) -> NDArray[np.float64]:
        """Points from log-odds of default."""
        return self.offset - self.factor * np.asarray(logit_pd, dtype=np.float64)

    def logit(self, points: ArrayLike) -> NDArray[np.float64]:
        """Log-odds of default from points (exact inverse of :meth:`points`)."""
        return (self.offset - np.asarray(points, dtype=np.float64)) / self.factor

    def pd(self, points: ArrayLike) -> NDArray[np.float64]:
        """Probability of default from points."""
        return sigmoid(self.logit(points))

    def points_from_pd(self, pd: ArrayLike) -> NDArray[np.float64]:
        """Points of a probability of default (``+-inf`` at PD 0 and 1).

        >>> round(float(PointsScaling.from_pdo(20, 60, 49).points_from_pd(0.02)), 6)
        60.0
        """
        return self.points(logit(pd))

    def contribution_points(self, logit_contrib: ArrayLike) -> NDArray[np.float64]:
        """A log-odds *contribution* in points (no offset: contributions carry only the slope)."""
        return -self.factor * np.asarray(logit_contrib, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["pdo"] = self.pdo
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PointsScaling":
        try:
            return cls(offset=float(d["offset"]), factor=float(d["factor"]))
        except KeyError as exc:
            raise ConfigError(f"points scaling dict lacks key {exc.args[0]!r}: {d!r}") from exc
