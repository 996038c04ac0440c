"""``village-credit score``'s fixed cost (issue 31 item 4): a fresh process on 1,000 rows.

What the CLI pays that ``score_file`` called in-process does not: Python, the imports,
MLflow's store, the model load, the exit. Two measurements, CPU seconds (user + sys) of
fresh interpreters, since wall time on the shared machines is noise:

1. ``--old-src DIR``: the command on another copy of ``src`` (e.g. ``git archive <commit>
   src | tar -x -C /tmp/old``) and on this one, interleaved, medians;
2. the split of this copy's run by phase (the functions the command calls, wrapped in the
   child; the exit is what follows the printed summary).

Needs the store and models of ``bench/bench_scoring.py`` in ``--workdir``::

    PYTHONPATH=$PWD/src .venv/bin/python bench/bench_cli_score.py --workdir /tmp/cli_b1m --old-src /tmp/old/src
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
CLI = "from village_credit.cli import app; app()"

# The child for the split: wraps what `score` calls and prints one line per phase at exit.
SPLIT = r'''
import atexit, importlib, resource, sys, time
marks = []
def mark(name):
    r = resource.getrusage(resource.RUSAGE_SELF)
    marks.append((name, time.perf_counter(), r.ru_utime + r.ru_stime))
mark("start")
import village_credit.cli as cli
mark("import village_credit.cli")
get_command = cli.LazyGroup.get_command
def wrapped(self, ctx, name):
    command = get_command(self, ctx, name)
    if self._listing:
        return command
    mark("import the command module")
    import village_credit.commands.scoring as sc, village_credit.scoring.batch as batch
    mark("import the scorer (pandas, pyarrow)")
    import village_credit.registry.store_process as sp
    def after(mod, fn, label):
        f = getattr(mod, fn, None)
        if f is None:  # another copy of the command: that phase is not split out
            return
        def w(*a, **k):
            try:
                return f(*a, **k)
            finally:
                mark(label)
        setattr(mod, fn, w)
    after(sp.StoreProcess, "configured", "the model's code imported; configure's answer")
    after(batch, "load_scoring_model", "model load (resolve, download, gate, pyfunc, LightGBM)")
    after(batch, "score_file", "the rest of score_file (1,000 rows)")
    return command
cli.LazyGroup.get_command = wrapped
def report():
    mark("summary printed")
    for (_, t0, c0), (name, t1, c1) in zip(marks, marks[1:]):
        print(f"SPLIT\t{name}\t{t1 - t0:.2f}\t{c1 - c0:.2f}", file=sys.stderr, flush=True)
atexit.register(report)
cli.app()
'''


def _args(workdir: Path, inp: Path, out: Path, workers: int) -> list[str]:
    return ["score", "-i", str(inp), "-o", str(out), "-m", "models:/bench_demo@champion",
            "--workers", str(workers), "--no-progress"]


def run(code: str, src: Path, args: list[str], workdir: Path) -> tuple[float, float, str]:
    """(wall s, CPU s, stderr) of ``python -c code args`` with ``src`` first on the path."""
    env = {**os.environ, "PYTHONPATH": str(src), "MLFLOW_TRACKING_URI": f"sqlite:///{workdir}/mlflow.db"}
    shutil.rmtree(args[args.index("-o") + 1], ignore_errors=True)
    k0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    p = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=True)
    wall, k1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, k1.ru_utime + k1.ru_stime - k0.ru_utime - k0.ru_stime, p.stderr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, default=Path("bench_out/scoring"))
    ap.add_argument("--old-src", type=Path, default=None)
    ap.add_argument("--old-workdir", type=Path, default=None,
                    help="the store the old copy scores with (default: --workdir); a model logged "
                         "by a newer copy may not load in an older one")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--workers", type=int, default=1)
    a = ap.parse_args()
    workdir = a.workdir.resolve()
    sys.path.insert(0, str(SRC))
    from village_credit.data.generator import GeneratorConfig, write_synthetic

    inp = workdir / "households_1000.parquet"
    if not inp.exists():
        write_synthetic(GeneratorConfig(n_households=1000, seed=7), inp, chunk_rows=200_000)
    srcs = {"new": SRC, **({"old": a.old_src.resolve()} if a.old_src else {})}
    dirs = {"new": workdir, "old": (a.old_workdir or a.workdir).resolve()}
    res: dict[str, list[tuple[float, float]]] = {k: [] for k in srcs}
    for r in range(a.rounds):
        for name in (list(srcs) if r % 2 else list(srcs)[::-1]):
            d = dirs[name]
            wall, cpu, _ = run(CLI, srcs[name], _args(d, d / inp.name, d / f"cli_{name}", a.workers), d)
            res[name].append((wall, cpu))
            print(f"round {r} {name}: wall {wall:.2f} s, CPU {cpu:.2f} s, load {os.getloadavg()[0]:.1f}", flush=True)
    for name, v in res.items():
        print(f"{name}: median wall {statistics.median(w for w, _ in v):.2f} s, "
              f"CPU {statistics.median(c for _, c in v):.2f} s")
    wall, cpu, err = run(SPLIT, SRC, _args(workdir, inp, workdir / "cli_split", a.workers), workdir)
    print(f"\nsplit of one run of this copy (wall {wall:.2f} s, CPU {cpu:.2f} s, load {os.getloadavg()[0]:.1f}):")
    phases = [line.split("\t")[1:] for line in err.splitlines() if line.startswith("SPLIT\t")]
    for name, w, c in phases:
        print(f"| {name} | {w} | {c} |")
    print(f"| python start + exit (the rest) | {wall - sum(float(w) for _, w, _ in phases):.2f} | "
          f"{cpu - sum(float(c) for _, _, c in phases):.2f} |")


if __name__ == "__main__":
    main()
