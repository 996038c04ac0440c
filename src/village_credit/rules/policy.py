"""Programme standards as declarative, validated policies (YAML).

Why data, not code: an analyst must be able to ask "what if the age cut-off went
away?" by editing one YAML file, and a model must be able to store the exact policy
it was built under (``Policy.to_yaml_text``). So every number that turns points into
decisions (item points, observation windows, line scale and caps, the rate band,
grade cut-offs) lives in the policy file, and this module only parses, validates and
evaluates it.

A policy file has these top-level keys (see ``policies/jinxiang_2022.yaml``)::

    name, title, reference, notes, extends, validity_years,
    base, bonuses, deductions, vetoes, eligibility,
    credit_line, rate, grades, approval

*Conditions* are one small grammar used by base conditions, bonus components,
deductions, vetoes, eligibility gates and line tiers:

* ``{column: c, equals: v}`` / ``{column: c, in: [v, ...]}``
* ``{column: c, min: a, max: b}`` (inclusive; either bound optional)
* ``{event: c, window_years: n}``: a dated event is *active* when
  ``eval_date - n years < event_date <= eval_date`` (credit repair: older events and
  events after the evaluation date never count)
* ``{ratio: {numerator: [..], denominator: [..]}, min: a, max: b}`` (sums of columns;
  a zero denominator gives +inf when the numerator is positive, else 0)
* ``{active_deductions: {min_count: k}}``: at least k of this policy's deductions active
* ``{any_of: [...]}``, ``{all_of: [...]}``, ``{not: {...}}``

``extends: other_policy`` deep-merges this file over the named (or path) policy; a
``null`` value deletes the inherited key (e.g. ``base: {conditions: {age: null}}``).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from village_credit.data.schema import SCHEMA
from village_credit.errors import PolicyError, SchemaError

GRADE_BANDS: tuple[str, ...] = ("A1", "A2", "B1", "B2", "C1", "C2", "D1", "D2", "E1", "E2")
""""Five levels, ten bands", best first."""

LABEL_LANGUAGES: tuple[str, ...] = ("en", "zh")
"""Languages every policy label carries (titles, item and veto labels)."""

CODE_SEP = ";"
"""Separator inside ``veto_codes`` / ``ineligible_codes`` strings."""

POLICY_DIR = "policies"

# --------------------------------------------------------------------------- helpers


class _Ctx:
    """Where a validation problem is: file plus key path, for error messages."""

    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, path: str, problem: str) -> PolicyError:
        return PolicyError(f"{self.file}: key '{path}': {problem}")


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _check_keys(ctx: _Ctx, path: str, d: Any, allowed: set[str], required: set[str] = frozenset()) -> dict:
    if not isinstance(d, dict):
        raise ctx.fail(path, f"expected a mapping, got {type(d).__name__}")
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise ctx.fail(f"{path}.{unknown[0]}" if path else unknown[0],
                       f"unknown key (allowed: {', '.join(sorted(allowed))})")
    missing = sorted(required - set(d))
    if missing:
        raise ctx.fail(f"{path}.{missing[0]}" if path else missing[0], "required key is missing")
    return d


def _number(ctx: _Ctx, path: str, x: Any, *, min_value: float | None = None,
            max_value: float | None = None, integer: bool = False) -> float:
    if not _is_number(x):
        raise ctx.fail(path, f"expected a finite number, got {x!r}")
    if integer and float(x) != int(x):
        raise ctx.fail(path, f"expected a whole number, got {x!r}")
    if min_value is not None and x < min_value:
        raise ctx.fail(path, f"must be >= {min_value}, got {x!r}")
    if max_value is not None and x > max_value:
        raise ctx.fail(path, f"must be <= {max_value}, got {x!r}")
    return float(x)


def _label(ctx: _Ctx, path: str, x: Any, default_en: str) -> dict[str, str]:
    if x is None:
        return {"en": default_en, "zh": default_en}
    _check_keys(ctx, path, x, set(LABEL_LANGUAGES), set(LABEL_LANGUAGES))
    for k in LABEL_LANGUAGES:
        if not isinstance(x[k], str) or not x[k]:
            raise ctx.fail(f"{path}.{k}", "label must be a non-empty string")
    return {"en": x["en"], "zh": x["zh"]}


def _deep_merge(base: dict, over: Mapping) -> dict:
    """Merge ``over`` into a copy of ``base``; ``None`` deletes a key."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


# --------------------------------------------------------------------------- conditions

Evaluator = Callable[["EvalContext"], np.ndarray]


