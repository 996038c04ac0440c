"""Global SHAP explanations of the default model: what drives risk, and for whom.

Why: reason codes say why *one* household got its score; an analyst, a village panel
or a regulator also needs the *model-wide* picture -- which features matter, how risk
moves with each, and above all why elderly (60+) and formerly poor households are
scored differently. SHAP values from ``shap.TreeExplainer`` (path-dependent TreeSHAP,
the same numbers as LightGBM's ``pred_contrib``) are additive in log-odds, so mean
|SHAP| per group is a fair, unit-consistent comparison of what the model leans on.

Everything here is in the booster's raw score (log-odds of default, trees only; a
blend's rule term and coefficients are not included -- the exact per-household points
decomposition is :meth:`DecisionModel.contributions`).

Plots use English labels from :data:`~village_credit.models.features.FEATURE_SPECS`
by default; pass Chinese labels and they are drawn with an installed CJK font, or
replaced by the English ones with a notice under the chart when none is installed
(never boxes; see :mod:`village_credit.reporting.displays`). The JSON output carries
both English and Chinese labels. No household identifiers are plotted
or written: only features, SHAP values and group aggregates.

Figures are created with pyplot (``shap.plots.scatter`` needs a pyplot-managed figure)
and detached from pyplot before they are returned, so notebooks display them once and
scripts do not leak open figures.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
import shap
from matplotlib.ticker import FuncFormatter
from numpy.typing import NDArray

from village_credit.data.groups import ELDERLY_AGE, PROTECTED_ATTRIBUTES
from village_credit.errors import ConfigError, SchemaError, VillageCreditError
from village_credit.models.features import spec_for
from village_credit.reporting.displays import (
    CJK_FONT_HINT,
    GroupImportanceDisplay,
    cjk_font,
    has_cjk,
    use_cjk_font,
)

GROUP_LABELS: dict[str, dict[str, str]] = {
    "elderly_60plus": {"en": "Head aged 60+", "zh": "户主60岁及以上"},
    "formerly_poor": {"en": "Formerly poor household", "zh": "脱贫户"},
}

__all__ = [
    "GlobalShap",
    "default_groups",
    "feature_labels",
    "features_tied_to",
    "global_shap",
    "log_to_mlflow",
    "mean_abs_shap_by_group",
    "plot_bar",
    "plot_beeswarm",
    "plot_dependence",
    "plot_group_importance",
    "write_global_explanations",
]


# ----------------------------------------------------------------------------- labels
def feature_labels(names: Sequence[str], lang: str = "en") -> dict[str, str]:
    """``{feature: label}`` from the feature spec; unknown names keep their own name.

    Examples
    --------
    >>> from village_credit.explain import feature_labels
    >>> feature_labels(["land_mu", "my_own_column"])
    {'land_mu': 'Land', 'my_own_column': 'my_own_column'}
    """
    out: dict[str, str] = {}
    for n in names:
        try:
            s = spec_for(n)
            out[n] = s.label_zh if lang == "zh" else s.label_en
        except KeyError:
            out[n] = n
    return out


# ----------------------------------------------------------------------------- SHAP
@dataclass
class GlobalShap:
    """SHAP values of a sample of rows, with the rows' original index (to align groups).

    ``explanation`` is a real ``shap.Explanation`` (raw feature names, so it can be fed
    to any ``shap.plots`` function); ``index`` is the index of the sampled rows in the
    ``X`` passed to :func:`global_shap`.
    """

    explanation: Any
    index: pd.Index
    X: pd.DataFrame = field(repr=False)

    @property
    def values(self) -> NDArray[np.float64]:
        return np.asarray(self.explanation.values, dtype=np.float64)

    @property
    def base_values(self) -> NDArray[np.float64]:
        return np.asarray(self.explanation.base_values, dtype=np.float64)

    @property
    def feature_names(self) -> list[str]:
        return list(self.explanation.feature_names)

    def __len__(self) -> int:
        return len(self.index)

    def used_features(self) -> list[str]:
        """Features the model actually uses: some SHAP value differs from 0 in the sample.

        A feature no tree splits on has SHAP 0 everywhere; a dependence plot of it says
        nothing, however strongly it correlates with age.
        """
        used = np.any(self.values != 0.0, axis=0)
        return [f for f, u in zip(self.feature_names, used, strict=True) if u]

    def frame(self) -> pd.DataFrame:
        """SHAP values as a DataFrame (rows: sampled index, columns: features)."""
        return pd.DataFrame(self.values, index=self.index, columns=self.feature_names)

    def labelled(self, labels: Mapping[str, str] | None = None) -> Any:
        """A copy of the explanation whose feature names are human labels (for plots)."""
        lab = dict(labels) if labels is not None else feature_labels(self.feature_names)
        e = self.explanation
        return shap.Explanation(values=e.values, base_values=e.base_values, data=e.data,
                                feature_names=[lab.get(f, f) for f in self.feature_names])


def _booster(model: Any) -> Any:
    """The LightGBM booster of a Booster, an LGBMDefaultModel/LGBMClassifier or a DecisionModel."""
    if isinstance(model, lgb.Booster):
        return model
    for attr in ("booster_", "booster"):
        b = getattr(model, attr, None)
        if isinstance(b, lgb.Booster):
            return b
    raise ConfigError(
        f"global_shap needs a LightGBM Booster, LGBMDefaultModel or DecisionModel, got {type(model).__name__}"
    )


def global_shap(booster_or_model: Any, X: pd.DataFrame, sample: int | None = 5000,
                seed: int = 0) -> GlobalShap:
    """SHAP values (``shap.TreeExplainer``, path-dependent) for up to ``sample`` rows of ``X``.

    ``X`` is the model's feature frame (columns = the booster's features, in order).
    Sampling is without replacement with ``numpy.default_rng(seed)`` and keeps the rows'
    original order; ``sample=None`` explains every row.

    Examples
    --------
    >>> from village_credit.explain.examples import example_shap
    >>> model, holdout, X, shap_values = example_shap()  # global_shap's example: a small model
    >>> type(shap_values).__name__, shap_values.values.shape == X.shape
    ('GlobalShap', True)
    >>> len(shap_values.used_features()) > 0  # features the trees split on
    True
    """
    booster = _booster(booster_or_model)
    if not isinstance(X, pd.DataFrame):
        raise SchemaError(f"global_shap expects the feature frame as a DataFrame, got {type(X).__name__}")
    names = list(booster.feature_name())
    missing = [c for c in names if c not in X.columns]
    if missing:
        raise SchemaError(f"global_shap: feature frame lacks the model's feature(s) {missing[:8]}")
    X = X[names]
    n = len(X)
    if sample is not None and 0 < sample < n:
        rows = np.sort(np.random.default_rng(seed).choice(n, size=int(sample), replace=False))
        X = X.iloc[rows]
    Xf = X.astype(np.float64)
    explainer = shap.TreeExplainer(booster)
    exp = explainer(Xf)
    values = np.asarray(exp.values, dtype=np.float64)
    base = np.asarray(exp.base_values, dtype=np.float64)
    if values.ndim == 3:  # older shap: one slice per class for binary LightGBM; keep "default"
        values = values[..., -1]
        base = base[..., -1] if base.ndim == 2 else base
    base = np.broadcast_to(base, (len(Xf),)).astype(np.float64)
    explanation = shap.Explanation(values=values, base_values=base, data=Xf.to_numpy(dtype=np.float64),
                                   feature_names=names)
    return GlobalShap(explanation=explanation, index=Xf.index, X=Xf)


def _values_and_names(shap_values: Any, feature_names: Sequence[str] | None
                      ) -> tuple[NDArray[np.float64], list[str]]:
    if isinstance(shap_values, GlobalShap):
        return shap_values.values, shap_values.feature_names
    if isinstance(shap_values, pd.DataFrame):
        return shap_values.to_numpy(dtype=np.float64), [str(c) for c in shap_values.columns]
    vals = np.asarray(getattr(shap_values, "values", shap_values), dtype=np.float64)
    names = feature_names or getattr(shap_values, "feature_names", None)
    if vals.ndim != 2:
        raise SchemaError(f"SHAP values must be a 2-D (rows, features) matrix, got shape {vals.shape}")
    if names is None:
        names = [f"x{i}" for i in range(vals.shape[1])]
    return vals, [str(n) for n in names]


# ----------------------------------------------------------------------------- groups
def default_groups(households: pd.DataFrame, index: pd.Index | None = None) -> dict[str, NDArray[np.bool_]]:
    """``elderly_60plus`` (head aged 60+) and ``formerly_poor`` masks, aligned to ``index``.

    ``index`` (e.g. :attr:`GlobalShap.index`) selects the household rows by label; a
    missing protected column simply yields no group.

    Examples
    --------
    >>> import pandas as pd
    >>> from village_credit.explain import default_groups
    >>> households = pd.DataFrame({"head_age": [45, 61, 70], "formerly_poor": [True, False, False]})
    >>> {name: mask.tolist() for name, mask in default_groups(households).items()}
    {'elderly_60plus': [False, True, True], 'formerly_poor': [True, False, False]}
    """
    hh = households if index is None else households.loc[index]
    groups: dict[str, NDArray[np.bool_]] = {}
    if "head_age" in hh.columns:
        age = hh["head_age"].to_numpy(dtype=np.float64, na_value=np.nan)
        groups["elderly_60plus"] = np.nan_to_num(age, nan=-1.0) >= ELDERLY_AGE
    if "formerly_poor" in hh.columns:
        groups["formerly_poor"] = hh["formerly_poor"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    return groups


def mean_abs_shap_by_group(shap_values: Any, groups: Mapping[str, Any],
                           feature_names: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean |SHAP| (and mean signed SHAP) per feature, for each group vs everyone else.

    ``groups``: ``{name: boolean mask over the SHAP rows}``. Returns a tidy frame with
    columns ``group, in_group, n, feature, label_en, label_zh, mean_abs_shap, mean_shap``
    (one row per group x {True, False} x feature; ``n`` = rows in that subset; the
    means are NaN for an empty subset). A larger mean |SHAP| in one subset means the
    model leans more on that feature for those households; the signed mean shows in
    which direction it moves their risk (log-odds, positive = riskier).

    Examples
    --------
    >>> from village_credit.explain.examples import example_shap
    >>> model, holdout, X, shap_values = example_shap()  # global_shap's example: a small model
    >>> from village_credit.explain import default_groups, mean_abs_shap_by_group
    >>> by_group = mean_abs_shap_by_group(shap_values, default_groups(holdout, shap_values.index))
    >>> list(by_group.columns)
    ['group', 'in_group', 'n', 'feature', 'label_en', 'label_zh', 'mean_abs_shap', 'mean_shap']
    >>> sorted(set(by_group["group"]))
    ['elderly_60plus', 'formerly_poor']
    """
    vals, names = _values_and_names(shap_values, feature_names)
    en = feature_labels(names, "en")
    zh = feature_labels(names, "zh")
    frames = []
    for g, mask in groups.items():
        m = np.asarray(mask, dtype=bool)
        if m.shape != (vals.shape[0],):
            raise SchemaError(f"group {g!r}: mask has shape {m.shape}, expected ({vals.shape[0]},)")
        for flag in (True, False):
            sub = vals[m == flag]
            n = int(sub.shape[0])
            with np.errstate(invalid="ignore"):
                mabs = np.abs(sub).mean(axis=0) if n else np.full(len(names), np.nan)
                msgn = sub.mean(axis=0) if n else np.full(len(names), np.nan)
            frames.append(pd.DataFrame({
                "group": g, "in_group": flag, "n": n, "feature": names,
                "label_en": [en[f] for f in names], "label_zh": [zh[f] for f in names],
                "mean_abs_shap": mabs, "mean_shap": msgn,
            }))
    cols = ["group", "in_group", "n", "feature", "label_en", "label_zh", "mean_abs_shap", "mean_shap"]
    if not frames:
        return pd.DataFrame({c: [] for c in cols})
    return pd.concat(frames, ignore_index=True)[cols]


