"""A small registered decision model in a real sqlite MLflow store, for the validation-kit tests.

The model is trained on the generator's standard population (4 % default rate). The
"riskier population" used to miscalibrate it honestly is the same generator with a
higher ``target_default_rate``: the generator calibrates its latent intercept to the
target, so the population differs from the training one by a base-rate shift, the
textbook case a third-party recalibration (Platt) must fix.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd

from village_credit.data.generator import GeneratorConfig, generate_households
from village_credit.registry import configure
from village_credit.registry.pyfunc_model import log_decision_model
from village_credit.validation import reference_profile

NAME = "vc-kit"
TRAIN_SEED = 11
RISKY_RATE = 0.12


def population(n: int, seed: int, rate: float = 0.04) -> pd.DataFrame:
    return generate_households(GeneratorConfig(n_households=n, seed=seed, target_default_rate=rate))


def train_model(n: int = 3000, seed: int = TRAIN_SEED):
    from village_credit.models.blend import fit_blend

    df = population(n, seed)
    cut = int(n * 2 / 3)
    tr, ca = df.iloc[:cut].reset_index(drop=True), df.iloc[cut:].reset_index(drop=True)
    dm = fit_blend(tr, tr["default_12m"], ca, ca["default_12m"], policy="jinxiang_2022",
                   strategy="additive_points",
                   gbm_params={"n_estimators": 60, "num_leaves": 15, "learning_rate": 0.08},
                   seed=0)
    # the training reference a registered model carries: its features and its score
    feats = dm.features.transform(tr)
    points = dm.decide(tr)["points"].to_numpy(float)
    dm.metadata["reference_profile"] = reference_profile(feats, score=points, score_name="score")
    return dm, df


def make_store(root: Path) -> str:
    uri = f"sqlite:///{root.as_posix()}/mlflow.db"
    configure(uri)
    return uri


def register_model(dm, root: Path, name: str = NAME) -> str:
    """Save, log and register ``dm``; returns ``models:/name/version``."""
    d = dm.save(root / f"dm-{name}")
    with mlflow.start_run(run_name=f"train-{name}"):
        info = log_decision_model(d, input_example=dm.input_example(5), registered_model_name=name)
    return f"models:/{name}/{info.registered_model_version}"


def cached_model(tmp_path_factory):
    """The trained test model, trained once per session and kept as plain files."""
    from village_credit.models.decision import DecisionModel

    d = tmp_path_factory.getbasetemp() / "vc-kit-trained-model"
    if not (d / "model.json").is_file():
        dm, _ = train_model()
        dm.save(d)
    return DecisionModel.load(d)