@dataclass
class EvalContext:
    """Inputs a condition needs: the frame, per-row evaluation dates, the policy."""

    frame: pd.DataFrame
    eval_dates: np.ndarray  # datetime64[ns], one per row
    policy: "Policy"
    _dates: dict[str, np.ndarray] = field(default_factory=dict)
    _cutoffs: dict[int, np.ndarray] = field(default_factory=dict)
    _results: dict[int, np.ndarray] = field(default_factory=dict)
    _uniq: tuple[np.ndarray, np.ndarray] | None = None

    def dates(self, column: str) -> np.ndarray:
        if column not in self._dates:
            s = self.frame[column]
            if not pd.api.types.is_datetime64_any_dtype(s.dtype):
                try:
                    s = pd.to_datetime(s, errors="raise")
                except (ValueError, TypeError) as exc:
                    raise SchemaError(f"column '{column}': not parseable as dates ({exc})") from exc
            self._dates[column] = s.to_numpy(dtype="datetime64[ns]")
        return self._dates[column]

    def cutoff(self, years: int) -> np.ndarray:
        """``eval_date - years`` per row (calendar years, 29 Feb -> 28 Feb)."""
        if years not in self._cutoffs:
            uniq, inv = self._unique_eval()
            cut = (pd.DatetimeIndex(uniq) - pd.DateOffset(years=years)).to_numpy(dtype="datetime64[ns]")
            self._cutoffs[years] = cut[0] if len(cut) == 1 else cut[inv]
        return self._cutoffs[years]

    def _unique_eval(self) -> tuple[np.ndarray, np.ndarray]:
        """Distinct evaluation dates (usually one or a few snapshot dates)."""
        if self._uniq is None:
            e = self.eval_dates
            if len(e) == 0 or (e[0] == e).all():
                self._uniq = (e[:1], np.zeros(len(e), dtype=np.intp))
            else:
                self._uniq = np.unique(e, return_inverse=True)
        return self._uniq

    @property
    def eval_cmp(self) -> np.ndarray:
        """Evaluation dates for comparisons: a scalar when all rows share one."""
        uniq, _ = self._unique_eval()
        return uniq[0] if len(uniq) == 1 else self.eval_dates


@dataclass(frozen=True)
class Condition:
    """A parsed condition: its evaluator, the columns it reads, its windows."""

    evaluate: Evaluator
    columns: tuple[str, ...]
    spec: dict

    def test(self, ctx: "EvalContext") -> np.ndarray:
        """Evaluate once per scoring context (deductions are reused by vetoes)."""
        key = id(self)
        if key not in ctx._results:
            ctx._results[key] = np.asarray(self.evaluate(ctx), dtype=bool)
        return ctx._results[key]


_COND_KEYS = {"column", "equals", "in", "min", "max", "event", "window_years", "ratio",
              "active_deductions", "any_of", "all_of", "not"}


def _values(frame: pd.DataFrame, column: str) -> np.ndarray:
    s = frame[column]
    if pd.api.types.is_bool_dtype(s.dtype) and s.hasnans:
        raise SchemaError(f"column '{column}': missing values in a boolean rule column")
    return s.to_numpy()


def _numeric(frame: pd.DataFrame, column: str) -> np.ndarray:
    s = frame[column]
    if not (pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype)):
        raise SchemaError(f"column '{column}': expected numbers, got dtype {s.dtype}")
    return s.to_numpy(dtype="float64", na_value=np.nan)


