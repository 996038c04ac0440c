"""``village-credit score``'s timeline (issue 31 item 4): when each step of one fresh CLI run
starts and ends, in every process (the command, its workers), wall seconds since the run
was launched and the process's CPU seconds then.

The command's functions are wrapped in the child (as ``bench_cli_score.py`` wraps them), each
mark appended to a log; the store process is not instrumented (its answer is when the
command's ``_receive`` returns). Printed sorted by time; with ``--old-src`` (and ``--rounds``), runs of both copies interleaved,
one summary row each::

    PYTHONPATH=$PWD/src .venv/bin/python bench/bench_cli_timeline.py --src src \\
        --input /tmp/b1m/households_1000000.parquet --tracking-uri sqlite:////tmp/b1m/mlflow.db \\
        --model models:/bench_demo@champion --log /tmp/tl.log [--old-src /tmp/old/src --rounds 4]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r'''
import atexit, builtins, os, resource, sys, time
T0, LOG = float(os.environ["TL_T0"]), os.environ["TL_LOG"]
def mark(name):
    r = resource.getrusage(resource.RUSAGE_SELF)
    with open(LOG, "a") as f:
        f.write(f"{time.time() - T0:7.3f}\t{r.ru_utime + r.ru_stime:6.2f}\t{os.getpid()}\t{name}\n")
def wrap(owner, fn, label, start=False):
    f = getattr(owner, fn, None)
    if f is None:  # another copy of the code: that step is not marked
        return
    def w(*a, **k):
        if start:
            mark(label + " start")
        try:
            return f(*a, **k)
        finally:
            mark(label + " end")
    setattr(owner, fn, w)
mark("python up")
import village_credit.cli as cli
mark("import village_credit.cli")
get_command = cli.LazyGroup.get_command
def command(self, ctx, name):
    c = get_command(self, ctx, name)
    if not self._listing:
        mark("command module imported")
        import village_credit.registry.loading as lo, village_credit.registry.store_process as sp
        wrap(sp.StoreProcess, "start", "store process forked")
        wrap(sp.StoreProcess, "_receive", "store answer", start=True)
        wrap(lo, "import_model_code", "import_model_code", start=True)
    return c
cli.LazyGroup.get_command = command
_import, hooked = builtins.__import__, []
def hook(name, *a, **k):  # the scorer, once imported in full
    m = _import(name, *a, **k)
    b = sys.modules.get("village_credit.scoring.batch")
    if not hooked and hasattr(b, "_read_marker"):
        hooked.append(b)
        mark("scorer imported")
        for fn, label in (("load_scoring_model", "load_scoring_model"), ("_score_in_workers", "workers phase"),
                          ("finish_summary", "finish_summary"), ("_decide_chunk", "decide chunk")):
            wrap(b, fn, label, start=True)
        wrap(b, "write_chunk", "write_chunk")
        wrap(b._PrePass, "digest", "pre-pass digest taken", start=True)
        wrap(b._PrePass, "duplicate_ids", "pre-pass duplicate ids taken", start=True)
    return m
builtins.__import__ = hook
atexit.register(lambda: mark("exit (atexit)"))
cli.app()
'''


def timeline(src: Path, a: argparse.Namespace, log: Path) -> tuple[list[str], float, float]:
    """One run of the CLI on ``src``: its marks (sorted), wall s, CPU s (all its processes)."""
    log.unlink(missing_ok=True)
    out = Path(tempfile.mkdtemp(prefix="cli-timeline-"))
    env = {**os.environ, "PYTHONPATH": str(src.resolve()), "MLFLOW_TRACKING_URI": a.tracking_uri,
           "TL_LOG": str(log), "TL_T0": repr(time.time())}
    c0 = os.times()
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", CHILD, "score", "-i", str(a.input), "-o", str(out / "o"),
                        "-m", a.model, "--workers", str(a.workers), "--no-progress"],
                       env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    c1 = os.times()
    shutil.rmtree(out, ignore_errors=True)
    if p.returncode:
        sys.exit(p.stderr[-3000:])
    cpu = c1.children_user + c1.children_system - c0.children_user - c0.children_system
    lines = sorted(log.read_text(encoding="utf-8").splitlines(), key=lambda x: float(x.split("\t")[0]))
    return lines, wall, cpu


def _at(lines: list[str], step: str) -> float:
    """Wall s of the last mark named ``step`` (nan if none)."""
    hits = [float(x.split("\t")[0]) for x in lines if x.split("\t")[3] == step]
    return hits[-1] if hits else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", type=Path, required=True, help="the src folder whose CLI runs")
    ap.add_argument("--old-src", type=Path, default=None,
                    help="another src: runs interleaved with --src, one summary row each")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--input", type=Path, required=True)
    ap.add_argument("--tracking-uri", required=True)
    ap.add_argument("--model", default="models:/bench_demo@champion")
    ap.add_argument("--log", type=Path, required=True, help="the marks of the last run")
    ap.add_argument("--workers", type=int, default=0)
    a = ap.parse_args()
    if a.old_src is None and a.rounds == 1:
        load0 = os.getloadavg()[0]
        lines, wall, cpu = timeline(a.src, a, a.log)
        print("\n".join(lines))
        print(f"wall {wall:.2f} s, CPU {cpu:.2f} s, load {load0:.1f} -> {os.getloadavg()[0]:.1f}")
        return
    srcs = {"new": a.src, **({"old": a.old_src} if a.old_src else {})}
    print("| run | model's code imported, s | last store answer, s | model loaded, s | workers forked, s "
          "| loaded -> forked, s | last chunk done, s | whole run wall s (CPU s) | load |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in range(a.rounds):
        for name in (list(srcs) if r % 2 else list(srcs)[::-1]):
            load0 = os.getloadavg()[0]
            lines, wall, cpu = timeline(srcs[name], a, a.log)
            loaded, forked = _at(lines, "load_scoring_model end"), _at(lines, "workers phase start")
            print(f"| {name} {r + 1} | {_at(lines, 'import_model_code end'):.2f} | {_at(lines, 'store answer end'):.2f} "
                  f"| {loaded:.2f} | {forked:.2f} | {forked - loaded:.2f} | {_at(lines, 'workers phase end'):.2f} "
                  f"| {wall:.2f} ({cpu:.2f}) | {load0:.1f} -> {os.getloadavg()[0]:.1f} |", flush=True)


if __name__ == "__main__":
    main()
