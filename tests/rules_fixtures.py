"""Hand-built household frames for the rules tests: every column any shipped policy
reads, set to a clean base household (aged 40, no honours, no events) unless overridden."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from village_credit.data.schema import DEDUCTION_ITEMS, INCOME_SOURCES, VETO_FAMILIES

SNAPSHOT = pd.Timestamp("2024-06-30")
DED_COLS = [f"ded_{k}_date" for k, _, _ in DEDUCTION_ITEMS]
VETO_COLS = [f"veto_{k}_date" for k, _, _ in VETO_FAMILIES]
HONOUR_LEVEL_COLS = {
    "hon_moral_model": ("none", "county", "city", "province", "national"),
    "hon_family": ("none", "village", "town", "county"),
    "hon_courtyard": ("none", "village", "town", "county", "city"),
    "hon_talent": ("none", "county", "city", "province", "national"),
    "hon_party": ("none", "county", "city", "province", "national"),
}
HONOUR_FLAG_COLS = ["party_member", "hon_veteran_brave", "hon_virtue", "hon_frugal_ceremony"]


def households(n: int = 1, **cols: Any) -> pd.DataFrame:
    """A valid minimal household table with ``n`` rows; keyword args override columns
    (scalars broadcast; dates may be strings)."""
    base: dict[str, Any] = {
        "household_id": [f"H{i:05d}" for i in range(n)],
        "township_code": "T01",
        "village_code": "V001",
        "snapshot_date": SNAPSHOT,
        "head_age": 40,
        "full_civil_capacity": True,
        "fixed_residence": True,
        "fixed_income": True,
        "major_bad_credit": False,
        "new_agri_operator": False,
        "individual_business": False,
        "private_debt_yuan": 0.0,
        **{f"income_{s}": (30000.0 if s == "farming" else 0.0) for s in INCOME_SOURCES},
        **{c: "none" for c in HONOUR_LEVEL_COLS},
        **{c: False for c in HONOUR_FLAG_COLS},
        **{c: pd.NaT for c in DED_COLS + VETO_COLS},
    }
    base.update(cols)
    df = pd.DataFrame({k: (v if np.ndim(v) else [v] * n) for k, v in base.items()})
    for c in DED_COLS + VETO_COLS + ["snapshot_date"]:
        df[c] = pd.to_datetime(df[c]).astype("datetime64[ns]")
    for c in ["full_civil_capacity", "fixed_residence", "fixed_income", "major_bad_credit",
              "new_agri_operator", "individual_business", *HONOUR_FLAG_COLS]:
        df[c] = df[c].astype(bool)
    df["head_age"] = df["head_age"].astype("int64")
    return df