def features_tied_to(X: pd.DataFrame, households: pd.DataFrame, attribute: str,
                     top_n: int = 2) -> pd.Series:
    """The ``top_n`` features most correlated (|Spearman|) with a household attribute.

    Rows are matched by index (``X`` built from ``households`` keeps its index), so this
    works whether or not the attribute itself is a model feature: when it is, it ranks
    first (rho = 1), followed by its proxies. Constant columns are skipped.
    Returns ``{feature: signed rho}`` ordered by |rho| descending.

    Examples
    --------
    >>> import pandas as pd
    >>> from village_credit.explain import features_tied_to
    >>> households = pd.DataFrame({"head_age": [35, 48, 62, 71, 80]})
    >>> X = pd.DataFrame({"pension_share": [0.0, 0.1, 0.5, 0.6, 0.9], "smartphone": [1, 1, 1, 0, 0],
    ...                   "land_mu": [3.0, 1.0, 4.0, 2.0, 5.0]})
    >>> features_tied_to(X, households, "head_age").round(2)
    pension_share    1.00
    smartphone      -0.87
    Name: spearman_head_age, dtype: float64
    """
    if attribute not in households.columns:
        raise SchemaError(f"household table lacks column {attribute!r} needed to find its proxies")
    attr = households[attribute].reindex(X.index)
    if attr.isna().all():
        raise SchemaError(f"column {attribute!r}: no values for the rows of the feature frame (index mismatch?)")
    a = attr.astype(np.float64)
    rho = X.astype(np.float64).corrwith(a, method="spearman").dropna()
    order = rho.abs().sort_values(ascending=False, kind="stable").index
    return rho.loc[order].head(int(top_n)).rename(f"spearman_{attribute}")