def parse_condition(ctx: _Ctx, path: str, spec: Any, extra_keys: set[str] = frozenset()) -> Condition:
    """Parse one condition (keys in ``extra_keys`` belong to the caller and are ignored)."""
    if not isinstance(spec, dict):
        raise ctx.fail(path, f"expected a condition mapping, got {type(spec).__name__}")
    _check_keys(ctx, path, spec, _COND_KEYS | extra_keys)
    d = {k: v for k, v in spec.items() if k not in extra_keys}
    kinds = [k for k in ("column", "event", "ratio", "active_deductions", "any_of", "all_of", "not") if k in d]
    if len(kinds) != 1:
        raise ctx.fail(path, "a condition needs exactly one of column, event, ratio, "
                             f"active_deductions, any_of, all_of, not (got {kinds or 'none'})")
    kind = kinds[0]

    def only(allowed: set[str]) -> None:
        bad = sorted(set(d) - allowed)
        if bad:
            raise ctx.fail(f"{path}.{bad[0]}", f"not allowed in a '{kind}' condition")

    if kind == "column":
        col = d["column"]
        if not isinstance(col, str) or not col:
            raise ctx.fail(f"{path}.column", "must be a column name")
        only({"column", "equals", "in", "min", "max"})
        ops = [k for k in ("equals", "in") if k in d] + (["range"] if ("min" in d or "max" in d) else [])
        if len(ops) != 1:
            raise ctx.fail(path, "a column condition needs exactly one of equals, in, or min/max")
        if "equals" in d:
            val = d["equals"]
            if isinstance(val, (dict, list)):
                raise ctx.fail(f"{path}.equals", "must be a scalar")
            if isinstance(val, bool):
                return Condition(lambda c: _values(c.frame, col).astype(bool) == val, (col,), d)
            return Condition(lambda c: np.asarray(c.frame[col] == val, dtype=bool), (col,), d)
        if "in" in d:
            vals = d["in"]
            if not isinstance(vals, list) or not vals:
                raise ctx.fail(f"{path}.in", "must be a non-empty list")
            return Condition(lambda c: np.asarray(c.frame[col].isin(vals), dtype=bool), (col,), d)
        lo = _number(ctx, f"{path}.min", d["min"]) if "min" in d else -np.inf
        hi = _number(ctx, f"{path}.max", d["max"]) if "max" in d else np.inf
        if lo > hi:
            raise ctx.fail(path, f"min {lo} is above max {hi}")

        def _range(c: EvalContext) -> np.ndarray:
            x = _numeric(c.frame, col)
            return (x >= lo) & (x <= hi)  # NaN -> False

        return Condition(_range, (col,), d)

    if kind == "event":
        col = d["event"]
        if not isinstance(col, str) or not col:
            raise ctx.fail(f"{path}.event", "must be a date column name")
        only({"event", "window_years"})
        if "window_years" not in d:
            raise ctx.fail(f"{path}.window_years", "required key is missing (observation window)")
        w = d["window_years"]
        if not _is_number(w) or float(w) != int(w) or not 1 <= w <= 10:
            raise ctx.fail(f"{path}.window_years",
                           f"bad window {w!r}: must be a whole number of years from 1 to 10")
        years = int(w)

        def _event(c: EvalContext) -> np.ndarray:
            t = c.dates(col)
            return (t <= c.eval_cmp) & (t > c.cutoff(years))  # NaT -> False

        return Condition(_event, (col,), d)

    if kind == "ratio":
        only({"ratio", "min", "max"})
        r = _check_keys(ctx, f"{path}.ratio", d["ratio"], {"numerator", "denominator"},
                        {"numerator", "denominator"})
        cols: dict[str, list[str]] = {}
        for part in ("numerator", "denominator"):
            v = r[part]
            if isinstance(v, str):
                v = [v]
            if not isinstance(v, list) or not v or not all(isinstance(x, str) for x in v):
                raise ctx.fail(f"{path}.ratio.{part}", "must be a column name or a list of them")
            cols[part] = v
        if "min" not in d and "max" not in d:
            raise ctx.fail(path, "a ratio condition needs min and/or max")
        lo = _number(ctx, f"{path}.min", d["min"]) if "min" in d else -np.inf
        hi = _number(ctx, f"{path}.max", d["max"]) if "max" in d else np.inf

        def _ratio(c: EvalContext) -> np.ndarray:
            num = sum(np.nan_to_num(_numeric(c.frame, x)) for x in cols["numerator"])
            den = sum(np.nan_to_num(_numeric(c.frame, x)) for x in cols["denominator"])
            with np.errstate(divide="ignore", invalid="ignore"):
                q = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.where(num > 0, np.inf, 0.0))
            return (q >= lo) & (q <= hi)

        return Condition(_ratio, tuple(cols["numerator"] + cols["denominator"]), d)

    if kind == "active_deductions":
        only({"active_deductions"})
        a = _check_keys(ctx, f"{path}.active_deductions", d["active_deductions"], {"min_count"}, {"min_count"})
        k = int(_number(ctx, f"{path}.active_deductions.min_count", a["min_count"], min_value=1, integer=True))

        def _active(c: EvalContext) -> np.ndarray:
            n = np.zeros(len(c.frame), dtype=np.int64)
            for ded in c.policy.deductions:
                n += ded.condition.test(c)
            return n >= k

        return Condition(_active, (), d)

    if kind == "not":
        only({"not"})
        inner = parse_condition(ctx, f"{path}.not", d["not"])
        return Condition(lambda c: ~inner.evaluate(c), inner.columns, d)

    only({kind})
    items = d[kind]
    if not isinstance(items, list) or not items:
        raise ctx.fail(f"{path}.{kind}", "must be a non-empty list of conditions")
    parts = [parse_condition(ctx, f"{path}.{kind}[{i}]", x) for i, x in enumerate(items)]
    op = np.logical_or if kind == "any_of" else np.logical_and
    cols_all = tuple(dict.fromkeys(c for p in parts for c in p.columns))

    def _combine(c: EvalContext) -> np.ndarray:
        out = parts[0].evaluate(c)
        for p in parts[1:]:
            out = op(out, p.evaluate(c))
        return out

    return Condition(_combine, cols_all, d)


# --------------------------------------------------------------------------- policy parts


@dataclass(frozen=True)
class Requirement:
    """A named condition that must hold (base condition, eligibility gate) or that
    triggers (veto, line tier)."""

    code: str
    condition: Condition
    label: dict[str, str]


@dataclass(frozen=True)
class LevelComponent:
    """Points by the level of a categorical honour column (highest level held)."""

    column: str
    levels: dict[str, float]

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def points(self, c: EvalContext) -> np.ndarray:
        """Level -> points by code look-up (pyarrow ``index_in`` for strings, category
        codes for categoricals); a value that is not a level is a ``SchemaError``."""
        s = c.frame[self.column]
        cats = list(self.levels)
        table = np.append(np.asarray([self.levels[k] for k in cats], dtype="float64"), np.nan)
        if isinstance(s.dtype, pd.CategoricalDtype):
            pos = {k: i for i, k in enumerate(cats)}
            remap = np.array([pos.get(str(k), len(cats)) for k in s.cat.categories] + [len(cats)])
            idx = remap[s.cat.codes.to_numpy()]  # code -1 (missing) -> last -> NaN
        else:
            try:
                arr = pa.array(s, from_pandas=True)
                if not pa.types.is_string(arr.type) and not pa.types.is_large_string(arr.type):
                    arr = arr.cast(pa.string())
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
                raise SchemaError(f"column '{self.column}': expected level names, got dtype {s.dtype}") from exc
            found = pc.index_in(arr, value_set=pa.array(cats, type=arr.type))
            idx = found.fill_null(len(cats)).to_numpy(zero_copy_only=False)
        out = table[idx]
        bad = np.isnan(out)
        if bad.any():
            vals = sorted(map(str, pd.unique(s[bad])))[:5]
            raise SchemaError(f"column '{self.column}': values {vals} are not levels of the policy "
                              f"(levels: {cats})")
        return out


@dataclass(frozen=True)
class FlagComponent:
    """Fixed points when a condition holds (e.g. party membership +10)."""

    condition: Condition
    value: float

    @property
    def columns(self) -> tuple[str, ...]:
        return self.condition.columns

    def points(self, c: EvalContext) -> np.ndarray:
        return np.where(self.condition.test(c), self.value, 0.0)


@dataclass(frozen=True)
class Bonus:
    code: str  # bonus_<family>
    family: str
    components: tuple[LevelComponent | FlagComponent, ...]
    combine: str  # "sum" or "max"
    label: dict[str, str]


