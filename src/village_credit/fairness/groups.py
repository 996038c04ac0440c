"""Sensitive groups of households: age bands, the policy's own age cutoff, formerly-poor status.

Why a separate frame: every fairness metric is computed over the same groups, and the
groups must never silently lose households. A missing age or formerly-poor flag is an
input error (the household would vanish from the audit exactly where files are thinnest,
see domain notes section 5), so it raises :class:`FairnessInputError` instead of dropping.

The group definitions themselves (elderly age, age bands, formerly-poor labels, the
support groups) live in :mod:`village_credit.data.groups`.

Columns of :func:`sensitive_frame` (all plain strings, index aligned to the input):

* ``age_band``: ``18-40``, ``41-59``, ``60-64``, ``65-69``, ``70+`` (from ``head_age``;
  the one set of bands, :data:`village_credit.data.groups.AGE_BANDS`);
* ``elderly``: ``60+`` or ``<60`` (the equal-risk comparison);
* ``policy_age``: ``<=A`` or ``>A`` for the policy's ``age_max`` A (Jinxiang 60, XX county 65):
  the households the rule standard itself cuts off;
* ``formerly_poor``: ``formerly_poor`` or ``other``;
* ``age_band_x_formerly_poor``: the intersection, e.g. ``65-69|formerly_poor``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from village_credit.data.groups import (
    ELDERLY_AGE,
    FORMERLY_POOR,
    OTHER,
    age_band,
    bool_column,
    require_column,
)
from village_credit.errors import FairnessInputError

FEATURES: tuple[str, ...] = (
    "age_band", "elderly", "policy_age", "formerly_poor", "age_band_x_formerly_poor",
)
"""Sensitive features produced by :func:`sensitive_frame`, in report order."""



def sensitive_frame(households: pd.DataFrame, policy_age_max: int = ELDERLY_AGE) -> pd.DataFrame:
    """Sensitive-group labels for each household (see module docstring for the columns).

    ``policy_age_max`` is the policy's eligibility ceiling (inclusive, as in "age 18-60").
    Raises :class:`FairnessInputError` naming the column and count of missing values.

    Examples
    --------
    >>> import pandas as pd
    >>> from village_credit.fairness import sensitive_frame
    >>> households = pd.DataFrame({"head_age": [45, 61, 70], "formerly_poor": [True, False, True]})
    >>> sensitive_frame(households, policy_age_max=60)
      age_band elderly policy_age  formerly_poor age_band_x_formerly_poor
    0    41-59     <60       <=60  formerly_poor      41-59|formerly_poor
    1    60-64     60+        >60          other              60-64|other
    2      70+     60+        >60  formerly_poor        70+|formerly_poor
    """
    age = require_column(households, "head_age").to_numpy(dtype=float)
    poor = bool_column(require_column(households, "formerly_poor"), "formerly_poor")
    band = age_band(age)
    poor_lbl = np.where(poor, FORMERLY_POOR, OTHER).astype(object)
    return pd.DataFrame(
        {
            "age_band": band,
            "elderly": np.where(age >= ELDERLY_AGE, f"{ELDERLY_AGE}+", f"<{ELDERLY_AGE}").astype(object),
            "policy_age": np.where(age <= policy_age_max, f"<={policy_age_max}", f">{policy_age_max}").astype(object),
            "formerly_poor": poor_lbl,
            "age_band_x_formerly_poor": (pd.Series(band, dtype=object) + "|" + pd.Series(poor_lbl, dtype=object)).to_numpy(),
        },
        index=households.index,
    )


def check_sensitive(sensitive: pd.DataFrame, n: int | None = None) -> pd.DataFrame:
    """Validate a sensitive frame passed in by a caller: no missing labels, right length."""
    if not isinstance(sensitive, pd.DataFrame):
        raise FairnessInputError("sensitive features must be a DataFrame (one column per feature)")
    if n is not None and len(sensitive) != n:
        raise FairnessInputError(f"sensitive frame has {len(sensitive)} rows, decisions have {n}")
    for c in sensitive.columns:
        k = int(sensitive[c].isna().sum())
        if k:
            raise FairnessInputError(f"sensitive column {c!r} has {k} missing value(s) of {len(sensitive)}")
    return sensitive.astype(str)
