"""Batch scoring on Spark: the local engine's chunks, run as parallel Spark tasks.

Why this shape: the credit center must get the same decision, the same quarantine
and the same resumable output whichever engine scored a file. So Spark does not
re-implement scoring; it schedules the local engine's unit of work:

* The driver plans the file as row ranges (``batch.plan_chunks``), **by rows, not by
  the file's row groups**: chunks of at most ``chunk_rows`` (50,000), small enough
  that there are at least ``tasks_per_core`` x cores of them (default 2 per core).
* The plan is a tiny DataFrame split into ``tasks_per_core`` x cores partitions of
  contiguous chunks; ``mapInPandas`` runs each on an executor: read its chunks in
  one pass with just the model's columns (``batch.iter_chunks_from``, Arrow ->
  pandas), decide each with the registered pyfunc (``batch.score_chunk``: the
  model's own validation quarantines bad rows), write its three Parquet parts
  atomically and the done-marker last (``batch.write_chunk``), and hand the
  per-chunk counts back to the driver as an Arrow batch.
* Output layout, file names, row numbers and markers are those of ``score_file``
  with the same ``chunk_rows``: the outputs are identical row for row, and a rerun
  after a failure (a lost executor, ``kill -9`` of the driver) skips the chunks
  whose markers exist, exactly as on one machine.
* The model is downloaded once on the driver and shipped with ``SparkContext.addFile``
  (executors need no access to the tracking server); each Python worker loads it once.

On a cluster, the input and output directories must be on a file system that every
executor sees at the same path (NFS, a mounted share), and village-credit must be
installed on the executors. Command (see docs/architecture.md, "Scoring engines")::

    spark-submit --master spark://host:7077 path/to/village_credit/scoring/spark_submit.py \
        --model models:/village-credit@champion --input /shared/in.parquet --output /shared/out
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterator

import mlflow.pyfunc
import pandas as pd

from village_credit.data.io import count_rows
from village_credit.errors import VillageCreditError
from village_credit.registry.loading import load_model
from village_credit.scoring.batch import (
    ModelRef,
    PyfuncScorer,
    ScoreSummary,
    ScoringError,
    _prepare_output,
    _read_marker,
    _run_identity,
    add_counts,
    finish_summary,
    input_columns,
    plan_chunks,
    iter_chunks_from,
    read_columns,
    _as_text,
    score_chunk,
    write_chunk,
)
from village_credit.scoring.guards import OutputLock, check_output, duplicate_ids, quarantine_duplicates
from village_credit.scoring.outputs import atomic_write_json, read_decisions

ROW_NUMBER = "row_number"
COUNTS_DDL = "chunk long, first_row long, rows long, scored long, quarantined long, problems long, seconds double"
DEFAULT_CHUNK_ROWS = 50_000
LOCAL_DRIVER_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
"""JVM options of a local session's driver: it only plans row ranges and collects counts (the
Python workers read, decide and write), so the optimising compiler (C2) and parallel GC
threads were most of its CPU: start-up ~18 -> ~9 CPU s (docs/benchmarks.md, "Test suite
time, ninth pass"). For ``spark-submit``, pass them as ``--driver-java-options``."""


def spark_session(master: str | None = "local[*]", app_name: str = "village-credit-scoring",
                  conf: dict[str, str] | None = None) -> Any:
    """A Spark session whose Python workers use this interpreter (PYSPARK_PYTHON).

    ``master=None`` keeps the master given by ``spark-submit --master``. A local master's
    driver gets :data:`LOCAL_DRIVER_JAVA_OPTIONS` (``conf`` may set its own
    ``spark.driver.extraJavaOptions``).
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    try:
        from pyspark.sql import SparkSession  # lazy: optional extra [spark]
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ScoringError("the Spark engine needs pyspark: pip install 'village-credit[spark]'") from exc
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    builder = (builder.config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.ui.enabled", "false")
               .config("spark.driver.memory", "2g"))
    if master and master.startswith("local"):
        builder = builder.config("spark.driver.extraJavaOptions", LOCAL_DRIVER_JAVA_OPTIONS)
    for k, v in (conf or {}).items():
        builder = builder.config(k, v)
    return builder.getOrCreate()


def task_chunk_rows(total: int, cores: int, tasks_per_core: int, chunk_rows: int | None) -> int:
    """Rows per task: at most ``chunk_rows``, and small enough for ``tasks_per_core`` tasks per core."""
    if tasks_per_core < 1:
        raise ScoringError(f"tasks_per_core must be >= 1, got {tasks_per_core}")
    cap = chunk_rows or DEFAULT_CHUNK_ROWS
    if cap < 1:
        raise ScoringError(f"chunk_rows must be >= 1, got {cap}")
    return max(1, min(cap, total // (max(cores, 1) * tasks_per_core)))  # floor: never fewer tasks


_MODELS: dict[str, PyfuncScorer] = {}


def _executor_scorer(model_dir_name: str, model_subdir: str) -> PyfuncScorer:
    """The pyfunc shipped by ``addFile``, loaded once per Python worker."""
    if model_dir_name not in _MODELS:
        from pyspark import SparkFiles  # lazy: optional extra [spark]

        path = Path(SparkFiles.get(model_dir_name)) / model_subdir
        _MODELS[model_dir_name] = PyfuncScorer(mlflow.pyfunc.load_model(str(path)))
    return _MODELS[model_dir_name]


def _score_ranges(model_dir_name: str, model_subdir: str, input_path: str, output_dir: str,
                  columns: list[str] | None, chunk_rows: int, meta: dict[str, str],
                  dups: dict[str, list[int]]) -> Any:
    """The ``mapInPandas`` function: one task scores a contiguous run of planned chunks.

    The task's chunks are read in one pass (``iter_chunks_from``), so a file with one
    big row group is decoded from the top once per task, not once per chunk.
    """
    def run(plans: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        plan = pd.concat(list(plans), ignore_index=True).sort_values("chunk")
        out_cols = ["chunk", "first_row", "rows", "scored", "quarantined", "problems", "seconds"]
        if plan.empty:
            return
        scorer = _executor_scorer(model_dir_name, model_subdir)
        src, out = Path(input_path), Path(output_dir)
        wanted = {int(k): int(n) for k, n in zip(plan["chunk"], plan["rows"], strict=True)}
        last, rows = max(wanted), []
        t0 = time.perf_counter()
        for k, first, batch in iter_chunks_from(src, int(plan["first_row"].iloc[0]), chunk_rows, columns):
            if k > last:
                break
            if k not in wanted:  # done in an earlier run, inside this task's range
                continue
            if len(batch) != wanted[k]:
                raise ScoringError(f"{src}: chunk {k} has {len(batch)} rows, the plan {wanted[k]}")
            parts = quarantine_duplicates(*score_chunk(scorer, batch, first), batch, first, dups, _as_text,
                                          scorer.input_id_column)
            counts = write_chunk(out, k, first, len(batch), *parts, meta)
            rows.append({**counts, "seconds": time.perf_counter() - t0})
            t0 = time.perf_counter()
        yield pd.DataFrame(rows, columns=out_cols)
    return run


def score_file_spark(
    model_uri: str,
    input_path: str | Path,
    output_dir: str | Path,
    *,
    master: str | None = "local[*]",
    spark: Any = None,
    overwrite: bool = False,
    report: bool = True,
    chunk_rows: int | None = None,
    tasks_per_core: int = 2,
    allow_ungated: bool = False,
    progress: bool = True,
) -> ScoreSummary:
    """Score a file on Spark; the same outputs (and resume) as :func:`village_credit.scoring.score_file`.

    ``chunk_rows``: the most rows per task (default 50,000); the plan has at least
    ``tasks_per_core`` tasks per core of ``spark.sparkContext.defaultParallelism``.
    The chunk size chosen is bound to the output directory like the local engine's
    (a rerun with the same arguments on the same cluster size resumes). One run at a
    time writes ``output_dir`` (the same lock as the local engine). The model comes
    from the one loader (promotion record checked; ``allow_ungated`` scores an ungated
    version anyway and records it); the tasks run the very copy whose digest was checked.
    ``progress=False`` turns off Spark's console progress bar (``--no-progress``) in the
    session this call starts.

    Scoring itself starts a Spark session (``master="local[*]"`` by default; seconds, so
    ``tests/test_scoring_spark.py`` runs it, against ``score_file`` row for row). What is
    checked before any model is loaded or any Spark work starts:

    >>> import tempfile
    >>> from village_credit.scoring import score_file_spark
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     score_file_spark("models:/village-credit@champion", f"{tmp}/households.parquet",
    ...                      f"{tmp}/scores")
    Traceback (most recent call last):
    ...
    village_credit.errors.DataReadError: /...households.parquet: file not found
    """
    check_output(output_dir)  # before reading the input or loading any model
    with OutputLock(output_dir, input_path):
        return _score_file_spark(model_uri, input_path, output_dir, master=master, spark=spark,
                                 overwrite=overwrite, report=report, chunk_rows=chunk_rows,
                                 tasks_per_core=tasks_per_core, allow_ungated=allow_ungated,
                                 progress=progress)


def _score_file_spark(model_uri: str, input_path: str | Path, output_dir: str | Path, *,
                      master: str | None, spark: Any, overwrite: bool, report: bool,
                      chunk_rows: int | None, tasks_per_core: int, allow_ungated: bool,
                      progress: bool = True) -> ScoreSummary:
    started = time.perf_counter()
    input_path, output_dir = Path(input_path), Path(output_dir)
    total = count_rows(input_path)  # DataReadError naming the file, before loading any model
    loaded = load_model(model_uri, allow_ungated=allow_ungated)
    model, ref = loaded.pyfunc, ModelRef.from_loaded(loaded)

    own_session = spark is None
    spark = spark or spark_session(master, conf=None if progress else {"spark.ui.showConsoleProgress": "false"})
    try:
        sc = spark.sparkContext
        cores = int(sc.defaultParallelism)
        rows_per_task = task_chunk_rows(total, cores, tasks_per_core, chunk_rows)
        with tempfile.TemporaryDirectory(prefix="vc-model-") as tmp:
            # a fresh folder name per run: SparkContext.addFile refuses a name it already shipped
            model_dir = Path(tmp) / f"vc-model-{os.getpid()}-{time.time_ns()}"
            model_dir.mkdir()
            local_model = model_dir / "model"  # the checked copy, shipped to the executors
            shutil.copytree(loaded.local_dir, local_model)
            scorer = PyfuncScorer(model)
            scorer.check_columns(input_columns(input_path), str(input_path))
            identity = _run_identity(input_path, rows_per_task, ref, "spark")
            _prepare_output(output_dir, identity, overwrite)
            atomic_write_json(asdict(ref), output_dir / "_model.json")
            meta = {**ref.as_metadata(), "village_credit.input": input_path.name}

            plan = plan_chunks(total, rows_per_task)
            done: dict[int, dict[str, int]] = {}
            for k, first, n in plan:
                counts = _read_marker(output_dir / "_chunks" / f"{k:05d}.json", k, first, n)
                if counts is not None:
                    done[k] = counts
            todo = [p for p in plan if p[0] not in done]
            work = []
            if todo:
                sc.addFile(str(model_dir), recursive=True)
                # contiguous runs of chunks, tasks_per_core x cores tasks (parallelize slices in order)
                n_tasks = min(len(todo), cores * tasks_per_core)
                plan_df = spark.createDataFrame(sc.parallelize([(k, f, n) for k, f, n in todo], n_tasks),
                                                "chunk long, first_row long, rows long")
                subdir = str(Path(local_model).resolve().relative_to(model_dir.resolve()))
                fn = _score_ranges(model_dir.name, subdir, str(input_path.resolve()), str(output_dir.resolve()),
                                   read_columns(input_path, scorer), rows_per_task, meta,
                                   duplicate_ids(input_path, scorer.input_id_column))
                work = [r.asDict() for r in plan_df.mapInPandas(fn, COUNTS_DDL).collect()]
    finally:
        if own_session:
            spark.stop()

    summary = ScoreSummary(input=str(input_path), output_dir=str(output_dir), engine="spark", model=asdict(ref))
    by_chunk = {**done, **{int(r["chunk"]): {k: int(v) for k, v in r.items() if k != "seconds"} for r in work}}
    for k, _, _ in plan:
        if k not in by_chunk:
            raise ScoringError(f"{output_dir}: chunk {k} was not scored")
        add_counts(summary, by_chunk[k])
    summary.chunks_resumed = len(done)
    work_rows = sum(int(r["rows"]) for r in work)
    work_seconds = time.perf_counter() - started  # wall time of the whole job (tasks run in parallel)
    finish_summary(summary, output_dir, total, started, work_rows, work_seconds, report)
    return summary


def read_spark_decisions(output_dir: str | Path) -> pd.DataFrame:
    """Decisions written by Spark, in input row order (for comparisons and reports)."""
    return read_decisions(output_dir)


def main(argv: list[str] | None = None) -> None:
    """Entry point for ``spark-submit``: the master comes from ``spark-submit --master``."""
    ap = argparse.ArgumentParser(description="Score a household file on Spark (village-credit).")
    ap.add_argument("--model", required=True, help="MLflow model URI, e.g. models:/village-credit@champion")
    ap.add_argument("--input", required=True, type=Path)
    ap.add_argument("--output", required=True, type=Path)
    ap.add_argument("--chunk-rows", type=int, default=None)
    ap.add_argument("--tasks-per-core", type=int, default=2)
    ap.add_argument("--overwrite", action="store_true")
    ap.add_argument("--allow-ungated", action="store_true",
                    help="score a version without a valid promotion record (recorded in the outputs)")
    a = ap.parse_args(argv)
    try:
        s = score_file_spark(a.model, a.input, a.output, master=None, overwrite=a.overwrite,
                             chunk_rows=a.chunk_rows, tasks_per_core=a.tasks_per_core,
                             allow_ungated=a.allow_ungated)
    except VillageCreditError as exc:  # bad input, ungated model, busy folder: named, no traceback
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc
    print(json.dumps(s.to_dict(), indent=2, default=str))


if __name__ == "__main__":
    main()