@dataclass(frozen=True)
class Deduction:
    code: str  # ded_<item>
    item: str
    points: float  # <= 0
    condition: Condition
    label: dict[str, str]


@dataclass(frozen=True)
class LineTier:
    code: str
    condition: Condition
    cap: float
    yuan_per_point: float
    label: dict[str, str]


# --------------------------------------------------------------------------- the policy


_TOP_KEYS = {"name", "title", "reference", "notes", "extends", "validity_years", "base", "bonuses",
             "deductions", "vetoes", "eligibility", "credit_line", "rate", "grades", "approval"}


def _as_array(x: Any) -> np.ndarray:
    if isinstance(x, pd.Series):
        return x.to_numpy(dtype="float64", na_value=np.nan)
    return np.asarray(x, dtype="float64")


def _as_bool(x: Any) -> np.ndarray:
    if isinstance(x, pd.Series):
        return x.to_numpy(dtype=bool, na_value=False)
    return np.asarray(x, dtype=bool)


class Policy:
    """A validated programme standard: items, vetoes, eligibility, and the rules that
    turn *any* policy-scale points (rule points or a model's) into decisions."""

    def __init__(self, data: dict, source: str) -> None:
        self.source = source
        self._data = copy.deepcopy(data)
        ctx = _Ctx(source)
        _check_keys(ctx, "", data, _TOP_KEYS,
                    {"name", "base", "bonuses", "deductions", "vetoes", "credit_line", "rate", "grades"})
        name = data["name"]
        if not isinstance(name, str) or not name:
            raise ctx.fail("name", "must be a non-empty string")
        self.name: str = name
        self.title = _label(ctx, "title", data.get("title"), name)
        self.reference: str = str(data.get("reference", ""))
        notes = data.get("notes", [])
        if isinstance(notes, str):
            notes = [notes]
        if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
            raise ctx.fail("notes", "must be a string or a list of strings")
        self.notes: list[str] = notes
        self.validity_years: float | None = (
            _number(ctx, "validity_years", data["validity_years"], min_value=0.01)
            if data.get("validity_years") is not None else None)
        self.labels: dict[str, dict[str, str]] = {}

        # base item ------------------------------------------------------------
        b = _check_keys(ctx, "base", data["base"], {"points", "label", "conditions"}, {"points"})
        self.base_points = _number(ctx, "base.points", b["points"], min_value=0)
        self.labels["base"] = _label(ctx, "base.label", b.get("label"), "base points")
        self.base_conditions = self._requirements(ctx, "base.conditions", b.get("conditions") or {}, "base")

        # bonuses --------------------------------------------------------------
        self.bonuses: list[Bonus] = []
        bon = data["bonuses"] or {}
        if not isinstance(bon, dict):
            raise ctx.fail("bonuses", "expected a mapping of bonus families")
        for fam, spec in bon.items():
            p = f"bonuses.{fam}"
            _check_keys(ctx, p, spec, {"label", "combine", "components"}, {"components"})
            comb = spec.get("combine", "sum")
            if comb not in ("sum", "max"):
                raise ctx.fail(f"{p}.combine", f"must be 'sum' or 'max', got {comb!r}")
            comps_spec = spec["components"]
            if not isinstance(comps_spec, list) or not comps_spec:
                raise ctx.fail(f"{p}.components", "must be a non-empty list")
            comps: list[LevelComponent | FlagComponent] = []
            for i, cs in enumerate(comps_spec):
                comps.append(self._component(ctx, f"{p}.components[{i}]", cs))
            code = f"bonus_{fam}"
            self.labels[code] = _label(ctx, f"{p}.label", spec.get("label"), fam)
            self.bonuses.append(Bonus(code, str(fam), tuple(comps), comb, self.labels[code]))

        # deductions -----------------------------------------------------------
        self.deductions: list[Deduction] = []
        ded = data["deductions"] or {}
        if not isinstance(ded, dict):
            raise ctx.fail("deductions", "expected a mapping of deduction items")
        for item, spec in ded.items():
            p = f"deductions.{item}"
            if not isinstance(spec, dict):
                raise ctx.fail(p, "expected a mapping")
            if "points" not in spec:
                raise ctx.fail(f"{p}.points", "required key is missing")
            pts = _number(ctx, f"{p}.points", spec["points"])
            if pts > 0:
                raise ctx.fail(f"{p}.points", f"a deduction must be <= 0 points, got {pts}")
            cond = parse_condition(ctx, p, spec, {"points", "label"})
            code = f"ded_{item}"
            self.labels[code] = _label(ctx, f"{p}.label", spec.get("label"), str(item))
            self.deductions.append(Deduction(code, str(item), pts, cond, self.labels[code]))

        # vetoes and eligibility -------------------------------------------------
        self.veto_rules = self._requirements(ctx, "vetoes", data["vetoes"] or {}, "veto")
        if len(self.veto_rules) > 62:
            raise ctx.fail("vetoes", "at most 62 veto families")
        self.eligibility_rules = self._requirements(ctx, "eligibility", data.get("eligibility") or {}, "inelig")
        if len(self.eligibility_rules) > 62:
            raise ctx.fail("eligibility", "at most 62 eligibility gates")

        # credit line ------------------------------------------------------------
        cl = _check_keys(ctx, "credit_line", data["credit_line"],
                         {"points_per_step", "yuan_per_step", "cap", "round_down_to", "tiers"},
                         {"points_per_step", "yuan_per_step", "cap"})
        pps = _number(ctx, "credit_line.points_per_step", cl["points_per_step"])
        if pps <= 0:
            raise ctx.fail("credit_line.points_per_step", f"must be > 0, got {pps}")
        yps = _number(ctx, "credit_line.yuan_per_step", cl["yuan_per_step"], min_value=0)
        self.points_per_step = pps
        self.yuan_per_point = yps / pps
        cap = cl["cap"]
        if _is_number(cap) and cap < 0:
            raise ctx.fail("credit_line.cap", f"negative cap {cap}")
        self.cap = _number(ctx, "credit_line.cap", cap, min_value=0)
        self.round_down_to = _number(ctx, "credit_line.round_down_to", cl.get("round_down_to", 0), min_value=0)
        self.line_tiers: list[LineTier] = []
        for tname, ts in (cl.get("tiers") or {}).items():
            p = f"credit_line.tiers.{tname}"
            if not isinstance(ts, dict) or "when" not in ts or "cap" not in ts:
                raise ctx.fail(p, "a tier needs 'when' and 'cap'")
            _check_keys(ctx, p, ts, {"when", "cap", "yuan_per_step", "label"})
            if _is_number(ts["cap"]) and ts["cap"] < 0:
                raise ctx.fail(f"{p}.cap", f"negative cap {ts['cap']}")
            tcap = _number(ctx, f"{p}.cap", ts["cap"], min_value=0)
            typs = _number(ctx, f"{p}.yuan_per_step", ts.get("yuan_per_step", yps), min_value=0)
            cond = parse_condition(ctx, f"{p}.when", ts["when"])
            code = f"tier_{tname}"
            self.labels[code] = _label(ctx, f"{p}.label", ts.get("label"), str(tname))
            self.line_tiers.append(LineTier(code, cond, tcap, typs / pps, self.labels[code]))

        # rate -------------------------------------------------------------------
        r = _check_keys(ctx, "rate", data["rate"],
                        {"max_rate", "lpr", "lpr_date", "points_at_max_rate", "points_at_lpr", "round_to"},
                        {"max_rate", "lpr", "points_at_max_rate", "points_at_lpr"})
        self.max_rate = _number(ctx, "rate.max_rate", r["max_rate"], min_value=0, max_value=1)
        self.lpr = _number(ctx, "rate.lpr", r["lpr"], min_value=0, max_value=1)
        if self.lpr > self.max_rate:
            raise ctx.fail("rate.lpr", f"LPR {self.lpr} is above the maximum rate {self.max_rate}")
        self.points_at_max_rate = _number(ctx, "rate.points_at_max_rate", r["points_at_max_rate"])
        self.points_at_lpr = _number(ctx, "rate.points_at_lpr", r["points_at_lpr"])
        if self.points_at_lpr <= self.points_at_max_rate:
            raise ctx.fail("rate.points_at_lpr", "must be above rate.points_at_max_rate (rates fall as points rise)")
        self.rate_round_to = _number(ctx, "rate.round_to", r.get("round_to", 0), min_value=0)
        self.lpr_date = str(r.get("lpr_date", ""))

        # grades -----------------------------------------------------------------
        g = _check_keys(ctx, "grades", data["grades"], {"cutoffs", "vetoed_grade", "a_or_above"}, {"cutoffs"})
        cuts = g["cutoffs"]
        _check_keys(ctx, "grades.cutoffs", cuts, set(GRADE_BANDS[:-1]), set(GRADE_BANDS[:-1]))
        vals = [_number(ctx, f"grades.cutoffs.{k}", cuts[k]) for k in GRADE_BANDS[:-1]]
        for k, a, bb in zip(GRADE_BANDS[1:-1], vals, vals[1:]):
            if bb >= a:
                raise ctx.fail(f"grades.cutoffs.{k}", "cut-offs must fall strictly from A1 to E1")
        self.grade_cutoffs: dict[str, float] = dict(zip(GRADE_BANDS[:-1], vals))
        vg = g.get("vetoed_grade", "E2")
        if vg is not None and vg not in GRADE_BANDS:
            raise ctx.fail("grades.vetoed_grade", f"must be one of {GRADE_BANDS} or null")
        self.vetoed_grade: str | None = vg
        ab = g.get("a_or_above", ["A1", "A2"])
        if not isinstance(ab, list) or not set(ab) <= set(GRADE_BANDS):
            raise ctx.fail("grades.a_or_above", f"must be a list of grades from {GRADE_BANDS}")
        self.a_or_above: tuple[str, ...] = tuple(ab)

        # approval ---------------------------------------------------------------
        ap = _check_keys(ctx, "approval", data.get("approval") or {}, {"min_points"})
        self.min_points = _number(ctx, "approval.min_points", ap.get("min_points", 0))

        for code, en, zh in (("grade", "grade", "等级"),):
            self.labels.setdefault(code, {"en": en, "zh": zh})
        self._validate_columns(ctx)

    # ----------------------------------------------------------------- parsing helpers

    def _requirements(self, ctx: _Ctx, path: str, spec: Any, prefix: str) -> list[Requirement]:
        if not isinstance(spec, dict):
            raise ctx.fail(path, "expected a mapping of named conditions")
        out = []
        for key, cs in spec.items():
            p = f"{path}.{key}"
            if not isinstance(cs, dict):
                raise ctx.fail(p, "expected a condition mapping")
            cond = parse_condition(ctx, p, cs, {"label"})
            code = f"{prefix}_{key}"
            self.labels[code] = _label(ctx, f"{p}.label", cs.get("label"), str(key))
            out.append(Requirement(code, cond, self.labels[code]))
        return out

    def _component(self, ctx: _Ctx, path: str, cs: Any) -> LevelComponent | FlagComponent:
        if not isinstance(cs, dict):
            raise ctx.fail(path, "expected a mapping")
        if "levels" in cs:
            _check_keys(ctx, path, cs, {"column", "levels"}, {"column", "levels"})
            col, lv = cs["column"], cs["levels"]
            if not isinstance(lv, dict) or not lv:
                raise ctx.fail(f"{path}.levels", "must be a mapping level -> points")
            levels = {str(k): _number(ctx, f"{path}.levels.{k}", v, min_value=0) for k, v in lv.items()}
            if col in SCHEMA.names and SCHEMA[col].categories:
                cats = SCHEMA[col].categories
                missing = [c for c in cats if c not in levels]
                if missing:
                    raise ctx.fail(f"{path}.levels.{missing[0]}",
                                   f"missing level (column '{col}' has levels {list(cats)})")
                unknown = [k for k in levels if k not in cats]
                if unknown:
                    raise ctx.fail(f"{path}.levels.{unknown[0]}",
                                   f"unknown level (column '{col}' has levels {list(cats)})")
            return LevelComponent(col, levels)
        if "points" not in cs:
            raise ctx.fail(path, "a component needs 'levels' (with column) or 'points' with a condition")
        pts = _number(ctx, f"{path}.points", cs["points"], min_value=0)
        return FlagComponent(parse_condition(ctx, path, cs, {"points"}), pts)

    def _validate_columns(self, ctx: _Ctx) -> None:
        """Columns named in the policy that the schema declares must be used with a
        matching type (dates for events); user columns outside the schema are allowed."""
        names = set(SCHEMA.names)

        def walk(spec: Any, path: str) -> None:
            if isinstance(spec, dict):
                ev = spec.get("event")
                if isinstance(ev, str) and ev in names and SCHEMA[ev].dtype != "date":
                    raise ctx.fail(f"{path}.event", f"column '{ev}' is not a date column")
                for k, v in spec.items():
                    walk(v, f"{path}.{k}" if path else str(k))
            elif isinstance(spec, list):
                for i, v in enumerate(spec):
                    walk(v, f"{path}[{i}]")

        walk(self._data, "")

    # ----------------------------------------------------------------- introspection

    @property
    def item_codes(self) -> list[str]:
        """Item columns of ``RuleScores.items``, in order: base, bonuses, deductions."""
        return ["base"] + [b.code for b in self.bonuses] + [d.code for d in self.deductions]

    @property
    def veto_codes(self) -> list[str]:
        return [r.code for r in self.veto_rules]

    @property
    def ineligible_codes(self) -> list[str]:
        return [r.code for r in self.eligibility_rules]

    @property
    def required_columns(self) -> list[str]:
        """Every household column the policy reads (``snapshot_date`` is added by
        ``score_rules`` only when ``eval_date`` is None)."""
        cols: list[str] = []
        for r in self.base_conditions + self.veto_rules + self.eligibility_rules:
            cols += r.condition.columns
        for b in self.bonuses:
            for c in b.components:
                cols += c.columns
        for d in self.deductions:
            cols += d.condition.columns
        for t in self.line_tiers:
            cols += t.condition.columns
        return list(dict.fromkeys(cols))

    def __repr__(self) -> str:
        return f"Policy(name={self.name!r}, source={self.source!r})"

    def to_dict(self) -> dict:
        """The resolved policy (``extends`` already applied) as plain data."""
        return copy.deepcopy(self._data)

    def to_yaml_text(self) -> str:
        """The exact resolved policy as YAML; ``Policy.from_yaml_text`` reads it back."""
        head = f"# village-credit policy '{self.name}' (resolved from {self.source})\n"
        return head + yaml.safe_dump(self._data, allow_unicode=True, sort_keys=False, width=100)

    @classmethod
    def from_yaml_text(cls, text: str, source: str = "<text>") -> "Policy":
        """Load a policy from YAML text (e.g. one a model stored); ``extends`` resolves
        against the shipped policies."""
        return _from_raw(_parse_yaml(text, source), source, ())

    # ----------------------------------------------------------------- evaluation

    def _context(self, households: pd.DataFrame, eval_date: Any, extra: tuple[str, ...] = ()) -> EvalContext:
        need = list(extra)
        if eval_date is None:
            need.append("snapshot_date")
        check_columns(households, need, what=f"policy '{self.name}'")
        return EvalContext(households, eval_dates(households, eval_date), self)

    def _codes(self, flags: list[np.ndarray], codes: list[str], n: int) -> tuple[np.ndarray, Any]:
        """(any flag, ';'-joined codes) via a bitmask look-up, not string ops per row."""
        if not flags:
            return np.zeros(n, dtype=bool), strings_from_lut([""], np.zeros(n, dtype=np.int64))
        mask = np.zeros(n, dtype=np.int64)
        for i, f in enumerate(flags):
            mask |= f.astype(np.int64) << i
        if len(codes) <= 20:  # O(n) look-up table, no sort
            present = np.flatnonzero(np.bincount(mask, minlength=1))
            lut = [""] * (int(present[-1]) + 1 if len(present) else 1)
            for m in present:
                lut[m] = CODE_SEP.join(c for i, c in enumerate(codes) if (int(m) >> i) & 1)
            return mask != 0, strings_from_lut(lut, mask)
        uniq, inv = np.unique(mask, return_inverse=True)
        lut = [CODE_SEP.join(c for i, c in enumerate(codes) if (int(m) >> i) & 1) for m in uniq]
        return mask != 0, strings_from_lut(lut, inv)

    def _veto_arrays(self, c: EvalContext) -> tuple[np.ndarray, Any]:
        return self._codes([r.condition.test(c) for r in self.veto_rules], self.veto_codes, len(c.frame))

    def _eligibility_arrays(self, c: EvalContext) -> tuple[np.ndarray, Any]:
        fails = [~r.condition.test(c) for r in self.eligibility_rules]
        any_fail, codes = self._codes(fails, self.ineligible_codes, len(c.frame))
        return ~any_fail, codes

    def vetoes(self, households: pd.DataFrame, eval_date: Any = None) -> pd.DataFrame:
        """Active vetoes per household: ``vetoed`` (bool) and ``veto_codes`` (';'-joined).

        Usable on its own: the blend model applies it so that vetoes always win."""
        c = self._context(households, eval_date, tuple(
            col for r in self.veto_rules for col in r.condition.columns) + self._ded_columns_if_needed())
        any_, codes = self._veto_arrays(c)
        return pd.DataFrame({"vetoed": any_, "veto_codes": codes}, index=households.index)

    def eligibility(self, households: pd.DataFrame, eval_date: Any = None) -> pd.DataFrame:
        """Eligibility gates per household: ``eligible`` (bool) and ``ineligible_codes``
        (the gates failed). A policy without gates finds everyone eligible."""
        c = self._context(households, eval_date, tuple(
            col for r in self.eligibility_rules for col in r.condition.columns) + self._ded_columns_if_needed())
        ok, codes = self._eligibility_arrays(c)
        return pd.DataFrame({"eligible": ok, "ineligible_codes": codes}, index=households.index)

    def _ded_columns_if_needed(self) -> tuple[str, ...]:
        uses = any("active_deductions" in str(r.condition.spec) for r in self.veto_rules + self.eligibility_rules)
        return tuple(col for d in self.deductions for col in d.condition.columns) if uses else ()

    def line_params(self, households: pd.DataFrame | None, n: int,
                    eval_date: Any = None, _ctx: EvalContext | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per-row (cap, yuan per point): the first matching tier, else the default."""
        cap = np.full(n, self.cap)
        ypp = np.full(n, self.yuan_per_point)
        if households is None or not self.line_tiers:
            return cap, ypp
        c = _ctx or self._context(households, eval_date,
                                  tuple(col for t in self.line_tiers for col in t.condition.columns))
        done = np.zeros(n, dtype=bool)
        for t in self.line_tiers:
            hit = t.condition.test(c) & ~done
            cap[hit] = t.cap
            ypp[hit] = t.yuan_per_point
            done |= hit
        return cap, ypp

    def credit_line(self, points: Any, eligible: Any = True, vetoed: Any = False, *,
                    households: pd.DataFrame | None = None, eval_date: Any = None,
                    _ctx: EvalContext | None = None) -> np.ndarray:
        """Line in yuan: ``min(cap, points * yuan_per_point)`` (floored at 0, optionally
        rounded down), and 0 when vetoed, ineligible or below ``approval.min_points``.

        Pass ``households`` to apply the policy's line tiers (e.g. strong borrowers);
        without it every row gets the default cap and scale."""
        p = _as_array(points)
        n = p.shape[0] if p.ndim else 1
        p = np.broadcast_to(p, (n,))
        cap, ypp = self.line_params(households, n, eval_date, _ctx=_ctx)
        line = np.minimum(cap, np.maximum(0.0, np.nan_to_num(p, nan=0.0) * ypp))
        if self.round_down_to > 0:
            line = np.floor(line / self.round_down_to) * self.round_down_to
        ok = (np.broadcast_to(_as_bool(eligible), (n,)) & ~np.broadcast_to(_as_bool(vetoed), (n,))
              & (p >= self.min_points))  # NaN points -> False
        return np.where(ok, line, 0.0)

    def rate(self, points: Any) -> np.ndarray:
        """Annual rate: ``max_rate`` at or below ``points_at_max_rate``, falling linearly
        to the LPR at ``points_at_lpr``; always inside [LPR, max_rate] (NaN stays NaN)."""
        p = _as_array(points)
        frac = np.clip((p - self.points_at_max_rate) / (self.points_at_lpr - self.points_at_max_rate), 0.0, 1.0)
        r = self.max_rate - frac * (self.max_rate - self.lpr)
        if self.rate_round_to > 0:
            r = np.round(r / self.rate_round_to) * self.rate_round_to
        return np.clip(r, self.lpr, self.max_rate)

    def grade(self, points: Any) -> np.ndarray:
        """Grade A1..E2 from the policy's cut-offs (a cut-off is the band's lowest
        points, inclusive; NaN points give E2)."""
        p = _as_array(points)
        # ascending edges: E1, D2, ..., A1 -> band index from the bottom
        edges = np.array([self.grade_cutoffs[g] for g in reversed(GRADE_BANDS[:-1])])
        idx = np.searchsorted(edges, np.nan_to_num(p, nan=-np.inf), side="right")  # 0 = E2 .. 9 = A1
        bands = np.array(list(reversed(GRADE_BANDS)), dtype=object)
        return bands[idx]

    def grade_index(self, points: Any) -> np.ndarray:
        """Band position per row, 0 = A1 .. 9 = E2 (what ``grade`` looks up)."""
        edges = np.array([self.grade_cutoffs[g] for g in reversed(GRADE_BANDS[:-1])])
        return 9 - np.searchsorted(edges, np.nan_to_num(_as_array(points), nan=-np.inf), side="right")

    def valid_until(self, eval_dates_: Any) -> pd.Series | pd.Timestamp | None:
        """End of the rating's validity (``validity_years`` after evaluation), or None."""
        if self.validity_years is None:
            return None
        months = int(round(self.validity_years * 12))
        return pd.to_datetime(eval_dates_) + pd.DateOffset(months=months)


