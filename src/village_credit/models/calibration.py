"""Probability calibration on held-out data: Platt or isotonic, chosen by a proper score.

Why both, and why the blend prefers Platt: Platt scaling on log-odds is
``logit(p_cal) = a * z + b``, an affine map, so a model that is a sum of
contributions in log-odds stays a sum (each contribution is multiplied by ``a``,
``b`` is added to the base). Isotonic regression is a monotone step function: it
often scores slightly better, but it breaks exact additivity. ``method="auto"``
picks by cross-validated log-loss (or Brier) on the calibration set; the
summary reports both candidates so the choice is visible.

Calibrators serialise to plain JSON (``to_dict`` / ``from_dict``), never pickles.

ECE here is a local helper (quantile bins); ``models`` sits below ``validation`` in
the layer order and must not import it. It uses the same definition as
``validation.calibration.expected_calibration_error`` (weighted mean |observed - predicted|
over quantile bins).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import StratifiedKFold

from village_credit.errors import ConfigError

EPS = 1e-6
Method = Literal["auto", "platt", "isotonic"]
InputKind = Literal["auto", "logit", "proba"]


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, EPS, 1 - EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((np.asarray(p, float) - np.asarray(y, float)) ** 2))


def ece(y: Any, p: Any, n_bins: int = 10) -> float:
    """Expected calibration error over quantile bins of ``p`` (ties kept in one bin)."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    edges = np.unique(np.quantile(p, np.linspace(0.0, 1.0, n_bins + 1)))[1:-1]
    b = np.searchsorted(edges, p, side="right")
    n = np.bincount(b).astype(float)
    keep = n > 0
    gap = np.abs(np.bincount(b, weights=y)[keep] - np.bincount(b, weights=p)[keep])
    return float(gap.sum() / len(p))


def _fit_platt(z: np.ndarray, y: np.ndarray, max_iter: int = 100) -> tuple[float, float]:
    """Maximum-likelihood ``a, b`` of ``sigmoid(a*z + b)``: Newton with backtracking.

    Why the line search: scores spread over hundreds of units (rule points) make the
    plain Newton step overshoot and diverge; the log-likelihood is concave, so halving
    the step until it improves converges from the safe start (a = 0, b = base rate).
    """
    ybar = float(np.clip(np.mean(y), 1e-6, 1 - 1e-6))
    a, b = 0.0, float(np.log(ybar / (1 - ybar)))
    X = np.column_stack([z, np.ones_like(z)])

    def nll(a_: float, b_: float) -> float:
        eta = a_ * z + b_
        return float(np.sum(np.logaddexp(0.0, eta) - y * eta))

    cur = nll(a, b)
    for _ in range(max_iter):
        p = _sigmoid(a * z + b)
        g = X.T @ (p - y)
        w = np.maximum(p * (1 - p), 1e-12)
        H = (X * w[:, None]).T @ X + 1e-9 * np.eye(2)
        step = np.linalg.solve(H, g)
        t = 1.0
        while t > 1e-10:
            new = nll(a - t * step[0], b - t * step[1])
            if new <= cur:
                break
            t /= 2
        a, b, cur = a - t * step[0], b - t * step[1], new
        if np.max(np.abs(t * step)) < 1e-10:
            break
    return float(a), float(b)


@dataclass
class Calibrator:
    """A fitted calibrator. ``transform`` takes the same kind of input it was fit on.

    ``kind`` is ``"logit"`` (raw log-odds scores) or ``"proba"`` (probabilities).
    Platt: ``p = sigmoid(a * logit + b)`` (additive in log-odds). Isotonic:
    piecewise-linear interpolation through ``(x_thresholds, y_thresholds)`` on the
    logit scale, clipped at the ends (monotone, not additive).

    Examples
    --------
    >>> import numpy as np
    >>> from village_credit.models import Calibrator
    >>> platt = Calibrator(method="platt", kind="logit", a=1.0, b=0.5)  # shift every log-odds by 0.5
    >>> platt.transform(np.array([0.0, -2.0])).round(3)
    array([0.622, 0.182])
    >>> Calibrator.from_dict(platt.to_dict()) == platt
    True
    """

    method: Literal["platt", "isotonic"]
    kind: Literal["logit", "proba"]
    a: float = 1.0
    b: float = 0.0
    x_thresholds: list[float] = field(default_factory=list)
    y_thresholds: list[float] = field(default_factory=list)
    cv_scores: dict[str, dict[str, float]] = field(default_factory=dict)
    """Cross-validated proper scores of each candidate: ``{method: {"log_loss": .., "brier": ..}}``."""

    @property
    def is_additive(self) -> bool:
        """True when calibrated log-odds are an affine map of the input log-odds (Platt)."""
        return self.method == "platt"

    def _z(self, x: Any) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64).ravel()
        return _logit(x) if self.kind == "proba" else x

    def transform_logit(self, x: Any) -> np.ndarray:
        """Calibrated log-odds of default."""
        z = self._z(x)
        if self.method == "platt":
            return self.a * z + self.b
        p = np.interp(z, self.x_thresholds, self.y_thresholds)
        return _logit(p)

    def transform(self, x: Any) -> np.ndarray:
        """Calibrated probability of default."""
        z = self._z(x)
        if self.method == "platt":
            return _sigmoid(self.a * z + self.b)
        return np.clip(np.interp(z, self.x_thresholds, self.y_thresholds), EPS, 1 - EPS)

    predict_proba_1d = transform

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"method": self.method, "kind": self.kind, "cv_scores": self.cv_scores}
        if self.method == "platt":
            d |= {"a": self.a, "b": self.b}
        else:
            d |= {"x_thresholds": list(map(float, self.x_thresholds)),
                  "y_thresholds": list(map(float, self.y_thresholds))}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibrator:
        method = d.get("method")
        if method not in ("platt", "isotonic"):
            raise ConfigError(f"calibrator: 'method' must be 'platt' or 'isotonic', got {method!r}")
        if d.get("kind") not in ("logit", "proba"):
            raise ConfigError(f"calibrator: 'kind' must be 'logit' or 'proba', got {d.get('kind')!r}")
        if method == "platt":
            return cls("platt", d["kind"], a=float(d["a"]), b=float(d["b"]), cv_scores=d.get("cv_scores", {}))
        xs, ys = list(map(float, d["x_thresholds"])), list(map(float, d["y_thresholds"]))
        if len(xs) != len(ys) or not xs:
            raise ConfigError("calibrator: isotonic thresholds must be non-empty and of equal length")
        return cls("isotonic", d["kind"], x_thresholds=xs, y_thresholds=ys, cv_scores=d.get("cv_scores", {}))


