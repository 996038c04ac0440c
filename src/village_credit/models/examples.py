"""The small model the docstring examples share (importable, so an example pastes into a notebook as written; not in ``__all__``).

Why: a dozen examples (decision, explain, SHAP plots) need the same trained model; built
once per process here, they do not repeat the same six lines or retrain it each time.
The recipe is :func:`village_credit.models.blend.fit_blend`'s own example.
"""

from __future__ import annotations

import functools

import pandas as pd

from village_credit.data.generator import GeneratorConfig, generate_households
from village_credit.models.blend import fit_blend
from village_credit.models.decision import DecisionModel
from village_credit.models.splits import split_by_village


@functools.cache
def example_model() -> tuple[DecisionModel, pd.DataFrame]:
    """``(model, holdout)``: an additive-points blend on 300 generated households (20 trees).

    >>> model, holdout = example_model()
    >>> model.strategy, len(holdout) > 0
    ('additive_points', True)
    """
    hh = generate_households(GeneratorConfig(n_households=300, seed=7))
    train, calib, holdout = split_by_village(hh, seed=0).frames(hh)
    model = fit_blend(train, train["default_12m"], calib, calib["default_12m"], policy="jinxiang_2022",
                      strategy="additive_points", gbm_params={"n_estimators": 20}, seed=0)
    return model, holdout