# --------------------------------------------------------------------------- inputs


def strings_from_lut(lut: list[str], idx: np.ndarray) -> Any:
    """``lut[idx]`` as a pandas string array, built in Arrow (a per-row object array
    costs ~10x more to turn into pandas' string dtype)."""
    return pc.take(pa.array(lut, type=pa.string()), pa.array(np.asarray(idx, dtype=np.int64))).to_pandas().array



def check_columns(households: pd.DataFrame, columns: list[str] | tuple[str, ...], what: str) -> None:
    """Raise one ``SchemaError`` listing *all* missing columns."""
    if not isinstance(households, pd.DataFrame):
        raise SchemaError(f"{what}: expected a pandas DataFrame, got {type(households).__name__}")
    missing = [c for c in dict.fromkeys(columns) if c not in households.columns]
    if missing:
        raise SchemaError(f"{what}: household table lacks {len(missing)} required column(s): "
                          + ", ".join(missing))


def eval_dates(households: pd.DataFrame, eval_date: Any) -> np.ndarray:
    """Per-row evaluation dates: each row's ``snapshot_date`` when ``eval_date`` is None,
    else the one date given (str, ``date``, ``datetime`` or ``Timestamp``)."""
    n = len(households)
    if eval_date is None:
        s = households["snapshot_date"]
        try:
            t = pd.to_datetime(s, errors="raise").to_numpy(dtype="datetime64[ns]")
        except (ValueError, TypeError) as exc:
            raise SchemaError(f"column 'snapshot_date': not parseable as dates ({exc})") from exc
        if np.isnat(t).any():
            raise SchemaError("column 'snapshot_date': missing dates; pass eval_date explicitly")
        return t
    try:
        ts = pd.Timestamp(eval_date)
    except (ValueError, TypeError) as exc:
        raise SchemaError(f"eval_date {eval_date!r}: not a date ({exc})") from exc
    if pd.isna(ts):
        raise SchemaError(f"eval_date {eval_date!r}: not a date")
    if ts.tzinfo is not None:
        ts = ts.tz_convert(None)
    return np.full(n, ts.to_datetime64().astype("datetime64[ns]"))


