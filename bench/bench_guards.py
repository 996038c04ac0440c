"""Benchmark: what the scoring guards of issue 20 cost next to reading the input once.

    python bench/bench_guards.py --rows 200000 --repeat 3

On one generated household file (Parquet, the full 200-column table) measures, best
of ``--repeat`` rounds (round-robin, so load bursts hit every step alike):

* baseline: streaming the whole file through ``data.io.iter_batches`` (50k-row
  chunks), i.e. the reading a ``score`` run does anyway -- a lower bound of scoring;
* ``input_digest`` (SHA-256 of the bytes: the resume key);
* ``duplicate_ids`` (two passes over the id column: duplicates across chunks);

and prints each as seconds and as a ratio to the baseline.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()

    from village_credit.data.generator import GeneratorConfig, write_synthetic
    from village_credit.data.io import iter_batches
    from village_credit.scoring.guards import duplicate_ids, input_digest

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_guards_"))
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"households_{args.rows}.parquet"
    if not path.exists():
        write_synthetic(GeneratorConfig(n_households=args.rows, seed=7), path, chunk_rows=100_000)

    def read_all() -> None:
        for _ in iter_batches(path, batch_rows=50_000):
            pass

    steps = {"read every chunk (baseline)": read_all,
             "input_digest (SHA-256)": lambda: input_digest(path),
             "duplicate_ids (id column, 2 passes)": lambda: duplicate_ids(path)}
    best = dict.fromkeys(steps, float("inf"))
    for _ in range(args.repeat):
        for name, fn in steps.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    base = best["read every chunk (baseline)"]
    size = path.stat().st_size / 1e6
    print(f"{args.rows:,} rows, {size:,.0f} MB Parquet, best of {args.repeat}\n")
    print("| step | seconds | vs reading the file |")
    print("| --- | --- | --- |")
    for name, s in best.items():
        print(f"| {name} | {s:.2f} | {s / base:.2f}x |")


if __name__ == "__main__":
    main()
