"""Benchmark: the vectorised rules engine vs scorecardpy's ``scorecard_ply`` and a
row-wise pandas ``apply``, in one run on the same synthetic households.

Why these baselines: ``scorecard_ply`` is the common open-source way to apply a
points card to a table (per variable: string bins, ``pd.cut``, merge); a row-wise
``apply`` is how a points standard is usually first coded by hand. The engine must be
at least 10x faster than ``scorecard_ply`` (issue 3).

scorecardpy is NOT a project dependency. Install it outside the project, e.g.::

    .venv/bin/python -m pip install --no-deps --target /tmp/scorecardpy-pkgs scorecardpy
    .venv/bin/python bench/bench_rules.py --scorecardpy-path /tmp/scorecardpy-pkgs

The scorecardpy card has one variable per policy input (31 variables, 2-5 bins each,
plus base points): the same size as the Jinxiang policy (5 base conditions, 8 bonus
families over 9 columns, 11 deductions, 6 vetoes). A card is additive, so it cannot
express the base item's AND of five conditions, nor vetoes zeroing the line; it is a
throughput comparison of the same amount of per-household work, not an equivalent
policy. Event dates are given to it pre-converted to "days before evaluation"
(not timed: that favours scorecardpy). The row-wise baseline implements the full
Jinxiang policy and is checked for identical points.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from typing import Callable

import numpy as np
import pandas as pd

from village_credit.data.schema import DEDUCTION_ITEMS, VETO_FAMILIES
from village_credit.rules import load_policy, score_rules

EVAL = pd.Timestamp("2025-06-30")
LEVELS = {
    "hon_moral_model": (("none", "county", "city", "province", "national"), (0.93, 0.04, 0.02, 0.008, 0.002)),
    "hon_family": (("none", "village", "town", "county"), (0.7, 0.2, 0.07, 0.03)),
    "hon_courtyard": (("none", "village", "town", "county", "city"), (0.6, 0.25, 0.1, 0.04, 0.01)),
    "hon_talent": (("none", "county", "city", "province", "national"), (0.95, 0.03, 0.015, 0.004, 0.001)),
    "hon_party": (("none", "county", "city", "province", "national"), (0.97, 0.02, 0.007, 0.002, 0.001)),
}
FLAGS = {"party_member": 0.1, "hon_veteran_brave": 0.05, "hon_virtue": 0.08, "hon_frugal_ceremony": 0.15,
         "full_civil_capacity": 0.99, "fixed_residence": 0.97, "fixed_income": 0.9, "major_bad_credit": 0.03}


def make_households(n: int, seed: int = 0) -> pd.DataFrame:
    """Rule columns of the household schema, vectorised (no history columns)."""
    rng = np.random.default_rng(seed)
    cols: dict[str, object] = {
        "household_id": np.char.add("H", np.arange(n).astype(str)),
        "township_code": np.char.add("T", (np.arange(n) % 8).astype(str)),
        "village_code": np.char.add("V", (np.arange(n) % 96).astype(str)),
        "snapshot_date": np.full(n, EVAL.to_datetime64()),
        "head_age": rng.integers(18, 90, n),
    }
    for c, p in FLAGS.items():
        cols[c] = rng.random(n) < p
    for c, (levels, probs) in LEVELS.items():
        cols[c] = pd.array(np.asarray(levels, dtype=object)[rng.choice(len(levels), n, p=probs)], dtype="string")
    for key, rate in [(k, 0.04) for k, _, _ in DEDUCTION_ITEMS] + [(f"v_{k}", 0.01) for k, _, _ in VETO_FAMILIES]:
        has = rng.random(n) < rate * 3
        days = rng.integers(-60, 5 * 365, n)
        t = np.where(has, (EVAL - pd.Timedelta(days=1)).to_datetime64() - days.astype("timedelta64[D]"),
                     np.datetime64("NaT"))
        name = f"veto_{key[2:]}_date" if key.startswith("v_") else f"ded_{key}_date"
        cols[name] = t.astype("datetime64[ns]")
    return pd.DataFrame(cols)


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


# ----------------------------------------------------------------- scorecardpy card


def _days_before(df: pd.DataFrame, col: str) -> pd.Series:
    return (EVAL - df[col]).dt.days.astype("float64")


def scorecard_inputs(df: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({"head_age": df["head_age"].astype("float64")})
    for c in FLAGS:
        out[c] = df[c].astype("float64")
    for c in LEVELS:
        out[c] = df[c].astype(str)
    for c in [c for c in df.columns if c.endswith("_date") and c != "snapshot_date"]:
        out[c] = _days_before(df, c)
    return out


def scorecard_card(policy_name: str = "jinxiang_2022") -> dict[str, pd.DataFrame]:
    pol = load_policy(policy_name)
    card: dict[str, pd.DataFrame] = {
        "basepoints": pd.DataFrame({"variable": ["basepoints"], "bin": [None], "points": [0.0]})}

    def add(var: str, bins: list[str], points: list[float]) -> None:
        card[var] = pd.DataFrame({"variable": var, "bin": bins, "points": points})

    add("head_age", ["[-inf,18.0)", "[18.0,61.0)", "[61.0,inf)"], [0.0, 30.0, 0.0])
    for c in FLAGS:
        bonus = {"party_member": 10, "hon_veteran_brave": 20, "hon_virtue": 20, "hon_frugal_ceremony": 10}.get(c, 0)
        add(c, ["[-inf,1.0)", "[1.0,inf)"], [0.0, float(bonus)])
    for b in pol.bonuses:
        for comp in b.components:
            if hasattr(comp, "levels"):
                add(comp.column, list(comp.levels), list(comp.levels.values()))
    windows = {d.condition.spec["event"]: (d.condition.spec["window_years"], d.points) for d in pol.deductions}
    windows.update({r.condition.spec["event"]: (r.condition.spec["window_years"], -1000.0) for r in pol.veto_rules})
    for col, (w, pts) in windows.items():
        add(col, ["[-inf,0.0)", f"[0.0,{365.0 * w})", f"[{365.0 * w},inf)", "missing"], [0.0, pts, 0.0, 0.0])
    return card


# ----------------------------------------------------------------- row-wise baseline


def rowwise_points(df: pd.DataFrame, policy_name: str = "jinxiang_2022") -> pd.Series:
    """The Jinxiang policy coded per household with ``DataFrame.apply`` (the baseline)."""
    pol = load_policy(policy_name)
    levels = {c.column: c.levels for b in pol.bonuses for c in b.components if hasattr(c, "levels")}
    dedw = [(d.condition.spec["event"], d.condition.spec["window_years"], d.points) for d in pol.deductions]

    def one(r: pd.Series) -> float:
        ev = r["snapshot_date"]
        base = 30.0 if (18 <= r["head_age"] <= 60 and r["full_civil_capacity"] and r["fixed_residence"]
                        and r["fixed_income"] and not r["major_bad_credit"]) else 0.0
        pts = base + sum(levels[c][r[c]] for c in levels)
        pts += 10.0 * r["party_member"] + 20.0 * r["hon_veteran_brave"] + 20.0 * r["hon_virtue"] \
            + 10.0 * r["hon_frugal_ceremony"]
        for col, w, p in dedw:
            t = r[col]
            if pd.notna(t) and ev - pd.DateOffset(years=w) < t <= ev:
                pts += p
        return pts

    return df.apply(one, axis=1)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--sc-rows", type=int, default=1_000_000, help="rows for scorecard_ply")
    ap.add_argument("--apply-rows", type=int, default=20_000, help="rows for the row-wise apply")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--policy", default="jinxiang_2022")
    ap.add_argument("--scorecardpy-path", default=None, help="folder where scorecardpy was pip-installed")
    ap.add_argument("--json", default=None, help="write the results here")
    a = ap.parse_args(argv)

    df = make_households(a.rows)
    pol = load_policy(a.policy)
    res: dict = {"rows": a.rows, "policy": a.policy, "python": platform.python_version(),
                 "pandas": pd.__version__, "numpy": np.__version__, "machine": platform.machine()}
    t, rs = timed(lambda: score_rules(df, pol, eval_date=EVAL), a.repeat)
    res["engine_s"] = t
    res["engine_rows_per_s"] = a.rows / t
    print(f"engine   {a.policy}: {a.rows:>9,} rows in {t:7.3f} s = {a.rows / t:>12,.0f} rows/s")

    sub = df.iloc[: a.apply_rows]
    t_ap, pts = timed(lambda: rowwise_points(sub, a.policy), 1)
    assert np.array_equal(pts.to_numpy(), rs.decisions["rule_points"].to_numpy()[: a.apply_rows]), \
        "row-wise baseline disagrees with the engine"
    res["apply_rows"] = a.apply_rows
    res["apply_rows_per_s"] = a.apply_rows / t_ap
    res["ratio_vs_apply"] = res["engine_rows_per_s"] / res["apply_rows_per_s"]
    print(f"apply    row-wise: {a.apply_rows:>9,} rows in {t_ap:7.3f} s = {a.apply_rows / t_ap:>12,.0f} rows/s"
          f"  (engine is {res['ratio_vs_apply']:,.0f}x faster; identical points)")

    if a.scorecardpy_path:
        sys.path.insert(0, a.scorecardpy_path)
    try:
        import scorecardpy as sc  # noqa: PLC0415 - optional, benchmark-only
    except ImportError as exc:
        print(f"scorecardpy not importable ({exc}); pass --scorecardpy-path")
        res["scorecardpy"] = None
    else:
        card = scorecard_card(a.policy)
        x = scorecard_inputs(df.iloc[: a.sc_rows])
        t_sc, out = timed(lambda: sc.scorecard_ply(x, card, only_total_score=True, replace_blank_na=False), 1)
        res["scorecardpy_rows"] = a.sc_rows
        res["scorecardpy_vars"] = len(card) - 1
        res["scorecardpy_rows_per_s"] = a.sc_rows / t_sc
        res["ratio_vs_scorecardpy"] = res["engine_rows_per_s"] / res["scorecardpy_rows_per_s"]
        print(f"scorecardpy card ({len(card) - 1} vars): {a.sc_rows:>9,} rows in {t_sc:7.3f} s = "
              f"{a.sc_rows / t_sc:>12,.0f} rows/s  (engine is {res['ratio_vs_scorecardpy']:,.1f}x faster)")
        assert len(out) == a.sc_rows
    if a.json:
        with open(a.json, "w", encoding="utf-8") as fh:
            json.dump(res, fh, indent=2)
    return res


if __name__ == "__main__":
    main()
