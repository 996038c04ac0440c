"""Programme reports: credit villages ("952") and credit townships (XX county standard).

Definitions (domain.md s.4), and the choices the seeds leave open:

* **on file**: the household has a scored file, i.e. its index appears in
  ``decisions`` with a non-missing ``rule_points``. Households in ``households`` but
  not in ``decisions`` (e.g. quarantined by validation, never reviewed) are *not*
  on file.
* **eligible households** (the 952 "90 % on file" denominator): households not known
  to be ineligible: scored and eligible, plus every household without a file (its
  eligibility is unknown, so it counts against coverage). ``on_file_share`` =
  eligible households on file / eligible households.
* **A or above**: grade in the policy's A bands (A1, A2 by default) over *all*
  households of the village (no file = not rated A). Credit village needs > 55 %.
* **granted share**: approved households / households on file (952: >= 50 %).
* **NPL ratio** (952: <= 2 %) needs an outcome (1 = default, 0 = performing, NaN =
  unobserved). It is the *amount* ratio a bank reports: credit lines of defaulted
  granted households / credit lines of granted households with an observed outcome
  (lines stand in for balances). ``default_rate`` is the household-count version.
* **county averages**: the whole input is the county. A credit village must also
  have a granted share at least the county's and an NPL ratio at most the county's
  (non-strict, so a county with one village can still have credit villages);
  switch off with ``ReportStandard(require_above_average=False)``.
* Without an outcome the NPL test is unknown: ``meets_952`` and ``is_credit_village``
  are pandas nullable booleans, NA where the answer depends on it (Kleene logic: a
  village failing another test is still False). A township is True/False when
  the known villages settle it, else NA.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from village_credit.errors import SchemaError
from village_credit.rules.conditions import check_columns


@dataclass(frozen=True)
class ReportStandard:
    """Thresholds of the credit-village / credit-township standard (XX county)."""

    a_share_min: float = 0.55  # strictly more than
    on_file_min: float = 0.90
    granted_min: float = 0.50
    npl_max: float = 0.02
    township_share_min: float = 0.75  # strictly more than
    require_above_average: bool = True
    a_grades: tuple[str, ...] = ("A1", "A2")


@dataclass(frozen=True)
class ProgrammeReport:
    """Village and township tables (one row per village / township)."""

    villages: pd.DataFrame
    townships: pd.DataFrame
    standard: ReportStandard

    def summary(self) -> dict[str, Any]:
        """Headline numbers for a run summary."""
        v, t = self.villages, self.townships
        return {
            "villages": int(len(v)),
            "credit_villages": int((v["is_credit_village"] == True).sum()),  # noqa: E712 (NA-safe)
            "townships": int(len(t)),
            "credit_townships": int((t["is_credit_township"] == True).sum()),  # noqa: E712
            "households": int(v["households"].sum()),
            "on_file": int(v["on_file"].sum()),
            "granted": int(v["granted"].sum()),
        }


def _outcome(households: pd.DataFrame, outcome: Any) -> pd.Series | None:
    if outcome is None:
        return None
    if isinstance(outcome, str):
        check_columns(households, [outcome], what="programme_report outcome")
        s = households[outcome]
    elif isinstance(outcome, pd.Series):
        if not outcome.index.equals(households.index):
            outcome = outcome.reindex(households.index)
        s = outcome
    else:
        a = np.asarray(outcome)
        if a.shape != (len(households),):
            raise SchemaError(f"programme_report: outcome has shape {a.shape}, households {len(households)} rows")
        s = pd.Series(a, index=households.index)
    return pd.Series(pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan),
                     index=households.index)


def _kleene_and(*parts: pd.Series) -> pd.Series:
    out = parts[0].astype("boolean")
    for p in parts[1:]:
        out = out & p.astype("boolean")
    return out


def programme_report(households: pd.DataFrame, decisions: pd.DataFrame, outcome: Any = None,
                     standard: ReportStandard | None = None,
                     points_column: str = "rule_points") -> ProgrammeReport:
    """Aggregate decisions into village and township tables.

    ``households`` gives ``village_code`` and ``township_code`` for every household in
    the programme (scored or not); ``decisions`` is ``RuleScores.decisions`` (or any
    frame with ``rule_points, eligible, grade, approved, credit_line``) indexed like
    ``households``; ``outcome`` is a column name, Series or array (1 default, 0 not,
    NaN unobserved). ``points_column`` names the score that puts a household "on file":
    ``rule_points`` for the points standard, ``points`` for a decision model's output.

    >>> import pandas as pd
    >>> from village_credit.rules import programme_report
    >>> households = pd.DataFrame({"township_code": "T1", "village_code": ["V1", "V1", "V2"]})
    >>> decisions = pd.DataFrame({"rule_points": [60.0, 30.0, 10.0], "eligible": True,
    ...     "grade": ["A1", "A2", "B2"], "approved": True, "credit_line": [60e3, 30e3, 10e3]})
    >>> report = programme_report(households, decisions)
    >>> report.villages[["village_code", "households", "a_share", "granted_share"]]
      village_code  households  a_share  granted_share
    0           V1           2      1.0            1.0
    1           V2           1      0.0            1.0
    """
    std = standard or ReportStandard()
    sums = village_sums(households, decisions, outcome, std, points_column)
    return report_from_village_sums(sums, std)


SUM_COLUMNS = ("households", "on_file", "eligible_households", "eligible_on_file", "graded_a", "granted",
               "credit_line_total", "outcomes_observed", "defaults", "observed_line", "defaulted_line")
"""Additive per-village counts: sums over chunks of a population equal the sums over all of it."""


def village_sums(households: pd.DataFrame, decisions: pd.DataFrame, outcome: Any = None,
                 standard: ReportStandard | None = None, points_column: str = "rule_points") -> pd.DataFrame:
    """Per-village additive counts for :func:`report_from_village_sums`.

    Why separate: a batch scorer computes these per chunk and adds them up, so the
    programme report of millions of households needs memory for one chunk only.

    >>> import pandas as pd
    >>> from village_credit.rules import village_sums
    >>> households = pd.DataFrame({"township_code": "T1", "village_code": ["V1", "V1", "V2"]})
    >>> decisions = pd.DataFrame({"rule_points": [60.0, 30.0, None], "eligible": True,
    ...     "grade": ["A1", "A2", None], "approved": [True, True, False], "credit_line": [60e3, 30e3, 0.0]})
    >>> village_sums(households, decisions)[["village_code", "households", "on_file", "granted", "credit_line_total"]]
      village_code  households  on_file  granted  credit_line_total
    0           V1           2        2        2            90000.0
    1           V2           1        0        0                0.0
    """
    std = standard or ReportStandard()
    check_columns(households, ["village_code", "township_code"], what="programme_report households")
    check_columns(decisions, [points_column, "eligible", "grade", "approved", "credit_line"],
                  what="programme_report decisions")
    extra = decisions.index.difference(households.index)
    if len(extra):
        raise SchemaError(f"programme_report: {len(extra)} decision rows have no household "
                          f"(first index {extra[0]!r})")
    d = decisions.reindex(households.index)
    on_file = d[points_column].notna().to_numpy()
    eligible = d["eligible"].to_numpy(dtype=bool, na_value=False)
    approved = d["approved"].to_numpy(dtype=bool, na_value=False) & on_file
    line = d["credit_line"].to_numpy(dtype="float64", na_value=0.0)
    cols: dict[str, Any] = {
        "households": 1,
        "on_file": on_file.astype(np.int64),
        "eligible_households": (~on_file | eligible).astype(np.int64),
        "eligible_on_file": (on_file & eligible).astype(np.int64),
        "graded_a": d["grade"].isin(list(std.a_grades)).to_numpy(dtype=bool).astype(np.int64),
        "granted": approved.astype(np.int64),
        "credit_line_total": np.where(approved, line, 0.0),
    }
    y = _outcome(households, outcome)
    if y is not None:
        obs = approved & y.notna().to_numpy()
        bad = obs & (y.to_numpy() > 0)
        cols["outcomes_observed"] = obs.astype(np.int64)
        cols["defaults"] = bad.astype(np.int64)
        cols["observed_line"] = np.where(obs, line, 0.0)
        cols["defaulted_line"] = np.where(bad, line, 0.0)
    township, village = households["township_code"], households["village_code"]
    fast = _sums_by_codes(township, village, pd.DataFrame(cols, index=pd.RangeIndex(len(households))))
    if fast is not None:
        return fast
    frame = pd.DataFrame({"township_code": township.to_numpy(), "village_code": village.to_numpy(), **cols})
    keys = ["township_code", "village_code"]
    return frame.groupby(keys, sort=True, observed=True).sum().reset_index()


_STR = pd.StringDtype("pyarrow", na_value=np.nan)  # pandas' ``str``: what text keys are on the scoring path


def _sums_by_codes(township: pd.Series, village: pd.Series, frame: pd.DataFrame) -> pd.DataFrame | None:
    """``frame`` (the value columns, one row per household) summed as
    ``groupby([township, village], sort=True).sum().reset_index()`` would, grouped by one
    integer code per (township, village) instead of two Python strings per row; ``None``
    where it could differ (then the groupby on the text keys runs).

    Why: a batch scorer computes these sums for every chunk, and grouping by the text
    columns turned each row's codes into Python strings (~0.1 CPU s per 200k rows). The
    keys are factorised (in Arrow for ``str`` columns, the scorer's), and the same pandas
    sum runs on the integer code: same rows per group in the same order, so the same
    (Kahan-compensated) float sums.
    """
    if township.dtype != _STR or village.dtype != _STR or not len(frame):
        return None
    values = frame
    if any(dt.kind not in "if" for dt in values.dtypes):
        return None
    ct, ut = pd.factorize(township, sort=True)
    cv, uv = pd.factorize(village, sort=True)
    nv = max(len(uv), 1)
    key = ct.astype(np.int64) * nv + cv
    keep = (ct >= 0) & (cv >= 0)  # groupby leaves out rows with a missing key
    if not keep.any():  # no text key left: the groupby's key dtypes are not ``str``
        return None
    if not keep.all():
        key, values = key[keep], values.loc[keep]
    summed = values.groupby(key, sort=True).sum()
    groups = summed.index.to_numpy(dtype=np.int64)
    out = {"township_code": ut.take(groups // nv).array, "village_code": uv.take(groups % nv).array}
    out.update({c: summed[c].to_numpy() for c in summed.columns})
    return pd.DataFrame(out)


def add_village_sums(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Add up :func:`village_sums` of several chunks of one population.

    >>> import pandas as pd
    >>> from village_credit.rules import add_village_sums
    >>> chunk = pd.DataFrame({"township_code": ["T1"], "village_code": ["V1"], "households": [2], "granted": [1]})
    >>> add_village_sums([chunk, chunk.assign(granted=2)])
      township_code village_code  households  granted
    0            T1           V1           4        3
    """
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=["township_code", "village_code", *SUM_COLUMNS[:7]])
    both = pd.concat(parts, ignore_index=True)
    return both.groupby(["township_code", "village_code"], sort=True, observed=True).sum().reset_index()


