"""Batch scoring on one machine: chunked, lossless, reconciled; the ``score`` CLI exit paths.

Real model (small ``fit_blend``), real sqlite MLflow store in a temp dir, no mocks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from village_credit.cli import app
from village_credit.scoring import read_decisions, read_quarantine, score_file
from village_credit.scoring.outputs import read_model_metadata

if TYPE_CHECKING:
    from conftest import ScoringEnv

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def env(scoring_env: ScoringEnv) -> ScoringEnv:
    return scoring_env


@pytest.fixture(scope="module")
def scored(env: ScoringEnv, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    import mlflow

    mlflow.set_tracking_uri(env.tracking_uri)  # an earlier test file may have pointed MLflow elsewhere
    mlflow.set_registry_uri(env.tracking_uri)
    out = tmp_path_factory.mktemp("scored") / "out"
    summary = score_file(env.model_uri, env.parquet, out, chunk_rows=700, progress=False)
    return out, summary


def test_every_row_is_decided_or_quarantined_and_counts_reconcile(assert_every_row_once, env: ScoringEnv, scored) -> None:
    out, summary = scored
    n = len(env.households)
    assert summary.rows_read == n and summary.chunks == 5  # 3000 rows / 700
    assert summary.scored + summary.quarantined == n and summary.reconciled
    assert summary.quarantined == len(env.bad_rows)
    dec, bad = assert_every_row_once(out, n)
    assert set(bad["row_number"]) == set(env.bad_rows)
    assert (dec["status"] == "scored").all()
    # decisions carry the household and the decision, in input order
    ids = env.households["household_id"].to_numpy()
    assert (dec["household_id"].to_numpy() == ids[dec["row_number"].to_numpy()]).all()
    for col in ("pd", "points", "grade", "credit_line", "rate", "reason_codes", "village_code", "township_code"):
        assert col in dec.columns
    assert dec["pd"].between(0, 1).all() and dec["reason_codes"].str.len().gt(0).all()
    saved = json.loads((out / "summary.json").read_text())
    assert saved["rows_read"] == saved["scored"] + saved["quarantined"] == n


def test_quarantine_names_row_column_and_reason(env: ScoringEnv, scored) -> None:
    out, _ = scored
    q = read_quarantine(out)
    assert {"row_number", "household_id", "column", "value", "reason", "check"} <= set(q.columns)
    for row, column in env.bad_rows.items():
        hit = q[(q["row_number"] == row) & (q["column"] == column)]
        assert len(hit) == 1, (row, column, q)
        assert hit["reason"].iloc[0]
    size = q[q["column"] == "household_size"].iloc[0]
    assert size["value"] == "-2" and size["check"] == "range"
    assert q.loc[q["column"] == "education", "value"].iloc[0] == "doctorate_of_magic"
    assert q.loc[q["column"] == "household_id", "check"].iloc[0] == "duplicate"


def test_model_version_and_alias_in_parquet_metadata_and_summary(env: ScoringEnv, scored) -> None:
    out, summary = scored
    meta = read_model_metadata(out)
    assert meta["village_credit.model_version"] == env.version
    assert meta["village_credit.model_alias"] == "champion"
    assert meta["village_credit.model_name"] == "village-credit"
    part = sorted((out / "decisions").glob("part-*.parquet"))[0]
    assert pq.read_schema(part).metadata[b"village_credit.model_version"] == env.version.encode()
    assert summary.model["version"] == env.version and summary.model["alias"] == "champion"


def test_programme_report_for_the_scored_population(env: ScoringEnv, scored) -> None:
    out, summary = scored
    villages = pd.read_parquet(out / "programme_villages.parquet")
    townships = pd.read_parquet(out / "programme_townships.parquet")
    assert {"village_code", "township_code", "a_share", "is_credit_village"} <= set(villages.columns)
    assert {"township_code", "credit_villages", "is_credit_township"} <= set(townships.columns)
    # every household with a village is counted; quarantined ones are in, but not on file
    assert villages["households"].sum() == len(env.households)
    assert villages["on_file"].sum() == summary.scored
    assert summary.programme["villages"] == len(villages)


def test_csv_input_gives_the_same_decisions_and_a_bad_cell_is_quarantined(env: ScoringEnv, scored,
                                                                           tmp_path: Path) -> None:
    out, _ = scored
    csv = tmp_path / "h.csv"
    text = pd.read_csv(env.csv, dtype=str, keep_default_na=False)
    text.loc[1200, "assets_yuan"] = "lots"
    text.to_csv(csv, index=False)
    summary = score_file(env.model_uri, csv, tmp_path / "out", chunk_rows=1000, progress=False)
    assert summary.reconciled and summary.quarantined == len(env.bad_rows) + 1
    q = read_quarantine(tmp_path / "out")
    hit = q[q["row_number"] == 1200]
    assert list(hit["column"]) == ["assets_yuan"] and hit["value"].iloc[0] == "lots"
    assert hit["check"].iloc[0] == "type"
    a = read_decisions(out)
    a = a[a["row_number"] != 1200].reset_index(drop=True)
    b = read_decisions(tmp_path / "out")
    assert a["household_id"].tolist() == b["household_id"].tolist()
    np.testing.assert_allclose(a["pd"], b["pd"], rtol=1e-12)
    np.testing.assert_allclose(a["points"], b["points"], rtol=1e-12)
    assert a["grade"].tolist() == b["grade"].tolist()


runner = CliRunner()


def _cli(env: ScoringEnv, *args: str):
    return runner.invoke(app, ["score", "--tracking-uri", env.tracking_uri, *args])


def test_cli_prints_reconciled_summary_and_shows_rows_per_second(env: ScoringEnv, tmp_path: Path) -> None:
    res = _cli(env, "--input", str(env.parquet), "--output", str(tmp_path / "o"), "--chunk-rows", "1500")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["rows_read"] == summary["scored"] + summary["quarantined"] == len(env.households)
    assert summary["reconciled"] and summary["model"]["alias"] == "champion"
    assert "rows/s" in res.stderr


def test_cli_exit_code_nonzero_only_when_nothing_could_be_scored(env: ScoringEnv, tmp_path: Path) -> None:
    garbage = tmp_path / "broken.parquet"
    garbage.write_bytes(b"this is not parquet")
    res = _cli(env, "--input", str(garbage), "--output", str(tmp_path / "o1"), "--no-progress")
    assert res.exit_code == 2 and "broken.parquet" in res.stderr

    res = _cli(env, "--input", str(tmp_path / "missing.parquet"), "--output", str(tmp_path / "o2"))
    assert res.exit_code == 2 and "not found" in res.stderr

    res = _cli(env, "--model", "models:/no-such-model@champion", "--input", str(env.parquet),
               "--output", str(tmp_path / "o3"), "--no-progress")
    assert res.exit_code == 2 and "no-such-model" in res.stderr

    # all rows invalid: nothing scored -> non-zero, but the quarantine and summary are written
    all_bad = env.households.head(50).assign(household_size=-1)
    all_bad.to_parquet(tmp_path / "all_bad.parquet")
    res = _cli(env, "--input", str(tmp_path / "all_bad.parquet"), "--output", str(tmp_path / "o4"),
               "--no-progress")
    assert res.exit_code == 2
    summary = json.loads((tmp_path / "o4" / "summary.json").read_text())
    assert summary["scored"] == 0 and summary["quarantined"] == 50 and summary["reconciled"]

    # some rows invalid is a success
    good = env.households.iloc[100:120]
    mixed = pd.concat([good, good.assign(household_size=-1)],
                      ignore_index=True).assign(household_id=[f"M{i}" for i in range(40)])
    mixed.to_parquet(tmp_path / "mixed.parquet")
    res = _cli(env, "--input", str(tmp_path / "mixed.parquet"), "--output", str(tmp_path / "o6"), "--no-progress")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["quarantined"] == 20
