"""The notebooks' shared set-up: what every notebook relies on."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from village_credit.reporting.displays import fmt_number
from village_credit.reporting.notebook import notebook_setup, scratch_mlflow_store


def test_notebook_setup_reads_size_and_seed_and_sets_number_format(monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("VC_NOTEBOOK_HOUSEHOLDS", "1500")
    monkeypatch.delenv("VC_NOTEBOOK_SEED", raising=False)
    with pd.option_context("display.float_format", None):
        assert notebook_setup(default_seed=7) == (1500, 7)
        assert pd.get_option("display.float_format") is fmt_number
    assert "1,500 households, seed 7" in capsys.readouterr().out


def test_scratch_store_keeps_a_given_store_and_never_uses_the_repository(monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path: Path) -> None:
    given = f"sqlite:///{tmp_path}/given.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", given)
    work = scratch_mlflow_store()
    assert os.environ["MLFLOW_TRACKING_URI"] == given and Path(work).is_dir()
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    scratch_mlflow_store()
    uri = os.environ["MLFLOW_TRACKING_URI"]
    assert uri.startswith("sqlite:///") and "mlruns" not in uri
