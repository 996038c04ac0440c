"""Charts as scikit-learn-style ``*Display`` objects: the data first, the drawing second.

Why: a chart that is wrong looks as convincing as one that is right. Each display
holds the exact table it draws (``.table``, tested directly) and draws it on any
Axes (``.plot(ax=...)``), so notebooks, the fairness and validation reports and the
SHAP files share one implementation. As in scikit-learn, ``from_predictions`` /
``from_table`` compute the table and plot at once; the constructor takes a table
already computed. Every display keeps ``ax_`` and ``figure_`` after plotting.

Displays here:

* :class:`ReliabilityDisplay`: mean predicted PD against the observed default rate
  and (synthetic data) the mean true PD, all over the **same** bins.
* :class:`ScoreDistributionDisplay`: score or PD histograms by outcome or group.
* :class:`GroupImportanceDisplay`: mean |SHAP| per feature, a group vs the others.
* :class:`ApprovalByGroupDisplay`: approval rate by group with bootstrap intervals.
* :class:`EqualRiskDisplay`: approval (or line) gaps within true-PD deciles.
* :class:`GradeBackTestDisplay`: observed vs predicted default rate per grade.
* :class:`CreditVillageDisplay`: every village against every credit-village test.
* :class:`TradeoffDisplay`: fairness gap vs risk taken on, **and** the approval rate
  each option keeps (a gap closed by approving fewer households is not free).

Chinese labels: :func:`label_language` draws them with an installed CJK font
(Debian/Ubuntu: ``apt-get install fonts-noto-cjk``; then delete matplotlib's font
cache, ``~/.cache/matplotlib``); without one it falls back to English and the
figure says so, rather than drawing boxes ("tofu").

Legends sit outside the bars; numbers use fixed decimals (:func:`fmt_rate`) and yuan
thousands separators (:func:`fmt_yuan`). Figures are plain ``matplotlib.figure.Figure``
objects on the Agg canvas unless an ``ax`` is given (notebooks pass pyplot axes).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import MaxNLocator, PercentFormatter

from village_credit.binning import bin_index
from village_credit.errors import ConfigError
from village_credit.reporting.html import format_number

__all__ = [
    "CJK_FONT_HINT",
    "ApprovalByGroupDisplay",
    "CreditVillageDisplay",
    "EqualRiskDisplay",
    "GradeBackTestDisplay",
    "GroupImportanceDisplay",
    "PolicyFrontierDisplay",
    "ReliabilityDisplay",
    "ScoreDistributionDisplay",
    "TradeoffDisplay",
    "cjk_font",
    "fmt_number",
    "fmt_rate",
    "fmt_yuan",
    "has_cjk",
    "label_language",
    "legend_outside",
    "predicted_pd",
    "use_cjk_font",
]

CJK_FONT_HINT = ("no CJK font installed: labels in English "
                 "(install one, e.g. apt-get install fonts-noto-cjk)")
_CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans CJK", "Noto Serif CJK SC", "Source Han Sans SC",
                 "Source Han Sans", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "SimHei",
                 "Microsoft YaHei", "PingFang SC", "Heiti SC", "AR PL UMing CN", "Droid Sans Fallback")
PROTECTED_COLOR = "#d62728"
OTHERS_COLOR = "#1f77b4"
TARGET_COLOR = "#2ca02c"


# --------------------------------------------------------------------------- formats
def fmt_rate(value: Any, decimals: int = 3) -> str:
    """A fraction or statistic with fixed decimals (``0.780``, never ``7.800e-01``); NaN -> ``""``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{float(value):.{decimals}f}"


def fmt_number(value: Any) -> str:
    """Any number as people read it (``0.780``, ``0.0008``, ``53,800``); for pandas' display
    option: ``pd.set_option("display.float_format", fmt_number)``. NaN -> ``NaN``."""
    v = float(value)
    return "NaN" if math.isnan(v) else format_number(v)


