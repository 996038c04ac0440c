"""Household table -> model feature frame, and the one feature spec everything reads.

Why one spec: reason codes, plots, reports and the monotone constraints of the GBM
all need the same label (zh / en), unit and risk direction for a feature. Keeping
them in :data:`FEATURE_SPECS` means a label or a direction is changed in one place.

``monotone`` is the direction *with respect to default risk*: ``+1`` means a larger
value never lowers the risk (e.g. more past-due months), ``-1`` means a larger value
never raises it (e.g. more on-time repayments), ``0`` means no constraint (credit
logic does not demand one, or the attribute is protected and its effect is studied).

Features never read ground-truth columns (``schema.TRUTH_COLUMNS``): the builders
only read the named profile and history columns, and a test checks it.

Rule-engine outputs (rule points, per-item points) are *optional* features passed by
the caller (``transform(households, extra=rule_items)``), so features stay
independent of any policy. "Bring your own data": :class:`GenericFeatures` with
:func:`specs_from_frame` / :func:`load_feature_specs` trains on any tabular file.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import yaml
from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from village_credit.data.groups import ELDERLY_AGE
from village_credit.data.schema import (
    DEDUCTION_ITEMS,
    EDUCATION,
    INCOME_SOURCES,
    TRUTH_COLUMNS,
    history_columns,
    months_in,
)
from village_credit.errors import ConfigError, SchemaError
from village_credit.file_formats import FileFormat, validate_document
from village_credit.yaml_io import safe_load

Group = Literal["behaviour", "capacity", "profile", "protected", "rules"]

THIN_FILE_MONTHS = 6
"""A household with fewer months with a loan instalment than this is a thin file."""

INCOME_FLOOR_YUAN = 1000.0
"""Denominator floor for debt-to-income, so zero-income households get a finite, large ratio."""

UTILISATION_CAP = 5.0
"""Balance / limit is clipped here; balances far above the limit carry no extra signal."""


def category_key(value: Any) -> str:
    """The text a category is matched by: ``1``, ``1.0``, ``"1"`` and ``" 1 "`` are one category.

    Why: a CSV reader (or a cleaning step) may turn a numeric-coded category into a float,
    and ``"1.0"`` must still match the spec's ``"1"`` rather than becoming missing.
    """
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    text = str(value).strip()
    try:
        f = float(text)
    except ValueError:
        return text
    if not np.isfinite(f):
        return text
    return str(int(f)) if f.is_integer() and abs(f) < 2**53 else repr(f)


def category_keys(col: pd.Series) -> pd.Series:
    """:func:`category_key` of every non-missing cell (missing stays missing).

    Each distinct value is keyed once (``pd.factorize``), so a column costs its distinct values.
    """
    codes, uniq = pd.factorize(col, use_na_sentinel=True)
    keys = np.empty(len(uniq) + 1, dtype=object)
    keys[:-1] = [category_key(v) for v in np.asarray(uniq, dtype=object)]
    keys[-1] = pd.NA  # code -1: a missing cell
    return pd.Series(keys[codes], index=col.index, dtype="object")


def category_codes(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, keys)``: per row the position of its :func:`category_key` in ``keys`` (-1: missing).

    Each distinct cell is keyed once; cells with one key (``1``, ``"1"``) share a code.

    >>> codes, keys = category_codes(pd.Series([1, "1", None, "b", 1.0]))
    >>> codes.tolist(), keys.tolist()
    ([0, 0, -1, 1, 0], ['1', 'b'])
    """
    codes, uniq = pd.factorize(col, use_na_sentinel=True)
    key_of = [category_key(v) for v in np.asarray(uniq, dtype=object)]
    kcodes, keys = pd.factorize(np.asarray(key_of, dtype=object))
    return (np.where(codes < 0, -1, kcodes[np.maximum(codes, 0)]) if len(kcodes) else codes), \
        np.asarray(keys, dtype=object)


def category_positions(col: pd.Series, categories: Sequence[str]) -> np.ndarray:
    """Per row the position of its category in ``categories`` (``-1``: missing or not listed).

    >>> category_positions(pd.Series(["b", 2, None, "zz"]), ["a", "b", "2"]).tolist()
    [1, 2, -1, -1]
    """
    codes, keys = category_codes(col)
    pos = pd.Index(list(categories), dtype=object).get_indexer(keys) if len(keys) else np.empty(0, np.int64)
    return np.where(codes < 0, -1, pos[np.maximum(codes, 0)] if len(pos) else -1)