# ----------------------------------------------------------------------------- plots
def _new_pyplot_figure(width: float, height: float) -> tuple[Any, Any]:
    fig = plt.figure(figsize=(width, height))
    ax = fig.add_subplot(1, 1, 1)
    return fig, ax


def _finish(fig: Any, path: str | Path | None, dpi: int = 110, notice: str | None = None) -> Any:
    """Tidy, optionally save as PNG, and detach the figure from pyplot (no leak, no double show).

    Chinese text is drawn with the installed CJK font; ``notice`` (the English fallback
    hint) is printed under the chart.
    """
    use_cjk_font(fig)
    if notice:
        fig.text(0.01, 0.005, notice, fontsize=7, color="#8a1010")

    with warnings.catch_warnings():  # colorbar axes may not fit tight_layout; harmless
        warnings.simplefilter("ignore", UserWarning)
        fig.tight_layout()
    if path is not None:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(p, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return fig


def _drawable_labels(gs: GlobalShap, labels: Mapping[str, str] | None) -> tuple[Any, str | None]:
    """Labels to draw and a notice: Chinese labels fall back to English without a CJK font."""
    if labels is not None and any(has_cjk(str(v)) for v in labels.values()) and cjk_font() is None:
        return feature_labels(gs.feature_names, "en"), CJK_FONT_HINT
    return labels, None


def _as_global(shap_values: Any) -> GlobalShap:
    if isinstance(shap_values, GlobalShap):
        return shap_values
    if hasattr(shap_values, "values") and hasattr(shap_values, "feature_names"):
        n = np.asarray(shap_values.values).shape[0]
        data = getattr(shap_values, "data", None)
        X = pd.DataFrame(np.asarray(data) if data is not None else np.full(np.shape(shap_values.values), np.nan),
                         columns=list(shap_values.feature_names))
        return GlobalShap(explanation=shap_values, index=pd.RangeIndex(n), X=X)
    raise SchemaError(f"expected a GlobalShap or shap.Explanation, got {type(shap_values).__name__}")


def plot_beeswarm(shap_values: Any, max_display: int = 15, path: str | Path | None = None,
                  labels: Mapping[str, str] | None = None) -> Any:
    """Beeswarm of SHAP values (one dot per household and feature); returns the Figure.

    Examples
    --------
    >>> from village_credit.explain.examples import example_shap
    >>> model, holdout, X, shap_values = example_shap()  # global_shap's example: a small model
    >>> from village_credit.explain import plot_beeswarm
    >>> fig = plot_beeswarm(shap_values, max_display=5)  # path="beeswarm.png" also writes it
    >>> type(fig).__name__
    'Figure'
    """
    gs = _as_global(shap_values)
    labels, notice = _drawable_labels(gs, labels)
    fig, ax = _new_pyplot_figure(9, 0.4 * min(max_display, len(gs.feature_names)) + 2)
    shap.plots.beeswarm(gs.labelled(labels), max_display=max_display, ax=ax, show=False, plot_size=None)
    ax.set_xlabel("SHAP value (log-odds of default; > 0 = riskier)")
    ax.set_title(f"What drives the default model ({len(gs.index):,} households, one dot each)")
    return _finish(fig, path, notice=notice)


def plot_bar(shap_values: Any, max_display: int = 15, path: str | Path | None = None,
             labels: Mapping[str, str] | None = None) -> Any:
    """Bar chart of mean |SHAP| per feature (global importance); returns the Figure.

    Examples
    --------
    >>> from village_credit.explain.examples import example_shap
    >>> model, holdout, X, shap_values = example_shap()  # global_shap's example: a small model
    >>> from village_credit.explain import feature_labels, plot_bar
    >>> fig = plot_bar(shap_values, max_display=5, labels=feature_labels(X.columns, lang="en"))
    >>> type(fig).__name__
    'Figure'
    """
    gs = _as_global(shap_values)
    labels, notice = _drawable_labels(gs, labels)
    fig, ax = _new_pyplot_figure(9, 0.4 * min(max_display, len(gs.feature_names)) + 2)
    shap.plots.bar(gs.labelled(labels), max_display=max_display, ax=ax, show=False)
    ax.set_xlabel("mean |SHAP value| (log-odds of default)")
    ax.set_title("Global feature importance")
    return _finish(fig, path, notice=notice)


def plot_dependence(shap_values: Any, feature: str, path: str | Path | None = None,
                    labels: Mapping[str, str] | None = None, title: str | None = None) -> Any:
    """SHAP dependence (scatter) of one feature: how its value moves the risk; returns the Figure.

    Examples
    --------
    >>> from village_credit.explain.examples import example_shap
    >>> model, holdout, X, shap_values = example_shap()  # global_shap's example: a small model
    >>> from village_credit.explain import plot_dependence
    >>> fig = plot_dependence(shap_values, shap_values.used_features()[0])  # an unused feature is refused
    >>> type(fig).__name__
    'Figure'
    """
    gs = _as_global(shap_values)
    if feature not in gs.feature_names:
        raise SchemaError(f"feature {feature!r} is not in the SHAP values ({len(gs.feature_names)} features)")
    if feature not in gs.used_features():
        raise SchemaError(f"feature {feature!r} is not used by the model (every SHAP value is 0): "
                          "a dependence plot of it would be flat; pick one of GlobalShap.used_features()")
    lab = dict(labels) if labels is not None else feature_labels(gs.feature_names)
    exp = gs.labelled(lab)
    fig, ax = _new_pyplot_figure(7, 5)
    shap.plots.scatter(exp[:, gs.feature_names.index(feature)], ax=ax, show=False)
    ax.set_ylabel(f"SHAP value for {lab.get(feature, feature)}\n(log-odds of default)")
    _dependence_axes(ax, gs, feature, lab.get(feature, feature))
    if title:
        ax.set_title(title)
    return _finish(fig, path)


def _dependence_axes(ax: Any, gs: GlobalShap, feature: str, label: str) -> None:
    """Units on the x-axis, no ``1e6`` offset, and a y-range no narrower than the model's
    typical effect: a feature that moves the log-odds by +-0.02 must look small.

    The y half-range is the larger of the feature's own largest |SHAP| and the 99th
    percentile of |SHAP| over every feature the model uses (``ylim_`` on the axes).
    """
    try:
        unit = spec_for(feature).unit
    except KeyError:
        unit = ""
    ax.set_xlabel(f"{label} ({unit})" if unit else label)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}" if abs(v) >= 1000 else f"{v:g}"))
    values = np.asarray(gs.explanation.values, dtype=float)
    used = [gs.feature_names.index(f) for f in gs.used_features()]
    own = float(np.nanmax(np.abs(values[:, gs.feature_names.index(feature)]))) if len(values) else 0.0
    typical = float(np.nanpercentile(np.abs(values[:, used]), 99)) if used and len(values) else 0.0
    half = max(own, typical, 1e-6) * 1.1
    ax.set_ylim(-half, half)
    ax.axhline(0, color="grey", lw=0.8, zorder=0)