def fmt_yuan(value: Any) -> str:
    """Yuan with thousands separators and no decimals (``53,800``, never ``5.38e+04``)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{float(value):,.0f}"


# --------------------------------------------------------------------------- CJK
@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """Family name of an installed font that draws Chinese, or None."""
    names = {f.name for f in font_manager.fontManager.ttflist}
    for fam in _CJK_FAMILIES:
        if fam in names:
            return fam
    return next((n for n in sorted(names) if "CJK" in n), None)


def has_cjk(text: str) -> bool:
    return any("\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" for ch in text)


def label_language(lang: str, font: str | None = "auto") -> tuple[str, str | None]:
    """``(language to draw, notice or None)``: ``"zh"`` only when a CJK font is installed.

    ``font="auto"`` looks one up (:func:`cjk_font`); pass ``None`` to force the fallback.
    """
    if lang != "zh":
        return lang, None
    found = cjk_font() if font == "auto" else font
    return ("zh", None) if found else ("en", CJK_FONT_HINT)


def use_cjk_font(fig: Any) -> int:
    """Draw every text of ``fig`` that holds Chinese with the installed CJK font.

    Set on the text objects themselves (not an rc context), because notebooks render
    a figure after the plotting call has returned. Returns how many texts changed.
    """
    fam = cjk_font()
    if fam is None:
        return 0
    changed = 0
    for t in fig.findobj(Text):
        if has_cjk(t.get_text()):
            t.set_fontfamily([fam, "sans-serif"])
            changed += 1
    return changed


def _notice(fig: Any, text: str | None) -> None:
    if text:
        fig.text(0.01, 0.005, text, fontsize=7, color="#8a1010", ha="left", va="bottom")


# --------------------------------------------------------------------------- base
def predicted_pd(estimator: Any, X: Any) -> np.ndarray:
    """PD from any estimator: ``predict_pd`` (a ``DecisionModel``/blend) or scikit-learn's
    ``predict_proba`` (column of class 1). Duck-typed, so this layer imports no model code."""
    if hasattr(estimator, "predict_pd"):
        return np.asarray(estimator.predict_pd(X), dtype=float)
    if hasattr(estimator, "predict_proba"):
        return np.asarray(estimator.predict_proba(X), dtype=float)[:, 1]
    raise ConfigError(f"{type(estimator).__name__} has neither predict_pd nor predict_proba")



def _new_axes(width: float, height: float, ncols: int = 1) -> tuple[Any, list[Any]]:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


AXIS_LABELS: dict[str, str] = {
    "er_max_gap_approval": "largest equal-risk approval gap",
    "true_pd_approved": "mean true PD of approved households",
    "default_rate_approved": "default rate of approved households",
    "approval_gap_elderly": "approval gap between age groups (max - min)",
    "approval_gap_formerly_poor": "approval gap, formerly poor vs others",
}


class ExactPercentFormatter(PercentFormatter):
    """Percent tick labels that say the tick's value: as few decimals as the ticks need.

    A fixed ``decimals=0`` printed a tick at 2.5 % as "2%" (and 12.5 % as "13%"), so a
    2 % threshold line sat below its "2 %" label. Here every label equals its location
    (``min_decimals`` to 3 decimals), one precision for the whole axis.
    """

    def __init__(self, min_decimals: int = 0) -> None:
        super().__init__(1.0, decimals=min_decimals)
        self.min_decimals = min_decimals

    def format_ticks(self, values: Any) -> list[str]:
        pct = np.asarray(values, dtype=float) * 100.0
        finite = pct[np.isfinite(pct)]
        self.decimals = next((d for d in range(self.min_decimals, 4)
                              if np.allclose(np.round(finite, d), finite, rtol=0, atol=1e-9)), 3)
        return super().format_ticks(values)


def _percent_axis(axis: Any, decimals: int | None = 0) -> None:
    """Percent labels; ``decimals`` is the least shown (None: matplotlib's choice by range)."""
    axis.set_major_formatter(PercentFormatter(1.0, decimals=None) if decimals is None
                             else ExactPercentFormatter(decimals))


def legend_outside(ax: Any, title: str | None = None, ncols: int = 1) -> Any:
    """Legend under the axes, so it never covers bars or points."""
    return ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=ncols, fontsize=8,
                     frameon=False, title=title, title_fontsize=8)


@dataclass
class _Display:
    table: pd.DataFrame
    ax_: Any = field(default=None, init=False, repr=False)
    figure_: Any = field(default=None, init=False, repr=False)

    def _axes(self, ax: Any, width: float, height: float) -> Any:
        if ax is None:
            self.figure_, (ax,) = _new_axes(width, height)
        else:
            self.figure_ = ax.figure
        self.ax_ = ax
        return ax


# --------------------------------------------------------------------------- reliability
@dataclass
class ReliabilityDisplay(_Display):
    """Reliability (calibration) curve; ``table`` columns: ``bin, n, mean_predicted,
    observed_rate`` and, with the truth, ``mean_true_pd``, all over the same bins."""

    name: str | None = None

    @staticmethod
    def compute(y_true: Any, y_prob: Any, true_pd: Any = None, n_bins: int = 10,
                strategy: str = "quantile") -> pd.DataFrame:
        p = np.asarray(y_prob, dtype=float)
        y = np.asarray(y_true, dtype=float)
        if p.shape != y.shape or p.ndim != 1 or not len(p):
            raise ConfigError(f"y_true and y_prob must be 1-d and equally long, got {y.shape} and {p.shape}")
        frame = pd.DataFrame({"bin": bin_index(p, n_bins, strategy), "y": y, "p": p})
        agg = {"n": ("y", "size"), "mean_predicted": ("p", "mean"), "observed_rate": ("y", "mean")}
        if true_pd is not None:
            frame["t"] = np.asarray(true_pd, dtype=float)
            agg["mean_true_pd"] = ("t", "mean")
        out = frame.groupby("bin").agg(**agg).reset_index()
        out["n"] = out["n"].astype(np.int64)
        return out

    @classmethod
    def from_predictions(cls, y_true: Any, y_prob: Any, *, true_pd: Any = None, n_bins: int = 10,
                         strategy: str = "quantile", name: str | None = None,
                         ax: Any = None) -> ReliabilityDisplay:
        disp = cls(cls.compute(y_true, y_prob, true_pd, n_bins, strategy), name=name)
        return disp.plot(ax=ax)

    @classmethod
    def from_estimator(cls, estimator: Any, X: Any, y_true: Any, *, true_pd: Any = None, n_bins: int = 10,
                       strategy: str = "quantile", name: str | None = None,
                       ax: Any = None) -> ReliabilityDisplay:
        """Score ``X`` with the estimator (:func:`predicted_pd`), then as :meth:`from_predictions`."""
        return cls.from_predictions(y_true, predicted_pd(estimator, X), true_pd=true_pd, n_bins=n_bins,
                                    strategy=strategy, name=name or type(estimator).__name__, ax=ax)

    def plot(self, ax: Any = None, *, diagonal: bool = True, label: str | None = None
             ) -> ReliabilityDisplay:
        """Draw on ``ax`` (a new figure when None); ``diagonal=False`` when adding a second
        curve (e.g. a challenger) to axes that already have one; ``label`` names the curve."""
        ax = self._axes(ax, 5.0, 4.2)
        t = self.table
        lim = float(np.nanmax(t[["mean_predicted", "observed_rate"]
                                + (["mean_true_pd"] if "mean_true_pd" in t else [])].to_numpy()))
        if diagonal:
            ax.axline((0, 0), slope=1, color="grey", lw=0.8, label="perfect calibration")
        else:
            lim = max(lim, ax.get_xlim()[1] / 1.05)
        self.truth_line_ = None
        if "mean_true_pd" in t:
            (self.truth_line_,) = ax.plot(t["mean_predicted"], t["mean_true_pd"], "o-",
                                          label="mean true PD")
        if self.truth_line_ is not None:  # the truth, when known, is the curve
            (self.observed_line_,) = ax.plot(t["mean_predicted"], t["observed_rate"], "k.", alpha=0.7,
                                             label="observed default rate")
        else:
            label = f"{label}: observed default rate" if label else "observed default rate"
            (self.observed_line_,) = ax.plot(t["mean_predicted"], t["observed_rate"], "o-", alpha=0.8,
                                             label=label)
        ax.set_xlim(0, lim * 1.05)
        ax.set_ylim(0, lim * 1.05)
        _percent_axis(ax.xaxis, None)
        _percent_axis(ax.yaxis, None)
        ax.set_xlabel(f"mean predicted PD ({len(t)} bins)")
        ax.set_ylabel("realised")
        if self.name:
            ax.set_title(self.name, fontsize=10)
        legend_outside(ax, ncols=3)
        return self


