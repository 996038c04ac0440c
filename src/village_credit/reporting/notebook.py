"""The analysts' notebooks' shared set-up: display defaults, size and seed, a scratch store.

Why one function: six notebooks opened with the same dozen lines; a change of display
format (fixed decimals, yuan separators) or of the environment variables they read
belonged in one place.
"""

from __future__ import annotations

import os
import tempfile
import warnings

import matplotlib.pyplot as plt
import pandas as pd

from village_credit.reporting.displays import fmt_number

__all__ = ["notebook_setup", "scratch_mlflow_store"]


def notebook_setup(default_households: int = 4000, default_seed: int = 42) -> tuple[int, int]:
    """Display defaults for pandas and matplotlib; ``(households, seed)`` from the environment.

    ``VC_NOTEBOOK_HOUSEHOLDS`` and ``VC_NOTEBOOK_SEED`` (the tests shrink the notebooks
    with them). Numbers print with fixed decimals and thousands separators (0.780,
    53,800; never 7.800e-01). Only FutureWarnings and Jupyter's IProgress notice are
    silenced; every other warning stays visible.
    """
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message="IProgress not found")
    pd.set_option("display.width", 140)
    pd.set_option("display.max_columns", 40)
    pd.set_option("display.precision", 3)
    pd.set_option("display.float_format", fmt_number)
    plt.rcParams["figure.dpi"] = 90
    n = int(os.environ.get("VC_NOTEBOOK_HOUSEHOLDS", str(default_households)))
    seed = int(os.environ.get("VC_NOTEBOOK_SEED", str(default_seed)))
    print(f"{n:,} households, seed {seed}")
    return n, seed


def scratch_mlflow_store() -> str:
    """The MLflow store a notebook uses, and a scratch work folder (returned).

    The store named by ``MLFLOW_TRACKING_URI`` when set (a tracking server, or the test
    suite's temporary store); otherwise a throw-away sqlite store in a temp folder, so
    running a notebook never writes into the repository's ``mlruns/``. MLflow's
    download bars and INFO lines are turned off.
    """
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    # MLflow's general hint about integer columns in an inferred signature (the model
    # validates its rows itself); every other warning stays visible
    warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column",
                            category=UserWarning)
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        store = tempfile.mkdtemp(prefix="vc-notebook-mlflow-")
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{store}/mlflow.db"
    work_dir = tempfile.mkdtemp(prefix="vc-notebook-")
    print("MLflow store:", os.environ["MLFLOW_TRACKING_URI"])
    print("work dir:    ", work_dir)
    return work_dir