def report_from_village_sums(sums: pd.DataFrame, standard: ReportStandard | None = None) -> ProgrammeReport:
    """Village and township tables from additive per-village counts.

    >>> import pandas as pd
    >>> from village_credit.rules import add_village_sums, report_from_village_sums, village_sums
    >>> households = pd.DataFrame({"township_code": "T1", "village_code": ["V1", "V1", "V2"]})
    >>> decisions = pd.DataFrame({"rule_points": [60.0, 30.0, 10.0], "eligible": True,
    ...     "grade": ["A1", "A2", "B2"], "approved": True, "credit_line": [60e3, 30e3, 10e3]})
    >>> chunks = [village_sums(households.iloc[:2], decisions.iloc[:2]),
    ...           village_sums(households.iloc[2:], decisions.iloc[2:])]
    >>> report = report_from_village_sums(add_village_sums(chunks))
    >>> report.summary()["households"], report.villages["a_share"].tolist()
    (3, [1.0, 0.0])
    """
    std = standard or ReportStandard()
    v = sums.copy()
    has_outcome = "outcomes_observed" in v.columns

    v["on_file_share"] = v["eligible_on_file"] / v["eligible_households"].where(v["eligible_households"] > 0)
    v["a_share"] = v["graded_a"] / v["households"]
    v["granted_share"] = v["granted"] / v["on_file"].where(v["on_file"] > 0)
    county_granted = v["granted"].sum() / max(v["on_file"].sum(), 1)
    if has_outcome:
        v["default_rate"] = v["defaults"] / v["outcomes_observed"].where(v["outcomes_observed"] > 0)
        v["npl_ratio"] = v["defaulted_line"] / v["observed_line"].where(v["observed_line"] > 0)
        ol = v["observed_line"].sum()
        county_npl = v["defaulted_line"].sum() / ol if ol > 0 else np.nan
        v = v.drop(columns=["observed_line", "defaulted_line"])
    else:
        v["default_rate"] = np.nan
        v["npl_ratio"] = np.nan
        county_npl = np.nan

    def cmp(mask: pd.Series, known: pd.Series) -> pd.Series:
        return pd.Series(pd.array(np.where(known, mask, False), dtype="boolean"), index=mask.index).where(known, pd.NA)

    npl_known = v["npl_ratio"].notna()
    on_ok = (v["on_file_share"] >= std.on_file_min).fillna(False)
    gr_ok = (v["granted_share"] >= std.granted_min).fillna(False)
    npl_ok = cmp(v["npl_ratio"] <= std.npl_max, npl_known)
    v["meets_952"] = _kleene_and(on_ok, gr_ok, npl_ok)
    a_ok = v["a_share"] > std.a_share_min
    v["is_credit_village"] = _kleene_and(a_ok, v["meets_952"])
    if std.require_above_average:
        v["granted_share_at_least_county"] = (v["granted_share"] >= county_granted).fillna(False)
        v["npl_at_most_county"] = cmp(v["npl_ratio"] <= county_npl, npl_known & pd.notna(county_npl))
        v["is_credit_village"] = _kleene_and(v["is_credit_village"], v["granted_share_at_least_county"],
                                             v["npl_at_most_county"])

    cv = v["is_credit_village"]
    t = pd.DataFrame({
        "township_code": v["township_code"],
        "villages": 1,
        "credit_villages": (cv == True).fillna(False).astype(np.int64),  # noqa: E712
        "unknown_villages": cv.isna().astype(np.int64),
        "households": v["households"],
        "on_file": v["on_file"],
        "granted": v["granted"],
    }).groupby("township_code", sort=True).sum().reset_index()
    t["credit_village_share"] = t["credit_villages"] / t["villages"]
    hi = (t["credit_villages"] + t["unknown_villages"]) / t["villages"]
    yes = t["credit_village_share"] > std.township_share_min
    no = hi <= std.township_share_min
    t["is_credit_township"] = pd.array(np.where(yes, True, False), dtype="boolean")
    t.loc[~yes & ~no, "is_credit_township"] = pd.NA
    return ProgrammeReport(villages=v, townships=t, standard=std)