# --------------------------------------------------------------------------- scores
@dataclass
class ScoreDistributionDisplay(_Display):
    """Histograms of a score by group; ``table``: ``group, bin_left, bin_right, share``."""

    xlabel: str = "score"

    @classmethod
    def from_predictions(cls, scores: Any, groups: Any, *, bins: int = 30, xlabel: str = "score",
                         ax: Any = None) -> ScoreDistributionDisplay:
        s = np.asarray(scores, dtype=float)
        g = np.asarray(groups)
        if s.shape != g.shape:
            raise ConfigError(f"scores and groups differ in length: {s.shape} vs {g.shape}")
        edges = np.histogram_bin_edges(s[np.isfinite(s)], bins=bins)
        rows = []
        for name in pd.unique(g):
            counts, _ = np.histogram(s[g == name], bins=edges)
            share = counts / max(1, counts.sum())
            rows.append(pd.DataFrame({"group": str(name), "n": int((g == name).sum()),
                                      "bin_left": edges[:-1], "bin_right": edges[1:], "share": share}))
        return cls(pd.concat(rows, ignore_index=True), xlabel=xlabel).plot(ax=ax)

    @classmethod
    def from_estimator(cls, estimator: Any, X: Any, groups: Any, *, bins: int = 30,
                       xlabel: str = "predicted PD", ax: Any = None) -> ScoreDistributionDisplay:
        """PD of ``X`` from the estimator (:func:`predicted_pd`) by group."""
        return cls.from_predictions(predicted_pd(estimator, X), groups, bins=bins, xlabel=xlabel, ax=ax)

    def plot(self, ax: Any = None) -> ScoreDistributionDisplay:
        ax = self._axes(ax, 6.0, 3.8)
        for name, d in self.table.groupby("group", sort=False):
            ax.stairs(d["share"].to_numpy(), np.r_[d["bin_left"].to_numpy(), d["bin_right"].iloc[-1]],
                      label=f"{name} (n={int(d['n'].iloc[0]):,})", lw=1.5)
        ax.set_xlabel(self.xlabel)
        ax.set_ylabel("share of the group")
        legend_outside(ax, ncols=2)
        return self


# --------------------------------------------------------------------------- SHAP by group
@dataclass
class GroupImportanceDisplay(_Display):
    """Mean |SHAP| per feature for each group vs the others, one panel per group.

    ``table`` is :func:`village_credit.explain.mean_abs_shap_by_group`'s output
    (``group, in_group, n, feature, label_en, label_zh, mean_abs_shap``); ``plotted``
    (after ``plot``) holds the bars drawn: ``group, label, in_group, mean_abs_shap``.
    """

    top_n: int = 10
    lang: str = "en"
    group_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @classmethod
    def from_table(cls, by_group: pd.DataFrame, *, top_n: int = 10, lang: str = "en",
                   group_labels: Mapping[str, Mapping[str, str]] | None = None,
                   fig: Any = None) -> GroupImportanceDisplay:
        return cls(by_group, top_n=top_n, lang=lang, group_labels=dict(group_labels or {})).plot(fig=fig)

    def plot(self, fig: Any = None) -> GroupImportanceDisplay:
        groups = list(dict.fromkeys(self.table["group"]))
        if not groups:
            raise ConfigError("GroupImportanceDisplay: no groups in the table")
        lang, notice = label_language(self.lang)
        col = "label_zh" if lang == "zh" and "label_zh" in self.table else "label_en"
        width, height = 7.0 * len(groups), 0.42 * self.top_n + 2.2
        if fig is None:
            fig, axes = _new_axes(width, height, len(groups))
        else:
            axes = [fig.add_subplot(1, len(groups), i + 1) for i in range(len(groups))]
        self.figure_, self.ax_ = fig, axes
        drawn = []
        for ax, g in zip(axes, groups, strict=True):
            sub = self.table[self.table["group"] == g]
            wide = sub.pivot_table(index=col, columns="in_group", values="mean_abs_shap",
                                   aggfunc="first").reindex(columns=[True, False])
            top = wide.max(axis=1).sort_values(ascending=False).head(self.top_n).index[::-1]
            wide = wide.loc[top]
            y = np.arange(len(wide))
            n_in = int(sub.loc[sub["in_group"], "n"].iloc[0]) if sub["in_group"].any() else 0
            n_out = int(sub.loc[~sub["in_group"], "n"].iloc[0]) if (~sub["in_group"]).any() else 0
            name = self.group_labels.get(g, {}).get(lang, self.group_labels.get(g, {}).get("en", g))
            ax.barh(y + 0.2, wide[True].to_numpy(float), height=0.4, color=PROTECTED_COLOR,
                    label=f"{name} (n={n_in:,})")
            ax.barh(y - 0.2, wide[False].to_numpy(float), height=0.4, color=OTHERS_COLOR,
                    label=f"others (n={n_out:,})")
            ax.set_yticks(y, list(wide.index))
            ax.set_xlabel("mean |SHAP value| (log-odds of default)")
            ax.set_title(f"{name} vs others", fontsize=10)
            legend_outside(ax, ncols=2)
            for flag in (True, False):
                drawn.append(pd.DataFrame({"group": g, "label": list(wide.index), "in_group": flag,
                                           "mean_abs_shap": wide[flag].to_numpy(float)}))
        self.plotted = pd.concat(drawn, ignore_index=True)
        self.notice = notice
        use_cjk_font(fig)
        _notice(fig, notice)
        return self


