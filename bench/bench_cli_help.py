"""``village-credit --help`` start-up: the lazy command group against loading every command.

Why: each command module imports its stack at its top (LightGBM, SHAP, MLflow, ...); the
CLI's ``LazyGroup`` (cli.py) imports a module only when its command runs, so ``--help``
must cost about what Python and Typer cost. The baseline, measured in the same run,
imports every command module, which is what ``--help`` would cost without the lazy group.
CPU seconds (user + sys) of fresh interpreters, interleaved: the machines are shared and
wall time on them is noise.

    PYTHONPATH=$PWD/src .venv/bin/python bench/bench_cli_help.py --repeat 9
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys

HELP = "from village_credit.cli import app; app()"
EVERY_COMMAND = ("import importlib\nfrom village_credit.cli import COMMANDS\n"
                 "for m in sorted({v[0].split(':')[0] for v in COMMANDS.values()}):\n"
                 "    importlib.import_module('village_credit.commands.' + m)")


def cpu_seconds(code: str, *args: str) -> float:
    """User + system CPU seconds of ``python -c code args`` in a fresh interpreter."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", code, *args], stdout=subprocess.DEVNULL, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=9)
    repeat = ap.parse_args().repeat
    lazy, eager = [], []
    for _ in range(repeat):
        lazy.append(cpu_seconds(HELP, "--help"))
        eager.append(cpu_seconds(EVERY_COMMAND))
    lz, eg = statistics.median(lazy), statistics.median(eager)
    print(f"village-credit --help (lazy group): median {lz:.3f} s CPU of {repeat}")
    print(f"every command module imported (baseline): median {eg:.3f} s CPU of {repeat}")
    print(f"ratio baseline / lazy: {eg / lz:.1f}x")


if __name__ == "__main__":
    main()
