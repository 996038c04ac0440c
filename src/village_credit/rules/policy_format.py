"""The policy file format, declared: what a policy YAML may hold, checked at load.

Why a declared model: every check on a policy file (types, ranges, choices, the
condition grammar, grade cut-offs falling from A1 to E1, honour levels matching the
household schema) lives here, once, and the same model generates the JSON Schema an
editor uses to complete and check a policy as it is typed
(``schemas/policy.schema.json``). :class:`~village_credit.rules.policy.Policy` is
built from a validated :class:`PolicyFile`; it checks nothing by hand.

The model describes the *resolved* policy (``extends`` applied, see
:mod:`village_credit.rules.policy`); the JSON Schema also accepts a file that
``extends`` another as a partial overlay (any key may be left out, ``null`` deletes
an inherited key).

>>> rate = {"max_rate": 0.08, "lpr": 0.09, "points_at_max_rate": 30, "points_at_lpr": 130}
>>> validate_document(RateSpec, rate, source="mine.yaml", error=PolicyError)
Traceback (most recent call last):
...
village_credit.errors.PolicyError: mine.yaml: lpr: LPR is above the maximum rate 0.08, got 0.09
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    Strict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from village_credit.data.schema import SCHEMA
from village_credit.errors import PolicyError
from village_credit.file_formats import FileFormat, json_schema, validate_document

__all__ = ["GRADE_BANDS", "LABEL_LANGUAGES", "ParametersSpec", "PolicyFile", "RangeSpec", "policy_json_schema",
           "validate_policy"]

Grade = Literal["A1", "A2", "B1", "B2", "C1", "C2", "D1", "D2", "E1", "E2"]
GRADE_BANDS: tuple[str, ...] = get_args(Grade)
""""Five levels, ten bands", best first."""

LABEL_LANGUAGES: tuple[str, ...] = ("en", "zh")
"""Languages every policy label carries (titles, item and veto labels)."""

SCHEMA_ID = "https://village-credit.org/schemas/policy.schema.json"

CONDITION_KINDS: tuple[str, ...] = ("column", "event", "ratio", "active_deductions", "any_of", "all_of", "not")
"""Keys that say what a condition tests; a condition has exactly one of them."""

_KIND_KEYS: dict[str, set[str]] = {
    "column": {"column", "equals", "in", "min", "max"}, "event": {"event", "window_years"},
    "ratio": {"ratio", "min", "max"}, "active_deductions": {"active_deductions"},
    "any_of": {"any_of"}, "all_of": {"all_of"}, "not": {"not"},
}


def _error(loc: tuple[str | int, ...], message: str, value: Any = None) -> ValidationError:
    """A validation error at ``loc`` below the model being checked (``value`` None: a
    missing key, so no 'got ...' is added)."""
    kind = PydanticCustomError("policy", message.replace("{", "(").replace("}", ")"))
    return ValidationError.from_exception_data(
        "policy", [InitErrorDetails(type=kind, loc=loc, input={} if value is None else value)])


def _problem(message: str) -> PydanticCustomError:
    """A field validator's error, worded for the person editing the file."""
    return PydanticCustomError("policy", message.replace("{", "(").replace("}", ")"))


# --------------------------------------------------------------------------- value types

Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]
"""A finite number written as a number (not a string, not true/false)."""
NonNegative = Annotated[Number, Field(ge=0)]
Text = Annotated[str, Field(min_length=1)]


