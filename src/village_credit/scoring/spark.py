"""Batch scoring on Spark through ``mlflow.pyfunc.spark_udf``.

Why the same model and the same validation: the credit center must get the same
decision for a household whichever engine scored it. Spark reads the Parquet/CSV
input, the registered pyfunc runs inside a pandas UDF (its own validation flags bad
rows with ``status = quarantined``), and the result is split into decisions and
quarantine written as Parquet, with the same columns as the single-machine path:

* ``row_number``: 0-based position in the input file, assigned in the JVM
  (``monotonically_increasing_id`` minus its partition base, plus the number of
  rows in earlier partitions; file splits are in file order), so quarantine
  entries and decisions name the same rows as the local engine does.
* Date columns are cast to timestamps before the UDF (Arrow hands Spark ``date``
  values to pandas as Python objects; as timestamps they arrive as
  ``datetime64[ns]``, what the model was logged with). CSV is read as text and the
  model's validation casts it cell by cell, as on one machine.
* The UDF's result type is a struct built from the model's output signature
  (``_result_ddl``); one pass computes the decision per row, persisted, then split.
* Model URI, name, version and alias are stored as Spark column metadata on
  ``household_id`` (in the Parquet footer) and in ``_model.json`` / summary.json.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from village_credit.scoring.batch import (_CHECKS, PASSTHROUGH, QUARANTINE_COLUMNS, ModelRef, NoRowsScored,
                                          PyfuncScorer,
                                          ScoreSummary, ScoringError, _atomic_write_json, _prepare_output,
                                          _run_identity, _write_programme_report)

ROW_NUMBER = "row_number"


def spark_session(master: str = "local[*]", app_name: str = "village-credit-scoring",
                  conf: dict[str, str] | None = None) -> Any:
    """A Spark session whose Python workers use this interpreter (PYSPARK_PYTHON)."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ScoringError("the Spark engine needs pyspark: pip install 'village-credit[spark]'") from exc
    builder = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.memory", "2g")
    )
    for k, v in (conf or {}).items():
        builder = builder.config(k, v)
    return builder.getOrCreate()


_SPARK_TYPES = {"string": "string", "double": "double", "float": "float", "long": "bigint",
                "integer": "int", "boolean": "boolean", "datetime": "timestamp", "binary": "binary"}


def _result_ddl(model: Any) -> tuple[str, list[str]]:
    """DDL struct type for the UDF result, from the model's output signature."""
    schema = model.metadata.get_output_schema()
    if schema is None or not schema.has_input_names():
        raise ScoringError("the model has no named output signature; Spark needs one to type the result")
    fields, names = [], []
    for col in schema.inputs:
        t = getattr(col.type, "name", None)
        if t not in _SPARK_TYPES:
            raise ScoringError(f"output column {col.name!r} has type {col.type!r}, which Spark cannot hold")
        fields.append(f"`{col.name}` {_SPARK_TYPES[t]}")
        names.append(col.name)
    return ", ".join(fields), names


def _with_row_numbers(df: Any) -> Any:
    """``row_number`` = position in the input, computed in the JVM (no Python round trip)."""
    from pyspark.sql import functions as F

    tagged = df.withColumn("_pid", F.spark_partition_id()).withColumn("_mid", F.monotonically_increasing_id())
    counts = sorted((r["_pid"], r["count"]) for r in tagged.groupBy("_pid").count().collect())
    offsets, run = [], 0
    for pid, n in counts:
        offsets += [F.lit(pid), F.lit(run)]
        run += n
    if not offsets:
        return df.withColumn(ROW_NUMBER, F.lit(None).cast("bigint"))
    base = F.element_at(F.create_map(*offsets), F.col("_pid"))
    local = F.col("_mid") - F.shiftleft(F.col("_pid").cast("bigint"), 33)
    return tagged.withColumn(ROW_NUMBER, (base + local).cast("bigint")).drop("_pid", "_mid")


def _read_input(spark: Any, input_path: Path) -> Any:
    from pyspark.sql import functions as F
    from pyspark.sql.types import DateType

    suffix = input_path.suffix.lower()
    if suffix == ".csv":
        # all text, as the local engine reads a bad cell: the model's validation casts
        df = spark.read.option("header", True).option("inferSchema", False).csv(str(input_path))
    elif suffix in (".parquet", ".pq") or input_path.is_dir():
        df = spark.read.parquet(str(input_path))
    else:
        raise ScoringError(f"{input_path}: unsupported file type {suffix!r}; expected .parquet or .csv")
    casts = [F.col(f.name).cast("timestamp").alias(f.name) if isinstance(f.dataType, DateType)
             else F.col(f"`{f.name}`") for f in df.schema.fields]
    return df.select(*casts)


