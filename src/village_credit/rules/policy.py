"""Programme standards as declarative, validated policies (YAML).

Why data, not code: an analyst must be able to ask "what if the age cut-off went
away?" by editing one YAML file, and a model must be able to store the exact policy
it was built under (``Policy.to_yaml_text``). So every number that turns points into
decisions (item points, observation windows, line scale and caps, the rate band,
grade cut-offs) lives in the policy file, and this module only reads, resolves
(``extends``) and evaluates it; the file format and every check on it (keys, types,
ranges, the condition grammar) are declared in :mod:`village_credit.rules.policy_format`.

A policy file has these top-level keys (see ``policies/jinxiang_2022.yaml``)::

    name, title, reference, notes, extends, validity_years,
    base, bonuses, deductions, vetoes, eligibility,
    credit_line, rate, grades, approval, parameters

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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from village_credit.errors import PolicyError, SchemaError
from village_credit.rules.conditions import (
    Condition,
    EvalContext,
    check_columns,
    eval_dates,
    parse_condition,
    strings_from_lut,
)
from village_credit.rules.policy_format import (
    GRADE_BANDS,
    LABEL_LANGUAGES,
    BonusSpec,
    ComponentSpec,
    CreditLineSpec,
    DeductionSpec,
    Label,
    RateSpec,
    RequirementSpec,
    validate_policy,
)
from village_credit.yaml_io import safe_load

__all__ = ["CODE_SEP", "GRADE_BANDS", "LABEL_LANGUAGES", "Policy", "list_policies", "load_policy", "split_codes"]

CODE_SEP = ";"
"""Separator inside ``veto_codes`` / ``ineligible_codes`` strings."""

POLICY_DIR = "policies"


def split_codes(codes: str) -> list[str]:
    """``'veto_crime;veto_cult'`` -> ``['veto_crime', 'veto_cult']`` ('' -> [])."""
    return [c for c in codes.split(CODE_SEP) if c]


def _label(label: Label | None, default_en: str) -> dict[str, str]:
    if label is None:
        return {"en": default_en, "zh": default_en}
    return {"en": label.en, "zh": label.zh}


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




def _component(spec: ComponentSpec) -> LevelComponent | FlagComponent:
    if spec.levels is not None:
        return LevelComponent(spec.column, dict(spec.levels))
    return FlagComponent(parse_condition(spec), spec.points)


# --------------------------------------------------------------------------- the policy


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
    turn *any* policy-scale points (rule points or a model's) into decisions.

    Built from a resolved policy (``extends`` applied) that
    :class:`~village_credit.rules.policy_format.PolicyFile` has validated; use
    :func:`load_policy` or :meth:`from_yaml_text` rather than the constructor.

    >>> from village_credit.rules import load_policy
    >>> p = load_policy("jinxiang_2022")
    >>> p.name, p.base_points, len(p.deductions), len(p.veto_rules)
    ('jinxiang_2022', 30.0, 11, 6)
    >>> p.credit_line([25.0, 200.0, -5.0]).tolist(), p.grade([65.0, 30.0, -50.0]).tolist()
    ([25000.0, 100000.0, 0.0], ['A1', 'A2', 'E2'])
    """

    def __init__(self, data: dict, source: str) -> None:
        spec = validate_policy(data, source)
        self.source = source
        self._data = copy.deepcopy(data)
        self.name: str = spec.name
        self.title = _label(spec.title, spec.name)
        self.reference: str = spec.reference
        self.notes: list[str] = spec.note_list
        self.validity_years: float | None = spec.validity_years
        self.labels: dict[str, dict[str, str]] = {"base": _label(spec.base.label, "base points")}
        self.base_points = spec.base.points
        self.base_conditions = self._requirements(spec.base.conditions, "base")
        self.bonuses: list[Bonus] = [self._bonus(fam, b) for fam, b in (spec.bonuses or {}).items()]
        self.deductions: list[Deduction] = [self._deduction(k, d) for k, d in (spec.deductions or {}).items()]
        self.veto_rules = self._requirements(spec.vetoes, "veto")
        self.eligibility_rules = self._requirements(spec.eligibility, "inelig")
        self._set_line(spec.credit_line)
        self._set_rate(spec.rate)
        self.grade_cutoffs: dict[str, float] = spec.grades.cutoffs.as_dict()
        self.vetoed_grade: str | None = spec.grades.vetoed_grade
        self.a_or_above: tuple[str, ...] = tuple(spec.grades.a_or_above)
        self.min_points = spec.approval.min_points if spec.approval is not None else 0.0
        self.parameters = spec.parameters  # what the policy lab may vary (None: nothing declared)
        self.labels.setdefault("grade", {"en": "grade", "zh": "等级"})

    # ----------------------------------------------------------------- construction

    def _requirements(self, specs: dict[str, RequirementSpec] | None, prefix: str) -> list[Requirement]:
        out = []
        for key, spec in (specs or {}).items():
            code = f"{prefix}_{key}"
            self.labels[code] = _label(spec.label, key)
            out.append(Requirement(code, parse_condition(spec), self.labels[code]))
        return out

    def _bonus(self, family: str, spec: BonusSpec) -> Bonus:
        code = f"bonus_{family}"
        self.labels[code] = _label(spec.label, family)
        return Bonus(code, family, tuple(_component(c) for c in spec.components), spec.combine, self.labels[code])

    def _deduction(self, item: str, spec: DeductionSpec) -> Deduction:
        code = f"ded_{item}"
        self.labels[code] = _label(spec.label, item)
        return Deduction(code, item, spec.points, parse_condition(spec), self.labels[code])

    def _set_line(self, cl: CreditLineSpec) -> None:
        self.points_per_step = cl.points_per_step
        self.yuan_per_point = cl.yuan_per_step / cl.points_per_step
        self.cap = cl.cap
        self.round_down_to = cl.round_down_to
        self.line_tiers: list[LineTier] = []
        for name, tier in (cl.tiers or {}).items():
            code = f"tier_{name}"
            self.labels[code] = _label(tier.label, name)
            yps = cl.yuan_per_step if tier.yuan_per_step is None else tier.yuan_per_step
            self.line_tiers.append(LineTier(code, parse_condition(tier.when), tier.cap,
                                            yps / cl.points_per_step, self.labels[code]))

    def _set_rate(self, r: RateSpec) -> None:
        self.max_rate, self.lpr, self.lpr_date = r.max_rate, r.lpr, r.lpr_date
        self.points_at_max_rate, self.points_at_lpr = r.points_at_max_rate, r.points_at_lpr
        self.rate_round_to = r.round_to

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
    def from_yaml_text(cls, text: str, source: str = "<text>") -> Policy:
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
        months = round(self.validity_years * 12)
        return pd.to_datetime(eval_dates_) + pd.DateOffset(months=months)