# --------------------------------------------------------------------------- approval by group
@dataclass
class ApprovalByGroupDisplay(_Display):
    """Approval rate per group and system with intervals; ``table``: ``system, group, n,
    value, ci_low, ci_high`` (one feature: the fairness audit's ``approval_by_group`` rows)."""

    title: str = "Approval rate by group"
    group_order: Sequence[str] | None = None

    @classmethod
    def from_table(cls, table: pd.DataFrame, *, title: str = "Approval rate by group",
                   group_order: Sequence[str] | None = None, ax: Any = None) -> ApprovalByGroupDisplay:
        return cls(table, title=title, group_order=group_order).plot(ax=ax)

    def plot(self, ax: Any = None) -> ApprovalByGroupDisplay:
        d = self.table
        systems = list(dict.fromkeys(d["system"]))
        groups = list(self.group_order or dict.fromkeys(d["group"]))
        ax = self._axes(ax, max(6.0, 1.3 * len(groups) + 2.5), 4.2)
        width = 0.8 / max(1, len(systems))
        x = np.arange(len(groups))
        self.bars_ = {}
        for i, s in enumerate(systems):
            ds = d[d["system"] == s].set_index("group").reindex(groups)
            v = ds["value"].to_numpy(float)
            err = np.vstack([v - ds["ci_low"].to_numpy(float), ds["ci_high"].to_numpy(float) - v])
            err = np.where(np.isfinite(err), np.maximum(err, 0), 0)
            self.bars_[s] = ax.bar(x + (i - (len(systems) - 1) / 2) * width, np.nan_to_num(v), width,
                                   yerr=err, capsize=3, label=s)
        n = d.drop_duplicates("group").set_index("group").reindex(groups)["n"].fillna(0)
        ax.set_xticks(x, [f"{g}\n(n={int(k):,})" for g, k in zip(groups, n, strict=True)], fontsize=8)
        ax.set_ylabel("approval rate")
        ax.set_ylim(0, 1.05)
        _percent_axis(ax.yaxis)
        ax.set_title(self.title, fontsize=10)
        legend_outside(ax, ncols=min(4, len(systems)))
        return self


# --------------------------------------------------------------------------- grades
LIGHT_COLORS = {"green": "#4caf50", "amber": "#ffb300", "red": "#e53935"}


def _tick_label(grade: Any) -> str:
    """Short tick labels: ``vetoed (graded by policy)`` -> ``vetoed`` (explained in the note)."""
    text = str(grade)
    return text.split(" (")[0]


def grade_tick_labels(g: pd.DataFrame) -> tuple[list[str], list[str]]:
    """``(tick labels, long names)`` of a grade table: each short label with its count
    (``n``) where known, and the full names the short labels cut (said in the chart's note).
    One derivation for the notebooks' matplotlib display and the report's SVG chart."""
    n = g["n"] if "n" in g else pd.Series([np.nan] * len(g))
    labels = [f"{_tick_label(k)}\nn={int(c):,}" if pd.notna(c) else _tick_label(k)
              for k, c in zip(g["grade"], n, strict=True)]
    return labels, [str(k) for k in g["grade"] if _tick_label(k) != str(k)]


@dataclass
class GradeBackTestDisplay(_Display):
    """Observed default rate per grade (bar, coloured by traffic light) against the
    predicted PD (marker); ``table``: ``grade, n, predicted_pd, observed_rate, light``.

    Tick labels are short and carry the count; rows graded by policy (vetoed) keep a
    one-word label and are explained in a note under the chart, so no label overlaps.
    Grades with fewer than ``min_n`` households are hatched outlines (``small_``).
    """

    title: str = "Predicted vs observed default rate by grade"
    min_n: int = 30
    unit: str = "households"

    @classmethod
    def from_table(cls, grades: pd.DataFrame, *, title: str = "Predicted vs observed default rate by grade",
                   min_n: int = 30, ax: Any = None, unit: str = "households") -> GradeBackTestDisplay:
        """``min_n``: grades with fewer rows are drawn hatched (weak evidence); ``unit``: what
        a row is, in the chart's note ("rows" for a table of one's own)."""
        return cls(grades.reset_index(drop=True), title=title, min_n=min_n, unit=unit).plot(ax=ax)

    def plot(self, ax: Any = None) -> GradeBackTestDisplay:
        g = self.table
        ax = self._axes(ax, max(6.5, 0.65 * len(g) + 2), 4.4)
        x = np.arange(len(g))
        colors = [LIGHT_COLORS.get(str(c), "#bdbdbd") for c in g["light"]]
        self.bars_ = ax.bar(x, g["observed_rate"].fillna(0.0).to_numpy(float), color=colors,
                            label="observed default rate")
        # a grade with a handful of households (n = 1: 0 % or 100 %) is weak evidence: an
        # outline with hatching, not a solid bar that reads like a finding
        n_col = g["n"] if "n" in g else pd.Series([np.nan] * len(g))
        self.small_ = [bool(pd.notna(c) and 0 < c < self.min_n) for c in n_col]
        for bar, small, color in zip(self.bars_, self.small_, colors, strict=True):
            if small:
                bar.set_facecolor("none")
                bar.set_edgecolor(color)
                bar.set_hatch("///")
        (self.predicted_,) = ax.plot(x, g["predicted_pd"].to_numpy(float), color="black", marker="_",
                                     markersize=18, mew=2, linestyle="none", label="predicted PD")
        self.tick_labels, long = grade_tick_labels(g)
        ax.set_xticks(x, self.tick_labels, fontsize=8)
        ax.set_ylabel("default rate")
        _percent_axis(ax.yaxis, None)
        ax.set_title(self.title, fontsize=10)
        handles = [self.bars_, self.predicted_]
        notes = [*(["; ".join(long) + ": no traffic light"] if long else []),
                 *([f"hatched: fewer than {self.min_n} {self.unit} (weak evidence)"] if any(self.small_) else [])]
        if notes:
            ax.set_xlabel("\n".join(notes), fontsize=8)
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2, fontsize=8,
                  frameon=False, title="bar colour = traffic light (Jeffreys test); grey = not tested",
                  title_fontsize=8)
        return self


