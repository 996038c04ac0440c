"""Benchmark of batch scoring (issues 8 and 16): every path against the direct call.

    python bench/bench_scoring.py --rows 200000 --skip rss --spark-rows 1000000
    python bench/bench_scoring.py --skip throughput,rss --pd-rows 20000 --spark-rows 1000000

Measures, in one run, on a model trained and registered here (sqlite store in --workdir):

0. ``stages`` (issue 31): for the benchmark's model (``--n-estimators`` trees of 31 leaves)
   and a demo-like one (116 trees of at most 5 leaves), 2-thread ``Booster.predict`` on
   the feature matrix of every row (features precomputed, not timed) vs ``score_file``
   on ``--workers`` processes (default: one per core) and on one, and vs the
   ``village-credit score`` CLI in a fresh process, with ``score_file``'s own stage
   table (``summary.json`` ``stages``: the workers' seconds added up), CPU seconds of
   each path and the load average while they ran. Targets: ``score_file`` >= 0.25x of
   ``predict`` on the demo-like model and >= 0.5x on the 200-tree model; CLI within
   1.3x of ``score_file``::

       python bench/bench_scoring.py --rows 1000000 --skip throughput,pd,rss,spark

1. throughput of the full decision (``score_file``: read chunk, validation + rules +
   GBM + blend + grade/line/rate + reason codes, write Parquet) vs plain
   ``Booster.predict`` on the same feature rows (features precomputed, not timed);
   the decision without reason codes (``decide(top_k=0)``) and ``predict_pd``
   (PD-only path) on the same chunks; ``score_file`` with and without the reader thread;
2. MLflow's own path: ``mlflow.pyfunc.load_model(...).predict`` on the same rows vs
   the direct ``DecisionModel.decide`` call, and (on ``--any-rows``) the earlier
   all-``Any`` signature for comparison;
3. peak RSS (``resource.getrusage``) of ``score_file`` in a fresh subprocess per size;
4. Spark ``local[1]`` vs ``local[2]`` on ``--spark-rows`` rows (one row group), session
   start timed apart, against the local engine on the same file.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))


def _model(workdir: Path, n_estimators: int, num_leaves: int = 31, name: str = "bench") -> str:
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
        client.get_model_version_by_alias(name, "champion")
        return uri
    except Exception:
        pass
    train = generate_households(GeneratorConfig(n_households=20_000, seed=1))
    tr, ca = train.iloc[:14_000], train.iloc[14_000:]
    dm = fit_blend(tr, tr["default_12m"], ca, ca["default_12m"], policy="jinxiang_2022",
                   gbm_params={"n_estimators": n_estimators, "num_leaves": num_leaves}, seed=0)
    dm.save(workdir / f"dm_{name}")
    with mlflow.start_run():
        info = log_decision_model(workdir / f"dm_{name}", input_example=dm.input_example(5),
                                  registered_model_name=name)
    from village_credit.registry import promote  # the scorer refuses an ungated version

    promote(name, str(info.registered_model_version), {}, client=client,
            override_reason="benchmark model: gates are not what is measured",
            override_by="bench_scoring.py", override_until="2099-12-31")
    if name == "bench":
        _log_any_signature(workdir / f"dm_{name}", dm)
    return uri


def _log_any_signature(model_dir: Path, dm) -> None:
    """The earlier design, for comparison: every input column typed ``Any`` in the signature."""
    import mlflow
    from mlflow.models import ModelSignature, infer_signature

    from village_credit.registry.pyfunc_model import lenient_schema, log_decision_model

    example = dm.input_example(5)
    sig = infer_signature(example, dm.decide(example.copy()), params={"top_k": 3})
    sig = ModelSignature(inputs=lenient_schema(sig.inputs), outputs=sig.outputs, params=sig.params)
    with mlflow.start_run():
        log_decision_model(model_dir, input_example=example, registered_model_name="bench_any",
                           signature=sig, lenient_inputs=False)


def _data(workdir: Path, rows: int) -> Path:
    from village_credit.data.generator import GeneratorConfig, write_synthetic

    p = workdir / f"households_{rows}.parquet"
    if not p.exists():
        write_synthetic(GeneratorConfig(n_households=rows, seed=7), p, chunk_rows=200_000)
    return p


def _cpu() -> float:
    """CPU seconds (user + system) of this process and of its children that have ended
    (score_file's worker processes, the CLI's process)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def stages(workdir: Path, rows: int, chunk_rows: int, models: list[str], workers: int) -> dict:
    """``score_file`` (``workers`` processes, and one) and the CLI against 2-thread
    ``Booster.predict``, with the stage table (the workers' stage seconds added up)."""
    import shutil

    from village_credit.data.io import iter_batches
    from village_credit.data.schema import TRUTH_COLUMNS
    from village_credit.scoring import score_file
    from village_credit.scoring.batch import load_scoring_model

    path = _data(workdir, rows)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out: dict = {"rows": rows, "chunk_rows": chunk_rows}
    for name in models:
        uri = f"models:/{name}@champion"
        model, _ = load_scoring_model(uri)
        dm = model.unwrap_python_model().model
        feats = [dm._transform(c.drop(columns=[x for x in TRUTH_COLUMNS if x in c.columns]))
                 .to_numpy(dtype="float64") for c in iter_batches(path, chunk_rows)]
        # each path twice, interleaved, best of two: a burst of load hits them alike
        t = {"predict": float("inf"), "score_file_1": float("inf"), "score_file": float("inf"),
             "cli": float("inf")}
        cpu: dict[str, float] = {}
        summary = None
        load = [os.getloadavg()[0]]
        for _ in range(2):
            t0 = time.perf_counter()
            for X in feats:
                dm.booster.predict(X, num_threads=2)
            t["predict"] = min(t["predict"], time.perf_counter() - t0)
            dest = workdir / f"out_stages_{name}"
            for key, n in (("score_file_1", 1), ("score_file", workers)):
                shutil.rmtree(dest, ignore_errors=True)
                c0, t0 = _cpu(), time.perf_counter()
                s = score_file(uri, path, dest, chunk_rows=chunk_rows, progress=False,
                               workers=n)  # loads the model itself
                wall = time.perf_counter() - t0
                if wall < t[key]:
                    t[key], cpu[key] = wall, _cpu() - c0
                    if key == "score_file":
                        summary = s
            shutil.rmtree(dest, ignore_errors=True)
            c0, t0 = _cpu(), time.perf_counter()
            subprocess.run([sys.executable, "-c", "from village_credit.cli import app; app()", "score",
                            "--input", str(path), "--output", str(dest), "--model", uri,
                            "--chunk-rows", str(chunk_rows), "--workers", str(workers), "--no-progress"],
                           env=env, check=True, capture_output=True)
            if time.perf_counter() - t0 < t["cli"]:
                t["cli"], cpu["cli"] = time.perf_counter() - t0, _cpu() - c0
            load.append(os.getloadavg()[0])
        del feats
        out[name] = {
            "trees": dm.booster.num_trees(), "max_leaves": int(dm.booster.params.get("num_leaves", 0) or 0),
            "workers": summary.workers, "load_avg_1min": [round(x, 1) for x in load],
            "seconds": {k: round(v, 2) for k, v in t.items()},
            "cpu_seconds": {k: round(v, 2) for k, v in cpu.items()},
            "ratio_score_file_vs_predict_2t": round(t["predict"] / t["score_file"], 3),
            "ratio_score_file_1_vs_predict_2t": round(t["predict"] / t["score_file_1"], 3),
            "ratio_cli_vs_score_file": round(t["cli"] / t["score_file"], 3),
            "stages": summary.stages, "reconciled": summary.reconciled,
        }
        print(_stage_table(name, out[name]), flush=True)
    return out


