"""Fixtures shared by the test modules (pytest finds them here; nothing imports this file).

* ``tiny_households``: a factory of small synthetic household tables whose default
  depends monotonically on history, income and debt (fast; for the models tests);
* ``generated_households``: a factory of the project generator's households;
* ``rule_households``: a factory of hand-built household frames for the rules tests,
  every column a shipped policy reads set to a clean base household (aged 40, no
  honours, no events) unless overridden; ``rule_columns``: their snapshot date and the
  deduction, veto and honour columns (from the schema).

Factories are session-scoped so hypothesis tests and module-scoped fixtures can use them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest

from village_credit.data.generator import GeneratorConfig, generate_households
from village_credit.data.schema import (
    DEDUCTION_ITEMS,
    EDUCATION,
    INCOME_SOURCES,
    SCHEMA,
    VETO_FAMILIES,
    history_columns,
)


def _tiny_households(n: int = 2000, seed: int = 0, months: int = 36, n_villages: int = 40) -> pd.DataFrame:
    """Synthetic households whose default depends on history, income and debt (monotonically)."""
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=n)
    has_loan = rng.random(n) < 0.7
    due = np.where(has_loan[:, None] & (rng.random((n, months)) < 0.8), rng.uniform(500, 3000, (n, months)), 0.0)
    p_late = 1 / (1 + np.exp(-(risk[:, None] * 1.5 - 3.0)))
    late = (rng.random((n, months)) < p_late) & (due > 0)
    dpd = np.where(late, rng.choice([15, 30, 60, 90], size=(n, months)), 0)
    paid = np.where(late, due * rng.uniform(0, 0.9, (n, months)), due)
    util = (rng.random((n, months)) < 1 / (1 + np.exp(-(risk[:, None] - 2.0)))).astype(int)
    income = {s: rng.gamma(2.0, 8000 * np.exp(-0.3 * risk)) * (rng.random(n) < 0.6) for s in INCOME_SOURCES}
    df = pd.DataFrame({
        "household_id": [f"H{i:06d}" for i in range(n)],
        "township_code": [f"T{i % 5:02d}" for i in range(n)],
        "village_code": [f"V{v:03d}" for v in rng.integers(0, n_villages, n)],
        "vintage": np.ones(n, dtype=int),
        "head_age": rng.integers(22, 80, n),
        "education": rng.choice(EDUCATION, n),
        "household_size": rng.integers(1, 7, n),
        "smartphone": rng.random(n) < 0.6,
        "formerly_poor": rng.random(n) < 0.15,
        "social_insurance": rng.random(n) < 0.8,
        "new_agri_operator": rng.random(n) < 0.1,
        "individual_business": rng.random(n) < 0.1,
        "land_mu": rng.gamma(2.0, 3.0, n),
        "assets_yuan": rng.gamma(2.0, 50000, n),
        **{f"income_{s}": v for s, v in income.items()},
        "income_volatility": rng.gamma(2.0, 0.1, n),
        "credit_limit_yuan": np.where(has_loan, 50000.0, 0.0),
        "balance_yuan": np.where(has_loan, rng.uniform(0, 50000, n), 0.0),
        "private_debt_yuan": rng.gamma(1.0, 5000 * np.exp(0.5 * risk)),
    })
    df["dependents"] = np.minimum(rng.integers(0, 4, n), df["household_size"].to_numpy())
    hist = {}
    for kind, arr in (("due", due), ("paid", paid), ("dpd", dpd), ("utility_late", util)):
        for j, c in enumerate(history_columns(kind, months)):
            hist[c] = arr[:, j]
    df = pd.concat([df, pd.DataFrame(hist)], axis=1)
    logit = -3.0 + 1.2 * risk + 0.02 * (dpd > 0).sum(axis=1)
    df["true_pd"] = 1 / (1 + np.exp(-logit))
    df["default_12m"] = (rng.random(n) < df["true_pd"].to_numpy()).astype(int)
    df["granted_hist"] = True
    df["outcome_observed"] = True
    return df


def _generated_households(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    """The project generator's households (``n`` rows, ``seed``)."""
    return generate_households(GeneratorConfig(n_households=n, seed=seed))


@pytest.fixture(scope="session")
def tiny_households() -> Callable[..., pd.DataFrame]:
    """``tiny_households(n=2000, seed=0, months=36, n_villages=40)`` -> a small synthetic table."""
    return _tiny_households


@pytest.fixture(scope="session")
def generated_households() -> Callable[..., pd.DataFrame]:
    """``generated_households(n=2000, seed=0)`` -> the generator's households."""
    return _generated_households


# ----------------------------------------------------------------------------- rules
@dataclass(frozen=True)
class RuleColumns:
    """The rules tests' snapshot date and the rule columns of the household schema."""

    snapshot: pd.Timestamp
    deductions: list[str]
    vetoes: list[str]
    honour_levels: dict[str, tuple[str, ...]]
    honour_flags: list[str]


RULE_COLUMNS = RuleColumns(
    snapshot=pd.Timestamp("2024-06-30"),
    deductions=[f"ded_{k}_date" for k, _, _ in DEDUCTION_ITEMS],
    vetoes=[f"veto_{k}_date" for k, _, _ in VETO_FAMILIES],
    honour_levels={c.name: tuple(c.categories) for c in SCHEMA.columns
                   if c.name.startswith("hon_") and c.categories},
    honour_flags=["party_member", "hon_veteran_brave", "hon_virtue", "hon_frugal_ceremony"],
)
SNAPSHOT = RULE_COLUMNS.snapshot
DED_COLS = RULE_COLUMNS.deductions
VETO_COLS = RULE_COLUMNS.vetoes
HONOUR_LEVEL_COLS = RULE_COLUMNS.honour_levels
HONOUR_FLAG_COLS = RULE_COLUMNS.honour_flags


def _rule_households(n: int = 1, **cols: Any) -> pd.DataFrame:
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


@pytest.fixture(scope="session")
def rule_households() -> Callable[..., pd.DataFrame]:
    """``rule_households(n=1, **columns)`` -> a valid minimal household table for the rules."""
    return _rule_households


@pytest.fixture(scope="session")
def rule_columns() -> RuleColumns:
    return RULE_COLUMNS
