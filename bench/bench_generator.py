"""Benchmark: synthetic households per minute written to Parquet, and peak memory.

Usage: ``python bench/bench_generator.py [--rows 1000000] [--chunk-rows 200000]``.
Prints households/minute for the chunked Parquet writer (36 months of history),
peak RSS, and two baselines measured in the same run: generating 100k households
(scaling check) and writing an equally wide random table of 100k rows with pyarrow
(pure I/O cost), so the ratio is comparable across machines.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from village_credit.data.generator import GeneratorConfig, write_synthetic
from village_credit.data.io import PARQUET_COMPRESSION, arrow_schema


def _peak_rss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20


def _random_table(rows: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    schema = arrow_schema()
    cols = []
    for f in schema:
        if pa.types.is_floating(f.type):
            cols.append(pa.array(np.round(rng.exponential(500, rows), 0)))
        elif pa.types.is_integer(f.type):
            cols.append(pa.array(rng.integers(0, 2, rows)))
        elif pa.types.is_boolean(f.type):
            cols.append(pa.array(rng.random(rows) < 0.5))
        elif pa.types.is_date(f.type):
            cols.append(pa.array(rng.integers(19000, 20000, rows).astype(np.int32), pa.date32()))
        else:
            cols.append(pa.array(np.char.add("X", rng.integers(0, 1000, rows).astype(str))))
    return pa.Table.from_arrays(cols, schema=schema)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--chunk-rows", type=int, default=200_000)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "households.parquet"
        t = time.perf_counter()
        write_synthetic(GeneratorConfig(n_households=100_000, seed=7), Path(tmp) / "base.parquet",
                        chunk_rows=args.chunk_rows)
        base_s = time.perf_counter() - t
        rand = _random_table(100_000)
        t = time.perf_counter()
        pq.write_table(rand, Path(tmp) / "rand.parquet", compression=PARQUET_COMPRESSION)
        io_s = time.perf_counter() - t
        del rand
        t = time.perf_counter()
        write_synthetic(GeneratorConfig(n_households=args.rows, seed=42), out,
                        chunk_rows=args.chunk_rows)
        big_s = time.perf_counter() - t
        size_mb = os.path.getsize(out) / 2**20
    per_min = args.rows / big_s * 60
    print(f"cpus available          : {len(os.sched_getaffinity(0))}")
    print(f"rows                    : {args.rows:,} households x 36 months (204 columns)")
    print(f"chunk_rows              : {args.chunk_rows:,}")
    print(f"wall time               : {big_s:.1f} s")
    print(f"households / minute     : {per_min:,.0f}")
    print(f"parquet size            : {size_mb:.1f} MiB")
    print(f"peak RSS (whole run)    : {_peak_rss_mb():.0f} MiB")
    print(f"baseline 100k generate  : {base_s:.2f} s  (x{args.rows / 100_000:.0f} rows took "
          f"x{big_s / base_s:.1f} time)")
    print(f"baseline 100k random I/O: {io_s:.2f} s  (generation+write / plain write per row = "
          f"{(big_s / args.rows) / (io_s / 100_000):.1f}x)")


if __name__ == "__main__":
    main()
