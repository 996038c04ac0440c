"""The SHAP values the plotting examples share (importable, so an example pastes into a notebook as written; not in ``__all__``).

Why: every plot's example needs the same model, features and SHAP values; computed once
per process here (the recipe of :func:`village_credit.explain.global_shap`'s example).
"""

from __future__ import annotations

import functools
from typing import Any

import pandas as pd

from village_credit.explain.shap_global import GlobalShap, global_shap
from village_credit.models.examples import example_model


@functools.cache
def example_shap() -> tuple[Any, pd.DataFrame, pd.DataFrame, GlobalShap]:
    """``(model, holdout, X, shap_values)`` for the hold-out of :func:`example_model`.

    >>> model, holdout, X, shap_values = example_shap()
    >>> shap_values.values.shape == X.shape
    True
    """
    model, holdout = example_model()
    X = model.features.transform(holdout)
    return model, holdout, X, global_shap(model, X, sample=None)
