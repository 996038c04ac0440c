"""Benchmark: do the monitor's alarms mean a change? (issue 30)

    python bench/bench_monitor_noise.py --households 20000 --splits 3

Trains a small decision model (3,000 generated households, 60 trees), registers it in
a throwaway sqlite store, then on the demo's population (``--households``, seed 42):

* splits it at random into two halves ``--splits`` times and monitors one half against
  the other: flagged segments and the overall alert (nothing changed: both should be
  none / green), next to the villages a fixed PSI cut-off of 0.25 alone would call red;
* monitors the generator's second vintage against the first: the township hit by the
  bad harvest (T03 at seed 42) and the non-zero share of ``recent_dpd``.
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
    ap.add_argument("--households", type=int, default=20_000)
    ap.add_argument("--splits", type=int, default=3)
    args = ap.parse_args()

    import os

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow
    import numpy as np

    from village_credit.data.generator import (
        GeneratorConfig,
        drift_townships,
        generate_households,
        generate_vintage,
    )
    from village_credit.models.blend import fit_blend
    from village_credit.registry import configure
    from village_credit.registry.pyfunc_model import log_decision_model
    from village_credit.validation import reference_profile
    from village_credit.validation.kit import load_model_source, monitor

    root = Path(tempfile.mkdtemp(prefix="vc-bench-monitor-"))
    train = generate_households(GeneratorConfig(n_households=3000, seed=11))
    tr, ca = train.iloc[:2000].reset_index(drop=True), train.iloc[2000:].reset_index(drop=True)
    dm = fit_blend(tr, tr["default_12m"], ca, ca["default_12m"], policy="jinxiang_2022",
                   strategy="additive_points",
                   gbm_params={"n_estimators": 60, "num_leaves": 15, "learning_rate": 0.08}, seed=0)
    dm.metadata["reference_profile"] = reference_profile(
        dm.features.transform(tr), score=dm.decide(tr)["points"].to_numpy(float), score_name="score")
    configure(f"sqlite:///{root}/mlflow.db")
    with mlflow.start_run():
        info = log_decision_model(dm.save(root / "dm"), input_example=dm.input_example(5),
                                  registered_model_name="bench-monitor")
    model = load_model_source(f"models:/bench-monitor/{info.registered_model_version}")

    cfg = GeneratorConfig(n_households=args.households, seed=42)
    v1 = generate_households(cfg)
    print(f"{len(v1)} households; drift townships of vintage 2: {drift_townships(cfg, 2)}")
    print("| run | overall alert | flagged segments | villages with score PSI >= 0.25 "
          "(cut-off alone) | median village PSI | seconds |")
    print("|---|---|---|---|---|---|")
    for k in range(args.splits):
        half = np.random.default_rng(100 + k).permutation(len(v1)) < len(v1) // 2
        t = time.perf_counter()
        res = monitor(model, v1[half], v1[~half], None, seed=k)
        vil = res["segments"][res["segments"]["segment"] == "village_code"]
        print(f"| random halves {k} | {res['alert']} | {len(res['flagged_segments'])} | "
              f"{int((vil['score_psi'] >= 0.25).sum())} of {len(vil)} | "
              f"{float(vil['score_psi'].median()):.3f} | {time.perf_counter() - t:.1f} |")
    t = time.perf_counter()
    res = monitor(model, v1, generate_vintage(cfg, 2), None)
    print(f"| vintage 2 vs 1 | {res['alert']} | {len(res['flagged_segments'])} | | | "
          f"{time.perf_counter() - t:.1f} |")
    for line in res["flagged_segments"]:
        if line.startswith("township_code="):
            print("  ", line)
    print("   zero shares:", "; ".join(res["zero_share_alerts"]))


if __name__ == "__main__":
    main()