# --------------------------------------------------------------------------- loading


def _shipped_dir() -> Path:
    return Path(str(resources.files("village_credit.rules").joinpath(POLICY_DIR)))


def list_policies() -> list[str]:
    """Names of the policies shipped with the package.

    >>> from village_credit.rules import list_policies
    >>> list_policies()
    ['jinxiang_2022', 'jinxiang_2022_no_age_cutoff', 'rencheng_2025', 'tongxiang', 'xx_county']
    """
    return sorted(p.stem for p in _shipped_dir().glob("*.yaml"))


def _parse_yaml(text: str, source: str) -> dict:
    try:
        data = safe_load(text)
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

    Raises ``PolicyError`` naming the file, the key path and the problem.

    >>> from village_credit import load_policy
    >>> load_policy("xx_county").cap, load_policy("xx_county").ineligible_codes
    (100000.0, ['inelig_age'])
    >>> import pathlib, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = pathlib.Path(tmp, "pilot.yaml")
    ...     _ = path.write_text("extends: jinxiang_2022\\nname: pilot\\ncredit_line: {cap: -1}\\n")
    ...     load_policy(path)
    Traceback (most recent call last):
    ...
    village_credit.errors.PolicyError: .../pilot.yaml: credit_line.cap: Input should be greater than or equal to 0, got -1
    """
    if isinstance(name_or_path, Policy):
        return name_or_path
    path = _resolve_path(name_or_path)
    return Policy(_raw(path, ()), str(path))