def _fit_one(method: str, z: np.ndarray, y: np.ndarray, kind: str) -> Calibrator:
    if method == "platt":
        a, b = _fit_platt(z, y)
        return Calibrator("platt", kind, a=a, b=b)  # type: ignore[arg-type]
    iso = IsotonicRegression(y_min=EPS, y_max=1 - EPS, increasing=True, out_of_bounds="clip").fit(z, y)
    return Calibrator("isotonic", kind, x_thresholds=iso.X_thresholds_.tolist(),  # type: ignore[arg-type]
                      y_thresholds=iso.y_thresholds_.tolist())


def _detect_kind(x: np.ndarray, kind: InputKind) -> Literal["logit", "proba"]:
    if kind != "auto":
        return kind
    return "proba" if (np.nanmin(x) >= 0.0 and np.nanmax(x) <= 1.0) else "logit"


def fit_calibrator(
    scores: Any,
    y: Any,
    method: Method = "auto",
    seed: int = 0,
    *,
    input: InputKind = "auto",
    criterion: Literal["log_loss", "brier"] = "log_loss",
    cv: int = 5,
) -> Calibrator:
    """Fit a calibrator on a held-out calibration set.

    ``scores``: raw log-odds (``input="logit"``) or probabilities (``"proba"``);
    ``"auto"`` treats values all inside [0, 1] as probabilities. With
    ``method="auto"``, Platt and isotonic are compared by ``criterion`` over a
    stratified ``cv``-fold split of the calibration set (seeded) and the better is
    refit on all of it; both candidates' scores are kept in ``cv_scores``.

    Examples
    --------
    >>> import numpy as np
    >>> from village_credit.models import fit_calibrator
    >>> rng = np.random.default_rng(0)
    >>> logit = rng.normal(-2, 1, 400)  # raw scores twice as confident as the truth
    >>> y = (rng.random(400) < 1 / (1 + np.exp(-0.5 * logit))).astype(int)
    >>> cal = fit_calibrator(logit, y, method="platt", input="logit")
    >>> cal.method, round(cal.a, 2), round(cal.b, 2)
    ('platt', 0.59, 0.04)
    """
    x = np.asarray(scores, dtype=np.float64).ravel()
    yy = np.asarray(y, dtype=np.float64).ravel()
    if len(x) != len(yy):
        raise ConfigError(f"fit_calibrator: {len(x)} scores for {len(yy)} labels")
    if not np.all(np.isfinite(x)):
        raise ConfigError("fit_calibrator: scores contain NaN or infinite values")
    if set(np.unique(yy)) - {0.0, 1.0} or len(np.unique(yy)) < 2:
        raise ConfigError("fit_calibrator: y must be 0/1 with both classes present")
    if method not in ("auto", "platt", "isotonic"):
        raise ConfigError(f"fit_calibrator: method must be auto, platt or isotonic, got {method!r}")
    kind = _detect_kind(x, input)
    z = _logit(x) if kind == "proba" else x

    scores_cv: dict[str, dict[str, float]] = {}
    candidates = ["platt", "isotonic"] if method == "auto" else [method]
    n_pos = int(yy.sum())
    folds = min(cv, n_pos, len(yy) - n_pos)
    if folds >= 2:
        skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        for m in candidates:
            oof = np.empty_like(yy)
            for tr, va in skf.split(z, yy):
                oof[va] = _fit_one(m, z[tr], yy[tr], "logit").transform(z[va])
            scores_cv[m] = {"log_loss": log_loss(yy, oof), "brier": brier(yy, oof)}
    if method == "auto":
        if not scores_cv:
            raise ConfigError("fit_calibrator: too few defaults to compare methods by cross-validation")
        method = min(candidates, key=lambda m: (scores_cv[m][criterion], m != "platt"))  # ties -> Platt
    cal = _fit_one(method, z, yy, kind)
    cal.cv_scores = scores_cv
    return cal


def calibration_summary(y: Any, p_before: Any, p_after: Any, n_bins: int = 10) -> dict[str, float]:
    """Brier and ECE (quantile bins) before and after calibration."""
    yy = np.asarray(y, dtype=float)
    return {
        "brier_before": brier(yy, p_before),
        "brier_after": brier(yy, p_after),
        "ece_before": ece(yy, p_before, n_bins),
        "ece_after": ece(yy, p_after, n_bins),
    }
