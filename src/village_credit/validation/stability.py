"""Stability: has the population (score, features, grades) moved?

PSI = sum_b (a_b - e_b) ln(a_b / e_b) over bins, with expected shares ``e``
from the reference (training) data and actual shares ``a`` from the sample;
the CSI is the same formula on one feature. Shares are floored at ``eps`` so
an empty bin gives a large but finite contribution.

The *reference profile* is what makes this usable by a third-party calibrator
who only has the registered model: ``reference_profile`` stores, per column,
the bin edges and expected shares as plain JSON; ``psi_from_profile`` needs
only that entry and the new values. ``psi`` and ``csi_table`` go through the
same code path, so the two always agree.

Numeric bins are quantile bins of the reference with de-duplicated edges;
bin ``i`` holds ``edges[i-1] <= x < edges[i]`` (outer bins open-ended).
Missing values form their own ``missing`` bin. Non-numeric and boolean columns
are categorical (categories compared as strings); categories unseen in the
reference fall into an ``__other__`` bin with expected share 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportions_ztest

from village_credit.validation._checks import ValidationInputError

__all__ = [
    "alert_level",
    "csi_from_profile",
    "csi_table",
    "holm",
    "migration_matrix",
    "migration_summary",
    "noise_aware_alert",
    "profile_column",
    "psi",
    "psi_from_profile",
    "psi_table",
    "psi_table_from_profile",
    "psi_test",
    "psi_test_from_profile",
    "reference_profile",
    "stability_table",
    "zero_share_table",
]

PROFILE_VERSION = 1
_MISSING = "missing"
_OTHER = "__other__"


def alert_level(value: float, thresholds: Sequence[float] = (0.1, 0.25)) -> str:
    """``green`` below the first threshold, ``amber`` up to the second, else ``red``."""
    lo, hi = float(thresholds[0]), float(thresholds[1])
    if not 0 <= lo <= hi:
        raise ValidationInputError(f"thresholds must satisfy 0 <= low <= high, got {thresholds}")
    if value is None or not np.isfinite(value):
        return "n/a"
    return "green" if value < lo else ("amber" if value < hi else "red")


def _is_numeric(values: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values))


def profile_column(values: Any, bins: int = 10, kind: str | None = None) -> dict[str, Any]:
    """Reference entry for one column: kind, edges or categories, expected shares.

    The result holds only JSON types (lists of floats and strings).
    """
    s = pd.Series(values).reset_index(drop=True)
    n = int(s.size)
    if n == 0:
        raise ValidationInputError("profile_column: reference values are empty")
    kind = kind or ("numeric" if _is_numeric(s) else "categorical")
    miss = s.isna().to_numpy()
    missing_share = float(miss.mean())
    if kind == "numeric":
        if bins < 1:
            raise ValidationInputError(f"bins must be >= 1, got {bins}")
        x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        finite = x[np.isfinite(x)]
        if finite.size:
            q = np.quantile(finite, np.linspace(0.0, 1.0, bins + 1))
            inner = np.unique(q[1:-1])
        else:
            inner = np.empty(0)
        entry: dict[str, Any] = {"kind": "numeric", "edges": [float(e) for e in inner]}
        # +-inf count in the outer bins, exactly as ``_actual_shares`` bins a current
        # sample (searchsorted puts -inf first and +inf last): dropping them here but
        # not there made two samples of one distribution drift (shares summing to < 1)
        idx = np.searchsorted(inner, x[~np.isnan(x)], side="right")
        counts = np.bincount(idx, minlength=inner.size + 1)
        entry["expected"] = [float(c) / n for c in counts]
        entry["zero_share"] = float((finite == 0).sum()) / max(int(finite.size), 1)
    elif kind == "categorical":
        cats = s[~miss].astype(str)
        vc = cats.value_counts(sort=False)
        order = sorted(vc.index.tolist())
        entry = {"kind": "categorical", "categories": order,
                 "expected": [float(vc[c]) / n for c in order]}
    else:
        raise ValidationInputError(f"kind must be numeric or categorical, got {kind!r}")
    entry["missing_share"] = missing_share
    entry["n"] = n
    return entry


def _actual_shares(entry: Mapping[str, Any], values: Any) -> tuple[list[str], np.ndarray,
                                                                    np.ndarray]:
    """Bin labels, expected and actual shares (including missing / other bins)."""
    s = pd.Series(values).reset_index(drop=True)
    n = s.size
    if n == 0:
        raise ValidationInputError("psi: actual values are empty")
    miss = s.isna().to_numpy()
    expected = np.asarray(entry["expected"], dtype=float)
    if entry["kind"] == "numeric":
        inner = np.asarray(entry["edges"], dtype=float)
        x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        if (np.isnan(x) & ~miss).any():
            raise ValidationInputError("psi: non-numeric values in a numeric column")
        miss = np.isnan(x)
        idx = np.searchsorted(inner, x[~miss], side="right")
        actual = np.bincount(idx, minlength=inner.size + 1).astype(float) / n
        bounds = np.concatenate([[-np.inf], inner, [np.inf]])
        labels = [f"[{bounds[i]:.6g}, {bounds[i + 1]:.6g})" for i in range(inner.size + 1)]
    elif entry["kind"] == "categorical":
        cats = list(entry["categories"])
        vals = s[~miss].astype(str)
        vc = vals.value_counts()
        actual = np.array([float(vc.get(c, 0)) for c in cats]) / n
        other = float(vc[~vc.index.isin(cats)].sum()) / n
        labels = [str(c) for c in cats]
        if other > 0:
            labels.append(_OTHER)
            expected = np.append(expected, 0.0)
            actual = np.append(actual, other)
    else:
        raise ValidationInputError(f"profile entry has unknown kind {entry.get('kind')!r}")
    e_miss, a_miss = float(entry.get("missing_share", 0.0)), float(miss.mean())
    if e_miss > 0 or a_miss > 0:
        labels.append(_MISSING)
        expected = np.append(expected, e_miss)
        actual = np.append(actual, a_miss)
    return labels, expected, actual


def psi_table_from_profile(entry: Mapping[str, Any], values: Any,
                           eps: float = 1e-4) -> pd.DataFrame:
    """Per bin: ``bin, expected_share, actual_share, psi`` (contribution)."""
    labels, e, a = _actual_shares(entry, values)
    ef, af = np.maximum(e, eps), np.maximum(a, eps)
    return pd.DataFrame({"bin": labels, "expected_share": e, "actual_share": a,
                         "psi": (af - ef) * np.log(af / ef)})


def psi_from_profile(entry: Mapping[str, Any], values: Any, eps: float = 1e-4) -> float:
    """PSI of ``values`` against a stored reference entry (no training data needed)."""
    return float(psi_table_from_profile(entry, values, eps)["psi"].sum())


def psi_table(expected: Any, actual: Any, bins: int = 10, eps: float = 1e-4) -> pd.DataFrame:
    """Per-bin PSI table with quantile bins taken from ``expected``."""
    return psi_table_from_profile(profile_column(expected, bins), actual, eps)


def psi(expected: Any, actual: Any, bins: int = 10, eps: float = 1e-4) -> float:
    """Population stability index of ``actual`` against ``expected``.

    Rule of thumb: < 0.1 stable, 0.1-0.25 some shift, > 0.25 major shift.

    >>> import numpy as np
    >>> from village_credit.validation import psi
    >>> rng = np.random.default_rng(0)
    >>> train = rng.normal(0, 1, 1000)
    >>> round(psi(train, rng.normal(0, 1, 1000)), 2)    # same population: stable
    0.02
    >>> round(psi(train, rng.normal(0.5, 1, 1000)), 2)  # shifted by half a standard deviation
    0.24
    """
    return float(psi_table(expected, actual, bins, eps)["psi"].sum())


def reference_profile(df: pd.DataFrame, columns: Sequence[str] | None = None, bins: int = 10,
                      score: Any = None, score_name: str = "score") -> dict[str, Any]:
    """JSON-serialisable training reference for later PSI/CSI.

    ``{"version": 1, "bins": bins, "columns": {name: entry}}``; when ``score``
    is given it is stored as one more entry under ``score_name``.

    >>> import numpy as np
    >>> import pandas as pd
    >>> from village_credit.validation import reference_profile
    >>> rng = np.random.default_rng(0)
    >>> features = pd.DataFrame({"head_age": rng.integers(20, 80, 200)})
    >>> profile = reference_profile(features, score=rng.normal(600, 50, 200))
    >>> profile["version"], profile["bins"], sorted(profile["columns"])
    (1, 10, ['head_age', 'score'])
    """
    cols = list(df.columns if columns is None else columns)
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValidationInputError(f"reference_profile: columns {missing} not in the table")
    entries = {str(c): profile_column(df[c], bins) for c in cols}
    if score is not None:
        if score_name in entries:
            raise ValidationInputError(f"reference_profile: {score_name!r} is also a column")
        entries[score_name] = profile_column(np.asarray(score, dtype=float), bins, "numeric")
    return {"version": PROFILE_VERSION, "bins": int(bins), "columns": entries}


def csi_from_profile(profile: Mapping[str, Any], cur_df: pd.DataFrame,
                     columns: Sequence[str] | None = None,
                     thresholds: Sequence[float] = (0.1, 0.25), eps: float = 1e-4,
                     ) -> pd.DataFrame:
    """CSI per column of ``cur_df`` against a stored profile.

    Columns: ``column, kind, csi, alert, n_reference, n_current``, sorted by
    CSI descending. ``columns=None`` uses every profiled column present in
    ``cur_df``; naming a column absent from either side is an error.
    """
    entries = profile.get("columns", {})
    if columns is None:
        cols = [c for c in entries if c in cur_df.columns]
    else:
        cols = list(columns)
        absent = [c for c in cols if c not in entries or c not in cur_df.columns]
        if absent:
            raise ValidationInputError(
                f"csi: columns {absent} missing from the reference profile or the sample")
    rows = []
    for c in cols:  # one vectorised PSI per column
        value = psi_from_profile(entries[c], cur_df[c], eps)
        rows.append({"column": c, "kind": entries[c]["kind"], "csi": value,
                     "alert": alert_level(value, thresholds),
                     "n_reference": int(entries[c].get("n", 0)), "n_current": int(len(cur_df))})
    out = pd.DataFrame(rows, columns=["column", "kind", "csi", "alert", "n_reference",
                                      "n_current"])
    return out.sort_values("csi", ascending=False, kind="stable").reset_index(drop=True)


def csi_table(ref_df: pd.DataFrame, cur_df: pd.DataFrame, columns: Sequence[str] | None = None,
              bins: int = 10, thresholds: Sequence[float] = (0.1, 0.25),
              eps: float = 1e-4) -> pd.DataFrame:
    """CSI of each column between a reference and a current table (see ``csi_from_profile``)."""
    cols = [c for c in (ref_df.columns if columns is None else columns)]
    absent = [c for c in cols if c not in cur_df.columns]
    if absent:
        raise ValidationInputError(f"csi_table: columns {absent} not in the current table")
    return csi_from_profile(reference_profile(ref_df, cols, bins), cur_df, cols, thresholds, eps)


def migration_matrix(prev_grade: Any, new_grade: Any, order: Sequence[Any],
                     normalize: bool = False) -> pd.DataFrame:
    """Counts (or row shares) of households moving from ``prev_grade`` to ``new_grade``.

    Rows are previous grades and columns new grades, both in ``order`` (best
    first). Pairs where either grade is missing are left out; a grade not in
    ``order`` is an error.
    """
    prev = pd.Series(prev_grade).reset_index(drop=True)
    new = pd.Series(new_grade).reset_index(drop=True)
    if prev.size != new.size:
        raise ValidationInputError(
            f"migration_matrix: prev_grade has {prev.size} rows, new_grade {new.size}")
    keep = prev.notna() & new.notna()
    order_l = list(order)
    for name, s in (("prev_grade", prev[keep]), ("new_grade", new[keep])):
        bad = pd.unique(s[~s.isin(order_l)])
        if len(bad):
            raise ValidationInputError(f"migration_matrix: {name} has grades {list(bad)[:5]} "
                                       f"not in order {order_l}")
    pc = pd.Categorical(prev[keep], categories=order_l)
    nc = pd.Categorical(new[keep], categories=order_l)
    codes = pc.codes.astype(np.int64) * len(order_l) + nc.codes.astype(np.int64)
    counts = np.bincount(codes, minlength=len(order_l) ** 2).reshape(len(order_l), len(order_l))
    mat = pd.DataFrame(counts, index=pd.Index(order_l, name="previous"),
                       columns=pd.Index(order_l, name="new"))
    if normalize:
        totals = mat.sum(axis=1).replace(0, np.nan)
        mat = mat.div(totals, axis=0)
    return mat


def migration_summary(matrix: pd.DataFrame) -> dict[str, float]:
    """Shares staying, moving to a better grade, and moving to a worse grade."""
    m = matrix.to_numpy(dtype=float)
    m = np.nan_to_num(m)
    total = m.sum()
    if total == 0:
        return {"n": 0, "stable": float("nan"), "upgrade": float("nan"),
                "downgrade": float("nan")}
    return {"n": int(total), "stable": float(np.trace(m) / total),
            "upgrade": float(np.tril(m, -1).sum() / total),
            "downgrade": float(np.triu(m, 1).sum() / total)}


# --------------------------------------------------------------------------- sampling noise
#: Bins of a noise-aware PSI are merged until each expects this many rows of the smaller
#: sample (reference shares x rows): fewer, and an empty bin is likely by chance alone.
MIN_EXPECTED_PER_BIN = 5
#: Below this expected count per bin the chi-square approximation of PSI is poor and the
#: p-value is a permutation p (``psi_test``): an empty bin, floored at ``eps``, adds about
#: ``share * ln(share / eps)`` (0.69 for a tenth), a tail far heavier than the chi-square.
#: 20 random splits of 32 villages of ~100 (bins expecting ~11) gave three such villages
#: "significant"; at 25 an empty bin has probability e^-25.
CHI2_MIN_EXPECTED = 25
#: Most permutation draws (sequential: a p-value above ~0.005 stops after 2,000): a
#: p-value of 1/100001 survives Holm over ~340 segment tests at alpha 0.01.
N_PERMUTATIONS = 100_000
#: Reference share of zeros from which a numeric column counts as zero-inflated.
ZERO_INFLATED_SHARE = 0.5


def _merge_bins(expected: np.ndarray, n_small: int, min_expected: float) -> np.ndarray:
    """Group id per bin: adjacent bins merged, in order, until each group expects
    ``min_expected`` rows of the smaller sample; a short tail joins the group before it."""
    group = np.zeros(expected.size, dtype=np.int64)
    g, acc = 0, 0.0
    for i, share in enumerate(expected):
        group[i] = g
        acc += share * n_small
        if acc >= min_expected and i < expected.size - 1:
            g, acc = g + 1, 0.0
    if g > 0 and acc < min_expected:  # the last group fell short: merge it into the previous
        group[group == g] = g - 1
    return group


def _psi_of(e: np.ndarray, a: np.ndarray, eps: float) -> np.ndarray:
    ef, af = np.maximum(e, eps), np.maximum(a, eps)
    return ((af - ef) * np.log(af / ef)).sum(axis=-1)


def psi_test_from_profile(entry: Mapping[str, Any], values: Any, *,
                          min_expected: float = MIN_EXPECTED_PER_BIN,
                          n_permutations: int = N_PERMUTATIONS, seed: int = 0,
                          eps: float = 1e-4) -> dict[str, Any]:
    """PSI of ``values`` against a reference entry with its sampling noise.

    The entry's bins (reference quantiles) are merged so that each expects at least
    ``min_expected`` rows of the smaller sample. Under no change, PSI over ``B`` bins is
    about ``(1/n_ref + 1/n_cur) * chi2(B - 1)`` (Yurdakul and Naranjo, Journal of Risk
    Model Validation, 2020): ``p_value`` is that tail (``method="chi2"``) when every bin
    expects at least ``CHI2_MIN_EXPECTED`` rows, else a permutation p over the pooled
    bin counts (``method="permutation"``, ``n_permutations`` draws, seeded). One bin
    left (too few rows, or one value holds every quantile) gives NaN PSI and p
    (``method="one bin"``).
    """
    _, e, a = _actual_shares(entry, values)
    n_ref, n_cur = int(entry.get("n", 0)), int(pd.Series(values).size)
    if n_ref <= 0:
        raise ValidationInputError("psi_test: the reference entry has no row count 'n'")
    group = _merge_bins(e, min(n_ref, n_cur), min_expected)
    e_m = np.bincount(group, weights=e)
    a_m = np.bincount(group, weights=a)
    n_bins = int(e_m.size)
    out: dict[str, Any] = {"psi": float("nan"), "p_value": float("nan"), "bins": n_bins,
                           "method": "one bin", "n_reference": n_ref, "n_current": n_cur,
                           "min_expected": float(e_m.min() * min(n_ref, n_cur))}
    if n_bins < 2:
        return out
    value = float(_psi_of(e_m, a_m, eps))
    out["psi"] = value
    if out["min_expected"] >= CHI2_MIN_EXPECTED:
        scale = 1.0 / n_ref + 1.0 / n_cur
        out.update(p_value=float(stats.chi2.sf(value / scale, n_bins - 1)), method="chi2")
        return out
    ref_counts = np.rint(e_m * n_ref).astype(np.int64)
    cur_counts = np.rint(a_m * n_cur).astype(np.int64)
    pooled, n_c = ref_counts + cur_counts, int(cur_counts.sum())
    n_r = max(int(ref_counts.sum()), 1)
    rng = np.random.default_rng(seed)
    # sequential: stop once 10 draws reach the observed PSI (p >= ~0.005 is known well
    # enough); only small p-values need every draw (Besag and Clifford, 1991)
    hits, done, batch = 0, 0, min(2000, int(n_permutations))
    while done < n_permutations:
        size = min(batch, int(n_permutations) - done)
        draws = rng.multivariate_hypergeometric(pooled, n_c, size=size)
        hits += int((_psi_of((pooled - draws) / n_r, draws / max(n_c, 1), eps) >= value - 1e-12).sum())
        done += size
        if hits >= 10:
            break
    p = (1.0 + hits) / (done + 1.0)
    out.update(p_value=p, method="permutation")
    return out


def psi_test(expected: Any, actual: Any, bins: int = 10, **kwargs: Any) -> dict[str, Any]:
    """PSI of ``actual`` against ``expected`` with its p-value under no change.

    Small samples: two draws of one population can show a PSI above 0.1 by chance;
    the p-value says whether the PSI is more than that noise (``psi_test_from_profile``).

    >>> import numpy as np
    >>> from village_credit.validation.stability import psi_test
    >>> rng = np.random.default_rng(0)
    >>> same = psi_test(rng.normal(0, 1, 100), rng.normal(0, 1, 100))
    >>> same["bins"], same["method"], same["p_value"] > 0.05   # 10 rows a bin: permutation p
    (10, 'permutation', True)
    >>> moved = psi_test(rng.normal(0, 1, 100), rng.normal(1, 1, 100))
    >>> round(moved["psi"], 1) >= 0.25, moved["p_value"] < 0.001
    (True, True)
    """
    return psi_test_from_profile(profile_column(expected, bins), actual, **kwargs)


def stability_table(profile: Mapping[str, Any], cur_df: pd.DataFrame,
                    columns: Sequence[str] | None = None,
                    thresholds: Sequence[float] = (0.1, 0.25), *, alpha: float = 0.01,
                    min_expected: float = MIN_EXPECTED_PER_BIN, seed: int = 0) -> pd.DataFrame:
    """CSI per column with its noise: a column alerts only when material and significant.

    Columns: ``column, kind, csi, bins, p_value, p_method, p_holm, material, alert,
    n_reference, n_current`` (sorted by CSI descending). ``csi`` is the PSI on the
    merged bins (``psi_test_from_profile``), ``material`` its level against
    ``thresholds``, ``p_holm`` Holm-adjusted across the columns; ``alert`` is
    ``material`` when ``p_holm < alpha``, else ``green``.
    """
    entries = profile.get("columns", {})
    cols = [c for c in entries if c in cur_df.columns] if columns is None else list(columns)
    absent = [c for c in cols if c not in entries or c not in cur_df.columns]
    if absent:
        raise ValidationInputError(
            f"stability: columns {absent} missing from the reference profile or the sample")
    rows = []
    for i, c in enumerate(cols):
        t = psi_test_from_profile(entries[c], cur_df[c], min_expected=min_expected, seed=seed + i)
        rows.append({"column": c, "kind": entries[c]["kind"], "csi": t["psi"], "bins": t["bins"],
                     "p_value": t["p_value"], "p_method": t["method"],
                     "material": alert_level(t["psi"], thresholds),
                     "n_reference": t["n_reference"], "n_current": t["n_current"]})
    out = pd.DataFrame(rows, columns=["column", "kind", "csi", "bins", "p_value", "p_method",
                                      "material", "n_reference", "n_current"])
    out.insert(6, "p_holm", holm(out["p_value"].to_numpy(float)))
    out.insert(8, "alert", noise_aware_alert(out["material"], out["p_holm"], alpha))
    return out.sort_values("csi", ascending=False, kind="stable").reset_index(drop=True)


def holm(p: Any) -> np.ndarray:
    """Holm-adjusted p-values; NaN stays NaN and is not counted.

    The same numbers as statsmodels' ``multipletests(p, method="holm")`` (a test
    checks it), written out because that call runs ``gc.collect()`` every time: 1.3 s
    in a process that holds a model and MLflow, and a monitor run adjusts 16 families.

    >>> from village_credit.validation.stability import holm
    >>> holm([0.01, 0.04, float("nan"), 0.03]).round(2).tolist()
    [0.03, 0.06, nan, 0.06]
    """
    pv = np.asarray(p, dtype=float)
    out = np.full(pv.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(pv))
    if ok.size:
        order = ok[np.argsort(pv[ok], kind="stable")]
        adj = np.maximum.accumulate((order.size - np.arange(order.size)) * pv[order])
        out[order] = np.minimum(adj, 1.0)
    return out


def noise_aware_alert(material: Any, p_holm: Any, alpha: float) -> list[str]:
    """The material level where the adjusted p-value is below ``alpha``, else ``green``
    (``n/a`` where the material level is ``n/a``: too few rows to judge)."""
    out = []
    for m, p in zip(material, np.asarray(p_holm, dtype=float), strict=True):
        out.append(m if m == "n/a" or (np.isfinite(p) and p < alpha) else "green")
    return out


def zero_share_table(ref_df: pd.DataFrame | None, cur_df: pd.DataFrame,
                     columns: Sequence[str], *, profile: Mapping[str, Any] | None = None,
                     alpha: float = 0.01, ratios: Sequence[float] = (1.5, 2.0)) -> pd.DataFrame:
    """Non-zero share of zero-inflated numeric columns (delinquency counts), reference
    vs current: the CSI of a column that is 98 % zero has one quantile bin and stays 0
    when its non-zero share doubles; this table does not.

    A column is zero-inflated when at least ``ZERO_INFLATED_SHARE`` of its reference
    values are 0. Per column: ``nonzero_reference, nonzero_current, ratio`` (current
    over reference), a two-sided two-proportion z-test (statsmodels
    ``proportions_ztest``), Holm across the columns, ``material`` (amber from a ratio
    of ``ratios[0]``, red from ``ratios[1]``, either direction) and ``alert``
    (``material`` when significant). The reference comes from ``ref_df`` or, without
    it, from the ``zero_share`` a profile entry stores.
    """
    rows = []
    for c in columns:
        cur = pd.to_numeric(cur_df[c], errors="coerce").dropna()
        if ref_df is not None:
            ref = pd.to_numeric(ref_df[c], errors="coerce").dropna()
            n_r, z_r = int(ref.size), int((ref == 0).sum())
        else:
            entry = (profile or {}).get("columns", {}).get(c, {})
            if "zero_share" not in entry:
                continue
            n_r = round(entry["n"] * (1.0 - entry.get("missing_share", 0.0)))
            z_r = round(entry["zero_share"] * n_r)
        if n_r == 0 or cur.size == 0 or z_r / n_r < ZERO_INFLATED_SHARE:
            continue
        nz_r, nz_c, n_c = n_r - z_r, int((cur != 0).sum()), int(cur.size)
        s_r, s_c = nz_r / n_r, nz_c / n_c
        p = float("nan")
        if 0 < nz_r + nz_c < n_r + n_c:
            p = float(proportions_ztest([nz_c, nz_r], [n_c, n_r])[1])
        ratio = s_c / s_r if s_r > 0 else (float("inf") if s_c > 0 else 1.0)
        fold = max(ratio, 1.0 / ratio) if ratio > 0 else float("inf")
        material = "red" if fold >= ratios[1] else ("amber" if fold >= ratios[0] else "green")
        rows.append({"column": c, "nonzero_reference": s_r, "nonzero_current": s_c,
                     "ratio": ratio, "p_value": p, "material": material,
                     "n_reference": n_r, "n_current": n_c})
    out = pd.DataFrame(rows, columns=["column", "nonzero_reference", "nonzero_current", "ratio",
                                      "p_value", "material", "n_reference", "n_current"])
    out.insert(5, "p_holm", holm(out["p_value"].to_numpy(float)))
    out.insert(7, "alert", noise_aware_alert(out["material"], out["p_holm"], alpha))
    return out