# --------------------------------------------------------------------------- credit villages
CREDIT_VILLAGE_TESTS: dict[str, str] = {
    "on_file_share": "households on file",
    "granted_share": "households granted",
    "npl_ratio": "non-performing ratio (by line)",
    "a_share": "households rated A",
    "granted_share_at_least_county": "granted share >= county's",
    "npl_at_most_county": "NPL ratio <= county's",
}


@dataclass
class CreditVillageDisplay(_Display):
    """Every village against **every** credit-village test, one panel per test.

    ``table``: one row per village with the tested columns and ``is_credit_village``;
    ``tests``: ``{column: (comparator, threshold)}`` with comparator ``>=``, ``>`` or
    ``<=`` (from the programme's ``ReportStandard``). ``results`` (after ``plot``): per
    test, how many villages pass, fail or cannot be decided (value missing).
    """

    tests: Mapping[str, tuple[str, float]] = field(default_factory=dict)

    @classmethod
    def from_table(cls, villages: pd.DataFrame, tests: Mapping[str, tuple[str, float]], *,
                   fig: Any = None) -> CreditVillageDisplay:
        missing = [c for c in [*tests, "is_credit_village"] if c not in villages]
        if missing:
            raise ConfigError(f"village table lacks columns {missing}")
        return cls(villages.reset_index(drop=True), tests=dict(tests)).plot(fig=fig)

    @staticmethod
    def passes(values: pd.Series, op: str, threshold: Any) -> pd.Series:
        """Per village: True (passes), False (fails) or NaN (cannot be decided)."""
        if op == "is":  # a yes/no test computed by the report (e.g. against the county average)
            b = values.astype("boolean")
            return (b == bool(threshold)).astype(object).where(b.notna())
        v = values.astype(float)
        ok = {">=": v >= threshold, ">": v > threshold, "<=": v <= threshold}[op]
        return ok.where(v.notna())

    def plot(self, fig: Any = None) -> CreditVillageDisplay:
        k = len(self.tests)
        if fig is None:
            fig, axes = _new_axes(3.0 * k, 4.0, k)
        else:
            axes = [fig.add_subplot(1, k, i + 1) for i in range(k)]
        self.figure_, self.ax_ = fig, axes
        status = self.table["is_credit_village"].astype("boolean")
        colors = np.where(status.fillna(False), "#2ca02c", np.where(status.isna(), "grey", "#d62728"))
        jitter = np.random.default_rng(0).uniform(-0.25, 0.25, len(self.table))
        rows = []
        for ax, (col, (op, thr)) in zip(axes, self.tests.items(), strict=True):
            ok = self.passes(self.table[col], op, thr)
            n_fail, n_unknown = int((ok == False).sum()), int(ok.isna().sum())
            if op == "is":
                kinds = ["pass", "fail", "unknown"]
                counts = [int((ok == True).sum()), n_fail, n_unknown]
                ax.bar(kinds, counts, color=["#2ca02c", "#d62728", "grey"])
                ax.set_ylabel("villages")
                need = "needs yes"
            else:
                values = self.table[col].astype(float)
                ax.scatter(jitter, values, c=list(colors), s=18, alpha=0.75)
                ax.axhline(thr, color="k", ls="--", lw=0.9)
                ax.set_xlim(-0.6, 0.6)
                ax.set_xticks([])
                _percent_axis(ax.yaxis)
                need = f"needs {op} {thr:.0%}"
            ax.set_title(f"{CREDIT_VILLAGE_TESTS.get(col, col)}\n{need}: "
                         f"{n_fail} fail" + (f", {n_unknown} unknown" if n_unknown else ""), fontsize=9)
            rows.append({"test": col, "comparator": op, "threshold": thr, "pass": int((ok == True).sum()),
                         "fail": n_fail, "unknown": n_unknown})
        self.results = pd.DataFrame(rows)
        fig.suptitle("Villages against each credit-village test (green = credit village, red = not, "
                     "grey = undecided)", fontsize=10)
        return self


