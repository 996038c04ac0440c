"""Invariants of the rules engine, checked with hypothesis on random household frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from village_credit.rules import load_policy, score_rules
from village_credit.rules.policy_format import GRADE_BANDS

POLICIES = {n: load_policy(n) for n in
            ("jinxiang_2022", "jinxiang_2022_no_age_cutoff", "xx_county", "rencheng_2025", "tongxiang")}
SETTINGS = settings(max_examples=30, deadline=None)

# event offsets in days before the snapshot (negative = after it); NaT when None
offsets = st.one_of(st.none(), st.integers(min_value=-400, max_value=4 * 366))


@st.composite
def frames(draw, build, cols_of, max_rows: int = 8) -> pd.DataFrame:
    """Random household frames: ``build`` is the ``rule_households`` fixture, ``cols_of`` ``rule_columns``."""
    n = draw(st.integers(1, max_rows))

    def col(strategy):
        return draw(st.lists(strategy, min_size=n, max_size=n))

    cols: dict = {
        "head_age": col(st.integers(18, 95)),
        "full_civil_capacity": col(st.booleans()),
        "fixed_residence": col(st.booleans()),
        "fixed_income": col(st.booleans()),
        "major_bad_credit": col(st.booleans()),
        "new_agri_operator": col(st.booleans()),
        "individual_business": col(st.booleans()),
        "private_debt_yuan": col(st.sampled_from([0.0, 5_000.0, 50_000.0])),
    }
    for c, levels in cols_of.honour_levels.items():
        cols[c] = col(st.sampled_from(levels))
    for c in cols_of.honour_flags:
        cols[c] = col(st.booleans())
    for c in cols_of.deductions + cols_of.vetoes:
        cols[c] = [pd.NaT if o is None else cols_of.snapshot - pd.Timedelta(days=o) for o in col(offsets)]
    return build(n, **cols)


policy_names = st.sampled_from(sorted(POLICIES))


@SETTINGS
@given(policy_names, st.data())
def test_items_sum_exactly_to_points(rule_households, rule_columns, name, data):
    h = data.draw(frames(rule_households, rule_columns))
    r = score_rules(h, POLICIES[name])
    assert np.array_equal(r.items.to_numpy().sum(axis=1), r.decisions["rule_points"].to_numpy())
    assert list(r.items.columns) == POLICIES[name].item_codes
    assert r.decisions.index.equals(h.index) and r.items.index.equals(h.index)


@SETTINGS
@given(policy_names, st.data())
def test_adding_a_bonus_never_lowers_points(rule_households, rule_columns, name, data):
    h = data.draw(frames(rule_households, rule_columns))
    col = data.draw(st.sampled_from(list(rule_columns.honour_levels) + rule_columns.honour_flags))
    up = h.copy()
    if col in rule_columns.honour_levels:
        levels = rule_columns.honour_levels[col]
        pos = h[col].map(levels.index).to_numpy()
        step = data.draw(st.integers(1, len(levels) - 1))
        up[col] = [levels[min(p + step, len(levels) - 1)] for p in pos]
    else:
        up[col] = True
    before = score_rules(h, POLICIES[name]).decisions
    after = score_rules(up, POLICIES[name]).decisions
    assert (after["rule_points"] >= before["rule_points"]).all()
    assert (after["credit_line"] >= before["credit_line"]).all()


@SETTINGS
@given(policy_names, st.data())
def test_any_active_veto_gives_line_zero(rule_households, rule_columns, name, data):
    h = data.draw(frames(rule_households, rule_columns))
    pol = POLICIES[name]
    rule = data.draw(st.sampled_from([r for r in pol.veto_rules if "event" in r.condition.spec]))
    days = data.draw(st.integers(0, 364 * rule.condition.spec["window_years"]))
    h = h.assign(**{rule.condition.spec["event"]: rule_columns.snapshot - pd.Timedelta(days=days)})
    d = score_rules(h, pol).decisions
    assert d["vetoed"].all() and (d["credit_line"] == 0).all() and not d["approved"].any()
    assert d["veto_codes"].str.contains(rule.code).all()
    assert (pol.credit_line(d["rule_points"], True, d["vetoed"]) == 0).all()


@SETTINGS
@given(st.sampled_from(["jinxiang_2022", "jinxiang_2022_no_age_cutoff", "rencheng_2025"]), st.data())
def test_line_is_capped_linear_when_eligible_and_not_vetoed(rule_households, rule_columns, name, data):
    h = data.draw(frames(rule_households, rule_columns))
    pol = POLICIES[name]
    d = score_rules(h, pol).decisions
    ok = d["eligible"] & ~d["vetoed"]
    expected = np.minimum(pol.cap, np.maximum(0.0, d["rule_points"] / 10 * 10_000))
    assert np.array_equal(d.loc[ok, "credit_line"].to_numpy(), expected[ok].to_numpy())
    assert (d["credit_line"] >= 0).all() and (d["credit_line"] <= pol.cap).all()
    assert (d.loc[~ok, "credit_line"] == 0).all()


@SETTINGS
@given(policy_names, st.data())
def test_expired_or_future_events_never_count(rule_households, rule_columns, name, data):
    """Moving every event outside its window changes nothing vs. having no events."""
    h = data.draw(frames(rule_households, rule_columns))
    pol = POLICIES[name]
    windows = {r.condition.spec["event"]: r.condition.spec["window_years"]
               for r in list(pol.veto_rules) + list(pol.deductions) if "event" in r.condition.spec}
    moved, clean = h.copy(), h.copy()
    for c, w in windows.items():
        if data.draw(st.booleans()):
            extra = data.draw(st.integers(0, 2000))
            t = rule_columns.snapshot - pd.DateOffset(years=w) - pd.Timedelta(days=extra)  # expired (boundary included)
        else:
            t = rule_columns.snapshot + pd.Timedelta(days=data.draw(st.integers(1, 2000)))  # after eval date
        moved[c] = pd.Series(t, index=h.index, dtype="datetime64[ns]").where(h[c].notna())
        clean[c] = pd.Series(pd.NaT, index=h.index, dtype="datetime64[ns]")
    a, b = score_rules(moved, pol), score_rules(clean, pol)
    assert a.items.equals(b.items) and a.decisions.equals(b.decisions)


@SETTINGS
@given(st.lists(st.floats(-500, 1000, allow_nan=False), min_size=1, max_size=50), policy_names)
def test_rate_in_band_and_grades_monotone_for_any_points(pts, name):
    pol = POLICIES[name]
    p = np.sort(np.asarray(pts))
    r = pol.rate(p)
    assert (r >= pol.lpr - 1e-12).all() and (r <= pol.max_rate + 1e-12).all()
    assert (np.diff(r) <= 1e-12).all()
    rank = np.array([GRADE_BANDS.index(g) for g in pol.grade(p)])
    assert (np.diff(rank) <= 0).all()  # better points never give a worse band