def plot_group_importance(by_group: pd.DataFrame, top_n: int = 10, path: str | Path | None = None,
                          lang: str = "en") -> Any:
    """Grouped bars of mean |SHAP| per feature, group vs others, one panel per group.

    Drawn by :class:`~village_credit.reporting.displays.GroupImportanceDisplay` (legends
    under the bars; ``lang="zh"`` uses Chinese labels when a CJK font is installed).

    Examples
    --------
    >>> from village_credit.explain.examples import example_shap
    >>> model, holdout, X, shap_values = example_shap()  # global_shap's example: a small model
    >>> from village_credit.explain import default_groups, mean_abs_shap_by_group, plot_group_importance
    >>> by_group = mean_abs_shap_by_group(shap_values, default_groups(holdout, shap_values.index))
    >>> fig = plot_group_importance(by_group, top_n=5)
    >>> type(fig).__name__
    'Figure'
    """
    if by_group.empty:
        raise SchemaError("plot_group_importance: no groups in the table")
    disp = GroupImportanceDisplay.from_table(by_group, top_n=top_n, lang=lang, group_labels=GROUP_LABELS)
    fig = disp.figure_
    if path is not None:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(p, format="png", dpi=110, bbox_inches="tight")
    return fig


# ----------------------------------------------------------------------------- one call
def _feature_frame(model: Any, households: pd.DataFrame) -> pd.DataFrame:
    """Model features for the households, through the model's own feature transformer."""
    features = getattr(model, "features", None)
    if features is None:
        raise ConfigError(
            f"{type(model).__name__} has no feature transformer: pass the feature frame X explicitly"
        )
    if not hasattr(features, "feature_names_out_"):
        features.fit(households)  # stateless transformers: fit only fixes the column list
    return features.transform(households)


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)


