"""Explanations: global SHAP plots and exact, fast reason codes for every household.

Public API (resolved lazily, PEP 562):

* :func:`explain` -- reason codes per household, long or wide (``explain.api``);
* :func:`load_decision_model` -- a DecisionModel from an object, directory or MLflow URI;
* :func:`global_shap`, :func:`plot_beeswarm`, :func:`plot_bar`, :func:`plot_dependence`,
  :func:`mean_abs_shap_by_group`, :func:`plot_group_importance`,
  :func:`write_global_explanations`, :func:`log_to_mlflow` (``explain.shap_global``);
* :class:`TreeContributions`, :class:`AdditiveExplainer` and :func:`top_reasons`: the
  exact contribution engine, re-exported from ``models.additive`` and ``models.reasons``
  (it lives below ``models.decision``, which uses it; explain sits above models).

Why lazy: importing the explain package should not pull shap and matplotlib into
every scoring process. A name whose module is missing raises
``AttributeError`` only when it is used, so the package always imports.
"""

from __future__ import annotations


from village_credit._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    # api
    "explain": "api",
    "load_decision_model": "api",
    "reasons_arrow_schema": "api",
    "wide_columns": "api",
    "LONG_COLUMNS": "api",
    # shap_global
    "GlobalShap": "shap_global",
    "global_shap": "shap_global",
    "plot_beeswarm": "shap_global",
    "plot_bar": "shap_global",
    "plot_dependence": "shap_global",
    "plot_group_importance": "shap_global",
    "mean_abs_shap_by_group": "shap_global",
    "default_groups": "shap_global",
    "features_tied_to": "shap_global",
    "feature_labels": "shap_global",
    "write_global_explanations": "shap_global",
    "log_to_mlflow": "shap_global",
    # additive (exact contributions)
    "TreeContributions": "village_credit.models.additive",
    "AdditiveExplainer": "village_credit.models.additive",
    "NotAdditiveError": "village_credit.models.additive",
    # reasons (top-k ranking)
    "TopReasons": "village_credit.models.reasons",
    "top_reasons": "village_credit.models.reasons",
    "reasons_long": "village_credit.models.reasons",
    "compact_strings": "village_credit.models.reasons",
}

__all__ = [
    "AdditiveExplainer",
    "GlobalShap",
    "LONG_COLUMNS",
    "NotAdditiveError",
    "TopReasons",
    "TreeContributions",
    "compact_strings",
    "default_groups",
    "explain",
    "feature_labels",
    "features_tied_to",
    "global_shap",
    "load_decision_model",
    "log_to_mlflow",
    "mean_abs_shap_by_group",
    "plot_bar",
    "plot_beeswarm",
    "plot_dependence",
    "plot_group_importance",
    "reasons_arrow_schema",
    "reasons_long",
    "top_reasons",
    "wide_columns",
    "write_global_explanations",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