def _stage_table(name: str, r: dict) -> str:
    lines = [f"| {name}: stage | seconds |", "| --- | --- |"]
    lines += [f"| {k} | {v:.2f} |" for k, v in r["stages"].items()]
    sec, cpu = r["seconds"], r["cpu_seconds"]
    lines += [f"| workers | {r['workers']} |",
              f"| predict (2 threads) / score_file, 1 worker / score_file / CLI | {sec['predict']:.2f} / "
              f"{sec['score_file_1']:.2f} / {sec['score_file']:.2f} / {sec['cli']:.2f} |",
              f"| CPU s: score_file, 1 worker / score_file / CLI | {cpu['score_file_1']:.2f} / "
              f"{cpu['score_file']:.2f} / {cpu['cli']:.2f} |",
              f"| score_file vs predict (1 worker; workers); CLI vs score_file | "
              f"{r['ratio_score_file_1_vs_predict_2t']}x; {r['ratio_score_file_vs_predict_2t']}x; "
              f"{r['ratio_cli_vs_score_file']}x |",
              f"| load average (1 min) during the runs | {' / '.join(map(str, r['load_avg_1min']))} |"]
    return "\n".join(lines)


def _best(fn, repeat: int = 2) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def throughput(workdir: Path, rows: int, chunk_rows: int, any_rows: int) -> dict:
    """Every single-machine path on the same rows; ratios against baselines of this run."""
    import shutil

    import mlflow

    from village_credit.data.io import iter_batches
    from village_credit.data.schema import TRUTH_COLUMNS
    from village_credit.scoring import score_file
    from village_credit.scoring.batch import load_scoring_model

    path = _data(workdir, rows)
    model, _ = load_scoring_model("models:/bench@champion")
    dm = model.unwrap_python_model().model
    chunks = [c.drop(columns=[x for x in TRUTH_COLUMNS if x in c.columns]) for c in iter_batches(path, chunk_rows)]
    feats = [dm._transform(c) for c in chunks]  # same feature rows the model sees (all rows valid here)
    t = {"predict": 0.0, "decide": 0.0, "decide_no_reasons": 0.0, "predict_pd": 0.0, "pyfunc": 0.0}
    for chunk, X in zip(chunks, feats):  # round-robin per chunk: a burst of load hits all paths alike
        t["predict"] += _best(lambda X=X: dm.booster.predict(X))
        t["decide"] += _best(lambda c=chunk: dm.decide(c, top_k=3))
        t["decide_no_reasons"] += _best(lambda c=chunk: dm.decide(c, top_k=0))
        t["predict_pd"] += _best(lambda c=chunk: dm.predict_pd(c))
        t["pyfunc"] += _best(lambda c=chunk: model.predict(c))
    sf = {}
    for read_ahead in (0, 2, 0, 2):
        out = workdir / "out_throughput"
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        s = score_file("models:/bench@champion", path, out, chunk_rows=chunk_rows, progress=False, model=model,
                       read_ahead=read_ahead)
        sf[read_ahead] = min(sf.get(read_ahead, float("inf")), time.perf_counter() - t0)
    full = sf[2]
    # the earlier all-Any signature, on the first any_rows rows (it is ~10x slower)
    any_model = mlflow.pyfunc.load_model("models:/bench_any/1")
    head = chunks[0].head(any_rows)
    t_any = _best(lambda: any_model.predict(head), 1)
    t_dir_head = _best(lambda: dm.decide(head, top_k=3), 1)
    r = {
        "rows": rows, "chunk_rows": chunk_rows, "booster_trees": dm.booster.num_trees(),
        "booster_predict_rows_per_s": round(rows / t["predict"]),
        "decide_top3_rows_per_s": round(rows / t["decide"]),
        "decide_no_reasons_rows_per_s": round(rows / t["decide_no_reasons"]),
        "predict_pd_rows_per_s": round(rows / t["predict_pd"]),
        "pyfunc_predict_rows_per_s": round(rows / t["pyfunc"]),
        "score_file_rows_per_s": round(rows / full), "score_file_no_reader_rows_per_s": round(rows / sf[0]),
        "ratio_pyfunc_vs_direct": round(t["decide"] / t["pyfunc"], 3),
        "ratio_score_file_vs_predict": round(t["predict"] / full, 3),
        "ratio_score_file_no_reader_vs_predict": round(t["predict"] / sf[0], 3),
        "ratio_score_file_vs_direct": round(t["decide"] / full, 3),
        "ratio_decide_vs_predict": round(t["predict"] / t["decide"], 3),
        "ratio_decide_no_reasons_vs_predict": round(t["predict"] / t["decide_no_reasons"], 3),
        "ratio_predict_pd_vs_predict": round(t["predict"] / t["predict_pd"], 3),
        "any_signature_rows": len(head), "any_signature_pyfunc_rows_per_s": round(len(head) / t_any),
        "ratio_any_signature_pyfunc_vs_direct": round(t_dir_head / t_any, 3),
        "reconciled": s.reconciled, "scored": s.scored, "quarantined": s.quarantined,
    }
    return r


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


