"""Benchmark of batch scoring (issue 8).

    python bench/bench_scoring.py --rows 1000000 --rss-rows 1000000,5000000 --spark-rows 20000

Measures, in one run, on a model trained and registered here (sqlite store in --workdir):

1. throughput of the full decision (``score_file``: read chunk, validation + rules +
   GBM + blend + grade/line/rate + reason codes, write Parquet) vs plain
   ``Booster.predict`` on the same feature rows (features precomputed, not timed);
   and the decision without reason codes (``decide(top_k=0)``) on the same chunks;
2. peak RSS (``resource.getrusage``) of ``score_file`` in a fresh subprocess per size;
3. Spark ``local[1]`` vs ``local[2]`` wall time on ``--spark-rows`` rows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))


def _model(workdir: Path, n_estimators: int) -> str:
    import mlflow
    from mlflow import MlflowClient

    from village_credit.data.generator import GeneratorConfig, generate_households
    from village_credit.models.blend import fit_blend
    from village_credit.registry import configure
    from village_credit.registry.pyfunc_model import log_decision_model

    uri = f"sqlite:///{workdir.as_posix()}/mlflow.db"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    configure(uri)
    client = MlflowClient(uri, uri)
    try:
        client.get_model_version_by_alias("bench", "champion")
        return uri
    except Exception:
        pass
    train = generate_households(GeneratorConfig(n_households=20_000, seed=1))
    tr, ca = train.iloc[:14_000], train.iloc[14_000:]
    dm = fit_blend(tr, tr["default_12m"], ca, ca["default_12m"], policy="jinxiang_2022",
                   gbm_params={"n_estimators": n_estimators, "num_leaves": 31}, seed=0)
    dm.save(workdir / "dm")
    with mlflow.start_run():
        info = log_decision_model(workdir / "dm", input_example=dm.input_example(5), registered_model_name="bench")
    from village_credit.registry import promote  # the scorer refuses an ungated version

    promote("bench", str(info.registered_model_version), {}, client=client,
            override_reason="benchmark model: gates are not what is measured")
    return uri


def _data(workdir: Path, rows: int) -> Path:
    from village_credit.data.generator import GeneratorConfig, write_synthetic

    p = workdir / f"households_{rows}.parquet"
    if not p.exists():
        write_synthetic(GeneratorConfig(n_households=rows, seed=7), p, chunk_rows=200_000)
    return p


def throughput(workdir: Path, rows: int, chunk_rows: int) -> dict:
    import shutil

    from village_credit.data.io import iter_batches
    from village_credit.data.schema import TRUTH_COLUMNS
    from village_credit.scoring import load_scoring_model, score_file

    path = _data(workdir, rows)
    out = workdir / "out_throughput"
    shutil.rmtree(out, ignore_errors=True)
    model, _ = load_scoring_model("models:/bench@champion")
    t = time.perf_counter()
    s = score_file("models:/bench@champion", path, out, chunk_rows=chunk_rows, progress=False, model=model)
    full = time.perf_counter() - t
    dm = model.unwrap_python_model().model
    t_pred = t_noreason = t_reason = 0.0
    for chunk in iter_batches(path, chunk_rows):
        chunk = chunk.drop(columns=[c for c in TRUTH_COLUMNS if c in chunk.columns])
        X = dm._transform(chunk)  # same feature rows the model sees (all rows valid here)
        t0 = time.perf_counter()
        dm.booster.predict(X)
        t_pred += time.perf_counter() - t0
        t0 = time.perf_counter()
        dm.decide(chunk, top_k=0)
        t_noreason += time.perf_counter() - t0
        t0 = time.perf_counter()
        dm.decide(chunk, top_k=3)
        t_reason += time.perf_counter() - t0
    return {"rows": rows, "chunk_rows": chunk_rows, "score_file_s": round(full, 2),
            "score_file_rows_per_s": round(rows / full), "summary_rows_per_s": s.rows_per_second,
            "decide_top3_rows_per_s": round(rows / t_reason), "decide_no_reasons_rows_per_s": round(rows / t_noreason),
            "booster_predict_rows_per_s": round(rows / t_pred),
            "ratio_score_file_vs_predict": round(t_pred / full, 4),
            "ratio_decide_vs_predict": round(t_pred / t_reason, 4),
            "ratio_decide_no_reasons_vs_predict": round(t_pred / t_noreason, 4),
            "reconciled": s.reconciled, "scored": s.scored, "quarantined": s.quarantined,
            "booster_trees": dm.booster.num_trees()}


_RSS_CHILD = """
import json, resource, sys, time
from village_credit.scoring import score_file
t = time.perf_counter()
s = score_file("models:/bench@champion", sys.argv[1], sys.argv[2], chunk_rows=int(sys.argv[3]), progress=False)
print(json.dumps({"rows": s.rows_read, "seconds": round(time.perf_counter() - t, 1), "reconciled": s.reconciled,
                  "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
"""


def peak_rss(workdir: Path, rows: int, chunk_rows: int) -> dict:
    import shutil

    path = _data(workdir, rows)
    out = workdir / f"out_rss_{rows}"
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    res = subprocess.run([sys.executable, "-c", _RSS_CHILD, str(path), str(out), str(chunk_rows)],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def spark_scaling(workdir: Path, rows: int) -> dict:
    import shutil

    from village_credit.scoring.spark import score_file_spark, spark_session

    import pyarrow.parquet as pq

    # 8 row groups so that the scan has 8 non-empty partitions to spread over cores
    path = workdir / f"spark_{rows}.parquet"
    if not path.exists():
        pq.write_table(pq.read_table(_data(workdir, rows)), path, row_group_size=max(rows // 8, 1))
    out: dict = {"rows": rows}
    # warm-up (JVM, model download, OS caches) so that neither timed run pays it
    spark = spark_session("local[2]")
    try:
        score_file_spark("models:/bench@champion", path, workdir / "out_spark_warm", spark=spark, report=False,
                         overwrite=True, max_partition_bytes=max(path.stat().st_size // 8, 1 << 16))
    finally:
        spark.stop()
    for master in ("local[1]", "local[2]"):
        spark = spark_session(master)
        try:
            dest = workdir / f"out_spark_{master[6]}"
            shutil.rmtree(dest, ignore_errors=True)
            t = time.perf_counter()
            s = score_file_spark("models:/bench@champion", path, dest, spark=spark, report=False,
                                 max_partition_bytes=max(path.stat().st_size // 8, 1 << 16))
            out[f"{master}_rows_per_s"] = round(rows / (time.perf_counter() - t))
            out[master] = round(time.perf_counter() - t, 1)
            out[f"{master}_reconciled"] = s.reconciled
        finally:
            spark.stop()
    out["speedup_2_over_1"] = round(out["local[1]"] / out["local[2]"], 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rss-rows", default="1000000,5000000")
    ap.add_argument("--spark-rows", type=int, default=20_000)
    ap.add_argument("--chunk-rows", type=int, default=50_000)
    ap.add_argument("--n-estimators", type=int, default=200)
    ap.add_argument("--workdir", type=Path, default=Path("bench_out/scoring"))
    ap.add_argument("--skip", default="", help="comma list of: throughput,rss,spark")
    a = ap.parse_args()
    a.workdir.mkdir(parents=True, exist_ok=True)
    a.workdir = a.workdir.resolve()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    skip = set(filter(None, a.skip.split(",")))
    result: dict = {"model": {"tracking_uri": _model(a.workdir, a.n_estimators), "n_estimators": a.n_estimators},
                    "cpu_count": os.cpu_count(), "load_avg_start": os.getloadavg()}
    if "throughput" not in skip:
        result["throughput"] = throughput(a.workdir, a.rows, a.chunk_rows)
        print(json.dumps(result["throughput"]), flush=True)
    if "rss" not in skip:
        result["peak_rss"] = [peak_rss(a.workdir, int(r), a.chunk_rows) for r in a.rss_rows.split(",")]
        print(json.dumps(result["peak_rss"]), flush=True)
    if "spark" not in skip:
        result["spark"] = spark_scaling(a.workdir, a.spark_rows)
    result["load_avg_end"] = os.getloadavg()
    print(json.dumps(result, indent=2))
    (a.workdir / "bench_scoring.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