# --------------------------------------------------------------------------- loading


def _shipped_dir() -> Path:
    return Path(str(resources.files("village_credit.rules").joinpath(POLICY_DIR)))


def list_policies() -> list[str]:
    """Names of the policies shipped with the package."""
    return sorted(p.stem for p in _shipped_dir().glob("*.yaml"))


def _parse_yaml(text: str, source: str) -> dict:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: key '': a policy file must be a mapping, got {type(data).__name__}")
    # YAML turns unquoted dates into date objects: keep plain strings in policies
    for k in ("lpr_date",):
        r = data.get("rate")
        if isinstance(r, dict) and isinstance(r.get(k), date):
            r[k] = r[k].isoformat()
    return data


def _resolve_path(name_or_path: str | Path) -> Path:
    s = str(name_or_path)
    p = Path(s)
    if p.suffix in (".yaml", ".yml") or p.parent != Path(".") or p.exists():
        if not p.is_file():
            raise PolicyError(f"{s}: policy file not found")
        return p
    shipped = _shipped_dir() / f"{s}.yaml"
    if not shipped.is_file():
        raise PolicyError(f"{s}: no such policy (shipped: {', '.join(list_policies())}); "
                          "pass a YAML path for your own")
    return shipped


def _raw(path: Path, chain: tuple[str, ...]) -> dict:
    src = str(path)
    if src in chain:
        raise PolicyError(f"{src}: key 'extends': circular extends ({' -> '.join(chain + (src,))})")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{src}: cannot read policy file ({exc})") from exc
    return _resolve_extends(_parse_yaml(text, src), src, chain + (src,), path.parent)


def _resolve_extends(data: dict, src: str, chain: tuple[str, ...], here: Path | None = None) -> dict:
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str) or not parent:
        raise PolicyError(f"{src}: key 'extends': must be a policy name or path")
    try:
        if here is not None and (parent.endswith((".yaml", ".yml")) and not Path(parent).is_absolute()):
            ppath = _resolve_path(here / parent)
        else:
            ppath = _resolve_path(parent)
    except PolicyError as exc:
        raise PolicyError(f"{src}: key 'extends': {exc}") from exc
    base = _raw(ppath, chain)
    base.pop("notes", None) if "notes" in data else None
    return _deep_merge(base, data)


def _from_raw(data: dict, source: str, chain: tuple[str, ...]) -> Policy:
    return Policy(_resolve_extends(data, source, chain), source)


def load_policy(name_or_path: str | Path | Policy) -> Policy:
    """Load and validate a shipped policy by name, or the user's own YAML by path.

    Raises ``PolicyError`` naming the file, the key path and the problem."""
    if isinstance(name_or_path, Policy):
        return name_or_path
    path = _resolve_path(name_or_path)
    return Policy(_raw(path, ()), str(path))