# --------------------------------------------------------------------------- equal risk
@dataclass
class EqualRiskDisplay(_Display):
    """Gaps between protected households and others within true-PD deciles, one panel per
    comparison. ``table``: the equal-risk table (``system, comparison, decile, checked``
    and the gap ``column``). Hollow markers: cells with too few households to decide."""

    column: str = "gap_approval"
    ylabel: str = "approval gap (protected - others)"
    target: float = 0.05
    comparison_labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_table(cls, table: pd.DataFrame, *, column: str = "gap_approval",
                   ylabel: str = "approval gap (protected - others)", target: float = 0.05,
                   comparison_labels: Mapping[str, str] | None = None,
                   fig: Any = None) -> EqualRiskDisplay:
        return cls(table, column=column, ylabel=ylabel, target=target,
                   comparison_labels=dict(comparison_labels or {})).plot(fig=fig)

    def plot(self, fig: Any = None) -> EqualRiskDisplay:
        comps = list(dict.fromkeys(self.table["comparison"]))
        if fig is None:
            fig, axes = _new_axes(5.2 * max(1, len(comps)), 4.0, max(1, len(comps)))
        else:
            axes = [fig.add_subplot(1, len(comps), i + 1) for i in range(len(comps))]
        self.figure_, self.ax_ = fig, axes
        for ax, c in zip(axes, comps, strict=False):
            dc = self.table[self.table["comparison"] == c]
            for s in dict.fromkeys(dc["system"]):
                ds = dc[dc["system"] == s]
                (line,) = ax.plot(ds["decile"], ds[self.column], marker="o", label=s, alpha=0.85)
                unchecked = ds[~ds["checked"].astype(bool)]
                ax.plot(unchecked["decile"], unchecked[self.column], "o", mfc="white",
                        color=line.get_color())
            ax.axhspan(-self.target, self.target, color=TARGET_COLOR, alpha=0.12,
                       label=f"target |gap| <= {self.target:.0%}")
            ax.axhline(0, color="grey", lw=0.8)
            ax.set_xticks(range(1, int(dc["decile"].max()) + 1))
            ax.set_xlabel("true-PD decile (1 = safest)")
            ax.set_ylabel(self.ylabel)
            _percent_axis(ax.yaxis)
            ax.set_title(f"{self.comparison_labels.get(c, c)} vs others", fontsize=10)
            legend_outside(ax, ncols=2, title="hollow = too few households to decide")
        return self


# --------------------------------------------------------------------------- trade-off
@dataclass
class TradeoffDisplay(_Display):
    """Fairness gap vs risk of approved households, next to the approval rate of each option.

    Options are numbered on the scatter (numbers never overprint long names) and named
    on the approval-rate panel. No corner is called best: a small gap bought by
    approving fewer households shows up on the right. ``points`` (after ``plot``):
    ``number, option, x, y, approval_rate``.
    """

    x: str = "er_max_gap_approval"
    y: str = "true_pd_approved"
    xlabel: str | None = None
    ylabel: str | None = None
    target: float | None = 0.05

    @classmethod
    def from_table(cls, tradeoff: pd.DataFrame, *, x: str | None = None, y: str | None = None,
                   xlabel: str | None = None, ylabel: str | None = None,
                   target: float | None = 0.05, fig: Any = None) -> TradeoffDisplay:
        t = tradeoff
        if x is None:
            x = ("er_max_gap_approval" if "er_max_gap_approval" in t and t["er_max_gap_approval"].notna().any()
                 else next((c for c in t.columns if c.startswith("approval_gap_")), None))
        if y is None:
            y = "true_pd_approved" if "true_pd_approved" in t and t["true_pd_approved"].notna().any() \
                else "default_rate_approved"
        if x is None or x not in t or y not in t or "approval_rate" not in t:
            raise ConfigError(f"trade-off table needs columns option, approval_rate, {x!r}, {y!r}")
        return cls(tradeoff, x=x, y=y, xlabel=xlabel, ylabel=ylabel, target=target).plot(fig=fig)

    def plot(self, fig: Any = None) -> TradeoffDisplay:
        t = self.table.reset_index(drop=True)
        if fig is None:
            fig, axes = _new_axes(12.0, max(4.2, 0.38 * len(t) + 1.8), 2)
        else:
            axes = [fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)]
        self.figure_, self.ax_ = fig, axes
        names = [str(o).removeprefix("policy:") for o in t["option"]]
        self.points = pd.DataFrame({"number": np.arange(1, len(t) + 1), "option": names,
                                    "x": t[self.x].to_numpy(float), "y": t[self.y].to_numpy(float),
                                    "approval_rate": t["approval_rate"].to_numpy(float)})
        ax, bx = axes
        colors = [f"C{i % 10}" for i in range(len(t))]
        sizes = 110 + 260 * self.points["approval_rate"].fillna(0.0)
        # largest first, so a small marker is never hidden under a large one; translucent,
        # so two options at the same spot both show
        order = np.argsort(-sizes.to_numpy(), kind="stable")
        ax.scatter(self.points["x"].iloc[order], self.points["y"].iloc[order], s=sizes.iloc[order],
                   c=[colors[i] for i in order], alpha=0.55, edgecolors="k", linewidths=0.6)
        # both axes from zero: a gap or a risk is read against none, not against the
        # smallest option (a 0.02-point difference must not fill the plot)
        finite_x = self.points["x"][np.isfinite(self.points["x"])]
        finite_y = self.points["y"][np.isfinite(self.points["y"])]
        x_hi = max([*finite_x, self.target if self.target is not None and self.x.startswith("er_") else 0.0, 1e-9])
        ax.set_xlim(0, x_hi * 1.18)
        ax.set_ylim(0, max([*finite_y, 1e-9]) * 1.3)
        if self.target is not None and self.x.startswith("er_"):
            ax.axvline(self.target, color=TARGET_COLOR, ls="--", lw=0.9, label=f"target {self.target:.0%}")
            legend_outside(ax)
        ax.set_xlabel(self.xlabel or AXIS_LABELS.get(self.x, self.x.replace("_", " ")))
        ax.set_ylabel(self.ylabel or AXIS_LABELS.get(self.y, self.y.replace("_", " ")))
        ax.yaxis.set_major_locator(MaxNLocator(5))
        _percent_axis(ax.xaxis)
        _percent_axis(ax.yaxis)
        ax.set_title("Gap vs risk taken on (marker area = approval rate)", fontsize=10)
        yy = np.arange(len(t))[::-1]
        bx.barh(yy, self.points["approval_rate"], color=colors, alpha=0.75)
        bx.set_yticks(yy, [f"{n}  {name}" for n, name in zip(self.points["number"], names, strict=True)],
                      fontsize=8)
        for yi, v in zip(yy, self.points["approval_rate"], strict=True):
            bx.text(v + 0.01, yi, f"{v:.0%}", va="center", fontsize=8)
        bx.set_xlim(0, 1.12)
        _percent_axis(bx.xaxis)
        bx.set_xlabel("approval rate (share of households approved)")
        bx.set_title("What each option keeps: access", fontsize=10)
        self.labels_ = self._place_labels(ax)
        return self

    # label offsets tried in turn (points): on the marker, then around it with a leader line
    _OFFSETS = ((0, 0), (16, 12), (-16, 12), (16, -12), (-16, -12), (26, 0), (-26, 0), (0, 22), (0, -22),
                (30, 20), (-30, 20), (30, -20), (-30, -20), (40, 0), (-40, 0))

    def _place_labels(self, ax: Any) -> list[Any]:
        """Number every option; a number that would overprint another moves aside with a
        leader line, so each option stays readable where markers coincide."""
        fig = ax.figure
        fig.canvas.draw()  # settle the layout first: overlaps are judged where the axes end up
        renderer = fig.canvas.get_renderer()
        placed: list[Any] = []
        labels = []
        for r in self.points.itertuples(index=False):
            if not (np.isfinite(r.x) and np.isfinite(r.y)):
                continue
            for dx, dy in self._OFFSETS:
                label = ax.annotate(str(r.number), (r.x, r.y), xytext=(dx, dy), textcoords="offset points",
                                    ha="center", va="center", fontsize=8, fontweight="bold", color="black",
                                    arrowprops=None if (dx, dy) == (0, 0) else
                                    {"arrowstyle": "-", "lw": 0.6, "color": "0.3", "shrinkA": 0, "shrinkB": 0})
                box = Text.get_window_extent(label, renderer).expanded(1.15, 1.15)  # the number, not its leader
                if not any(box.overlaps(other) for other in placed) or (dx, dy) == self._OFFSETS[-1]:
                    break
                label.remove()
            placed.append(box)
            labels.append(label)
        return labels


