"""Conditions compiled to vectorised evaluators, and the inputs they read.

Why compiled once: a policy's conditions (base conditions, bonus flags, deductions,
vetoes, gates, line tiers) are checked by :class:`~village_credit.rules.policy_format.ConditionSpec`
when the file loads; here each becomes a closure over numpy arrays, evaluated once
per scoring call (:class:`EvalContext` caches results, so vetoes that count active
deductions reuse them). One small builder per condition kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from village_credit.errors import SchemaError
from village_credit.rules.policy_format import ConditionSpec

Evaluator = Callable[["EvalContext"], np.ndarray]


@dataclass
class EvalContext:
    """Inputs a condition needs: the frame, per-row evaluation dates, the policy."""

    frame: pd.DataFrame
    eval_dates: np.ndarray  # datetime64[ns], one per row
    policy: Any  # the Policy being scored (typed loosely: policy.py builds on this module)
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
    """A compiled condition: its evaluator, the columns it reads, its spec as written."""

    evaluate: Evaluator
    columns: tuple[str, ...]
    spec: dict

    def test(self, ctx: EvalContext) -> np.ndarray:
        """Evaluate once per scoring context (deductions are reused by vetoes)."""
        key = id(self)
        if key not in ctx._results:
            ctx._results[key] = np.asarray(self.evaluate(ctx), dtype=bool)
        return ctx._results[key]


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


def _bounds(spec: ConditionSpec) -> tuple[float, float]:
    return (-np.inf if spec.min is None else spec.min, np.inf if spec.max is None else spec.max)


def _column(spec: ConditionSpec) -> Evaluator:
    col, keys = spec.column, spec.condition_keys
    if "equals" in keys:
        val = spec.equals
        if isinstance(val, bool):
            return lambda c: _values(c.frame, col).astype(bool) == val
        return lambda c: np.asarray(c.frame[col] == val, dtype=bool)
    if "in" in keys:
        vals = spec.in_
        return lambda c: np.asarray(c.frame[col].isin(vals), dtype=bool)
    lo, hi = _bounds(spec)

    def _range(c: EvalContext) -> np.ndarray:
        x = _numeric(c.frame, col)
        return (x >= lo) & (x <= hi)  # NaN -> False

    return _range


def _event(spec: ConditionSpec) -> Evaluator:
    col, years = spec.event, int(spec.window_years)

    def _active(c: EvalContext) -> np.ndarray:
        t = c.dates(col)
        return (t <= c.eval_cmp) & (t > c.cutoff(years))  # NaT -> False

    return _active


def _ratio(spec: ConditionSpec) -> Evaluator:
    num_cols, den_cols = spec.ratio.numerator, spec.ratio.denominator
    lo, hi = _bounds(spec)

    def _in_band(c: EvalContext) -> np.ndarray:
        num = sum(np.nan_to_num(_numeric(c.frame, x)) for x in num_cols)
        den = sum(np.nan_to_num(_numeric(c.frame, x)) for x in den_cols)
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.where(num > 0, np.inf, 0.0))
        return (q >= lo) & (q <= hi)

    return _in_band


def _active_deductions(spec: ConditionSpec) -> Evaluator:
    k = int(spec.active_deductions.min_count)

    def _count(c: EvalContext) -> np.ndarray:
        n = np.zeros(len(c.frame), dtype=np.int64)
        for ded in c.policy.deductions:
            n += ded.condition.test(c)
        return n >= k

    return _count


def _combined(parts: list[Condition], op: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Evaluator:
    def _combine(c: EvalContext) -> np.ndarray:
        out = parts[0].evaluate(c)
        for p in parts[1:]:
            out = op(out, p.evaluate(c))
        return out

    return _combine


def _columns(spec: ConditionSpec) -> tuple[str, ...]:
    if spec.column is not None:
        return (spec.column,)
    if spec.event is not None:
        return (spec.event,)
    if spec.ratio is not None:
        return tuple(spec.ratio.numerator + spec.ratio.denominator)
    return ()


_BUILDERS: dict[str, Callable[[ConditionSpec], Evaluator]] = {
    "column": _column, "event": _event, "ratio": _ratio, "active_deductions": _active_deductions}


def parse_condition(spec: ConditionSpec) -> Condition:
    """Compile a validated condition into a vectorised :class:`Condition`."""
    kind = spec.kind
    if kind in _BUILDERS:
        return Condition(_BUILDERS[kind](spec), _columns(spec), spec.condition())
    if kind == "not":
        inner = parse_condition(spec.not_)
        return Condition(lambda c: ~inner.evaluate(c), inner.columns, spec.condition())
    parts = [parse_condition(x) for x in (spec.any_of if kind == "any_of" else spec.all_of)]
    op = np.logical_or if kind == "any_of" else np.logical_and
    cols = tuple(dict.fromkeys(c for p in parts for c in p.columns))
    return Condition(_combined(parts, op), cols, spec.condition())


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
