"""How scores are cut into bins: one rule shared by the statistics and the plots.

Why its own module: the reliability table (``validation.calibration``) and the
reliability plot (``reporting.displays``) must put every household in the same bin,
or a chart compares one set of bins with another (the bug this module fixes: rule
PDs fell into 6 bins while the true PD was averaged over 10 rank deciles). Kept
at the bottom of the layers (numpy only) so both can import it.
"""

from __future__ import annotations

import numpy as np

from village_credit.errors import ConfigError

__all__ = ["bin_index"]


def bin_index(p: np.ndarray, n_bins: int, strategy: str = "quantile") -> np.ndarray:
    """Bin number (0-based) per value; quantile edges are de-duplicated so ties stay together.

    With many tied values (a points standard has a handful of distinct PDs) fewer than
    ``n_bins`` bins come out; callers must use these bins for every column they average.
    """
    if n_bins < 1:
        raise ConfigError(f"n_bins must be >= 1, got {n_bins}")
    p = np.asarray(p, dtype=float)
    if strategy == "quantile":
        edges = np.unique(np.quantile(p, np.linspace(0.0, 1.0, n_bins + 1)))
    elif strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    else:
        raise ConfigError(f"strategy must be 'quantile' or 'uniform', got {strategy!r}")
    return np.searchsorted(edges[1:-1], p, side="right")