# --------------------------------------------------------------------------- policy lab
_SHORT = {"age_limit": "age", "grade_shift": "grades", "line_per_point": "yuan/pt",
          "exploration_share": "explore", "approval_min_points": "min pts"}


def _spread_along(gaps: np.ndarray, n: int) -> list[int]:
    """Indices of at most ``n`` policies of a frontier (ordered along it): evenly spread, with
    the smallest gap always among them.

    >>> _spread_along(np.array([0.3, 0.1, 0.2]), 15), _spread_along(np.r_[5.0, 4, 0.1, 3, 2, 1, 6], 3)
    ([0, 1, 2], [0, 2, 6])
    """
    if len(gaps) <= n:
        return list(range(len(gaps)))
    picks = sorted(set(np.linspace(0, len(gaps) - 1, n).round().astype(int).tolist()))
    best = int(np.nanargmin(gaps)) if np.isfinite(gaps).any() else 0
    if best not in picks:  # the nearest pick makes way for the smallest gap
        picks[int(np.argmin([abs(q - best) for q in picks]))] = best
    return sorted(picks)


def _param_label(name: str, value: float, today: float) -> str:
    short = _SHORT.get(name, name.replace("veto_window.", "veto ").replace("_", " "))
    text = f"{value:.0%}" if name == "exploration_share" else f"{value:g}"
    return f"{short} {text}" + ("" if abs(value - today) < 1e-9 else "*")


def _gap_label(gap: str, row: dict[str, Any]) -> str:
    """``elderly approval gap -0.25 = ceiling +0.10 + own -0.35`` (the split when the row has it)."""
    value = row[gap]
    if not np.isfinite(value):
        return f"{gap.replace('_', ' ')} not measured"
    text = f"{gap.replace('_', ' ')} {value:+.2f}"
    ceil, own = row.get(f"{gap}_ceiling", np.nan), row.get(f"{gap}_excess", np.nan)
    if np.isfinite(ceil) and np.isfinite(own):
        text += f" = ceiling {ceil:+.2f} + own {own:+.2f}"
    return text