def pd_only(rows: int, n_estimators: int) -> dict:
    """``predict_pd`` of a non-additive (``stacking``) model: PD-only raw-score path vs the
    full TreeSHAP path it used before (``_score(contributions=True)``), same rows."""
    import numpy as np

    from village_credit.data.generator import GeneratorConfig, generate_households
    from village_credit.data.schema import TRUTH_COLUMNS
    from village_credit.models.blend import fit_blend
    from village_credit.models.scaling import sigmoid

    train = generate_households(GeneratorConfig(n_households=6_000, seed=1))
    tr, ca = train.iloc[:4_000], train.iloc[4_000:]
    dm = fit_blend(tr, tr["default_12m"], ca, ca["default_12m"], policy="jinxiang_2022", strategy="stacking",
                   gbm_params={"n_estimators": n_estimators, "num_leaves": 31}, seed=0)
    x = generate_households(GeneratorConfig(n_households=rows, seed=5))
    x = x.drop(columns=[c for c in TRUTH_COLUMNS if c in x.columns])
    _ = dm.explainer  # built outside the timing (as in a long-running scorer)
    t_new = _best(lambda: dm.predict_pd(x))
    t_old = _best(lambda: sigmoid(dm._score(x, contributions=True)[0].logit_contrib.sum(axis=1)))
    same = bool(np.allclose(dm.predict_pd(x).to_numpy(),
                            sigmoid(dm._score(x, contributions=True)[0].logit_contrib.sum(axis=1)), rtol=1e-12))
    return {"rows": rows, "strategy": "stacking", "trees": dm.booster.num_trees(),
            "pd_only_rows_per_s": round(rows / t_new), "treeshap_pd_rows_per_s": round(rows / t_old),
            "speedup": round(t_old / t_new, 1), "same_pd": same}


