"""Measured re-identification risk of a released table (not only "k is reached").

Two families, each from a maintained library rather than our own arithmetic:

* **syntactic** (``pycanon``): k-anonymity, distinct l-diversity and t-closeness of the
  sensitive columns over the declared quasi-identifiers, and k per declared attacker;
* **attack-based** (``anonymeter``): singling-out, linkability and inference attacks of
  the released rows against the raw rows, each compared with a *control* set of raw
  households that were not released (the risk is the attack's success beyond what it
  achieves on strangers) and with a random-guess *baseline*.

anonymeter declares ``numpy<1.27`` and ``pyarrow<22`` although it runs on this
project's numpy 2 / pyarrow stack; declaring it would make pip downgrade both, so it
is an optional install (``pip install --no-deps anonymeter polars polars-runtime-32``, docs/privacy.md).
Without it the report says so in ``status`` instead of printing a number.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
import pandas as pd
from pycanon import anonymity

from village_credit.privacy.errors import KAnonymityError


def _frame_for_tools(df: pd.DataFrame, cols: Sequence[str]) -> pd.DataFrame:
    """Plain numpy dtypes (categories, booleans and strings as text) that both tools accept."""
    out = {}
    for c in cols:
        s = df[c]
        if isinstance(s.dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(s) \
                or not pd.api.types.is_numeric_dtype(s):
            out[c] = s.astype(str).to_numpy(dtype=object)
        else:
            out[c] = pd.to_numeric(s).astype(float).to_numpy()
    return pd.DataFrame(out)


def syntactic_risk(released: pd.DataFrame, quasi_identifiers: Sequence[str], sensitive: Sequence[str],
                   attackers: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
    """k, l and t (pycanon) over the QIs, and k over each attacker's known columns.

    An empty table or no QIs gives ``None`` values (never a number that looks fine).
    """
    qis = [q for q in quasi_identifiers if q in released.columns]
    sens = [s for s in sensitive if s in released.columns]
    out: dict[str, Any] = {"tool": _version("pycanon"), "quasi_identifiers": qis, "sensitive": sens,
                           "k_anonymity": None, "l_diversity": {}, "t_closeness": {}, "k_by_attacker": {}}
    if len(released) == 0 or not qis:
        return out
    data = _frame_for_tools(released, [*qis, *sens])
    out["k_anonymity"] = int(anonymity.k_anonymity(data, qis))
    for s in sens:
        out["l_diversity"][s] = int(anonymity.l_diversity(data, qis, [s]))
        try:
            out["t_closeness"][s] = round(float(anonymity.t_closeness(data, qis, [s])), 6)
        except ZeroDivisionError:  # pycanon divides by the value range: one value leaves t undefined
            out["t_closeness"][s] = None
    for name, knows in (attackers or {}).items():
        cols = [c for c in knows if c in released.columns]
        out["k_by_attacker"][name] = int(anonymity.k_anonymity(_frame_for_tools(released, cols), cols)) \
            if cols else None
    return out


def holder_risk(table: pd.DataFrame, attackers: Mapping[str, Sequence[str]], k: int) -> dict[str, Any]:
    """Per record holder: the smallest class, and the share of rows unique / in classes below
    ``k`` on the columns that holder knows (as they appear in ``table``; missing = a value).

    Why per holder: each one matches the release against its own records; a row unique on
    the bank's columns is found by the bank whatever the insider's k is.
    """
    out: dict[str, Any] = {}
    for name, knows in attackers.items():
        cols = [c for c in knows if c in table.columns]
        if not cols or not len(table):
            out[name] = {"columns": len(cols), "k": None, "unique_share": None, "below_k_share": None,
                         "n_unique": None}
            continue
        sizes = table.groupby(cols, dropna=False, observed=True, sort=False)[cols[0]].transform("size")
        out[name] = {"columns": len(cols), "k": int(sizes.min()),
                     "n_unique": int((sizes == 1).sum()),
                     "unique_share": round(float((sizes == 1).mean()), 6),
                     "below_k_share": round(float((sizes < k).mean()), 6)}
    return out


def homogeneity_attack(table: pd.DataFrame, attackers: Mapping[str, Sequence[str]],
                       sensitive: Mapping[str, pd.Series]) -> dict[str, Any]:
    """The homogeneity attack: for each holder and sensitive attribute, the share of rows whose
    class (on the holder's columns) holds a single value of it, so the holder learns it with
    certainty once it has found the class; and the smallest number of distinct values (l).

    ``sensitive``: name -> values aligned with ``table`` (e.g. ``private_debt_yuan > 0``).
    """
    out: dict[str, Any] = {}
    for name, knows in attackers.items():
        cols = [c for c in knows if c in table.columns]
        res = {}
        for sname, values in sensitive.items():
            if not cols or not len(table):
                res[sname] = {"l": None, "certain_share": None}
                continue
            frame = table[cols].assign(_s=np.asarray(values))
            distinct = frame.groupby(cols, dropna=False, observed=True, sort=False)["_s"].transform("nunique")
            res[sname] = {"l": int(distinct.min()), "certain_share": round(float((distinct < 2).mean()), 6)}
        out[name] = res
    return out


def joined_release_risk(releases: Sequence[pd.DataFrame], attackers: Mapping[str, Sequence[str]], k: int,
                        sensitive: Sequence[str] = ("default_12m",)) -> dict[str, Any]:
    """Risk of releases joined on their pseudonym, the joined table counted as one table.

    Why: an attacker holding two releases whose pseudonyms link sees each household's
    quasi-identifiers twice (e.g. a year apart: age, land and income changes), which
    narrows its class. Each holder knows its columns *in every release*; k, uniqueness and
    the homogeneity of the sensitive columns are measured over the joined rows. With
    release-scoped pseudonyms nothing joins (``n_linked`` 0).
    """
    if len(releases) < 2:
        raise KAnonymityError("joined_release_risk needs at least two releases")
    joined = releases[0].add_suffix("@1")
    key = "household_id"
    for i, r in enumerate(releases[1:], start=2):
        joined = joined.merge(r.add_suffix(f"@{i}"), left_on=f"{key}@1", right_on=f"{key}@{i}", how="inner")
    n = len(releases)
    out: dict[str, Any] = {"n_releases": n, "n_linked": len(joined),
                           "linked_share": round(len(joined) / max(1, min(len(r) for r in releases)), 6)}
    if not len(joined):
        out["status"] = "nothing links: the releases' pseudonyms are release-scoped"
        return out
    cols = {name: [f"{c}@{i}" for i in range(1, n + 1) for c in knows] for name, knows in attackers.items()}
    out["status"] = "linked"
    out["holders"] = holder_risk(joined, cols, k)
    sens = {s: joined[f"{s}@1"] for s in sensitive if f"{s}@1" in joined.columns}
    out["homogeneity"] = homogeneity_attack(joined, cols, sens)
    return out


def _version(pkg: str) -> str:
    try:
        return f"{pkg} {version(pkg)}"
    except PackageNotFoundError:
        return pkg


def anonymeter_available() -> bool:
    return importlib.util.find_spec("anonymeter") is not None and importlib.util.find_spec("polars") is not None


def _rates(res: Any, risk: Any) -> dict[str, Any]:
    def rate(r: Any) -> list[float] | None:
        return None if r is None else [round(float(r.value), 6), round(float(r.error), 6)]

    attack, base = res.attack_rate, res.baseline_rate
    return {
        "risk": round(float(risk.value), 6), "risk_ci": [round(float(x), 6) for x in risk.ci],
        "attack_rate": rate(attack), "baseline_rate": rate(base), "control_rate": rate(res.control_rate),
        # the attack does no better than random guessing, within both confidence intervals
        "attack_within_baseline": bool(attack.value - attack.error <= base.value + base.error),
    }


def attack_risk(
    ori: pd.DataFrame,
    released: pd.DataFrame,
    control: pd.DataFrame,
    quasi_identifiers: Sequence[str],
    secret: str | None,
    *,
    n_attacks: int = 300,
    seed: int = 0,
    confidence_level: float = 0.95,
    max_attempts: int = 50_000,
) -> dict[str, Any]:
    """anonymeter's three attacks over the QI columns (+ ``secret`` for inference).

    ``ori``: the raw rows that were released (in raw form); ``released``: their released
    form; ``control``: raw rows of the same population that were *not* released.
    Linkability splits the QIs in two halves (what the insider knows from the household
    register vs from the land registry and notice boards) and asks whether the release
    links them. Returns ``{"status": ...}`` only when anonymeter is not installed.
    """
    if not anonymeter_available():
        return {"status": "not measured: anonymeter is not installed (optional; see docs/privacy.md)"}
    # lazy: optional, not a dependency (anonymeter_available() checks it is installed)
    from anonymeter.evaluators import InferenceEvaluator, LinkabilityEvaluator, SinglingOutEvaluator

    qis = [q for q in quasi_identifiers if q in released.columns]
    if len(qis) < 2:
        raise KAnonymityError(f"attack risk needs at least two quasi-identifiers, got {qis}")
    cols = [*qis, *([secret] if secret and secret in released.columns else [])]
    o, r, c = (_frame_for_tools(d, cols) for d in (ori, released, control))
    n = int(min(n_attacks, len(o), len(c)))
    if n < 10:
        return {"status": f"not measured: too few rows for {n_attacks} attacks ({len(o)} released, "
                          f"{len(c)} control)"}
    out: dict[str, Any] = {"status": "measured", "tool": _version("anonymeter"), "n_attacks": n,
                           "columns": cols, "confidence_level": confidence_level}
    state = np.random.get_state()
    np.random.seed(seed)  # anonymeter samples with numpy's global generator
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            so = SinglingOutEvaluator(ori=o[qis], syn=r[qis], control=c[qis], n_attacks=n,
                                      n_cols=min(3, len(qis)), max_attempts=max_attempts, seed=seed)
            so.evaluate(mode="multivariate")
            out["singling_out"] = _rates(so.results(confidence_level), so.risk(confidence_level))
            half = len(qis) // 2
            lk = LinkabilityEvaluator(ori=o, syn=r, control=c, n_attacks=n,
                                      aux_cols=(qis[:half], qis[half:]), n_neighbors=1)
            lk.evaluate(n_jobs=1)
            out["linkability"] = _rates(lk.results(confidence_level), lk.risk(confidence_level))
            out["linkability"]["aux_cols"] = [qis[:half], qis[half:]]
            if secret and secret in cols:
                inf = InferenceEvaluator(ori=o, syn=r, control=c, aux_cols=qis, secret=secret, n_attacks=n)
                inf.evaluate(n_jobs=1)
                out["inference"] = _rates(inf.results(confidence_level), inf.risk(confidence_level))
                out["inference"]["secret"] = secret
    finally:
        np.random.set_state(state)
    return out


__all__ = ["anonymeter_available", "attack_risk", "holder_risk", "homogeneity_attack", "joined_release_risk",
           "syntactic_risk"]