@dataclass
class PolicyFrontierDisplay(_Display):
    """The policy lab's frontier: approval rate against expected loss, Pareto policies numbered.

    ``table``: one row per trial with ``approval_rate``, ``expected_loss_yuan``, ``pareto``,
    ``today``, ``feasible``, a gap column and the parameters. Every trial is a grey dot,
    the Pareto set is numbered (colour: the chosen gap's size), today's standard is a
    star; the right panel lists each number's parameters (``*``: changed from today) and
    its gap, split as information ceiling + the policy's own excess when the table has
    ``<gap>_ceiling`` and ``<gap>_excess``, so the chart reads without hovering.
    ``notice`` (what the figures rest on) is the title, and its first sentence (the
    policy lab's SYNTHETIC / MEASURED) is written across the chart itself. A frontier of
    more than ``max_listed`` policies is numbered and listed at ``max_listed`` of them,
    spread along it and always with the smallest gap (the rest: ``pareto.csv``, same
    numbers), so labels stay legible and the list fits the figure.

    >>> t = pd.DataFrame({"trial": [0, 1, 2], "approval_rate": [0.7, 0.8, 0.6],
    ...                   "expected_loss_yuan": [1e6, 9e5, 1.2e6], "pareto": [False, True, False],
    ...                   "today": [True, False, False], "feasible": [True, True, False],
    ...                   "elderly_approval_gap": [-0.3, -0.1, 0.0],
    ...                   "elderly_approval_gap_ceiling": [-0.05, -0.04, 0.0],
    ...                   "elderly_approval_gap_excess": [-0.25, -0.06, 0.0],
    ...                   "age_limit": [60.0, 70.0, 55.0]})
    >>> d = PolicyFrontierDisplay.from_table(t, parameters=["age_limit"],
    ...                                      notice="SYNTHETIC. Figures on truth.")
    >>> for label in d.labels_:
    ...     print(label)
    1: age 70*; elderly approval gap -0.10 = ceiling -0.04 + own -0.06
    today: age 60; elderly approval gap -0.30 = ceiling -0.05 + own -0.25
    """

    parameters: Sequence[str] = ()
    gap: str = "elderly_approval_gap"
    notice: str = ""
    max_listed: int = 15

    @classmethod
    def from_result(cls, result: Any, *, gap: str = "elderly_approval_gap", fig: Any = None) -> PolicyFrontierDisplay:
        """From a ``policy_lab`` ``LabResult`` (its trials, parameters and notice)."""
        return cls.from_table(result.trials, parameters=result.parameters, gap=gap, notice=result.notice, fig=fig)

    @classmethod
    def from_table(cls, trials: pd.DataFrame, *, parameters: Sequence[str], gap: str = "elderly_approval_gap",
                   notice: str = "", fig: Any = None) -> PolicyFrontierDisplay:
        need = {"approval_rate", "expected_loss_yuan", "pareto", "today", gap, *parameters}
        if need - set(trials.columns):
            raise ConfigError(f"frontier table lacks columns {sorted(need - set(trials.columns))}")
        return cls(trials, parameters=list(parameters), gap=gap, notice=notice).plot(fig=fig)

    def plot(self, fig: Any = None) -> PolicyFrontierDisplay:
        t = self.table.reset_index(drop=True)
        if fig is None:
            fig = Figure(figsize=(14.0, 6.5), layout="constrained")
            FigureCanvasAgg(fig)
        grid = fig.add_gridspec(1, 2, width_ratios=[1.2, 1.0])
        axes = [fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])]
        self.figure_, self.ax_ = fig, axes
        ax, tx = axes
        ax.scatter(t["expected_loss_yuan"], t["approval_rate"], s=12, c="0.75", label="trial")
        front = t[t["pareto"]].sort_values(["approval_rate", "expected_loss_yuan"]).reset_index(drop=True)
        gaps = front[self.gap].abs().to_numpy(float)
        sc = ax.scatter(front["expected_loss_yuan"], front["approval_rate"], s=90, c=gaps, cmap="viridis_r",
                        edgecolors="k", linewidths=0.5, label="Pareto policy", zorder=3)
        fig.colorbar(sc, ax=ax, label=f"|{self.gap.replace('_', ' ')}|")
        today = t[t["today"]].iloc[0]
        ax.scatter([today["expected_loss_yuan"]], [today["approval_rate"]], marker="*", s=320, c=PROTECTED_COLOR,
                   edgecolors="k", zorder=4, label="today's standard")
        listed = _spread_along(gaps, self.max_listed)
        for i in listed:
            r = front.iloc[i]
            ax.annotate(str(i + 1), (r["expected_loss_yuan"], r["approval_rate"]), xytext=(5, 4),
                        textcoords="offset points", fontsize=8, fontweight="bold")
        ax.set_xlabel("expected loss (million yuan)")
        ax.set_ylabel("approval rate")
        _percent_axis(ax.yaxis)
        ax.xaxis.set_major_formatter(lambda v, _pos: f"{v / 1e6:.1f}")
        legend_outside(ax, ncols=3)
        ax.set_title("Approval vs expected loss; lower gap = lighter", fontsize=10)
        lines = []
        records = front.to_dict("records")
        for i in listed:
            r = records[i]
            lines.append(f"{i + 1}: " + ", ".join(_param_label(p, r[p], today[p]) for p in self.parameters
                                                   if abs(r[p] - today[p]) >= 1e-9 or p == self.parameters[0])
                         + f"; {_gap_label(self.gap, r)}")
        if len(listed) < len(front):
            lines.append(f"({len(listed)} of {len(front)} Pareto policies shown; all in pareto.csv, same numbers)")
        lines.append("today: " + ", ".join(_param_label(p, today[p], today[p]) for p in self.parameters[:1])
                     + f"; {_gap_label(self.gap, today.to_dict())}")
        self.labels_ = lines
        if self.notice:  # across the chart: a synthetic frontier cannot pass for a measured one
            ax.text(0.5, 0.5, self.notice.split(".")[0], transform=ax.transAxes, ha="center", va="center",
                    fontsize=13, color="0.55", alpha=0.35, rotation=20, zorder=0)
        tx.axis("off")
        wrapped = [textwrap.fill(line, 78, subsequent_indent="    ") for line in lines]
        tx.text(0.0, 1.0, "\n".join(wrapped), va="top", ha="left", fontsize=6.5, family="monospace",
                transform=tx.transAxes)
        tx.set_title("Pareto policies (* = changed from today)", fontsize=10)
        fig.suptitle(self.notice, fontsize=9)
        return self