def spark_scaling(workdir: Path, rows: int, chunk_rows: int) -> dict:
    """Spark local[1] vs local[2] on one one-row-group file, session start timed apart,
    against the local engine (same chunk size, so the outputs must be identical)."""
    import shutil

    import pyarrow.parquet as pq

    from village_credit.scoring import score_file
    from village_credit.scoring.batch import load_scoring_model
    from village_credit.scoring.spark import score_file_spark, spark_session, task_chunk_rows

    path = workdir / f"spark_{rows}_one_group.parquet"
    if not path.exists():
        pq.write_table(pq.read_table(_data(workdir, rows)), path, row_group_size=rows)
    out: dict = {"rows": rows, "row_groups": pq.ParquetFile(path).metadata.num_row_groups}
    for master in ("local[1]", "local[2]"):
        t0 = time.perf_counter()
        spark = spark_session(master)
        spark.range(1).count()  # JVM up, first job done
        start = time.perf_counter() - t0
        try:
            dest = workdir / f"out_spark_{master[6]}"
            shutil.rmtree(dest, ignore_errors=True)
            t0 = time.perf_counter()
            s = score_file_spark("models:/bench@champion", path, dest, spark=spark, report=False,
                                 chunk_rows=chunk_rows)
            job = time.perf_counter() - t0
        finally:
            spark.stop()
        tag = master[6]
        out[f"local{tag}_session_start_s"] = round(start, 1)
        out[f"local{tag}_job_s"] = round(job, 1)
        out[f"local{tag}_rows_per_s"] = round(rows / job)
        out[f"local{tag}_chunks"] = s.chunks
        out[f"local{tag}_tasks"] = min(s.chunks, int(tag) * 2)  # tasks_per_core (2) x cores
        out[f"local{tag}_session_share_of_wall"] = round(start / (start + job), 3)
        out[f"local{tag}_reconciled"] = s.reconciled
    # the local engine with the chunk size local[2] used: outputs must match part for part
    model, _ = load_scoring_model("models:/bench@champion")
    dest = workdir / "out_spark_local_engine"
    shutil.rmtree(dest, ignore_errors=True)
    same_chunks = task_chunk_rows(rows, 2, 2, chunk_rows)
    t0 = time.perf_counter()
    score_file("models:/bench@champion", path, dest, chunk_rows=same_chunks, progress=False, model=model,
               report=False)
    local_s = time.perf_counter() - t0
    identical = all(
        pq.read_table(p).equals(pq.read_table(workdir / "out_spark_2" / sub / p.name))
        for sub in ("decisions", "quarantine", "quarantine_rows") for p in sorted((dest / sub).glob("*.parquet")))
    out.update({"local_engine_rows_per_s": round(rows / local_s), "identical_to_local_engine": identical,
                "speedup_2_over_1": round(out["local1_job_s"] / out["local2_job_s"], 2),
                "ratio_local2_vs_local_engine": round(local_s / out["local2_job_s"], 3)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--rss-rows", default="1000000,5000000")
    ap.add_argument("--spark-rows", type=int, default=200_000)
    ap.add_argument("--any-rows", type=int, default=10_000)
    ap.add_argument("--pd-rows", type=int, default=20_000)
    ap.add_argument("--chunk-rows", type=int, default=50_000)
    ap.add_argument("--n-estimators", type=int, default=200)
    ap.add_argument("--workers", type=int, default=0, help="score_file's worker processes (0: one per core)")
    ap.add_argument("--workdir", type=Path, default=Path("bench_out/scoring"))
    ap.add_argument("--skip", default="", help="comma list of: stages,throughput,pd,rss,spark")
    a = ap.parse_args()
    if a.workers < 1:
        from village_credit.scoring.batch import default_workers

        a.workers = default_workers()
    a.workdir.mkdir(parents=True, exist_ok=True)
    a.workdir = a.workdir.resolve()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    skip = set(filter(None, a.skip.split(",")))
    result: dict = {"model": {"tracking_uri": _model(a.workdir, a.n_estimators), "n_estimators": a.n_estimators},
                    "cpu_count": os.cpu_count(), "load_avg_start": os.getloadavg()}
    if "stages" not in skip:
        _model(a.workdir, 116, num_leaves=5, name="bench_demo")  # demo-like: 116 trees of <= 5 leaves
        result["stages"] = stages(a.workdir, a.rows, a.chunk_rows, ["bench_demo", "bench"], a.workers)
        print(json.dumps(result["stages"]), flush=True)
    if "throughput" not in skip:
        result["throughput"] = throughput(a.workdir, a.rows, a.chunk_rows, a.any_rows)
        print(json.dumps(result["throughput"]), flush=True)
    if "pd" not in skip:
        result["pd_only"] = pd_only(a.pd_rows, a.n_estimators)
        print(json.dumps(result["pd_only"]), flush=True)
    if "rss" not in skip:
        result["peak_rss"] = [peak_rss(a.workdir, int(r), a.chunk_rows) for r in a.rss_rows.split(",")]
        print(json.dumps(result["peak_rss"]), flush=True)
    if "spark" not in skip:
        result["spark"] = spark_scaling(a.workdir, a.spark_rows, a.chunk_rows)
        print(json.dumps(result["spark"]), flush=True)
    result["load_avg_end"] = os.getloadavg()
    print(json.dumps(result, indent=2))
    (a.workdir / "bench_scoring.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
