"""A calibrator's sample where some rows have no label (refused applicants, loans not yet
due): those rows are decided and counted, never tested against an outcome, and the
outcome figures equal those of the labelled rows alone. A row marked observed without a
label is an error naming it."""

from __future__ import annotations

import os
from typing import Iterator

import mlflow
import numpy as np
import pandas as pd
import pytest

from village_credit.validation.kit import ValidationKitError, validate_model
from village_credit.validation.recalibration import recalibrate

pytestmark = pytest.mark.slow
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@pytest.fixture(scope="module")
def setup(validation_kit, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("unlabelled")
    old = mlflow.get_tracking_uri()
    validation_kit.make_store(root)
    v1 = validation_kit.register_model(validation_kit.cached_model(tmp_path_factory), root)
    full = validation_kit.population(1500, seed=404, rate=validation_kit.RISKY_RATE)
    full = full.drop(columns=["outcome_observed"], errors="ignore")
    unlabelled = np.random.default_rng(5).random(len(full)) < 0.35
    partial = full.assign(default_12m=full["default_12m"].astype("float64").where(~unlabelled))
    yield {"root": root, "v1": v1, "full": full, "partial": partial, "unlabelled": unlabelled}
    mlflow.set_tracking_uri(old)


def test_unlabelled_rows_are_counted_not_tested(setup: dict) -> None:
    partial, unlabelled = setup["partial"], setup["unlabelled"]
    labelled_only = partial.loc[~unlabelled].reset_index(drop=True)
    got, _, _ = validate_model(setup["v1"], partial, setup["root"] / "partial", log_to_mlflow=False,
                               fairness_boot=10)
    ref, _, _ = validate_model(setup["v1"], labelled_only, setup["root"] / "labelled",
                               log_to_mlflow=False)
    repro = got["reproducibility"]
    assert repro["sample_rows"] == len(partial)  # counts in = counts out
    assert repro["rows_scored"] + repro["rows_quarantined"] == len(partial)
    assert repro["rows_with_outcome"] == ref["reproducibility"]["rows_scored"] < repro["rows_scored"]
    # the outcome figures are those of the labelled rows: the unlabelled ones are not read as 0
    assert got["discrimination"]["auc"] == pytest.approx(ref["discrimination"]["auc"], abs=1e-12)
    for key in ("brier", "ece"):
        assert got["calibration"][key] == pytest.approx(ref["calibration"][key], abs=1e-12), key
    assert got["sample"]["default_rate"] == pytest.approx(ref["sample"]["default_rate"], abs=1e-12)
    assert got["calibration"]["pools"]["n"].tolist() == ref["calibration"]["pools"]["n"].tolist()


def test_observed_row_without_label_names_the_row(setup: dict) -> None:
    partial = setup["partial"].copy()
    partial["outcome_observed"] = True
    first = int(np.flatnonzero(setup["unlabelled"])[0])
    with pytest.raises(ValidationKitError, match=rf"'default_12m', row {first}: missing although "
                                                 r"'outcome_observed' is true"):
        validate_model(setup["v1"], partial, setup["root"] / "bad", log_to_mlflow=False)
    with pytest.raises(ValidationKitError, match="no row has a 'default_12m' label"):
        validate_model(setup["v1"], partial.assign(default_12m=np.nan), setup["root"] / "none",
                       log_to_mlflow=False)


def test_recalibration_fits_on_the_labelled_rows_only(setup: dict) -> None:
    partial, unlabelled = setup["partial"], setup["unlabelled"]
    labelled_only = partial.loc[~unlabelled].reset_index(drop=True)
    got = recalibrate(setup["v1"], partial, method="platt", register=False,
                      out_dir=setup["root"] / "recal_partial", seed=0)
    ref = recalibrate(setup["v1"], labelled_only, method="platt", register=False,
                      out_dir=setup["root"] / "recal_labelled", seed=0)
    assert got.n_sample == ref.n_sample < len(partial)  # the rows the map was fitted on
    assert got.calibrator["a"] == pytest.approx(ref.calibrator["a"], abs=1e-9)
    assert got.calibrator["b"] == pytest.approx(ref.calibrator["b"], abs=1e-9)
    assert got.before["default_rate"] == pytest.approx(ref.before["default_rate"], abs=1e-12)
    assert got.before["default_rate"] == pytest.approx(
        pd.to_numeric(labelled_only["default_12m"]).mean(), abs=0.02)


def test_monitor_segments_count_only_observed_outcomes() -> None:
    """A segment's default rate is over the rows with an observed outcome: unlabelled rows
    and rows marked not observed (whose generated truth no bank sees) are not read as repaid."""
    from village_credit.validation.segments import segment_drift

    rng = np.random.default_rng(3)
    n = 1200
    town = np.where(np.arange(n) % 2 == 0, "T01", "T02")
    y = (rng.random(n) < 0.1).astype(float)
    ref = pd.DataFrame({"township_code": town, "default_12m": y})
    hidden = rng.random(n) < 0.4
    cur = ref.assign(default_12m=np.where(hidden, np.nan, y))
    seg = segment_drift(ref, cur, columns=["township_code"]).set_index("value")
    for t in ("T01", "T02"):
        m = town == t
        assert seg.loc[t, "n_outcomes_current"] == int((m & ~hidden).sum())
        assert seg.loc[t, "default_rate_current"] == pytest.approx(y[m & ~hidden].mean())
    observed = cur.assign(default_12m=y, outcome_observed=~hidden)  # truth present, not seen
    seg2 = segment_drift(ref, observed, columns=["township_code"]).set_index("value")
    assert seg2["default_rate_current"].tolist() == seg["default_rate_current"].tolist()
    assert (seg2["alert"] == "green").all()


def test_validate_command_prints_the_row_counts(setup: dict, tmp_path) -> None:
    """The CLI summary says how many rows were tested against an outcome."""
    import json as _json

    from typer.testing import CliRunner

    from village_credit.cli import app

    sample = tmp_path / "sample.parquet"
    setup["partial"].to_parquet(sample)
    res = CliRunner().invoke(app, ["validate", "--model", setup["v1"], "--input", str(sample), "--output",
                                   str(tmp_path / "report"), "--no-mlflow"])
    assert res.exit_code == 0, res.output
    printed = _json.loads(res.output[res.output.index("{"):res.output.index("\n}") + 2])
    n, unlabelled = len(setup["partial"]), int(setup["unlabelled"].sum())
    assert printed["rows"]["sample_rows"] == n
    assert printed["rows"]["rows_scored"] + printed["rows"]["rows_quarantined"] == n
    assert printed["rows"]["rows_with_outcome"] <= n - unlabelled