def _check_expr(reason_col: Any) -> Any:
    """Spark twin of ``batch.check_code``."""
    from pyspark.sql import functions as F

    expr = None
    for needle, code in _CHECKS:
        cond = reason_col.contains(needle)
        expr = F.when(cond, F.lit(code)) if expr is None else expr.when(cond, F.lit(code))
    return expr.otherwise(F.lit("model"))


def score_file_spark(
    model_uri: str,
    input_path: str | Path,
    output_dir: str | Path,
    *,
    master: str = "local[*]",
    spark: Any = None,
    overwrite: bool = False,
    report: bool = True,
    max_partition_bytes: int | None = None,
    allow_ungated: bool = False,
) -> ScoreSummary:
    """Score a file on Spark; writes ``decisions/``, ``quarantine/``, ``quarantine_rows/``, summary.json.

    Same output columns and row numbers as :func:`village_credit.scoring.score_file`.
    A rerun into the same directory with the same arguments redoes the job (Spark
    output is written whole, in ``overwrite`` mode); other arguments are refused
    unless ``overwrite``. ``max_partition_bytes`` sets ``spark.sql.files.maxPartitionBytes``
    (smaller = more input partitions = more parallel UDF tasks). One run at a time
    writes ``output_dir`` (the same lock as the local engine).
    """
    import contextlib

    from village_credit.scoring.guards import OutputLock, check_output

    local = "://" not in str(output_dir)  # a local folder: checked and locked up front
    if local:
        check_output(output_dir)
    with OutputLock(output_dir, input_path) if local else contextlib.nullcontext():
        return _score_file_spark(model_uri, input_path, output_dir, master=master, spark=spark,
                                 overwrite=overwrite, report=report,
                                 max_partition_bytes=max_partition_bytes)