def write_global_explanations(model: Any, X: pd.DataFrame | None, households: pd.DataFrame,
                              out_dir: str | Path, sample: int | None = 5000, seed: int = 0,
                              top_n_dependence: int = 2, max_display: int = 15) -> dict[str, Path]:
    """Write every global explanation for a model; return ``{name: path}``.

    Files: ``shap_beeswarm.png``, ``shap_bar.png``, ``shap_dependence_<feature>.png``
    (the features most tied, by |Spearman|, to ``head_age`` and ``formerly_poor``),
    ``shap_group_importance.png``, ``shap_by_group.csv`` (:func:`mean_abs_shap_by_group`)
    and ``shap_global.json`` (overall and by-group mean |SHAP| with English and Chinese
    labels, the proxy features and their rho, sample size). ``X``: the feature frame,
    index-aligned with ``households``; ``None`` builds it with ``model.features``.

    Examples
    --------
    >>> from village_credit.models.examples import example_model
    >>> model, holdout = example_model()  # fit_blend's example: 300 households, 20 trees
    >>> import tempfile
    >>> from village_credit.explain import write_global_explanations
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     paths = write_global_explanations(model, None, holdout, tmp, sample=30, top_n_dependence=0,
    ...                                       max_display=3)  # small and fast; the defaults explain 5,000
    ...     print(sorted(p.name for p in paths.values()))
    ['shap_bar.png', 'shap_beeswarm.png', 'shap_by_group.csv', 'shap_global.json', 'shap_group_importance.png']
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if X is None:
        X = _feature_frame(model, households)
    if not X.index.isin(households.index).all():
        raise SchemaError("feature frame rows are not all in the household table (index mismatch)")
    gs = global_shap(model, X, sample=sample, seed=seed)
    labels_en = feature_labels(gs.feature_names, "en")
    labels_zh = feature_labels(gs.feature_names, "zh")
    paths: dict[str, Path] = {}

    paths["beeswarm"] = out / "shap_beeswarm.png"
    plot_beeswarm(gs, max_display=max_display, path=paths["beeswarm"], labels=labels_en)
    paths["bar"] = out / "shap_bar.png"
    plot_bar(gs, max_display=max_display, path=paths["bar"], labels=labels_en)

    tied: dict[str, dict[str, float]] = {}
    for attr in PROTECTED_ATTRIBUTES:
        if attr in households.columns:
            rho = features_tied_to(gs.X[gs.used_features()], households, attr, top_n=top_n_dependence)
            tied[attr] = {str(k): float(v) for k, v in rho.items()}
    done: set[str] = set()
    for attr, feats in tied.items():
        for f in feats:
            if f in done:
                continue
            done.add(f)
            key = f"dependence:{f}"
            paths[key] = out / f"shap_dependence_{_slug(f)}.png"
            plot_dependence(gs, f, path=paths[key], labels=labels_en,
                            title=f"{labels_en[f]} (|Spearman| with {attr}: {abs(feats[f]):.2f})")

    groups = default_groups(households, gs.index)
    by_group = mean_abs_shap_by_group(gs, groups)
    if groups:
        paths["group_importance"] = out / "shap_group_importance.png"
        plot_group_importance(by_group, path=paths["group_importance"])
    paths["by_group_csv"] = out / "shap_by_group.csv"
    by_group.to_csv(paths["by_group_csv"], index=False, encoding="utf-8")

    overall = np.abs(gs.values).mean(axis=0)
    order = np.argsort(-overall, kind="stable")
    summary = {
        "units": "log-odds of default (LightGBM raw score, trees only)",
        "explainer": "shap.TreeExplainer (tree_path_dependent)",
        "n_rows": len(X),
        "n_explained": len(gs),
        "sample": None if sample is None else int(sample),
        "seed": int(seed),
        "base_value": float(np.mean(gs.base_values)) if len(gs) else None,
        "elderly_age": ELDERLY_AGE,
        "overall": [{"feature": gs.feature_names[i], "label_en": labels_en[gs.feature_names[i]],
                     "label_zh": labels_zh[gs.feature_names[i]], "mean_abs_shap": float(overall[i])}
                    for i in order],
        "groups": {g: {**GROUP_LABELS.get(g, {"en": g, "zh": g}),
                       "n_in_group": int(np.sum(m)), "n_others": int(len(m) - np.sum(m))}
                   for g, m in groups.items()},
        "by_group": json.loads(by_group.to_json(orient="records", force_ascii=False)),
        "features_tied_to": tied,
        "files": {k: p.name for k, p in paths.items()},
    }
    paths["summary_json"] = out / "shap_global.json"
    paths["summary_json"].write_text(json.dumps(summary, indent=2, ensure_ascii=False, sort_keys=True),
                                     encoding="utf-8")
    return paths


def log_to_mlflow(paths: Mapping[str, Path] | Sequence[Path], artifact_path: str = "explain",
                  run_id: str | None = None) -> list[str]:
    """Log the files to MLflow under ``artifact_path``; returns the logged artifact paths.

    Logs into ``run_id`` if given, else the active run; with neither, raises rather than
    silently starting an orphan run. mlflow is imported here so the explain layer does
    not depend on it.
    """
    files = list(paths.values()) if isinstance(paths, Mapping) else list(paths)
    if run_id is None:
        run = mlflow.active_run()
        if run is None:
            raise VillageCreditError("log_to_mlflow: no active MLflow run; start one or pass run_id")
        run_id = run.info.run_id
    client = mlflow.MlflowClient()
    logged: list[str] = []
    for f in files:
        p = Path(f)
        if not p.is_file():
            raise VillageCreditError(f"log_to_mlflow: {p} is not a file")
        client.log_artifact(run_id, str(p), artifact_path)
        logged.append(f"{artifact_path}/{p.name}" if artifact_path else p.name)
    return logged