def _scalar(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        raise _problem("must be a scalar (a number, text, true or false)")
    return value


Scalar = Annotated[Any, AfterValidator(_scalar),
                   Field(json_schema_extra={"type": ["string", "number", "boolean"]})]


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


Columns = Annotated[Text | Annotated[list[Text], Field(min_length=1)], AfterValidator(_as_list)]


def _window(value: Any) -> Any:
    """Observation windows are whole years, 1 to 10 (credit repair: 1-3 in practice)."""
    whole = isinstance(value, (int, float)) and not isinstance(value, bool) and float(value) == int(value)
    if not whole or not 1 <= value <= 10:
        raise _problem("bad window: must be a whole number of years from 1 to 10")
    return int(value)


Window = Annotated[int, BeforeValidator(_window), Field(json_schema_extra={"minimum": 1, "maximum": 10})]


class _Section(FileFormat):
    """A part of a policy file (unknown keys are reported with the keys allowed there)."""


class Label(_Section):
    """A label in every language a report or letter is printed in."""

    en: Text = Field(description="English label.")
    zh: Text = Field(description="Chinese label (中文).")


# --------------------------------------------------------------------------- conditions


class RatioSpec(_Section):
    """Sum of numerator columns over sum of denominator columns (missing values count 0)."""

    numerator: Columns = Field(description="Column name, or list of columns summed (e.g. private_debt_yuan).")
    denominator: Columns = Field(description="Column name, or list of columns summed (e.g. the income columns).")


class ActiveDeductionsSpec(_Section):
    """Counts this policy's deductions active inside their windows."""

    min_count: int = Field(ge=1, description="Holds when at least this many deductions are active.")


class ConditionSpec(_Section):
    """A condition: exactly one of column, event, ratio, active_deductions, any_of, all_of, not.

    ``{column, equals | in | min/max}``, ``{event, window_years}``, ``{ratio, min/max}``,
    ``{active_deductions: {min_count}}``, ``{any_of: [...]}``, ``{all_of: [...]}``,
    ``{not: {...}}``.
    """

    model_config = _Section.model_config | {"json_schema_extra": {
        "oneOf": [{"required": [k]} for k in CONDITION_KINDS],
        "dependentRequired": {"event": ["window_years"]}}}
    carrier_keys: ClassVar[frozenset[str]] = frozenset()
    """Keys the containing item adds (label, points); not part of the condition."""

    column: Text | None = Field(None, description="Household column the condition reads.")
    equals: Scalar | None = Field(None, description="Holds when the column equals this value.")
    in_: Annotated[list[Scalar], Field(min_length=1)] | None = Field(
        None, alias="in", description="Holds when the column takes one of these values.")
    min: Number | None = Field(None, description="Lower bound, inclusive (same unit as the column or ratio).")
    max: Number | None = Field(None, description="Upper bound, inclusive (same unit as the column or ratio).")
    event: Text | None = Field(None, description=(
        "Date column of an event (e.g. ded_traffic_date); active when "
        "eval_date - window_years < event date <= eval_date."))
    window_years: Window | None = Field(
        None, description="Observation window of an event, in whole years (1-10); older events no longer count.")
    ratio: RatioSpec | None = Field(None, description="A ratio of column sums, tested with min and/or max.")
    active_deductions: ActiveDeductionsSpec | None = Field(
        None, description="Holds when enough of this policy's deductions are active.")
    any_of: Annotated[list[ConditionSpec], Field(min_length=1)] | None = Field(
        None, description="Holds when any of these conditions holds.")
    all_of: Annotated[list[ConditionSpec], Field(min_length=1)] | None = Field(
        None, description="Holds when all of these conditions hold.")
    not_: ConditionSpec | None = Field(None, alias="not", description="Holds when this condition does not.")

    @field_validator("event")
    @classmethod
    def _event_is_a_date(cls, value: str | None) -> str | None:
        """A schema column named as an event must be a date column (user columns pass)."""
        if value in SCHEMA.names and SCHEMA[value].dtype != "date":
            raise _problem("not a date column of the household schema")
        return value

    @property
    def condition_keys(self) -> list[str]:
        """The condition's keys as written (aliases), without the carrier's."""
        out = []
        for name in self.model_fields_set:
            key = type(self).model_fields[name].alias or name
            if key not in self.carrier_keys:
                out.append(key)
        return out

    @property
    def kind(self) -> str:
        """Which of :data:`CONDITION_KINDS` this condition is (after validation: one)."""
        return next(k for k in CONDITION_KINDS if k in self.condition_keys)

    def condition(self) -> dict[str, Any]:
        """The condition as plain data (carrier keys left out), as written."""
        return {k: v for k, v in self.model_dump(by_alias=True, exclude_unset=True).items()
                if k not in self.carrier_keys}

    @model_validator(mode="after")
    def _one_kind(self) -> ConditionSpec:
        self.check_condition()
        return self

    def check_condition(self) -> None:
        """The grammar checks a field type cannot say: one kind, its keys, its bounds."""
        keys = self.condition_keys
        kinds = [k for k in CONDITION_KINDS if k in keys]
        if len(kinds) != 1:
            raise _error((), f"a condition needs exactly one of {', '.join(CONDITION_KINDS)} "
                             f"(got {kinds or 'none'})")
        kind = kinds[0]
        bad = sorted(set(keys) - _KIND_KEYS[kind])
        if bad:
            raise _error((bad[0],), f"not allowed in a '{kind}' condition")
        lo = -float("inf") if self.min is None else self.min
        hi = float("inf") if self.max is None else self.max
        if kind == "column":
            ops = [k for k in ("equals", "in") if k in keys] + (["range"] if {"min", "max"} & set(keys) else [])
            if len(ops) != 1:
                raise _error((), "a column condition needs exactly one of equals, in, or min/max")
            if lo > hi:
                raise _error((), f"min {lo} is above max {hi}")
        elif kind == "event" and self.window_years is None:
            raise _error(("window_years",), "required key is missing (observation window)")
        elif kind == "ratio" and self.min is None and self.max is None:
            raise _error((), "a ratio condition needs min and/or max")


class RequirementSpec(ConditionSpec):
    """A named condition with a label: a base condition, a veto, an eligibility gate."""

    carrier_keys: ClassVar[frozenset[str]] = frozenset({"label"})
    label: Label | None = Field(None, description="Label shown in reasons and reports (default: the key).")


class DeductionSpec(ConditionSpec):
    """A deduction item: its points when its condition (usually a dated event) holds."""

    carrier_keys: ClassVar[frozenset[str]] = frozenset({"points", "label"})
    points: Number = Field(le=0, description="Points deducted (<= 0), once, while the event is in its window.")
    label: Label | None = Field(None, description="Label shown in reasons and reports (default: the key).")


class ComponentSpec(ConditionSpec):
    """One part of a bonus family: points by honour level (``column`` + ``levels``), or
    fixed ``points`` when a condition holds."""

    model_config = _Section.model_config | {"json_schema_extra": {
        "oneOf": [{"required": ["column", "levels"]}, {"required": ["points"]}]}}
    carrier_keys: ClassVar[frozenset[str]] = frozenset({"points", "levels"})
    levels: Annotated[dict[str, NonNegative], Field(min_length=1)] | None = Field(
        None, description="Points (>= 0) per level of a categorical honour column; every level of the column.")
    points: NonNegative | None = Field(None, description="Points (>= 0) when the condition holds.")

    def check_condition(self) -> None:
        if self.levels is None:
            if self.points is None:
                raise _error((), "a component needs 'levels' (with column) or 'points' with a condition")
            super().check_condition()
            return
        extra = sorted(set(self.condition_keys) - {"column"}) + (["points"] if self.points is not None else [])
        if extra:
            raise _error((extra[0],), "unknown key (allowed: column, levels)")
        if self.column is None:
            raise _error(("column",), "required key is missing")
        cats = SCHEMA[self.column].categories if self.column in SCHEMA.names else ()
        if cats:
            missing = [c for c in cats if c not in self.levels]
            if missing:
                raise _error(("levels", missing[0]),
                             f"missing level (column '{self.column}' has levels {list(cats)})")
            unknown = [k for k in self.levels if k not in cats]
            if unknown:
                raise _error(("levels", unknown[0]),
                             f"unknown level (column '{self.column}' has levels {list(cats)})")


# --------------------------------------------------------------------------- sections


class BaseSpec(_Section):
    """The base item: its points when every base condition holds."""

    points: NonNegative = Field(description="Base points (>= 0), all or nothing.")
    label: Label | None = Field(None, description="Label of the base item (default: 'base points').")
    conditions: dict[str, RequirementSpec] | None = Field(
        None, description="Named conditions that must all hold for the base points (e.g. age 18-60).")


class BonusSpec(_Section):
    """A bonus family (one item column ``bonus_<family>``)."""

    label: Label | None = Field(None, description="Label of the family (default: the key).")
    combine: Literal["sum", "max"] = Field(
        "sum", description="How the components' points combine: added up, or the largest counts.")
    components: Annotated[list[ComponentSpec], Field(min_length=1)] = Field(
        description="Points by honour level, or fixed points when a condition holds.")


class TierSpec(_Section):
    """A line tier: another cap and scale for the households it matches (first match wins)."""

    when: ConditionSpec = Field(description="Which households the tier applies to.")
    cap: NonNegative = Field(description="Largest line for the tier, in yuan.")
    yuan_per_step: NonNegative | None = Field(
        None, description="Yuan per points_per_step for the tier (default: the policy's).")
    label: Label | None = Field(None, description="Label of the tier (default: the key).")


class CreditLineSpec(_Section):
    """Credit line = min(cap, points x yuan_per_step / points_per_step), floored at 0."""

    points_per_step: Number = Field(gt=0, description="Points in one step of the line scale (e.g. 10 points).")
    yuan_per_step: NonNegative = Field(description="Yuan granted per step (e.g. 10,000 yuan per 10 points).")
    cap: NonNegative = Field(description="Largest line, in yuan.")
    round_down_to: NonNegative = Field(0, description="Round lines down to a multiple of this many yuan (0: no rounding).")
    tiers: dict[str, TierSpec] | None = Field(None, description="Line tiers by name, tried in order.")


class RateSpec(_Section):
    """Annual rate: max_rate at or below points_at_max_rate, falling linearly to the LPR."""

    max_rate: Number = Field(ge=0, le=1, description="Highest annual rate, as a fraction (0.08 = 8 %).")
    lpr: Number = Field(ge=0, le=1, description="Loan prime rate, the lowest annual rate, as a fraction.")
    lpr_date: str = Field("", description="Date the LPR was published (YYYY-MM-DD).")
    points_at_max_rate: Number = Field(description="Points at or below which the rate is max_rate.")
    points_at_lpr: Number = Field(description="Points at or above which the rate is the LPR.")
    round_to: NonNegative = Field(0, description="Round rates to a multiple of this (0.0005 = 5 basis points).")

    @field_validator("lpr")
    @classmethod
    def _lpr_below_max(cls, value: float, info: ValidationInfo) -> float:
        top = info.data.get("max_rate")
        if top is not None and value > top:
            raise _problem(f"LPR is above the maximum rate {top}")
        return value

    @field_validator("points_at_lpr")
    @classmethod
    def _rates_fall(cls, value: float, info: ValidationInfo) -> float:
        low = info.data.get("points_at_max_rate")
        if low is not None and value <= low:
            raise _problem("must be above rate.points_at_max_rate (rates fall as points rise)")
        return value


def _cutoff(grade: str) -> Any:
    return Field(description=f"Lowest points of band {grade} (inclusive).")


class GradeCutoffs(_Section):
    """Lowest points of each band, falling strictly from A1 to E1 (below E1: E2)."""

    A1: Number = _cutoff("A1")
    A2: Number = _cutoff("A2")
    B1: Number = _cutoff("B1")
    B2: Number = _cutoff("B2")
    C1: Number = _cutoff("C1")
    C2: Number = _cutoff("C2")
    D1: Number = _cutoff("D1")
    D2: Number = _cutoff("D2")
    E1: Number = _cutoff("E1")

    @field_validator(*GRADE_BANDS[1:-1])
    @classmethod
    def _falls(cls, value: float, info: ValidationInfo) -> float:
        above = GRADE_BANDS[GRADE_BANDS.index(str(info.field_name)) - 1]
        if above in info.data and value >= info.data[above]:
            raise _problem(f"cut-offs must fall strictly from A1 to E1 ({info.field_name} is not below "
                           f"{above} = {info.data[above]:g})")
        return value

    def as_dict(self) -> dict[str, float]:
        return {g: getattr(self, g) for g in GRADE_BANDS[:-1]}


assert tuple(GradeCutoffs.model_fields) == GRADE_BANDS[:-1], "GradeCutoffs must list A1..E1"


class GradesSpec(_Section):
    """Grades: five levels, ten bands (A1 best ... E2)."""

    cutoffs: GradeCutoffs = Field(description="Lowest points of each band A1..E1.")
    vetoed_grade: Grade | None = Field("E2", description="Grade of vetoed households (null: graded by points).")
    a_or_above: list[Grade] = Field(["A1", "A2"], description="Bands counted as 'A or above' in programme reports.")


class ApprovalSpec(_Section):
    """When a line is granted (it must also be > 0 yuan)."""

    min_points: Number = Field(0, description="Fewest points that can be approved.")


# --------------------------------------------------------------------------- designer's parameters


class RangeSpec(_Section):
    """Values a designer may try: ``low``/``high`` (with an optional grid ``step``) or ``choices``."""

    model_config = _Section.model_config | {"json_schema_extra": {
        "oneOf": [{"required": ["low", "high"]}, {"required": ["choices"]}]}}
    low: Number | None = Field(None, description="Smallest value tried (inclusive).")
    high: Number | None = Field(None, description="Largest value tried (inclusive).")
    step: Annotated[Number, Field(gt=0)] | None = Field(
        None, description="Grid step from low (high - low must be a whole number of steps).")
    choices: Annotated[list[Number], Field(min_length=1)] | None = Field(
        None, description="The values tried, instead of low/high.")

    @model_validator(mode="after")
    def _one_way(self) -> RangeSpec:
        if self.choices is not None:
            if self.low is not None or self.high is not None or self.step is not None:
                raise _error((), "give either choices or low/high(/step), not both")
            return self
        if self.low is None or self.high is None:
            raise _error(("low" if self.low is None else "high",), "required key is missing (or give choices)")
        if self.low > self.high:
            raise _error(("low",), f"low {self.low:g} is above high {self.high:g}")
        if self.step is not None and not _on_grid(self.high, self.low, self.step):
            raise _error(("step",), f"high - low = {self.high - self.low:g} is not a whole number of steps")
        return self

    def contains(self, value: float) -> bool:
        """Whether ``value`` is one of the values this range tries."""
        if self.choices is not None:
            return any(abs(value - c) <= 1e-9 * max(1.0, abs(c)) for c in self.choices)
        assert self.low is not None and self.high is not None
        inside = self.low - 1e-9 <= value <= self.high + 1e-9
        return inside and (self.step is None or _on_grid(value, self.low, self.step))

    def describe(self) -> str:
        if self.choices is not None:
            return f"choices {[float(c) for c in self.choices]}"
        return f"[{self.low:g}, {self.high:g}]" + (f" step {self.step:g}" if self.step is not None else "")


def _on_grid(value: float, low: float, step: float) -> bool:
    k = (value - low) / step
    return abs(k - round(k)) <= 1e-9 * max(1.0, abs(k))


class ShareSpec(RangeSpec):
    """A share the policy text does not hold (exploration): its range and its current value."""

    current: Annotated[Number, Field(ge=0, le=1)] = Field(0.0, description="The value the standard uses today.")

    @model_validator(mode="after")
    def _share(self) -> ShareSpec:
        top = max(self.choices) if self.choices is not None else self.high
        bottom = min(self.choices) if self.choices is not None else self.low
        if bottom is not None and bottom < 0 or top is not None and top > 1:
            raise _error((), "a share lies between 0 and 1")
        return self


class ParametersSpec(_Section):
    """What a programme designer may vary in the policy lab, each with its range.

    Every current value (read from the policy itself) must be one of the values tried,
    so today's standard is always a point of the search.
    """

    age_limit: RangeSpec | None = Field(None, description=(
        "Upper age of the head (the max of every base condition and eligibility gate on head_age)."))
    grade_shift: RangeSpec | None = Field(None, description=(
        "Points added to every grade cut-off (0 = today's cut-offs)."))
    line_per_point: RangeSpec | None = Field(None, description=(
        "Yuan of credit line per point (credit_line.yuan_per_step / points_per_step)."))
    veto_windows: dict[str, RangeSpec] | None = Field(None, description=(
        "Repair window in whole years of each dated veto, by veto name."))
    exploration_share: ShareSpec | None = Field(None, description=(
        "Share of refused, non-vetoed households given a trial loan (randomised, seeded)."))
    approval_min_points: RangeSpec | None = Field(None, description=(
        "Fewest points approved (approval.min_points): the blend's approval cut-off."))


class PolicyFile(_Section):
    """A programme's points standard: items, vetoes, eligibility, line, rate, grades.

    Points are the programme's points; lines are in yuan; windows and validity in years.
    """

    name: Text = Field(description="Policy name (a shipped policy's file name without .yaml).")
    title: Label | None = Field(None, description="Title in every report language (default: the name).")
    reference: str = Field("", description="Where the standard comes from (document, year).")
    notes: str | list[str] = Field([], description="Choices where the source is silent; they travel with the policy.")
    extends: Text | None = Field(None, description=(
        "Shipped policy name or YAML path this file overrides (deep merge; null deletes an inherited key)."))
    validity_years: Annotated[Number, Field(ge=0.01)] | None = Field(
        None, description="Years a rating stays valid after evaluation (null: no limit).")
    base: BaseSpec = Field(description="The base item.")
    bonuses: dict[str, BonusSpec] | None = Field(description="Bonus families by name (item bonus_<name>).")
    deductions: dict[str, DeductionSpec] | None = Field(description="Deduction items by name (item ded_<name>).")
    vetoes: Annotated[dict[str, RequirementSpec], Field(max_length=62)] | None = Field(
        description="One-vote vetoes by name: any active veto means no line (code veto_<name>).")
    eligibility: Annotated[dict[str, RequirementSpec], Field(max_length=62)] | None = Field(
        None, description="Gates that must all hold for a line (code inelig_<name> when failed).")
    credit_line: CreditLineSpec = Field(description="How points become a credit line in yuan.")
    rate: RateSpec = Field(description="How points become an annual rate.")
    grades: GradesSpec = Field(description="How points become a grade A1..E2.")
    approval: ApprovalSpec | None = Field(None, description="Approval threshold.")
    parameters: ParametersSpec | None = Field(None, description=(
        "Values a designer may vary in the policy lab (`village-credit policy-lab`), each with its range."))

    @model_validator(mode="after")
    def _parameters_fit(self) -> PolicyFile:
        """Each declared parameter names a part of this policy, and today's value is in its range."""
        par = self.parameters
        if par is None:
            return self
        for key, spec, value in _current_values(self):
            if value is None:
                raise _error(("parameters", *key), _MISSING[key[0]])
            if not spec.contains(value):
                raise _error(("parameters", *key), f"today's value {value:g} is not among the values tried "
                                                   f"({spec.describe()})")
        for name, spec in (par.veto_windows or {}).items():
            tried = spec.choices if spec.choices is not None else [spec.low, spec.high]
            if any(t is None or t != int(t) or not 1 <= t <= 10 for t in tried):
                raise _error(("parameters", "veto_windows", name), "windows are whole years from 1 to 10")
        return self

    @property
    def note_list(self) -> list[str]:
        return [self.notes] if isinstance(self.notes, str) else list(self.notes)


_MISSING = {
    "age_limit": "the policy has no base condition or eligibility gate on head_age with a max",
    "grade_shift": "",
    "line_per_point": "",
    "veto_windows": "no dated veto of that name (vetoes with event and window_years)",
    "exploration_share": "",
    "approval_min_points": "",
}


def age_limits(spec: PolicyFile) -> list[float]:
    """The max of every base condition and eligibility gate on ``head_age`` (the age limit)."""
    conds = list((spec.base.conditions or {}).values()) + list((spec.eligibility or {}).values())
    return [c.max for c in conds if c.column == "head_age" and c.max is not None]


def _current_values(spec: PolicyFile) -> list[tuple[tuple[str, ...], RangeSpec, float | None]]:
    """(key below ``parameters``, its range, today's value or None when the policy lacks it)."""
    par = spec.parameters
    assert par is not None
    out: list[tuple[tuple[str, ...], RangeSpec, float | None]] = []
    if par.age_limit is not None:
        ages = age_limits(spec)
        out.append((("age_limit",), par.age_limit, ages[0] if ages else None))
    if par.grade_shift is not None:
        out.append((("grade_shift",), par.grade_shift, 0.0))
    if par.line_per_point is not None:
        cl = spec.credit_line
        out.append((("line_per_point",), par.line_per_point, cl.yuan_per_step / cl.points_per_step))
    for name, rng in (par.veto_windows or {}).items():
        veto = (spec.vetoes or {}).get(name)
        window = veto.window_years if veto is not None and veto.event is not None else None
        out.append((("veto_windows", name), rng, None if window is None else float(window)))
    if par.exploration_share is not None:
        out.append((("exploration_share",), par.exploration_share, par.exploration_share.current))
    if par.approval_min_points is not None:
        out.append((("approval_min_points",), par.approval_min_points,
                    spec.approval.min_points if spec.approval is not None else 0.0))
    return out


def validate_policy(data: Any, source: str) -> PolicyFile:
    """``data`` (a resolved policy, parsed YAML) checked; ``PolicyError`` names file, key, reason."""
    return validate_document(PolicyFile, data, source=source, error=PolicyError)


# --------------------------------------------------------------------------- JSON Schema


def _nullable(node: dict[str, Any]) -> dict[str, Any]:
    """``node`` or null (null deletes an inherited key), its description kept outside."""
    if {"type": "null"} in node.get("anyOf", []):
        return node
    outer = {k: node[k] for k in ("description", "title", "default") if k in node}
    return {**outer, "anyOf": [{k: v for k, v in node.items() if k not in outer}, {"type": "null"}]}


def _overlay(node: Any, defs: dict[str, Any], overlays: dict[str, Any]) -> Any:
    """``node`` as it may appear in a file that ``extends`` another: objects partial
    and nullable (definitions copied into ``overlays`` as ``<Name>Overlay``); arrays
    keep their full items, since a list replaces the inherited one whole."""
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name not in overlays:
            overlays[name] = {}  # recursion guard (conditions nest)
            overlays[name] = _overlay(defs[name], defs, overlays)
        return {**node, "$ref": f"#/$defs/{name}Overlay"}
    out = {k: v for k, v in node.items() if k not in ("required", "oneOf", "dependentRequired")}
    if "anyOf" in node:
        out["anyOf"] = [_overlay(x, defs, overlays) for x in node["anyOf"]]
    if "properties" in node:
        out["properties"] = {k: _nullable(_overlay(v, defs, overlays)) for k, v in node["properties"].items()}
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = _nullable(_overlay(node["additionalProperties"], defs, overlays))
    return out


def policy_json_schema() -> dict[str, Any]:
    """The JSON Schema of a policy file, for editors (``schemas/policy.schema.json``).

    A file without ``extends`` must be a whole policy; a file with it is an overlay
    (keys optional, ``null`` deletes an inherited key; lists are replaced whole).

    >>> schema = policy_json_schema()
    >>> schema["$id"], schema["then"]["$ref"], schema["else"]["$ref"]
    ('https://village-credit.org/schemas/policy.schema.json', '#/$defs/PolicyOverlay', '#/$defs/PolicyFile')
    """
    full = json_schema(PolicyFile, title="village-credit policy", schema_id=SCHEMA_ID)
    defs = full.pop("$defs")
    head = {k: full.pop(k) for k in ("$schema", "$id", "title")}
    defs["PolicyFile"] = full
    overlays: dict[str, Any] = {}
    _overlay({"$ref": "#/$defs/PolicyFile"}, defs, overlays)
    root = overlays.pop("PolicyFile")
    root["required"] = ["extends"]
    root["properties"]["extends"] = full["properties"]["extends"]
    defs.update({f"{k}Overlay": v for k, v in overlays.items()}, PolicyOverlay=root)
    return {**head, "description": (
        "A village-credit points standard (policy). A file with 'extends' overrides another policy: "
        "every key is then optional and null deletes an inherited key."),
        "type": "object", "$defs": defs,
        "if": {"required": ["extends"]},
        "then": {"$ref": "#/$defs/PolicyOverlay"},
        "else": {"$ref": "#/$defs/PolicyFile"}}
