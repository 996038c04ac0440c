"""Benchmark: the four blend strategies on one population, accuracy vs explanations.

One run, one generated population (vintage 1 + vintage 2 of the same households),
one village-grouped split (train / calibration / hold-out, ``split_by_village``),
one policy and the SAME LightGBM parameters for every strategy (``additive_points``
additionally caps tree depth and forces one feature per tree itself). Each of
``stacking``, ``boost_from_rules``, ``additive_points`` and ``gbm_only`` is trained

* (a) ``observed``: on households with ``outcome_observed`` only (what a bank sees
  and what the main job does by default, ``split.train_outcomes: observed``), and
* (b) ``all``: on every household's outcome (only a generator can give this),
* (c) control ``random (n of observed)``: as many rows as (a), drawn at random from
  all outcomes, so that the cost of (a) splits into selection bias (a vs c) and
  fewer rows (c vs b); not timed unless named in ``--time-modes``,

and evaluated on the WHOLE hold-out (every household in the hold-out villages,
observed or not: the through-the-door population a new model will score).

Printed per strategy (markdown tables):

* hold-out AUC with DeLong 95 % CI, gap to the oracle AUC (AUC of ``true_pd``) and
  DeLong p-value against ``additive_points`` trained on the same outcomes;
  ECE (10 quantile bins), Brier, KS; out-of-time AUC on vintage 2 of the hold-out
  villages (new year AND villages the model never saw);
* speed, single-threaded, best of ``--repeat`` rounds (round-robin, so load bursts
  from other users hit every function of a model alike): plain ``booster.predict(raw_score)``
  on the prepared feature matrix; the model part of the explanation
  (``model.explainer.contributions`` on the same matrix: table look-up when the
  trees are additive, else LightGBM TreeSHAP); end-to-end ``predict_pd``,
  ``contributions`` and ``reason_codes`` on the hold-out household table (these
  three include schema validation, the rules engine and the feature transform), with
  their ratio to ``predict_pd``;
* an end-to-end PD path without explanations (schema validation + rules engine +
  feature transform + ``booster.predict``), to show how much of ``predict_pd`` is the
  contributions it computes on the way (``DecisionModel._score``);
* exactness: max |sum of contributions - points| where ``points`` is recomputed
  independently from ``booster.predict(raw_score=True)`` and the rule points
  (``k0 + k_rule * rule_points + k_gbm * trees`` scaled to points), and against
  ``decide()["points"]``.

Reference rows: the oracle (``true_pd``), the rule points alone, and a "feature
ceiling": a LightGBM *regression of ``true_pd``* on the household features plus the
rule items, fitted on the training villages (all households): its hold-out AUC
estimates the best AUC any model of these columns can reach, so
``oracle - ceiling`` is the part of the oracle no feature observes (``z_hidden``, the
village and township random effects, the unseen part of ``z``; see the generator
docstring) and ``ceiling - model`` what a better fit could still gain.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_blend_strategies.py --n 40000 --seed 42
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy / lightgbm load OpenMP

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import lightgbm as lgb  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from village_credit.data import GeneratorConfig, generate_households, generate_vintage, validate_households  # noqa: E402
from village_credit.models.blend import STRATEGIES, fit_blend  # noqa: E402
from village_credit.models.features import HouseholdFeatures  # noqa: E402
from village_credit.models.splits import split_by_village  # noqa: E402
from village_credit.rules import load_policy, score_rules  # noqa: E402
from village_credit.validation import (auc_delong, brier, expected_calibration_error,  # noqa: E402
                                       ks_statistic)
from village_credit.validation.discrimination import delong_test  # noqa: E402

REFERENCE_STRATEGY = "additive_points"


def best_rates(fns: dict[str, Callable[[], object]], n_rows: int, repeat: int,
               min_trial_s: float = 0.25) -> dict[str, float]:
    """Rows per second per function: best of ``repeat`` rounds.

    The functions are timed round-robin (one trial of each per round), so a burst of
    load from other users hits all of them alike and the ratios stay fair. A trial
    repeats a fast function until it lasts about ``min_trial_s``.
    """
    reps: dict[str, int] = {}
    for name, fn in fns.items():
        t = time.perf_counter()
        fn()  # warm-up (also builds cached explainers)
        reps[name] = max(1, int(np.ceil(min_trial_s / max(time.perf_counter() - t, 1e-6))))
    best = {name: float("inf") for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t = time.perf_counter()
            for _ in range(reps[name]):
                fn()
            best[name] = min(best[name], (time.perf_counter() - t) / reps[name])
    return {name: n_rows / sec for name, sec in best.items()}


def feature_ceiling(train: pd.DataFrame, hold: pd.DataFrame, policy: Any, seed: int) -> np.ndarray:
    """E[true_pd | features + rule items] estimated by an L2 LightGBM on the training villages."""
    def extra(df: pd.DataFrame) -> pd.DataFrame:
        rs = score_rules(df, policy)
        return rs.items.assign(rule_points=rs.decisions["rule_points"].to_numpy())

    feats = HouseholdFeatures(rule_items=True, rule_points=True)
    X_tr = feats.fit_transform(train, extra=extra(train))
    X_ho = feats.transform(hold, extra=extra(hold))
    reg = lgb.LGBMRegressor(n_estimators=600, learning_rate=0.05, num_leaves=31, min_child_samples=40,
                            subsample=0.8, subsample_freq=1, colsample_bytree=0.8, random_state=seed,
                            n_jobs=1, verbose=-1)
    reg.fit(X_tr, train["true_pd"].to_numpy())
    return reg.predict(X_ho)


def evaluate_model(model: Any, hold: pd.DataFrame, oot: pd.DataFrame, y: np.ndarray, y_oot: np.ndarray,
                   policy: Any, repeat: int, timing: bool) -> tuple[dict[str, Any], np.ndarray]:
    p = model.predict_pd(hold).to_numpy(dtype=float)
    auc, _, lo, hi = auc_delong(y, p)
    seen = hold["outcome_observed"].to_numpy(dtype=bool)
    ks, _ = ks_statistic(y, p)
    p_oot = model.predict_pd(oot).to_numpy(dtype=float)
    r: dict[str, Any] = {
        "auc": auc, "auc_lo": lo, "auc_hi": hi, "ece": expected_calibration_error(y, p), "brier": brier(y, p),
        "ks": ks, "mean_pd": float(p.mean()), "oot_auc": auc_delong(y_oot, p_oot)[0],
        "oot_ece": expected_calibration_error(y_oot, p_oot),
        "table_explainer": bool(model.explainer.is_fast),
        "auc_observed_holdout": auc_delong(y[seen], p[seen])[0],
        "rule_term_dropped": bool(model.coefficients.detail.get("rule_term_dropped", 0.0)),
    }
    # exactness: contributions vs an independent recomputation from the raw trees
    contrib = model.contributions(hold)
    csum = contrib.to_numpy(dtype=float).sum(axis=1)
    X = np.ascontiguousarray(model.features.transform(hold).to_numpy(dtype=np.float64))
    trees = model.booster.predict(X, raw_score=True, num_threads=1)
    R = score_rules(hold, policy).items.to_numpy(dtype=np.float64).sum(axis=1)
    pts_indep = model.scaling.points(model.coefficients.logit(R, trees))
    dec = model.decide(hold)
    r["max_abs_err_vs_trees"] = float(np.max(np.abs(csum - pts_indep)))
    r["max_abs_err_vs_decide"] = float(np.max(np.abs(csum - dec["points"].to_numpy(dtype=float))))
    r["max_abs_pd_err"] = float(np.max(np.abs(model.scaling.pd(csum) - p)))
    r["n_contrib_columns"] = int(contrib.shape[1])
    if timing:
        def no_explain() -> None:  # a PD without contributions: validate, rules, features, trees
            v = validate_households(hold).valid
            score_rules(v, policy)
            model.booster.predict(model.features.transform(v).to_numpy(dtype=np.float64), raw_score=True,
                                  num_threads=1)

        rates = best_rates({
            "booster_predict": lambda: model.booster.predict(X, raw_score=True, num_threads=1),
            "explainer": lambda: model.explainer.contributions(X),
            "no_explain": no_explain,
            "predict_pd": lambda: model.predict_pd(hold),
            "contributions": lambda: model.contributions(hold),
            "reason_codes": lambda: model.reason_codes(hold, top_k=3),
        }, len(hold), repeat)
        r.update({f"rps_{k}": v for k, v in rates.items()})
    return r, p


def rule_term(strategy: str, r: dict[str, Any]) -> str:
    if strategy == "gbm_only":
        return "none (by design)"
    return "DROPPED (k_rule = 0)" if r["rule_term_dropped"] else f"k_rule {r['coefficients']['k_rule']:+.4f}/pt"


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40_000, help="households (vintage 1)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--policy", default="jinxiang_2022")
    ap.add_argument("--trees", type=int, default=300)
    ap.add_argument("--learning-rate", type=float, default=0.05)
    ap.add_argument("--num-leaves", type=int, default=8)
    ap.add_argument("--min-child-samples", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=5, help="timing trials (best of)")
    ap.add_argument("--time-modes", default="observed,all",
                    help="training modes whose models are also timed (comma list; '' for none)")
    ap.add_argument("--json", default="", help="also write all numbers to this JSON file")
    a = ap.parse_args()
    t_start = time.perf_counter()

    gen = GeneratorConfig(n_households=a.n, seed=a.seed)
    t = time.perf_counter()
    v1 = validate_households(generate_households(gen), require_truth=True)
    v2 = validate_households(generate_vintage(gen, 2), require_truth=True)
    t_gen = time.perf_counter() - t
    valid = v1.valid.reset_index(drop=True)
    split = split_by_village(valid, (0.6, 0.2, 0.2), seed=a.seed)
    train, calib, hold = split.frames(valid)
    hold = hold.reset_index(drop=True)
    hold_villages = set(hold["village_code"].unique())
    v2v = v2.valid
    oot = v2v.loc[v2v["village_code"].isin(hold_villages)].reset_index(drop=True)
    y, y_oot = hold["default_12m"].to_numpy(), oot["default_12m"].to_numpy()
    policy = load_policy(a.policy)
    gbm_params = {"n_estimators": a.trees, "learning_rate": a.learning_rate, "num_leaves": a.num_leaves,
                  "min_child_samples": a.min_child_samples, "n_jobs": 1}

    obs_tr, obs_ca = train["outcome_observed"].to_numpy(bool), calib["outcome_observed"].to_numpy(bool)
    print(f"python {platform.python_version()}, lightgbm {lgb.__version__}, numpy {np.__version__}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; generated + validated in {t_gen:.1f} s")
    print(f"households: {a.n:,} (seed {a.seed}; quarantined v1 {v1.n_quarantined}, v2 {v2.n_quarantined}); "
          f"villages {valid['village_code'].nunique()}; policy {policy.name}")
    print(f"split by village 60/20/20: train {len(train):,} (observed {obs_tr.sum():,}), "
          f"calibration {len(calib):,} (observed {obs_ca.sum():,}), hold-out {len(hold):,} "
          f"({len(hold_villages)} villages, default rate {y.mean():.4f}, observed share "
          f"{hold['outcome_observed'].mean():.3f}); out of time: vintage 2 of the hold-out villages "
          f"{len(oot):,} (default rate {y_oot.mean():.4f})")
    print(f"default rate, train observed {train.loc[obs_tr, 'default_12m'].mean():.4f} vs "
          f"train unobserved {train.loc[~obs_tr, 'default_12m'].mean():.4f}")
    print(f"gbm params (every strategy): {gbm_params}; additive_points adds one feature per tree, "
          f"max_depth 3")

    # reference rows ---------------------------------------------------------------
    oracle = auc_delong(y, hold["true_pd"].to_numpy())
    oracle_oot = auc_delong(y_oot, oot["true_pd"].to_numpy())[0]
    pts = score_rules(hold, policy).decisions["rule_points"].to_numpy(dtype=float)
    pts_oot = score_rules(oot, policy).decisions["rule_points"].to_numpy(dtype=float)
    rules = auc_delong(y, -pts)
    seen = hold["outcome_observed"].to_numpy(dtype=bool)
    rules_oot = auc_delong(y_oot, -pts_oot)[0]
    t = time.perf_counter()
    ceil_p = feature_ceiling(train, hold, policy, a.seed)
    ceiling = auc_delong(y, ceil_p)
    t_ceil = time.perf_counter() - t
    ref = {"oracle_auc": oracle[0], "oracle_auc_ci": [oracle[2], oracle[3]], "oracle_oot_auc": oracle_oot,
           "oracle_ece": expected_calibration_error(y, hold["true_pd"].to_numpy()),
           "oracle_brier": brier(y, hold["true_pd"].to_numpy()),
           "rules_auc": rules[0], "rules_auc_ci": [rules[2], rules[3]], "rules_oot_auc": rules_oot,
           "feature_ceiling_auc": ceiling[0], "feature_ceiling_auc_ci": [ceiling[2], ceiling[3]],
           "feature_ceiling_fit_s": t_ceil,
           "oracle_auc_observed_holdout": auc_delong(y[seen], hold["true_pd"].to_numpy()[seen])[0],
           "rules_auc_observed_holdout": auc_delong(y[seen], -pts[seen])[0],
           "feature_ceiling_auc_observed_holdout": auc_delong(y[seen], ceil_p[seen])[0],
           "holdout_default_rate": float(y.mean()), "holdout_default_rate_observed": float(y[seen].mean()),
           "holdout_default_rate_unobserved": float(y[~seen].mean())}

    # the strategies ------------------------------------------------------------------
    time_modes = {m for m in a.time_modes.split(",") if m}
    results: dict[str, dict[str, dict[str, Any]]] = {}
    rng = np.random.default_rng(a.seed)

    def random_mask(n: int, k: int) -> np.ndarray:
        m = np.zeros(n, dtype=bool)
        m[rng.choice(n, size=k, replace=False)] = True
        return m

    masks = {
        "observed": (obs_tr, obs_ca),
        "all": (np.ones(len(train), bool), np.ones(len(calib), bool)),
        # control: as many rows as "observed", drawn at random from all outcomes, so the
        # observed-vs-all difference splits into selection bias and fewer rows
        "random (n of observed)": (random_mask(len(train), int(obs_tr.sum())),
                                   random_mask(len(calib), int(obs_ca.sum()))),
    }
    for mode, (mtr, mca) in masks.items():
        results[mode] = {}
        tr, ca = train.loc[mtr], calib.loc[mca]
        preds: dict[str, np.ndarray] = {}
        for strategy in STRATEGIES:
            t = time.perf_counter()
            model = fit_blend(tr, tr["default_12m"].to_numpy(), ca, ca["default_12m"].to_numpy(),
                              policy=policy, strategy=strategy,
                              gbm_params=gbm_params, features=HouseholdFeatures(), eval_date=None, seed=a.seed)
            fit_s = time.perf_counter() - t
            r, p = evaluate_model(model, hold, oot, y, y_oot, policy, a.repeat, mode in time_modes)
            r["fit_s"] = fit_s
            r["n_train"], r["n_calib"] = int(len(tr)), int(len(ca))
            r["coefficients"] = model.coefficients.to_dict()
            preds[strategy] = p
            results[mode][strategy] = r
            print(f"  [{mode[:8]:8s}] {strategy:16s} fit {fit_s:5.1f} s  AUC {r['auc']:.4f}  ECE {r['ece']:.4f}  "
                  f"OOT {r['oot_auc']:.4f}  ({time.perf_counter() - t_start:.0f} s elapsed)", flush=True)
        for strategy in STRATEGIES:
            _, _, diff, _, pval = delong_test(y, preds[strategy], preds[REFERENCE_STRATEGY])
            results[mode][strategy]["delta_vs_ref"] = diff
            results[mode][strategy]["p_vs_ref"] = pval

    # tables --------------------------------------------------------------------------
    print("\n### Reference (hold-out)\n")
    print("| reference | AUC (95 % CI) | OOT AUC (vintage 2) | AUC, observed part of hold-out |")
    print("| --- | --- | ---: | ---: |")
    print(f"| oracle (`true_pd`) | {oracle[0]:.4f} ({oracle[2]:.4f}-{oracle[3]:.4f}) | {oracle_oot:.4f} | "
          f"{ref['oracle_auc_observed_holdout']:.4f} |")
    print(f"| feature ceiling (GBM regression of `true_pd` on features + rule items) | "
          f"{ceiling[0]:.4f} ({ceiling[2]:.4f}-{ceiling[3]:.4f}) | | {ref['feature_ceiling_auc_observed_holdout']:.4f} |")
    print(f"| rule points only ({policy.name}) | {rules[0]:.4f} ({rules[2]:.4f}-{rules[3]:.4f}) | {rules_oot:.4f} | "
          f"{ref['rules_auc_observed_holdout']:.4f} |")
    print(f"\noracle ECE {ref['oracle_ece']:.4f}, Brier {ref['oracle_brier']:.4f} (the floor for the columns below); "
          f"hold-out default rate {y.mean():.4f}: observed {y[seen].mean():.4f}, unobserved {y[~seen].mean():.4f}")

    print(f"\n### Accuracy on the hold-out ({len(hold):,} households, all outcomes)\n")
    print("| trained on | strategy | AUC (95 % DeLong CI) | gap to oracle | vs additive_points (p) | "
          "rules-only AUC | ECE | Brier | KS | mean PD | OOT AUC | AUC, observed part of hold-out | "
          "rule term | fit s |")
    print("| --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
    for mode, rs in results.items():
        for s, r in rs.items():
            vs = "-" if s == REFERENCE_STRATEGY else f"{r['delta_vs_ref']:+.4f} ({r['p_vs_ref']:.2g})"
            print(f"| {mode} | {s} | {r['auc']:.4f} ({r['auc_lo']:.4f}-{r['auc_hi']:.4f}) | "
                  f"{oracle[0] - r['auc']:.4f} | {vs} | {rules[0]:.4f} | {r['ece']:.4f} | {r['brier']:.4f} | "
                  f"{r['ks']:.4f} | {r['mean_pd']:.4f} | {r['oot_auc']:.4f} | {r['auc_observed_holdout']:.4f} | "
                  f"{rule_term(s, r)} | {r['fit_s']:.1f} |")

    print("\n### Speed (rows/s, 1 thread, best of %d rounds) and exactness (points)\n" % a.repeat)
    print("| trained on | strategy | explainer | `booster.predict` | model contributions | `predict_pd` | "
          "`contributions()` | `reason_codes()` | PD path without explanations (validate+rules+features+predict) | contributions / predict_pd | reason_codes / predict_pd | "
          "reason_codes / booster.predict | max abs(sum contrib - points), vs trees | vs `decide` | "
          "max abs(PD(sum contrib) - predict_pd) |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for mode, rs in results.items():
        for s, r in rs.items():
            kind = "table look-up" if r["table_explainer"] else "TreeSHAP"
            if "rps_predict_pd" in r:
                speed = (f"{fmt_rate(r['rps_booster_predict'])} | {fmt_rate(r['rps_explainer'])} | "
                         f"{fmt_rate(r['rps_predict_pd'])} | {fmt_rate(r['rps_contributions'])} | "
                         f"{fmt_rate(r['rps_reason_codes'])} | {fmt_rate(r['rps_no_explain'])} | "
                         f"{r['rps_contributions'] / r['rps_predict_pd']:.2f} | "
                         f"{r['rps_reason_codes'] / r['rps_predict_pd']:.2f} | "
                         f"{r['rps_reason_codes'] / r['rps_booster_predict']:.3f}")
            else:
                speed = " | ".join(["n/t"] * 9)
            print(f"| {mode} | {s} | {kind} | {speed} | {r['max_abs_err_vs_trees']:.2e} | "
                  f"{r['max_abs_err_vs_decide']:.2e} | {r['max_abs_pd_err']:.1e} |")
    print("\nn/t: not timed (see --time-modes)")
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s")
    if a.json:
        with open(a.json, "w", encoding="utf-8") as fh:
            json.dump({"args": vars(a), "reference": ref, "results": results}, fh, indent=2, default=float)


if __name__ == "__main__":
    main()