def _score_file_spark(
    model_uri: str,
    input_path: str | Path,
    output_dir: str | Path,
    *,
    master: str,
    spark: Any,
    overwrite: bool,
    report: bool,
    max_partition_bytes: int | None,
) -> ScoreSummary:
    import mlflow.pyfunc
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    started = time.perf_counter()
    input_path, output_dir = Path(input_path), Path(output_dir)
    if not input_path.exists():
        from village_credit.errors import DataReadError

        raise DataReadError(f"{input_path}: file not found")
    from village_credit.registry.loading import load_model

    # the one loader: resolves the URI, checks the promotion record (refuses an ungated
    # version unless allow_ungated); the UDF runs the very copy whose digest was checked
    loaded = load_model(model_uri, allow_ungated=allow_ungated)
    model, ref = loaded.pyfunc, ModelRef.from_loaded(loaded)
    target = str(loaded.local_dir)
    ddl, out_names = _result_ddl(model)
    scorer = PyfuncScorer(model)
    identity = {**_run_identity(input_path, None, ref, "spark"), "master": master}
    _prepare_output(output_dir, identity, overwrite)
    _atomic_write_json(asdict(ref), output_dir / "_model.json")
    meta = {**ref.as_metadata(), "village_credit.input": input_path.name}

    own_session = spark is None
    spark = spark or spark_session(master)
    old_mpb = spark.conf.get("spark.sql.files.maxPartitionBytes")
    if max_partition_bytes:
        spark.conf.set("spark.sql.files.maxPartitionBytes", str(int(max_partition_bytes)))
    flat = None
    try:
        try:
            df = _read_input(spark, input_path)
        except ScoringError:
            raise
        except Exception as exc:  # AnalysisException etc.: unreadable input
            from village_credit.errors import DataReadError

            raise DataReadError(f"{input_path}: Spark cannot read it: {exc}") from exc
        scorer.check_columns(df.columns, str(input_path))
        model_cols = [c for c in df.columns if c in set(scorer.required) | set(scorer.optional)]
        df = _with_row_numbers(df)
        udf = mlflow.pyfunc.spark_udf(spark, target, result_type=ddl, env_manager="local")
        keep = [ROW_NUMBER] + [c for c in PASSTHROUGH if c in df.columns and c not in out_names]
        decision = udf(F.struct(*[F.col(f"`{c}`") for c in model_cols]))
        flat = (df.withColumn("_decision", decision)
                .select(*keep, *[F.col("_decision").getField(n).alias(n) for n in out_names])
                .persist(StorageLevel.MEMORY_AND_DISK))
        n_in = flat.count()  # runs the model once; everything below reads the persisted result

        hid_meta = dict(meta)
        ordered = [ROW_NUMBER, *out_names, *[c for c in keep if c != ROW_NUMBER]]
        decisions = (flat.filter(F.col("status") == "scored")
                     .select(*[F.col(c).alias(c, metadata=hid_meta) if c == "household_id" else F.col(c)
                               for c in ordered])
                     .orderBy(ROW_NUMBER))
        decisions.write.mode("overwrite").parquet(str(output_dir / "decisions"))

        flagged = flat.filter((F.col("status") != "scored") | F.col("status").isNull())
        parts = F.explode(F.split(F.coalesce(F.col("quarantine_reason"), F.lit("")), "; "))
        problems = (flagged.select(ROW_NUMBER, "household_id", parts.alias("_p"))
                    .filter(F.col("_p") != "")
                    .withColumn("_has", F.col("_p").contains(": "))
                    .select(ROW_NUMBER, F.coalesce(F.col("household_id"), F.lit("")).alias("household_id"),
                            F.when(F.col("_has"), F.substring_index("_p", ": ", 1)).otherwise(F.lit(""))
                            .alias("column"),
                            F.when(F.col("_has"), F.expr("substr(_p, instr(_p, ': ') + 2)"))
                            .otherwise(F.col("_p")).alias("reason")))
        bad_rn = flagged.select(ROW_NUMBER)
        bad_rows = df.join(F.broadcast(bad_rn), ROW_NUMBER, "left_semi")
        text_rows = bad_rows.select(ROW_NUMBER, *[
            (F.date_format(F.col(f"`{f.name}`"), "yyyy-MM-dd") if f.dataType.typeName() == "timestamp"
             else F.col(f"`{f.name}`").cast("string")).alias(f.name)
            for f in bad_rows.schema.fields if f.name != ROW_NUMBER])
        cells = F.create_map(*[x for c in model_cols for x in (F.lit(c), text_rows[c])])
        with_value = (problems.join(text_rows, ROW_NUMBER, "left")
                      .select(ROW_NUMBER, problems["household_id"], "column",
                              F.coalesce(F.element_at(cells, F.col("column")), F.lit("")).alias("value"),
                              "reason", _check_expr(F.col("reason")).alias("check"))
                      .select(*QUARANTINE_COLUMNS).orderBy(ROW_NUMBER, "column"))
        with_value.write.mode("overwrite").parquet(str(output_dir / "quarantine"))
        text_rows.orderBy(ROW_NUMBER).write.mode("overwrite").parquet(str(output_dir / "quarantine_rows"))

        counts = flat.groupBy((F.col("status") == "scored").alias("ok")).count().collect()
        n_scored = sum(r["count"] for r in counts if r["ok"])
        n_bad = sum(r["count"] for r in counts if not r["ok"])
        n_problems = spark.read.parquet(str(output_dir / "quarantine")).count()
    finally:
        if flat is not None:
            flat.unpersist()
        if old_mpb is not None:
            spark.conf.set("spark.sql.files.maxPartitionBytes", old_mpb)
        if own_session:
            spark.stop()
    seconds = round(time.perf_counter() - started, 3)
    summary = ScoreSummary(input=str(input_path), output_dir=str(output_dir), engine="spark", rows_read=n_in,
                           scored=n_scored, quarantined=n_bad, problems=n_problems, chunks=1,
                           model=asdict(ref), seconds=seconds,
                           rows_per_second=round(n_in / seconds, 1) if seconds > 0 else 0.0)
    summary.reconciled = n_in == n_scored + n_bad
    if report and n_scored and "://" not in str(output_dir):
        summary.programme = _write_programme_report(output_dir)
    _atomic_write_json({**summary.to_dict(), "master": master}, output_dir / "summary.json")
    if n_scored == 0 and n_in > 0:
        raise NoRowsScored(f"no row of {input_path} could be scored ({n_bad} quarantined); "
                           f"see {output_dir / 'quarantine'}")
    return summary


def read_spark_decisions(output_dir: str | Path) -> pd.DataFrame:
    """Decisions written by Spark, in input row order (for comparisons and reports)."""
    df = pd.read_parquet(Path(output_dir) / "decisions")
    return df.sort_values(ROW_NUMBER).reset_index(drop=True)
