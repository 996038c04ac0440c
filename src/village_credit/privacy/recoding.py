"""Local recoding: generalise each quasi-identifier per equivalence class until k holds.

Why local (Mondrian-style, top-down) and not one scheme for the whole file: a global
scheme coarse enough for the rarest households (elderly women heads in a small village)
is far too coarse for everyone else, and the rest gets *suppressed*, which falls on the
very groups the fairness audit is about. Top-down specialisation starts from the most
general release (all locations, the widest bands) and splits a class only while every
part still holds at least ``k`` households, so nothing is suppressed unless a
*mandatory* cell (gender x fairness age segment x formerly-poor status...) is itself
smaller than ``k``.

Every split follows a declared hierarchy (:class:`BandHierarchy` for numbers and ordered
categories, :class:`LocationHierarchy` for village -> township -> any), so each released
value stays meaningful: a class's age is a five-year band (60 never crossed; 41, 65 and 70,
the other fairness band starts, cut right after the location and 61 and 66, the 18-60 and
18-65 eligibility rules, next, whenever ``k`` allows), its land a band of mu, its village either the village or "some village of
township T". In the released table a class's numeric values are the class mean
(rounded), its ordered category the class median, so the table keeps its schema.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
import pandas as pd

from village_credit.data.groups import ELDERLY_AGE
from village_credit.privacy.errors import KAnonymityError

ANY = "*"
"""Released code of a fully generalised location (any township, any village)."""


def any_village(township: str) -> str:
    """Released village code of "some village of township ``township``"."""
    return f"{township}-{ANY}"


@dataclass(frozen=True)
class BandHierarchy:
    """A number (or ordered category) generalised to unions of adjacent finest bands.

    ``edges``: finest band edges (``[e_i, e_{i+1})``, first = lowest allowed value,
    values below go to the first band, at or above the last edge to the last band);
    ``mandatory``: the fairness cuts: the elderly one (60; else the first) never crossed (the
    cells are split there first, whatever k), the others cut right after the location
    wherever k allows (so a village's small elderly cell keeps its village in a wider band);
    ``preferred``: edges tried first when the class spans them (policy cut-offs);
    ``categories``: for ordered categories, their order (values are category labels);
    ``decimals``: rounding of the released class mean (``None``: the class median
    category for ordered categories).
    """

    column: str
    edges: tuple[float, ...]
    mandatory: tuple[float, ...] = ()
    preferred: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()
    decimals: int = 0

    def __post_init__(self) -> None:
        e = list(self.edges)
        if len(e) < 2 or any(b <= a for a, b in pairwise(e)):
            raise KAnonymityError(f"hierarchy of {self.column}: edges must rise strictly, got {e}")
        for cut in (*self.mandatory, *self.preferred):
            if cut not in e:
                raise KAnonymityError(f"hierarchy of {self.column}: cut {cut} is not one of its edges {e}")

    @property
    def n_bins(self) -> int:
        return len(self.edges) - 1

    def codes(self, s: pd.Series) -> np.ndarray:
        """Finest band index of each value (0 .. n_bins - 1)."""
        if self.categories:
            pos = {c: i for i, c in enumerate(self.categories)}
            v = s.astype("object").map(pos).to_numpy(dtype=float, na_value=np.nan)
        else:
            v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
        if np.isnan(v).any():
            raise KAnonymityError(f"quasi-identifier {self.column} has {int(np.isnan(v).sum())} "
                                  "missing or unknown value(s); validate the table first")
        return np.clip(np.searchsorted(np.asarray(self.edges, float), v, side="right") - 1, 0, self.n_bins - 1)

    def label(self, lo: int, hi: int) -> str:
        """Readable band of finest bins ``lo..hi`` (inclusive), e.g. ``46-55`` or ``junior-senior``."""
        if self.categories:
            a, b = self.categories[int(self.edges[lo])], self.categories[int(self.edges[hi + 1]) - 1]
            return a if a == b else f"{a}-{b}"
        a, b = self.edges[lo], self.edges[hi + 1]
        if self.decimals == 0 and float(a).is_integer() and float(b).is_integer():
            return f"{a:g}" if b - a == 1 else f"{a:g}-{b - 1:g}"
        return f"[{a:g}, {b:g})"


@dataclass(frozen=True)
class LocationHierarchy:
    """Village -> township -> any: the location a class is released at."""

    village: str = "village_code"
    township: str = "township_code"


@dataclass
class RecodeResult:
    """Outcome of :func:`local_recode`.

    ``data``: released rows (QI values replaced, suppressed rows removed, index kept);
    ``suppressed``: mask over the input index; ``class_id``: equivalence class of each
    released row; ``bands``: per released row and QI, the generalised band (text);
    ``n_generalised``: released rows with at least one QI value changed.
    """

    data: pd.DataFrame
    suppressed: pd.Series
    class_id: pd.Series
    bands: pd.DataFrame
    k_required: int
    n_classes: int
    n_generalised: int
    location_levels: dict[str, int] = field(default_factory=dict)
    suppressed_t: pd.Series = field(default_factory=lambda: pd.Series(dtype=bool))
    """Mask over the input index: cells suppressed because they breach t-closeness (and cannot be
    merged: gender, formerly-poor status and the side of 60 are never generalised)."""
    suppressed_holders: pd.Series = field(default_factory=lambda: pd.Series(dtype=bool))
    """Mask over the input index: rows the bank / register keeper protection withheld (set by the
    anonymiser after the recoding)."""

    @property
    def n_suppressed(self) -> int:
        return int(self.suppressed.sum())


@dataclass
class _Part:
    rows: np.ndarray
    lo: dict[str, int]
    hi: dict[str, int]
    loc_level: int  # 0 any, 1 township, 2 village
    loc_done: bool = False


def variational_distance(value_counts: np.ndarray, sizes: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Per row of ``value_counts`` (classes x values): the variational distance between the class's
    distribution and ``dist``, ``0.5 * sum |p_class - p_all|`` (for a binary attribute
    ``|p_class(1) - p_all(1)|``; pycanon's t for a categorical attribute). Empty classes: inf.

    >>> import numpy as np
    >>> # a class of 6 with 1 default and one of 5 with 2, against a 4 % base rate
    >>> variational_distance(np.array([[5, 1], [3, 2]]), np.array([6, 5]), np.array([0.96, 0.04])).round(3)
    array([0.127, 0.36 ])
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        d = 0.5 * np.abs(value_counts / np.asarray(sizes, float)[:, None] - dist[None, :]).sum(axis=1)
    return np.where(np.asarray(sizes) > 0, d, np.inf)


_T_EPS = 1e-12  # t compared with a tolerance: a class exactly at t meets it


def _best_cut(counts: np.ndarray, lo: int, hi: int, k: int, preferred: Sequence[int],
              value_counts: Sequence[np.ndarray] = (), l_div: int = 1, only_preferred: bool = False,
              close_counts: Sequence[tuple[np.ndarray, np.ndarray]] = (), t: float = 1.0) -> int | None:
    """Cut index c (left = bins lo..c-1, right = c..hi) closest to the median with both sides >= k
    (and, per sensitive attribute in ``value_counts`` (bins x values), >= ``l_div`` distinct values;
    per t-closeness target in ``close_counts`` ((bins x values, overall distribution)), both sides
    within ``t``); the first valid ``preferred`` cut if any (``only_preferred``: no other)."""
    seg = counts[lo:hi + 1]
    total = int(seg.sum())
    left = np.cumsum(seg)[:-1]  # left size for cut at lo+1 .. hi
    ok = (left >= k) & (total - left >= k)
    for vc in value_counts:
        vseg = vc[lo:hi + 1]
        vleft = np.cumsum(vseg, axis=0)[:-1]
        vtot = vseg.sum(axis=0)
        ok &= ((vleft > 0).sum(axis=1) >= l_div) & (((vtot - vleft) > 0).sum(axis=1) >= l_div)
    for vc, dist in close_counts:
        vseg = vc[lo:hi + 1]
        vleft = np.cumsum(vseg, axis=0)[:-1]
        vright = vseg.sum(axis=0)[None, :] - vleft
        ok &= (variational_distance(vleft, left, dist) <= t + _T_EPS) \
            & (variational_distance(vright, total - left, dist) <= t + _T_EPS)
    if not ok.any():
        return None
    cuts = np.arange(lo + 1, hi + 1)
    for p in preferred:
        if lo < p <= hi and ok[p - lo - 1]:
            return int(p)
    if only_preferred:
        return None
    valid = cuts[ok]
    return int(valid[np.argmin(np.abs(left[ok] - total / 2))])


Check = Callable[[np.ndarray], bool]
"""Whether a set of rows may be released as one class beyond k (l-diversity, t-closeness)."""


def _class_check(sens: Sequence[np.ndarray], l_div: int,
                 close: Sequence[tuple[np.ndarray, np.ndarray]], t: float) -> Check | None:
    """The check every class must pass besides k: ``l_div`` distinct values of each debt flag in
    ``sens``, and each t-closeness target ((codes, overall distribution)) within ``t``."""
    sens = list(sens) if l_div > 1 else []
    if not sens and not close:
        return None

    def ok(rows: np.ndarray) -> bool:
        if not all(len(np.unique(s[rows])) >= l_div for s in sens):
            return False
        return all(variational_distance(np.bincount(c[rows], minlength=len(d))[None, :], np.array([len(rows)]),
                                        d)[0] <= t + _T_EPS for c, d in close)
    return ok


def _pool_split(labels: np.ndarray, rows: np.ndarray, k: int,
                check: Check | None = None) -> list[tuple[np.ndarray, bool]] | None:
    """Split rows by label: children >= k (and passing ``check``) on their own, the rest pooled
    (``True`` = pooled)."""
    uniq, inv, cnt = np.unique(labels[rows], return_inverse=True, return_counts=True)
    if len(uniq) < 2:
        return None
    big = cnt >= k
    if check is not None:
        for j in np.flatnonzero(big):
            big[j] = check(rows[inv == j])
    while (~big).any():
        pool = rows[~big[inv]]
        if len(pool) >= k and (check is None or check(pool)):
            break
        if big.sum() <= 1:
            return None
        smallest = np.flatnonzero(big)[np.argmin(cnt[big])]
        big[smallest] = False
    parts = [(rows[inv == j], False) for j in np.flatnonzero(big)]
    if (~big).any():
        parts.append((rows[~big[inv]], True))
    return parts if len(parts) >= 2 else None


def _keepable(labels: np.ndarray, rows: np.ndarray, k: int, check: Check | None = None) -> int:
    """Rows whose location (``labels``) holds at least k of ``rows`` (passing ``check``): those a
    location split can keep at that level."""
    uniq, inv, cnt = np.unique(labels[rows], return_inverse=True, return_counts=True)
    ok = cnt >= k
    if check is not None:
        for j in np.flatnonzero(ok):
            ok[j] = check(rows[inv == j])
    return int(cnt[ok].sum())


def _cells(parts: list[np.ndarray], n: int) -> pd.Series:
    """Cell number of each row from its exact values and mandatory segments."""
    if not parts:
        return pd.Series(np.zeros(n, dtype=np.int64))
    return pd.Series(pd.MultiIndex.from_arrays(parts).factorize()[0] if len(parts) > 1
                     else pd.factorize(parts[0])[0])


def local_recode(
    df: pd.DataFrame,
    quasi_identifiers: Sequence[str],
    k: int,
    hierarchies: Mapping[str, BandHierarchy],
    location: LocationHierarchy | None = LocationHierarchy(),
    *,
    sensitive: Mapping[str, np.ndarray] | None = None,
    l_diversity: int = 1,
    closeness: Mapping[str, np.ndarray] | None = None,
    t: float | None = None,
) -> RecodeResult:
    """Top-down local recoding of ``quasi_identifiers`` to k-anonymity (see module docstring).

    QIs with a :class:`BandHierarchy` are generalised per class; the location QIs
    (``location.village`` / ``location.township``) follow village -> township -> any;
    every other QI is kept exact (classes are split on it first, and cells of such
    exact values smaller than ``k`` are suppressed). ``sensitive`` (name -> integer codes
    per row) with ``l_diversity`` > 1: a class is only split where every part keeps at least
    that many distinct values of each (distinct l-diversity); a mandatory cell that has fewer
    is released as it is and shows in the homogeneity figures. ``closeness`` (name -> values per
    row) with ``t``: every class's distribution of each stays within variational distance ``t`` of
    the released table's (t-closeness; a class is only split where every part keeps it); a
    mandatory cell that breaches it cannot be merged, so it is suppressed (``suppressed_t``), and
    the overall distribution is taken again over what is left until no cell breaches it.
    """
    if t is not None and not 0 < t <= 1:
        raise KAnonymityError(f"t (t-closeness) must be within (0, 1], got {t}")
    if k < 1:
        raise KAnonymityError(f"k must be at least 1, got {k}")
    qis = list(dict.fromkeys(quasi_identifiers))
    missing = [q for q in qis if q not in df.columns]
    if missing:
        raise KAnonymityError(f"quasi-identifier column(s) not in the table: {missing}")
    loc_cols = [c for c in (location.village, location.township) if c in qis] if location else []
    bands = {q: hierarchies[q] for q in qis if q in hierarchies and q not in loc_cols}
    exact = [q for q in qis if q not in bands and q not in loc_cols]
    n = len(df)
    codes = {q: h.codes(df[q]) for q, h in bands.items()}
    sens = [np.asarray(pd.factorize(pd.Series(v))[0]) for v in (sensitive or {}).values()] \
        if l_diversity > 1 else []
    close_codes = [np.asarray(pd.factorize(pd.Series(v))[0]) for v in (closeness or {}).values()] \
        if t is not None else []
    if any((c < 0).any() for c in close_codes):
        raise KAnonymityError("a t-closeness target has missing values; validate the table first")
    loc_codes: tuple[np.ndarray, ...] = ()
    max_loc = 0
    if loc_cols:
        town = df[location.township].astype(str).to_numpy() if location.township in df.columns \
            else df[location.village].astype(str).to_numpy()
        vill = df[location.village].astype(str).to_numpy() if location.village in df.columns else town
        loc_codes = (pd.factorize(town)[0], pd.factorize(pd.Series(town) + "\x00" + pd.Series(vill))[0])
        # a township-only QI needs no village level
        max_loc = 2 if location.village in loc_cols else 1
    # mandatory cells: exact QIs and the *hard* cut of each band QI with mandatory cuts (the elderly
    # cut, 60: the equal-risk comparison; without it, the first). The other mandatory cuts (41, 65,
    # 70) are *soft*: tried right after the location, so a village's few heads of 60-64 are merged
    # with its 65-69 and 70+ (age widened) before the village itself is given up (issue 28 item 5)
    key_parts = [pd.factorize(df[q])[0] for q in exact]
    soft: dict[str, list[int]] = {}
    for q, h in bands.items():
        if h.mandatory:
            hard = ELDERLY_AGE if ELDERLY_AGE in h.mandatory else h.mandatory[0]
            key_parts.append((codes[q] >= h.edges.index(hard)).astype(np.int64))
            soft[q] = [h.edges.index(m) for m in h.mandatory if m != hard]
    key = _cells(key_parts, n)
    suppressed = np.zeros(n, dtype=bool)
    cells = [np.asarray(idx, dtype=np.int64) for idx in key.groupby(key.to_numpy()).groups.values()]
    for rows in cells:
        if len(rows) < k:
            suppressed[rows] = True
    # t-closeness: the overall distribution is the release's; a mandatory cell too far from it is
    # suppressed (it cannot be merged), which moves the overall distribution: until none is
    suppressed_t = np.zeros(n, dtype=bool)
    close: list[tuple[np.ndarray, np.ndarray]] = []
    while close_codes:
        keep = ~suppressed
        close = [(c, np.bincount(c[keep], minlength=int(c.max()) + 1) / max(1, int(keep.sum())))
                 for c in close_codes]
        check = _class_check((), 1, close, float(t or 1.0))
        breach = [rows for rows in cells if not suppressed[rows[0]] and check is not None and not check(rows)]
        if not breach:
            break
        for rows in breach:
            suppressed[rows] = suppressed_t[rows] = True
    t_val = float(t) if t is not None else 1.0
    check = _class_check(sens, l_diversity, close, t_val)
    stack: list[_Part] = []
    for rows in cells:
        if suppressed[rows[0]]:
            continue
        lo = {q: int(codes[q][rows].min()) for q in bands}
        hi = {q: int(codes[q][rows].max()) for q in bands}
        stack.append(_Part(rows, lo, hi, 0, loc_done=not loc_cols))
    finals: list[_Part] = []
    preferred = {q: [h.edges.index(p) for p in h.preferred] for q, h in bands.items()}
    total_bins = {q: h.n_bins for q, h in bands.items()}
    while stack:
        p = stack.pop()
        # order: the location first (whole-village credit; the village split of the model), then
        # the soft mandatory cuts, then the preferred cut-offs (61, 66), then the widest band.
        # A soft cut that costs no household its village (a small file's elderly keep none) comes
        # before the location, so their fairness band stays. Mode: 0 any cut of the QI; soft cuts
        # only: 1 after the location, 2 before it where it costs no household its village
        options: list[tuple[float, str, int]] = []
        loc_open = not p.loc_done and p.loc_level < max_loc
        for q in bands:
            if p.hi[q] > p.lo[q]:
                # span of the class on its own values (not the bounds inherited from the parent)
                span = (p.hi[q] - p.lo[q] + 1) / total_bins[q]
                if any(p.lo[q] < c <= p.hi[q] for c in soft.get(q, ())):
                    options.append((5.0 + span, q, 1))
                    if loc_open:
                        options.append((20.0 + span, q, 2))
                pri = 2.0 if any(p.lo[q] < c <= p.hi[q] for c in preferred[q]) else 0.0
                options.append((pri + span, q, 0))
        if not p.loc_done and p.loc_level < max_loc:
            lab = loc_codes[p.loc_level]
            n_distinct = len(np.unique(lab[p.rows]))
            if n_distinct > 1:
                options.append((10.0, "\x00loc", 0))
            else:  # one township (or village): descend a level for free
                stack.append(_Part(p.rows, p.lo, p.hi, p.loc_level + 1))
                continue
        done = True
        for _, q, mode in sorted(options, reverse=True):
            if q == "\x00loc":
                parts = _pool_split(loc_codes[p.loc_level], p.rows, k, check)
                if parts is None:
                    continue
                for rows, pooled in parts:
                    stack.append(_Part(rows, {c: int(codes[c][rows].min()) for c in bands},
                                       {c: int(codes[c][rows].max()) for c in bands},
                                       p.loc_level if pooled else p.loc_level + 1, loc_done=pooled))
                done = False
                break
            c = codes[q][p.rows]
            counts = np.bincount(c, minlength=total_bins[q])
            vcs = [np.stack([np.bincount(c[sv[p.rows] == v], minlength=total_bins[q])
                             for v in range(int(sv.max()) + 1)], axis=1) for sv in sens]
            ccs = [(np.stack([np.bincount(c[cv[p.rows] == v], minlength=total_bins[q])
                              for v in range(len(d))], axis=1), d) for cv, d in close]
            # the soft cuts before the location (mode 2) need k only, not the debt flags' l-diversity;
            # t-closeness holds for every class
            cut = _best_cut(counts, p.lo[q], p.hi[q], k, soft[q] if mode else preferred[q],
                            () if mode == 2 else vcs, 1 if mode == 2 else l_diversity, only_preferred=mode > 0,
                            close_counts=ccs, t=t_val)
            if cut is None:
                continue
            if mode == 2 and any(_keepable(lab, p.rows, k, check) > sum(
                    _keepable(lab, rows, k, check) for rows in (p.rows[c < cut], p.rows[c >= cut]))
                    for lab in loc_codes[max_loc - 1:max_loc]):
                continue
            for rows in (p.rows[c < cut], p.rows[c >= cut]):
                stack.append(_Part(rows, {b: int(codes[b][rows].min()) for b in bands},
                                   {b: int(codes[b][rows].max()) for b in bands}, p.loc_level, p.loc_done))
            done = False
            break
        if done:
            finals.append(p)
    res = _release(df, qis, bands, loc_cols, location, finals, suppressed, k)
    res.suppressed_t = pd.Series(suppressed_t, index=df.index)
    return res


def _release(df: pd.DataFrame, qis: list[str], bands: Mapping[str, BandHierarchy], loc_cols: list[str],
             location: LocationHierarchy | None, finals: list[_Part], suppressed: np.ndarray,
             k: int) -> RecodeResult:
    n = len(df)
    cls = np.full(n, -1, dtype=np.int64)
    level = np.zeros(n, dtype=np.int64)
    band_txt: dict[str, np.ndarray] = {q: np.empty(n, dtype=object) for q in bands}
    for i, p in enumerate(finals):
        cls[p.rows] = i
        level[p.rows] = p.loc_level
        for q, h in bands.items():
            band_txt[q][p.rows] = h.label(p.lo[q], p.hi[q])
    keep = ~suppressed
    out = df.loc[keep].copy()
    cid = pd.Series(cls[keep], index=out.index, name="class_id")
    for q, h in bands.items():
        col = df[q].loc[keep]
        if h.categories:
            pos = {c: j for j, c in enumerate(h.categories)}
            num = col.astype("object").map(pos).astype(float)
            med = num.groupby(cid).transform("median").round().astype(int)
            vals = pd.Series(np.asarray(h.categories, dtype=object)[med.to_numpy()], index=out.index)
            out[q] = vals.astype(col.dtype) if isinstance(col.dtype, pd.CategoricalDtype) else vals
        else:
            mean = pd.to_numeric(col, errors="coerce").astype(float).groupby(cid).transform("mean")
            mean = mean.round(h.decimals)
            out[q] = mean.astype(col.dtype) if col.dtype.kind in "iu" or str(col.dtype) in ("Int64", "Int32") \
                else mean
    if loc_cols and location is not None:
        lv = pd.Series(level[keep], index=out.index)
        town = df[location.township].astype(str).loc[keep] if location.township in df.columns else None
        if location.village in out.columns:
            vill = out[location.village].astype(str)
            if town is not None:
                vill = vill.where(lv >= 2, town.map(any_village)).where(lv >= 1, ANY)
            else:
                vill = vill.where(lv >= 1, ANY)
            out[location.village] = vill.astype(out[location.village].dtype)
        if town is not None and location.township in out.columns:
            out[location.township] = town.where(lv >= 1, ANY).astype(out[location.township].dtype)
    changed = pd.Series(False, index=out.index)
    for q in qis:
        a, b = out[q], df.loc[out.index, q]
        changed |= ~((a.astype(str) == b.astype(str)).to_numpy(dtype=bool))
    bands_df = pd.DataFrame({q: band_txt[q][keep] for q in bands}, index=out.index)
    levels = pd.Series(level[keep]).map({0: "any", 1: "township", 2: "village"}).value_counts()
    return RecodeResult(
        data=out, suppressed=pd.Series(suppressed, index=df.index), class_id=cid, bands=bands_df,
        k_required=k, n_classes=len(finals), n_generalised=int(changed.sum()),
        location_levels={str(a): int(b) for a, b in levels.items()} if loc_cols else {},
    )


__all__ = ["ANY", "BandHierarchy", "LocationHierarchy", "RecodeResult", "any_village", "local_recode",
           "variational_distance"]
