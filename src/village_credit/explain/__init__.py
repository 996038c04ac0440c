"""Explanations: global SHAP plots and exact, fast reason codes for every household.

Public API (resolved lazily, PEP 562):

* :func:`explain` -- reason codes per household, long or wide (``explain.api``);
* :func:`load_decision_model` -- a DecisionModel from an object, directory or MLflow URI;
* :func:`reasons_arrow_schema` -- the Arrow schema of the reason-code file;
* :func:`global_shap`, :func:`plot_beeswarm`, :func:`plot_bar`, :func:`plot_dependence`,
  :func:`mean_abs_shap_by_group`, :func:`plot_group_importance`, :func:`default_groups`,
  :func:`features_tied_to`, :func:`feature_labels`, :func:`write_global_explanations`
  (``explain.shap_global``).

The exact contribution engine (``TreeContributions``, ``AdditiveExplainer``,
``top_reasons``) lives in ``models.additive`` and ``models.reasons`` (below
``models.decision``, which uses it) and is reached there.

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
    # shap_global
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
}

__all__ = [
    "default_groups",
    "explain",
    "feature_labels",
    "features_tied_to",
    "global_shap",
    "load_decision_model",
    "mean_abs_shap_by_group",
    "plot_bar",
    "plot_beeswarm",
    "plot_dependence",
    "plot_group_importance",
    "reasons_arrow_schema",
    "write_global_explanations",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
