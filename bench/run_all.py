"""Run every benchmark in turn (``make bench``); each prints its ratios against a
baseline measured in the same run. Pass ``--quick`` for reduced sizes.

The numbers recorded in docs/benchmarks.md came from these scripts with their
defaults; the machines are shared and noisy, so compare ratios, not seconds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

QUICK = {
    "bench_generator.py": ["--rows", "200000"],
    "bench_rules.py": ["--rows", "200000", "--sc-rows", "100000", "--repeat", "1"],
    "bench_explain.py": ["--rows", "50000", "--repeat", "1"],
    "bench_scoring.py": ["--rows", "100000", "--rss-rows", "100000,300000", "--spark-rows", "5000"],
    "bench_tuning.py": ["--n", "20000", "--trials", "5"],
    "bench_blend_strategies.py": ["--n", "10000", "--repeat", "1"],
    "bench_policy_lab.py": ["--n", "5000", "--trials", "40", "--repeat", "1"],
    "bench_monitor_noise.py": ["--households", "6000", "--splits", "2"],
    "bench_calibration_by_group.py": ["--n", "6000", "--trials", "0"],
    "bench_cli_help.py": ["--repeat", "3"],
}


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    failed = []
    for script in sorted(HERE.glob("bench_*.py")):
        args = QUICK.get(script.name, []) if quick else []
        print(f"\n=== {script.name} {' '.join(args)}", flush=True)
        if subprocess.run([sys.executable, str(script), *args]).returncode != 0:
            failed.append(script.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