@dataclass(frozen=True)
class FeatureSpec:
    """A model feature: labels for people, unit, and the risk direction credit logic demands."""

    name: str
    label_en: str
    label_zh: str
    unit: str = ""
    monotone: int = 0
    group: Group = "behaviour"
    description: str = ""
    categories: tuple[str, ...] = field(default=())
    """Ordered categories for a categorical column (bring-your-own data); empty for numeric."""
    kind: str = ""
    """``"numeric"`` or ``"categorical"`` once fitted (saved with the model, so a reload never
    re-guesses a column's kind from the scoring file); ``""`` = decide from the data."""

    def __post_init__(self) -> None:
        if self.kind not in ("", "numeric", "categorical"):
            raise ConfigError(f"feature {self.name!r}: kind must be 'numeric' or 'categorical', got {self.kind!r}")
        object.__setattr__(self, "categories", tuple(category_key(c) for c in self.categories))
        if self.monotone not in (-1, 0, 1):
            raise ConfigError(f"feature {self.name!r}: monotone must be -1, 0 or +1, got {self.monotone!r}")
        if self.group not in ("behaviour", "capacity", "profile", "protected", "rules"):
            raise ConfigError(f"feature {self.name!r}: unknown group {self.group!r}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["categories"] = list(self.categories)
        return d


def _s(name: str, en: str, zh: str, unit: str, mono: int, group: Group, desc: str) -> FeatureSpec:
    return FeatureSpec(name, en, zh, unit, mono, group, desc)


_INCOME_ZH = {"farming": "种植", "livestock": "养殖", "migrant": "务工", "business": "经营",
              "pension_subsidy": "养老金及补贴"}

FEATURE_SPECS: tuple[FeatureSpec, ...] = (
    # --- behaviour: repayment history -------------------------------------------------
    _s("ontime_count", "On-time repayments", "按时还款次数", "months", -1, "behaviour",
       "Months with an instalment due that was paid in full with no days past due."),
    _s("ontime_ratio", "On-time repayment ratio", "按时还款比例", "ratio", -1, "behaviour",
       "On-time months / months with an instalment due; missing when no loan months."),
    _s("dpd_months", "Months past due", "逾期月数", "months", 1, "behaviour",
       "Months of history with any days past due."),
    _s("dpd_months_12m", "Months past due, last 12 months", "近12个月逾期月数", "months", 1, "behaviour",
       "Months with any days past due among the last 12."),
    _s("worst_dpd", "Worst days past due", "最长逾期天数", "days", 1, "behaviour",
       "Largest days past due over the whole history."),
    _s("worst_dpd_6m", "Worst days past due, last 6 months", "近6个月最长逾期天数", "days", 1, "behaviour",
       "Largest days past due in the last 6 months."),
    _s("worst_dpd_12m", "Worst days past due, last 12 months", "近12个月最长逾期天数", "days", 1, "behaviour",
       "Largest days past due in the last 12 months."),
    _s("recent_dpd", "Days past due last month", "上月逾期天数", "days", 1, "behaviour",
       "Days past due in the month just before the snapshot."),
    _s("months_since_delinquency", "Months since last delinquency", "距上次逾期月数", "months", -1, "behaviour",
       "Months since the last month with days past due (0 = last month); history length when never."),
    _s("repayment_ratio", "Repayment ratio", "还款比例", "ratio", -1, "behaviour",
       "Total repaid / total due over the history; missing when nothing was due."),
    _s("utilisation", "Credit line utilisation", "授信使用率", "ratio", 1, "behaviour",
       f"Outstanding balance / credit limit, clipped at {UTILISATION_CAP:g}; missing without a limit."),
    _s("has_credit_file", "Has a credit file", "有信贷记录", "flag", 0, "behaviour",
       "1 if any month had an instalment due or a credit limit is held."),
    _s("thin_file", "Thin credit file", "信贷记录薄", "flag", 0, "behaviour",
       f"1 if fewer than {THIN_FILE_MONTHS} months had an instalment due."),
    _s("loan_months", "Months with a loan", "有贷款月数", "months", 0, "behaviour",
       "Months of history with an instalment due."),
    _s("utility_late_count", "Late utility payments", "水电费逾期次数", "months", 1, "behaviour",
       "Months with water or electricity paid late."),
    _s("utility_late_ratio", "Late utility payment ratio", "水电费逾期比例", "ratio", 1, "behaviour",
       "Late utility months / months of history."),
    # --- capacity -----------------------------------------------------------------
    _s("income_total", "Annual income", "年收入", "yuan/year", -1, "capacity", "Sum of income over all sources."),
    _s("log_income", "Annual income (log)", "年收入(对数)", "ln(1+yuan)", -1, "capacity",
       "ln(1 + annual income): income effects are proportional."),
    _s("income_per_head", "Income per person", "人均收入", "yuan/year", -1, "capacity",
       "Annual income / household size: the measure the poverty line uses; a household total "
       "alone over-states the risk of small (often elderly) households."),
    *[
        _s(f"income_share_{s}", f"Income share: {s.replace('_', ' ')}", f"{_INCOME_ZH[s]}收入占比", "ratio", 0,
           "capacity", f"Income from {s.replace('_', ' ')} / total income; missing when income is zero.")
        for s in INCOME_SOURCES
    ],
    _s("income_volatility", "Income volatility", "收入波动", "ratio", 1, "capacity",
       "Coefficient of variation of total income over three years."),
    _s("dependents_ratio", "Dependants per person", "供养比", "ratio", 1, "capacity",
       "Dependants / household size."),
    _s("assets_yuan", "Household assets", "家庭资产", "yuan", -1, "capacity", "Estimated household assets."),
    _s("land_mu", "Land", "土地面积", "mu", 0, "capacity", "Contracted and transferred-in land."),
    _s("private_debt_to_income", "Private debt to income", "民间借款收入比", "ratio", 1, "capacity",
       f"Informal borrowing / max(annual income, {INCOME_FLOOR_YUAN:g} yuan)."),
    # --- profile (non-protected) ---------------------------------------------------
    _s("household_size", "Household size", "家庭人口", "persons", 0, "profile", "People in the household."),
    _s("education_level", "Education", "文化程度", "ordinal 0-4", -1, "profile",
       "Education of the head: 0 none, 1 primary, 2 junior, 3 senior, 4 tertiary."),
    _s("smartphone", "Uses a smartphone", "使用智能手机", "flag", 0, "profile", "Head uses a smartphone well."),
    _s("social_insurance", "Social insurance", "参加社保", "flag", 0, "profile",
       "Enrolled in rural pension and medical insurance."),
    _s("new_agri_operator", "New agricultural operator", "新型农业经营主体", "flag", 0, "profile",
       "Family farm, cooperative head or large grower."),
    _s("individual_business", "Individual business", "个体工商户", "flag", 0, "profile",
       "Runs an individual business."),
    # --- protected (only with include_protected=True; never constrained) -----------
    _s("head_age", "Age of head", "户主年龄", "years", 0, "protected", "Age of the head of household."),
    _s("age_band_60plus", "Head aged 60+", "户主60岁及以上", "flag", 0, "protected", "1 if the head is 60 or older."),
    _s("formerly_poor", "Formerly poor household", "脱贫户", "flag", 0, "protected",
       "Registered in poverty alleviation."),
    # --- opt-in (model.elderly_pension_interaction): age only through the pension -----
    _s("pension_head_60plus", "Pension received by a head aged 60+", "60岁以上户主领取养老金", "flag", -1,
       "protected", "1 if the head is 60+, enrolled in social insurance and receives pension income; "
       "can only lower risk (age never enters alone)."),
    # --- rules (optional, passed by the caller) ------------------------------------
    _s("rule_points", "Rule points", "规则积分", "points", -1, "rules",
       "Total points from the programme's points standard."),
    _s("base", "Base item points", "基础分", "points", -1, "rules", "Points of the base item."),
)

_BY_NAME: dict[str, FeatureSpec] = {s.name: s for s in FEATURE_SPECS}
_DED_LABELS = {k: (en, zh) for k, en, zh in DEDUCTION_ITEMS}

HOUSEHOLD_FEATURES: tuple[str, ...] = tuple(
    s.name for s in FEATURE_SPECS if s.group in ("behaviour", "capacity", "profile")
)
ELDERLY_PENSION_FEATURE = "pension_head_60plus"
"""The one feature of ``elderly_pension=True``: age enters only through its interaction with a pension."""
PROTECTED_FEATURES: tuple[str, ...] = tuple(s.name for s in FEATURE_SPECS
                                            if s.group == "protected" and s.name != ELDERLY_PENSION_FEATURE)

PROFILE_INPUTS: tuple[str, ...] = (
    "head_age", "education", "household_size", "dependents", "smartphone", "formerly_poor",
    "social_insurance", "new_agri_operator", "individual_business", "land_mu", "assets_yuan",
    *[f"income_{s}" for s in INCOME_SOURCES], "income_volatility", "credit_limit_yuan",
    "balance_yuan", "private_debt_yuan",
)
"""Profile columns :class:`HouseholdFeatures` reads (besides the monthly history)."""


def spec_for(name: str) -> FeatureSpec:
    """The spec of a feature; rule item columns (``bonus_*``, ``ded_*``) get a generated one.

    Rule items are points (deductions negative), so more points never raise risk: -1.
    Unknown names raise ``KeyError`` naming the feature.

    >>> from village_credit.models import spec_for
    >>> s = spec_for("ded_overdue")
    >>> s.label_en, s.monotone, s.group
    ('Deduction: overdue', -1, 'rules')
    """
    if name in _BY_NAME:
        return _BY_NAME[name]
    if name.startswith("bonus_"):
        fam = name[len("bonus_"):].replace("_", " ")
        return FeatureSpec(name, f"Bonus points: {fam}", f"加分项:{fam}", "points", -1, "rules",
                           f"Points of the bonus family {fam!r} from the points standard.")
    if name.startswith("ded_"):
        key = name[len("ded_"):]
        en, zh = _DED_LABELS.get(key, (key.replace("_", " "), key))
        return FeatureSpec(name, f"Deduction: {en}", f"扣分项:{zh}", "points", -1, "rules",
                           f"Points deducted for: {en} (negative or zero).")
    raise KeyError(f"no feature spec for {name!r}; add it to FEATURE_SPECS or pass specs explicitly")


def _f(df: pd.DataFrame, col: str) -> np.ndarray:
    return df[col].to_numpy(dtype=np.float64, na_value=np.nan)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den is zero (the ratio is undefined, not zero)."""
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _check_columns(df: pd.DataFrame, needed: Sequence[str], what: str) -> None:
    missing = [c for c in needed if c not in df.columns]
    if missing:
        shown = ", ".join(missing[:8]) + (f" (+{len(missing) - 8} more)" if len(missing) > 8 else "")
        raise SchemaError(f"{what}: household table lacks column(s) {shown}")


def education_codes(col: pd.Series) -> np.ndarray:
    """Per row the position of the education level in ``EDUCATION`` (-1: missing or unknown).

    A text column held in Arrow (what a Parquet read gives) is looked up by Arrow's
    ``index_in`` on its own buffers (~0.5 ms per 50k rows, against ~6 ms for pandas'
    ``Index.get_indexer``, which goes through Python strings); anything else (object
    columns, other dtypes) by ``get_indexer``: the same exact-match positions.
    """
    if isinstance(col.dtype, pd.StringDtype) and col.dtype.storage == "pyarrow":
        arr = pa.array(col.array)
        idx = pc.index_in(arr, value_set=pa.array(EDUCATION, type=arr.type))
        return pc.fill_null(idx, -1).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    return pd.Index(EDUCATION).get_indexer(col)


def _finite(a: np.ndarray) -> np.ndarray:
    """``np.nan_to_num(a)``, copying only when ``a`` holds a non-finite value (rarely)."""
    return a if np.isfinite(a).all() else np.nan_to_num(a)


_NUMPY_KINDS = frozenset("biuf")


def _history_matrix(df: pd.DataFrame, cols: Sequence[str]) -> np.ndarray:
    """``df[cols]`` as float64, missing and non-finite cells as ``np.nan_to_num`` makes them
    (what pandas' ``to_numpy(dtype=float64, na_value=0.0)`` then ``nan_to_num`` give)."""
    return _finite(df[list(cols)].to_numpy(dtype=np.float64, na_value=0.0))


_HISTORY_BLOCK_ROWS = 4096
"""Rows per block of the history features: a block's four matrices stay in the CPU cache."""


def _history_block(arrays: Sequence[np.ndarray], start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of numpy columns as a float64 matrix in pandas' layout.

    The layout is the one ``DataFrame.to_numpy`` gives (each column contiguous, the
    matrix the transpose of a row-major one), so a row sum adds the months in the same
    order and gives the same bits. Non-finite cells as :func:`_finite` makes them.
    """
    out = np.empty((len(arrays), stop - start), dtype=np.float64)
    for j, a in enumerate(arrays):
        out[j] = a[start:stop]
    return _finite(out.T)


def _history_stats(due: np.ndarray, paid: np.ndarray, dpd: np.ndarray, late: np.ndarray,
                   months: int) -> dict[str, np.ndarray]:
    """Per-row sums, counts and maxima of the four history matrices (rows independent)."""
    has_due = due > 0
    delinquent = dpd > 0
    w6, w12 = min(6, months), min(12, months)
    any_delinquent = delinquent.any(axis=1)
    return {
        "loan_months": has_due.sum(axis=1).astype(np.float64),
        "ontime": (has_due & (paid >= due) & ~delinquent).sum(axis=1).astype(np.float64),
        # argmax on the reversed flags = months back from m_last to the last delinquent month
        "since": np.where(any_delinquent, np.argmax(delinquent[:, ::-1], axis=1), months).astype(np.float64),
        "dpd_months": delinquent.sum(axis=1).astype(np.float64),
        "dpd_months_12m": delinquent[:, -w12:].sum(axis=1).astype(np.float64),
        "worst_dpd": dpd.max(axis=1),
        "worst_dpd_6m": dpd[:, -w6:].max(axis=1),
        "worst_dpd_12m": dpd[:, -w12:].max(axis=1),
        "recent_dpd": dpd[:, -1],
        "paid_sum": paid.sum(axis=1),
        "due_sum": due.sum(axis=1),
        "late_sum": late.sum(axis=1),
    }


def _history_features(households: pd.DataFrame, hist: Mapping[str, Sequence[str]], months: int
                      ) -> dict[str, np.ndarray]:
    """:func:`_history_stats` of the whole table, computed on blocks of rows.

    Why blocks: four whole 50k x 36 matrices are ~58 MB, built, reduced and freed per
    chunk: written once to fresh memory and read back from RAM, they cost about as much
    as the features' arithmetic. A block of rows is copied from the columns straight
    into a matrix that stays in cache for its reductions. Every statistic is per row,
    and each block has the whole table's layout (no block of one row unless the table
    has one: such a matrix would be summed in another order), so the values are the
    same bits. A column of any other dtype than numpy's (nullable, Arrow, object) keeps
    the whole-table matrices of pandas' ``to_numpy``.
    """
    cols = {k: [households[c].to_numpy() for c in names] for k, names in hist.items()}
    if not all(a.dtype.kind in _NUMPY_KINDS for arrays in cols.values() for a in arrays):
        return _history_stats(*(_history_matrix(households, hist[k]) for k in _HISTORY), months)
    n = len(households)
    bounds = list(range(0, n, _HISTORY_BLOCK_ROWS)) + [n]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:
        del bounds[-2]  # a last block of one row joins the one before it
    out: dict[str, np.ndarray] | None = None
    for start, stop in itertools.pairwise(bounds):
        part = _history_stats(*(_history_block(cols[k], start, stop) for k in _HISTORY), months)
        if out is None:
            if stop == n:
                return part
            out = {k: np.empty(n, dtype=v.dtype) for k, v in part.items()}
        for k, v in part.items():
            out[k][start:stop] = v
    if out is None:  # no rows
        return _history_stats(*(np.zeros((0, months)) for _ in _HISTORY), months)
    return out


_HISTORY = ("due", "paid", "dpd", "utility_late")


def build_household_features(households: pd.DataFrame, include_protected: bool = False,
                             elderly_pension: bool = False) -> pd.DataFrame:
    """Vectorised feature building over the wide monthly history (numpy, no per-row loop)."""
    return pd.DataFrame(household_feature_arrays(households, include_protected, elderly_pension),
                        index=households.index)


def household_feature_arrays(households: pd.DataFrame, include_protected: bool = False,
                             elderly_pension: bool = False) -> dict[str, np.ndarray]:
    """The features of :func:`build_household_features` as one array per name: the
    transformer puts them into its frame once, in its own column order (no second copy)."""
    months = months_in(list(households.columns))
    if months == 0:
        raise SchemaError("household features: no dpd_mNN history columns in the household table")
    hist = {k: history_columns(k, months) for k in ("due", "paid", "dpd", "utility_late")}
    _check_columns(households, [c for cols in hist.values() for c in cols], "household features")
    _check_columns(households, PROFILE_INPUTS, "household features")

    h = _history_features(households, hist, months)
    loan_months, ontime = h["loan_months"], h["ontime"]

    limit = _f(households, "credit_limit_yuan")
    balance = _f(households, "balance_yuan")
    incomes = {s: np.nan_to_num(_f(households, f"income_{s}")) for s in INCOME_SOURCES}
    income = np.sum(list(incomes.values()), axis=0)
    size = _f(households, "household_size")
    edu_code = education_codes(households["education"])

    cols: dict[str, np.ndarray] = {
        "ontime_count": ontime,
        "ontime_ratio": _ratio(ontime, loan_months),
        "dpd_months": h["dpd_months"],
        "dpd_months_12m": h["dpd_months_12m"],
        "worst_dpd": h["worst_dpd"],
        "worst_dpd_6m": h["worst_dpd_6m"],
        "worst_dpd_12m": h["worst_dpd_12m"],
        "recent_dpd": h["recent_dpd"],
        "months_since_delinquency": h["since"],
        "repayment_ratio": _ratio(h["paid_sum"], h["due_sum"]),
        "utilisation": np.clip(_ratio(np.nan_to_num(balance), np.nan_to_num(limit)), 0.0, UTILISATION_CAP),
        "has_credit_file": ((loan_months > 0) | (np.nan_to_num(limit) > 0)).astype(np.float64),
        "thin_file": (loan_months < THIN_FILE_MONTHS).astype(np.float64),
        "loan_months": loan_months,
        "utility_late_count": h["late_sum"],
        "utility_late_ratio": h["late_sum"] / months,
        "income_total": income,
        "log_income": np.log1p(np.maximum(income, 0.0)),
        "income_per_head": _ratio(income, size),
        **{f"income_share_{s}": _ratio(v, income) for s, v in incomes.items()},
        "income_volatility": _f(households, "income_volatility"),
        "dependents_ratio": _ratio(_f(households, "dependents"), size),
        "assets_yuan": _f(households, "assets_yuan"),
        "land_mu": _f(households, "land_mu"),
        "private_debt_to_income": _f(households, "private_debt_yuan") / np.maximum(income, INCOME_FLOOR_YUAN),
        "household_size": size,
        "education_level": np.where(edu_code >= 0, edu_code, np.nan),
        "smartphone": _f(households, "smartphone"),
        "social_insurance": _f(households, "social_insurance"),
        "new_agri_operator": _f(households, "new_agri_operator"),
        "individual_business": _f(households, "individual_business"),
    }
    if include_protected:
        age = _f(households, "head_age")
        cols["head_age"] = age
        cols["age_band_60plus"] = np.where(np.isnan(age), np.nan, (age >= ELDERLY_AGE).astype(np.float64))
        cols["formerly_poor"] = _f(households, "formerly_poor")
    if elderly_pension:  # missing age / enrolment / pension income: not known to be pensioned -> 0
        age = np.nan_to_num(_f(households, "head_age"), nan=-1.0)
        pension = np.nan_to_num(_f(households, "income_pension_subsidy"), nan=0.0)
        si = np.nan_to_num(_f(households, "social_insurance"), nan=0.0)
        cols[ELDERLY_PENSION_FEATURE] = ((age >= ELDERLY_AGE) & (si > 0) & (pension > 0)).astype(np.float64)
    return cols


class _SpecMixin:
    """Shared spec look-ups for fitted feature transformers."""

    specs_: list[FeatureSpec]
    feature_names_out_: list[str]

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "feature_names_out_")
        return np.asarray(self.feature_names_out_, dtype=object)

    @property
    def feature_names_out(self) -> list[str]:
        """Output column names, in order (after fit)."""
        check_is_fitted(self, "feature_names_out_")
        return list(self.feature_names_out_)

    def monotone_constraints(self) -> list[int]:
        """LightGBM monotone constraints aligned to the output columns."""
        check_is_fitted(self, "specs_")
        return [s.monotone for s in self.specs_]

    def spec_for(self, name: str) -> FeatureSpec:
        check_is_fitted(self, "specs_")
        for s in self.specs_:
            if s.name == name:
                return s
        raise KeyError(f"feature {name!r} is not an output of this transformer")


class HouseholdFeatures(_SpecMixin, TransformerMixin, BaseEstimator):
    """Household table (wide monthly history) -> float feature frame.

    Parameters
    ----------
    include_protected:
        Add ``head_age``, ``age_band_60plus`` and ``formerly_poor`` (unconstrained), so
        their effect can be studied with and without them.
    rule_points:
        Keep a ``rule_points`` column from ``extra`` (or from the household table) when
        one is there.
    rule_items:
        Keep per-item rule columns (``base``, ``bonus_*``, ``ded_*``) from ``extra``.
    elderly_pension:
        Add ``pension_head_60plus`` (head 60+ with social insurance and pension income;
        monotone: lowers risk only), so the model can express that a pension protects the
        elderly without using age alone (``model.elderly_pension_interaction``).

    ``fit``/``transform`` take ``extra=`` (a frame index-aligned with the households,
    e.g. ``RuleScores.items.assign(rule_points=decisions.rule_points)``). The columns
    chosen at fit are required at transform: a missing one raises ``SchemaError``.

    >>> from village_credit.models import HouseholdFeatures
    >>> from village_credit.data import GeneratorConfig, generate_households
    >>> hh = generate_households(GeneratorConfig(n_households=50, seed=1))
    >>> X = HouseholdFeatures().fit_transform(hh)
    >>> X.shape, list(X.columns[:2]), str(X.dtypes.unique()[0])
    ((50, 35), ['ontime_count', 'ontime_ratio'], 'float64')
    """

    def __init__(self, include_protected: bool = False, rule_points: bool = True, rule_items: bool = False,
                 elderly_pension: bool = False):
        self.include_protected = include_protected
        self.elderly_pension = elderly_pension
        self.rule_points = rule_points
        self.rule_items = rule_items

    def _extra_columns(self, households: pd.DataFrame, extra: pd.DataFrame | None) -> list[str]:
        names = list(extra.columns) if extra is not None else []
        if "rule_points" in households.columns and "rule_points" not in names:
            names.append("rule_points")
        keep = []
        for c in names:
            if c == "rule_points" and self.rule_points:
                keep.append(c)
            elif self.rule_items and (c == "base" or c.startswith(("bonus_", "ded_"))):
                keep.append(c)
        return keep

    def fit(self, households: pd.DataFrame, y: Any = None, extra: pd.DataFrame | None = None) -> HouseholdFeatures:
        base = [*HOUSEHOLD_FEATURES, *(PROTECTED_FEATURES if self.include_protected else ()),
                *((ELDERLY_PENSION_FEATURE,) if self.elderly_pension else ())]
        self.extra_columns_ = self._extra_columns(households, extra)
        self.feature_names_out_ = [*base, *self.extra_columns_]
        self.specs_ = [spec_for(n) for n in self.feature_names_out_]
        self.n_months_ = months_in(list(households.columns))
        self.n_features_out_ = len(self.feature_names_out_)
        return self

    def transform(self, households: pd.DataFrame, extra: pd.DataFrame | None = None) -> pd.DataFrame:
        check_is_fitted(self, "feature_names_out_")
        out = household_feature_arrays(households, include_protected=self.include_protected,
                                       elderly_pension=self.elderly_pension)
        if self.extra_columns_:
            src = households[[c for c in ("rule_points",) if c in households.columns]]
            if extra is not None:
                if not extra.index.equals(households.index):
                    raise SchemaError("extra features: index does not match the household table's index")
                src = pd.concat([src.drop(columns=[c for c in src.columns if c in extra.columns]), extra], axis=1)
            _check_columns(src, self.extra_columns_, "rule features (pass them with extra=)")
            for c in self.extra_columns_:
                out[c] = src[c].to_numpy(dtype=np.float64, na_value=np.nan)
        missing = [c for c in self.feature_names_out_ if c not in out]
        if missing:
            raise SchemaError(f"household features: no column(s) {missing} to transform")
        return pd.DataFrame({c: out[c] for c in self.feature_names_out_}, index=households.index)

    def fit_transform(self, households: pd.DataFrame, y: Any = None, extra: pd.DataFrame | None = None,
                      **_: Any) -> pd.DataFrame:
        return self.fit(households, y, extra=extra).transform(households, extra=extra)

    def set_output(self, *, transform: Any = None) -> HouseholdFeatures:
        return self  # always pandas out


# ---------------------------------------------------------------------------------
# Bring your own data
# ---------------------------------------------------------------------------------


def _numeric_like(s: pd.Series) -> bool:
    """Numbers, bools, or text whose every non-missing cell reads as a number (a CSV column)."""
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        return True
    if pd.api.types.is_datetime64_any_dtype(s):
        return False
    seen = False
    for v in pd.unique(s.dropna().to_numpy(dtype=object)):  # each distinct value once
        text = str(v).strip()
        if not text:
            continue
        try:
            if math.isnan(float(text)):
                return False
        except ValueError:
            return False
        seen = True
    return seen


def specs_from_frame(
    df: pd.DataFrame,
    *,
    target: str | None = None,
    exclude: Sequence[str] = (),
    overrides: Mapping[str, Mapping[str, Any]] | Sequence[Mapping[str, Any]] | None = None,
    protected: Sequence[str] = (),
) -> list[FeatureSpec]:
    """Feature specs for any table: numeric/bool columns as numbers, others as categories.

    ``overrides`` (e.g. from a YAML/JSON spec file) set labels, unit, monotone direction,
    group, ``kind`` and category order by column name. A column given ``categories`` is
    categorical even when its cells are numbers (numeric codes); a text column whose
    cells all read as numbers is numeric. Truth columns of the household schema,
    ``target`` and ``exclude`` are never features.
    """
    over: dict[str, Mapping[str, Any]] = {}
    if overrides is not None:
        items = overrides.items() if isinstance(overrides, Mapping) else ((o["name"], o) for o in overrides)
        over = {str(k): v for k, v in items}
    unknown = set(over) - set(df.columns)
    if unknown:
        raise ConfigError(f"feature spec names column(s) not in the table: {sorted(unknown)}")
    skip = {target, *exclude, *TRUTH_COLUMNS}
    specs: list[FeatureSpec] = []
    for c in df.columns:
        if c in skip:
            continue
        o = dict(over.get(c, {}))
        o.pop("name", None)
        s = df[c]
        if pd.api.types.is_datetime64_any_dtype(s):
            continue  # dates are not features
        cats: tuple[str, ...] = tuple(category_key(v) for v in o.pop("categories", ()) or ())
        kind = str(o.pop("kind", "") or ("categorical" if cats else
                                         "numeric" if _numeric_like(s) else "categorical"))
        group = o.pop("group", "protected" if c in protected else "profile")
        try:
            specs.append(FeatureSpec(
                name=str(c), label_en=str(o.pop("label_en", c)), label_zh=str(o.pop("label_zh", c)),
                unit=str(o.pop("unit", "")), monotone=int(o.pop("monotone", 0)), group=group,
                description=str(o.pop("description", "")), categories=cats, kind=kind,
            ))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"feature spec for {c!r}: {exc}") from exc
        if o:
            raise ConfigError(f"feature spec for {c!r}: unknown key(s) {sorted(o)}")
    return specs


class FeatureEntry(FileFormat):
    """One column of a table of one's own: labels, unit, risk direction, group, categories.

    Only what differs from the defaults needs a key; an unset key keeps the default
    that specs_from_frame gives it.
    """

    name: str = Field(min_length=1, description="Column name in the table.")
    label_en: str | None = Field(None, description="English label in reason codes and reports (default: the name).")
    label_zh: str | None = Field(None, description="Chinese label in reason codes and reports (default: the name).")
    unit: str = Field("", description="Unit shown with values, e.g. months, yuan.")
    monotone: Literal[-1, 0, 1] = Field(0, description=(
        "Direction with respect to default risk the GBM must keep: 1 a larger value never lowers "
        "the risk, -1 never raises it, 0 no constraint."))
    group: Group | None = Field(None, description=(
        "Feature group in reports: behaviour, capacity, profile, protected or rules "
        "(default: protected for a column listed under protected, else profile)."))
    description: str = Field("", description="A sentence for people reading the reports.")
    categories: list[str | int | float | bool] = Field(default_factory=list, description=(
        "Ordered categories: the column is categorical even when its cells are numbers (codes); "
        "1, 1.0 and \"1\" are one category. Unlisted categories are ordered by training default rate."))
    kind: Literal["numeric", "categorical"] | None = Field(None, description=(
        "Force the column's kind (default: numbers and bools numeric, text categorical)."))


class FeatureSpecFile(FileFormat):
    """The feature spec of a table of one's own (YAML or JSON; data.feature_spec of an experiment)."""

    target: str | None = Field(None, description=(
        "Target column: used when the experiment leaves data.target at its default; "
        "must agree with data.target otherwise."))
    exclude: list[str] = Field(default_factory=list, description="Columns never used as features.")
    protected: list[str] = Field(default_factory=list, description=(
        "Protected columns (age, sex, ...): left out of the features unless model.include_protected; "
        "their group defaults to protected."))
    features: list[FeatureEntry] = Field(default_factory=list, description=(
        "Columns needing labels, a unit, a direction, a group or a category order; every other "
        "column is used as it is."))

    @field_validator("features")
    @classmethod
    def _one_entry_per_column(cls, v: list[FeatureEntry]) -> list[FeatureEntry]:
        names = [f.name for f in v]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise PydanticCustomError("duplicate", "column(s) listed twice: {names}", {"names": ", ".join(twice)})
        return v


def load_feature_specs(path: str | Path) -> dict[str, Any]:
    r"""Read a YAML or JSON feature spec file, checked against :class:`FeatureSpecFile`.

    Format: ``{target: default_12m, exclude: [...], protected: [...],
    features: [{name, label_en, label_zh, unit, monotone, group, description, categories, kind}]}``
    (``schemas/feature_spec.schema.json``). Only ``features`` entries that need non-default
    labels or directions must be listed. Returns the keys the file sets; an error names
    the file and the key.

    >>> from pathlib import Path
    >>> from village_credit.models import load_feature_specs
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = Path(tmp) / "spec.yaml"
    ...     _ = p.write_text("target: bad\nfeatures:\n  - {name: age, monotone: -1}\n")
    ...     load_feature_specs(p)
    {'target': 'bad', 'features': [{'name': 'age', 'monotone': -1}]}
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = Path(tmp) / "spec.yaml"
    ...     _ = p.write_text("features:\n  - {name: age, monotone: 2}\n")
    ...     load_feature_specs(p)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    village_credit.errors.ConfigError: .../spec.yaml: features[0].monotone: Input should be -1, 0 or 1, got 2
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read feature spec: {exc}") from exc
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:  # json.JSONDecodeError is a ValueError
        raise ConfigError(f"{p}: feature spec is not valid {'JSON' if p.suffix.lower() == '.json' else 'YAML'}: "
                          f"{exc}") from exc
    spec = validate_document(FeatureSpecFile, {} if data is None else data, source=p, error=ConfigError)
    return spec.model_dump(exclude_unset=True, exclude_none=True)


CATEGORY_PRIOR_ROWS = 10.0
"""Pseudo-rows of the overall rate that smooth a category's rate when ordering categories."""


def _category_order(col: pd.Series, y: Any) -> tuple[str, ...]:
    """Categories the spec did not order: by smoothed default rate when ``y`` is given, else sorted.

    Why: trees split ordinal codes by thresholds; in default-rate order one split can
    separate risky from safe categories, which an alphabetical order rarely allows.
    """
    codes, uniq = category_codes(col)
    seen = sorted(str(u) for u in uniq)
    if y is None or len(seen) < 3:
        return tuple(seen)
    yv = np.asarray(y, dtype=np.float64)
    ok = (codes >= 0) & ~np.isnan(yv)
    prior = float(yv[ok].mean()) if ok.any() else float("nan")
    n = np.bincount(codes[ok], minlength=len(uniq))
    bad = np.bincount(codes[ok], weights=yv[ok], minlength=len(uniq))
    rate = dict(zip(map(str, uniq), (bad + CATEGORY_PRIOR_ROWS * prior) / (n + CATEGORY_PRIOR_ROWS)))
    return tuple(sorted(seen, key=lambda c: (float(rate[c]), c)))


class GenericFeatures(_SpecMixin, TransformerMixin, BaseEstimator):
    """Any table -> float feature frame from a spec list (bring your own data, no rule engine).

    Numeric columns (numbers, bools, or text that reads as numbers) pass through as
    floats; categorical columns become ordinal codes in the spec's category order,
    matched by :func:`category_key` (so ``1``, ``1.0`` and ``"1"`` are one category), so
    the monotone direction of an ordered category is meaningful. ``fit`` fixes each
    column's ``kind`` and categories in ``specs_``; a model saves them, and specs that
    already carry a kind (a reloaded model) are used as they are, never re-guessed from
    the scoring file. :meth:`row_problems` names the cells ``transform`` could not read.

    A category outside ``categories`` (unseen in training, or a code the spec's list
    omits) is *missing*, in training and in scoring alike, as LightGBM and
    ``OneHotEncoder(handle_unknown="ignore")`` treat it: the trees route it with the
    missing values. :meth:`unseen_categories` counts such cells; ``fit`` keeps the
    training counts in ``unseen_in_fit_``.
    """

    def __init__(self, specs: Sequence[FeatureSpec] | None = None, columns: Sequence[str] | None = None):
        self.specs = specs
        self.columns = columns

    def fit(self, X: pd.DataFrame, y: Any = None) -> GenericFeatures:
        specs = list(self.specs) if self.specs is not None else specs_from_frame(X)
        if self.columns is not None:
            by = {s.name: s for s in specs}
            missing = [c for c in self.columns if c not in by]
            if missing:
                specs = [*specs, *specs_from_frame(X[missing])]
                by = {s.name: s for s in specs}
            specs = [by[c] for c in self.columns]
        _check_columns(X, [s.name for s in specs if not s.kind], "generic features")
        fitted = []
        for s in specs:
            if not s.kind:
                kind = "categorical" if s.categories or not _numeric_like(X[s.name]) else "numeric"
                s = replace(s, kind=kind)
            if s.kind == "categorical" and not s.categories:
                s = replace(s, categories=_category_order(X[s.name], y))
            fitted.append(s)
        self.specs_ = fitted
        self.feature_names_out_ = [s.name for s in self.specs_]
        # only a spec's own category list can omit a value that occurs; orders read from X cannot
        declared = [s.name for s in (self.specs or []) if s.categories and s.name in X.columns]
        self.unseen_in_fit_ = self.unseen_categories(X[declared]) if len(X) and declared else {}
        return self

    def _numbers(self, col: pd.Series) -> pd.Series:
        if pd.api.types.is_bool_dtype(col):
            return col.astype("float64")
        if pd.api.types.is_numeric_dtype(col):
            return pd.to_numeric(col, errors="coerce").astype("float64")
        codes, uniq = pd.factorize(col, use_na_sentinel=True)  # read each distinct text once
        text = pd.Series(np.asarray(uniq, dtype=object), dtype="string").str.strip()
        vals = pd.to_numeric(text.mask(text == ""), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        out = np.where(codes < 0, np.nan, vals[np.maximum(codes, 0)] if len(vals) else np.nan)
        return pd.Series(out, index=col.index, dtype="float64")

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "specs_")
        _check_columns(X, self.feature_names_out_, "generic features")
        cols: dict[str, np.ndarray] = {}
        for s in self.specs_:  # loop over columns, not rows
            col = X[s.name]
            if s.kind == "categorical":
                # position in the spec's order; unseen categories and missing cells -> -1 -> NaN
                codes = category_positions(col, s.categories)
                cols[s.name] = np.where(codes < 0, np.nan, codes.astype(np.float64))
            else:
                cols[s.name] = self._numbers(col).to_numpy(dtype=np.float64, na_value=np.nan)
        return pd.DataFrame(cols, index=X.index)

    def row_problems(self, X: pd.DataFrame) -> np.ndarray:
        """Per input row: ``"column: reason; ..."`` for cells that cannot be read, else ``""``.

        A numeric cell that is not a number is a problem (the row is quarantined, never
        scored as if the value were missing). A category outside the spec's list is not:
        it is missing, as in training (:meth:`unseen_categories` counts those).
        """
        check_is_fitted(self, "specs_")
        _check_columns(X, self.feature_names_out_, "generic features")
        out = pd.Series("", index=range(len(X)), dtype=object)
        for s in self.specs_:
            if s.kind == "categorical":
                continue
            col = X[s.name].reset_index(drop=True)
            present = col.notna() & (col.astype("string").str.strip() != "")
            bad = present & self._numbers(col).isna()
            why = pd.Series(f"{s.name}: not a number", index=col.index)
            if bool(bad.any()):
                add = why[bad].astype(str)
                cur = out[bad]
                out[bad] = np.where(cur == "", add, cur + "; " + add)
        return out.to_numpy(dtype=object)

    def unseen_categories(self, X: pd.DataFrame) -> dict[str, dict[str, int]]:
        """Per categorical column: ``{value: cells}`` of values outside its categories (read as missing).

        Values are shown as their :func:`category_key`, cut to 30 characters.

        >>> spec = FeatureSpec("tier", "Tier", "等级", categories=(1, 2, 3), kind="categorical")
        >>> t = GenericFeatures([spec]).fit(pd.DataFrame())
        >>> t.unseen_categories(pd.DataFrame({"tier": [1, 0, "0", 2.0, None, 9]}))
        {'tier': {'0': 2, '9': 1}}
        """
        check_is_fitted(self, "specs_")
        out: dict[str, dict[str, int]] = {}
        for s in self.specs_:
            if s.kind != "categorical" or s.name not in X.columns:
                continue
            codes, keys = category_codes(X[s.name])
            n = np.bincount(codes[codes >= 0], minlength=len(keys))
            unseen: dict[str, int] = {}
            for k, c in zip(keys, n):
                if c and str(k).strip() and str(k) not in set(s.categories):
                    unseen[str(k)[:30]] = unseen.get(str(k)[:30], 0) + int(c)
            if unseen:
                out[s.name] = dict(sorted(unseen.items()))
        return out

    def set_output(self, *, transform: Any = None) -> GenericFeatures:
        return self
