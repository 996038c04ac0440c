"""Batch scoring on Spark through ``mlflow.pyfunc.spark_udf``.

Why the same model and the same validation: the credit center must get the same
decision for a household whichever engine scored it. Spark reads the Parquet/CSV
input, the registered pyfunc runs inside a pandas UDF (its own validation flags bad
rows with ``status = quarantined``), and the result is split into decisions and
quarantine written as Parquet, with the same columns as the single-machine path.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from village_credit.scoring.batch import PASSTHROUGH, ModelRef, ScoreSummary, ScoringError, resolve_model

ROW_NUMBER = "row_number"


def spark_session(master: str = "local[*]", app_name: str = "village-credit-scoring") -> Any:
    """A Spark session whose Python workers use this interpreter (PYSPARK_PYTHON)."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ScoringError("the Spark engine needs pyspark: pip install 'village-credit[spark]'") from exc
    return (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )


def _result_ddl(model: Any) -> tuple[str, list[str]]:
    """DDL struct type for the UDF result, from the model's output signature."""
    schema = model.metadata.get_output_schema()
    if schema is None:
        raise ScoringError("the model has no output signature; Spark needs one to type the result")
    spark_types = {"string": "string", "double": "double", "float": "double", "long": "long",
                   "integer": "long", "boolean": "boolean", "datetime": "timestamp"}
    fields, names = [], []
    for col in schema.inputs:
        t = getattr(col.type, "name", str(col.type))
        fields.append(f"`{col.name}` {spark_types.get(t, 'string')}")
        names.append(col.name)
    return ", ".join(fields), names


def score_file_spark(
    model_uri: str,
    input_path: str | Path,
    output_dir: str | Path,
    *,
    master: str = "local[*]",
    spark: Any = None,
) -> ScoreSummary:
    """Score a file on Spark; writes ``decisions/`` and ``quarantine/`` Parquet and summary.json."""
    import mlflow.pyfunc
    from pyspark.sql import functions as F

    started = time.perf_counter()
    input_path, output_dir = Path(input_path), Path(output_dir)
    ref: ModelRef = resolve_model(model_uri)
    target = f"models:/{ref.name}/{ref.version}" if ref.version else model_uri
    try:
        model = mlflow.pyfunc.load_model(target)
    except Exception as exc:
        raise ScoringError(f"cannot load model {model_uri}: {exc}") from exc
    ddl, _ = _result_ddl(model)
    input_cols = [c.name for c in model.metadata.get_input_schema().inputs]

    own_session = spark is None
    spark = spark or spark_session(master)
    try:
        reader = spark.read
        if input_path.suffix.lower() == ".csv":
            df = reader.option("header", True).option("inferSchema", True).csv(str(input_path))
        else:
            df = reader.parquet(str(input_path))
        missing = [c for c in input_cols if c not in df.columns]
        if missing:
            raise ScoringError(f"{input_path}: missing columns the model needs: {', '.join(missing)}")
        # Row numbers in file order, as the single-machine path counts them.
        cols = df.columns
        df = df.rdd.zipWithIndex().map(lambda r: (*r[0], r[1])).toDF([*cols, ROW_NUMBER])
        udf = mlflow.pyfunc.spark_udf(spark, target, result_type=ddl, env_manager="local")
        scored = df.withColumn("_decision", udf(F.struct(*[F.col(c) for c in input_cols])))
        keep = [ROW_NUMBER] + [c for c in PASSTHROUGH if c in df.columns]
        flat = scored.select(*keep, "_decision.*").cache()
        decisions = flat.filter(F.col("status") == "scored").orderBy(ROW_NUMBER)
        quarantined = flat.filter(F.col("status") != "scored").orderBy(ROW_NUMBER)
        decisions.write.mode("overwrite").parquet(str(output_dir / "decisions"))
        (quarantined.select(ROW_NUMBER, "household_id", F.lit("").alias("column"), F.lit("").alias("value"),
                            F.col("quarantine_reason").alias("reason"))
         .write.mode("overwrite").parquet(str(output_dir / "quarantine")))
        n_in = df.count()
        n_scored = decisions.count()
        n_bad = quarantined.count()
        flat.unpersist()
    finally:
        if own_session:
            spark.stop()
    summary = ScoreSummary(input=str(input_path), output_dir=str(output_dir), rows_read=n_in,
                           scored=n_scored, quarantined=n_bad, chunks=1, model=ref.__dict__,
                           seconds=round(time.perf_counter() - started, 3))
    summary.reconciled = n_in == n_scored + n_bad
    (output_dir / "summary.json").write_text(json.dumps({**summary.to_dict(), "engine": "spark", "master": master},
                                                        indent=2, default=str), encoding="utf-8")
    return summary


def read_spark_decisions(output_dir: str | Path) -> pd.DataFrame:
    """Decisions written by Spark, in input row order (for comparisons and reports)."""
    df = pd.read_parquet(Path(output_dir) / "decisions")
    return df.sort_values(ROW_NUMBER).reset_index(drop=True)
