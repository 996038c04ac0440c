"""``--engine spark``: mlflow.pyfunc.spark_udf on a real local PySpark; same outputs as one machine."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

if TYPE_CHECKING:
    from conftest import ScoringEnv

pyspark = pytest.importorskip("pyspark")
pytestmark = [pytest.mark.spark, pytest.mark.slow, pytest.mark.usefixtures("scoring_store"),
              pytest.mark.skipif(shutil.which("java") is None and not os.environ.get("JAVA_HOME"),
                                 reason="Spark needs Java 17")]


@pytest.fixture(scope="session")
def env(scoring_env: ScoringEnv) -> ScoringEnv:
    return scoring_env


@pytest.fixture(scope="module")
def spark():
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from village_credit.scoring.spark import spark_session

    session = spark_session("local[2]")
    yield session
    session.stop()


def test_a_local_sessions_driver_runs_with_the_cheap_jvm_options(spark) -> None:
    """The driver JVM of a local session only plans and collects: it starts without the
    optimising compiler and with the serial GC (about half its start-up CPU)."""
    from village_credit.scoring.spark import LOCAL_DRIVER_JAVA_OPTIONS

    assert spark.sparkContext.getConf().get("spark.driver.extraJavaOptions").endswith(LOCAL_DRIVER_JAVA_OPTIONS)
    jvm_args = list(spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
    assert set(LOCAL_DRIVER_JAVA_OPTIONS.split()) <= set(jvm_args), jvm_args


def test_spark_matches_single_machine_row_for_row(assert_every_row_once, env: ScoringEnv, spark, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from village_credit.scoring import read_decisions, read_quarantine, score_file, score_file_spark
    from village_credit.scoring.outputs import read_model_metadata

    # ONE row group: Spark must still split the work by rows (2 tasks per core on local[2]),
    # and with the same chunk size the outputs are the local engine's, part for part
    src = tmp_path / "households.parquet"
    pq.write_table(pq.read_table(env.parquet), src, row_group_size=len(env.households))
    n = len(env.households)
    local = score_file(env.model_uri, src, tmp_path / "local", chunk_rows=-(-n // 4), progress=False)
    remote = score_file_spark(env.model_uri, src, tmp_path / "spark", spark=spark, chunk_rows=10 ** 6)
    assert len(list((tmp_path / "spark" / "_chunks").glob("*.json"))) == 4  # 2 cores x 2 tasks
    for sub in ("decisions", "quarantine", "quarantine_rows"):
        for part in sorted((tmp_path / "local" / sub).glob("part-*.parquet")):
            # the same rows and values, part for part (exact floats up to 1e-12: a part's
            # physical string type may differ between the two engines' Arrow writers)
            mine, theirs = pq.read_table(part), pq.read_table(tmp_path / "spark" / sub / part.name)
            assert mine.column_names == theirs.column_names, (sub, part)
            pd.testing.assert_frame_equal(mine.to_pandas(), theirs.to_pandas(), check_dtype=False,
                                          check_exact=False, rtol=1e-12, obj=f"{sub}/{part.name}")
    assert len(list((tmp_path / "spark" / "decisions").glob("part-*.parquet"))) >= 1
    assert remote.rows_read == n and remote.reconciled
    assert (remote.scored, remote.quarantined, remote.problems) == (local.scored, local.quarantined, local.problems)
    a = read_decisions(tmp_path / "local")
    b = read_decisions(tmp_path / "spark")
    assert list(a.columns) == list(b.columns)
    assert a["row_number"].tolist() == b["row_number"].tolist()
    assert a["household_id"].tolist() == b["household_id"].tolist()
    for col in ("pd", "points", "credit_line", "rate"):
        np.testing.assert_allclose(a[col].to_numpy(float), b[col].to_numpy(float), rtol=1e-12, equal_nan=True)
    for col in ("grade", "reason_codes", "eligible", "approved", "village_code"):
        assert a[col].tolist() == b[col].tolist(), col
    # bad rows are not lost: same quarantine entries, every row exactly once
    _, bad = assert_every_row_once(tmp_path / "spark", n)
    assert set(bad["row_number"]) == set(env.bad_rows)
    qa = read_quarantine(tmp_path / "local")[["row_number", "column", "value", "reason", "check"]]
    qb = read_quarantine(tmp_path / "spark")[["row_number", "column", "value", "reason", "check"]]
    assert qa.astype(str).values.tolist() == qb.astype(str).values.tolist()
    meta = read_model_metadata(tmp_path / "spark")
    assert meta["village_credit.model_version"] == env.version
    assert meta["village_credit.model_alias"] == "champion"
    assert (tmp_path / "spark" / "programme_villages.parquet").exists()


def test_spark_rerun_resumes_only_the_missing_chunks(assert_every_row_once, env: ScoringEnv, spark, tmp_path: Path) -> None:
    """A chunk lost with its marker (a killed task) is redone; done chunks are kept as they are."""
    from village_credit.scoring import score_file_spark

    out = tmp_path / "spark"
    first = score_file_spark(env.model_uri, env.parquet, out, spark=spark, chunk_rows=1000, report=False)
    assert first.chunks == 4 and first.chunks_resumed == 0 and first.reconciled  # 750 rows: 2 tasks per core
    kept = (out / "decisions" / "part-00000.parquet").stat().st_mtime_ns
    (out / "_chunks" / "00002.json").unlink()
    (out / "decisions" / "part-00002.parquet").unlink()
    again = score_file_spark(env.model_uri, env.parquet, out, spark=spark, chunk_rows=1000, report=False)
    assert again.chunks_resumed == 3 and again.reconciled and again.scored == first.scored
    assert (out / "decisions" / "part-00000.parquet").stat().st_mtime_ns == kept
    assert_every_row_once(out, len(env.households))


def test_spark_submit_entry_runs_the_same_job(env: ScoringEnv, tmp_path: Path) -> None:
    """``spark-submit --master local[2] .../spark_submit.py``: the cluster command, on two local cores."""
    import json
    import subprocess

    from village_credit.scoring import read_decisions, score_file, spark_submit
    from village_credit.scoring import spark as spark_module

    submit = Path(sys.executable).with_name("spark-submit")
    if not submit.exists():
        submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    out = tmp_path / "submitted"
    proc = subprocess.Popen([str(submit), "--master", "local[2]", "--driver-java-options",
                             spark_module.LOCAL_DRIVER_JAVA_OPTIONS, spark_submit.__file__, "--model", env.model_uri,
                             "--input", str(env.parquet), "--output", str(out)],
                            env={**env.env(), "PYSPARK_DRIVER_PYTHON": sys.executable},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # the reference run overlaps the submitted job's JVM start (its waits on the JVM left
        # this worker's core idle); the comparison below still waits for the job to finish
        local = score_file(env.model_uri, env.parquet, tmp_path / "local", chunk_rows=750, progress=False)
    finally:
        stdout, stderr = proc.communicate()
    assert proc.returncode == 0, stderr[-3000:]
    summary = json.loads(stdout[stdout.index("{"):])
    assert summary["engine"] == "spark" and summary["reconciled"] and summary["chunks"] == 4
    assert summary["scored"] == local.scored and summary["problems"] == local.problems
    assert read_decisions(out).equals(read_decisions(tmp_path / "local"))


def test_mlflow_spark_udf_quarantines_bad_rows_like_decide(env: ScoringEnv, spark) -> None:
    """MLflow's own ``spark_udf`` on the new contract: typed struct result from the output
    signature, bad rows come back quarantined (not a failed batch), same PDs as ``decide``."""
    import mlflow.pyfunc
    from pyspark.sql import functions as F

    rows = env.households.head(40).reset_index(drop=True)  # rows 5 and 17 are bad
    udf = mlflow.pyfunc.spark_udf(spark, env.model_uri, env_manager="local")
    sdf = spark.createDataFrame(rows.astype({c: object for c in rows.columns if rows[c].dtype == "str"}))
    got = (sdf.select(udf(F.struct(*[F.col(c) for c in rows.columns])).alias("d"))
           .select("d.household_id", "d.status", "d.pd").toPandas())
    want = mlflow.pyfunc.load_model(env.model_uri).unwrap_python_model().model.decide(rows)
    assert got["household_id"].tolist() == want["household_id"].tolist()
    assert got["status"].tolist() == want["status"].tolist()
    assert set(np.flatnonzero(got["status"] != "scored")) == {5, 17}
    np.testing.assert_allclose(got["pd"].to_numpy(float), want["pd"].to_numpy(float), rtol=1e-12, equal_nan=True)
