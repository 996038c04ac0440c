"""Could a shrunk per-group offset, estimated from the explored outcomes, fix the 70+ PD?

Issue 25 (task: the demo's 70+ over-prediction). The candidate remedy: after the
cross-fitted blend, a log-odds offset per protected group (``SUPPORT_GROUPS``: the age
bands 60-64 / 65-69 / 70+ and formerly poor) fitted by penalised maximum likelihood
(``validation.recalibration.fit_group_offsets``, normal prior N(0, sd^2) on each offset)
on the **out-of-fold** PDs of the observed training households (trees that never saw a
row, the rows the PD map is fitted on; no ``true_pd``). Fits the blend as ``fit_models``
does for ``split.calibration: cross_fit`` (same estimator arguments, tuned parameters),
then prints per seed: each group's observed training outcomes and defaults, the
offset's unpenalised estimate and standard error, the shrunk offsets for prior sd 0.25
(the config's ``fairness.group_prior_sd``) and 1.0, and the hold-out mean predicted /
true PD (households without a veto) before and after applying them. ~3 min a seed::

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_group_offsets.py --seeds 42 7 11 23
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from village_credit.config import load_config  # noqa: E402
from village_credit.data.groups import SUPPORT_GROUPS, support_groups  # noqa: E402
from village_credit.models.estimator import CreditScoreClassifier  # noqa: E402
from village_credit.models.scaling import PointsScaling  # noqa: E402
from village_credit.models.splits import split_by_village  # noqa: E402
from village_credit.models.support import neutral_items_for  # noqa: E402
from village_credit.pipeline import _outcome_mask, load_households, tune_params  # noqa: E402
from village_credit.validation.recalibration import fit_group_offsets  # noqa: E402


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return np.log(p / (1 - p))


def run(seed: int) -> list[dict[str, object]]:
    cfg = load_config("experiments/default.yaml", {"seed": seed})
    assert cfg.split.calibration == "cross_fit" and not cfg.split.exploration_weighting
    v1, _ = load_households(cfg)
    s, m = cfg.split, cfg.model
    sp = split_by_village(v1, (1 - s.calibration_share - s.holdout_share, s.calibration_share, s.holdout_share),
                          seed=cfg.seed)
    train, calib, holdout = sp.frames(v1)
    params = {**m.gbm, **tune_params(train, cfg, log_to_mlflow=False)}
    train = pd.concat([train, calib], ignore_index=True)  # cross_fit: as fit_models
    mask = _outcome_mask(train, cfg)
    tr = train.loc[mask]
    neutral = (neutral_items_for(train, cfg.policy, mask, cfg.eval_date, min_varied=m.neutralise_min_varied)
               if m.neutralise_constant_items else False)
    est = CreditScoreClassifier(strategy=m.strategy, policy=cfg.policy, gbm_params=params,
                                points_scaling=PointsScaling.from_pdo(m.pdo, m.base_points, m.base_odds),
                                include_protected=m.include_protected, eval_date=cfg.eval_date, seed=cfg.seed,
                                neutralise_rule_items=neutral, group_column="village_code")
    est.fit(tr, tr["default_12m"].to_numpy(), calibration_data=None, metadata={"experiment": cfg.name})
    y = tr["default_12m"].to_numpy(float)
    z = logit(np.asarray(est.oof_pd_, dtype=float))
    G = support_groups(tr)[list(SUPPORT_GROUPS)].to_numpy(float)
    # unpenalised estimate and its standard error (a nearly flat prior), then the shrunk ones
    d_mle = fit_group_offsets(z, y, G, prior_sd=100.0)
    p_mle = 1 / (1 + np.exp(-(z + G @ d_mle)))
    se = np.sqrt(np.diag(np.linalg.inv((G * (p_mle * (1 - p_mle))[:, None]).T @ G)))
    shrunk = {sd: fit_group_offsets(z, y, G, prior_sd=sd) for sd in (0.25, 1.0)}
    dec = est.model_.decide(holdout, top_k=1, eval_date=cfg.eval_date)
    ok = (dec["status"] == "scored").to_numpy() & ~dec["vetoed"].to_numpy(bool)
    ph = dec["pd"].to_numpy(float)
    tp = holdout["true_pd"].to_numpy(float)
    Gh = support_groups(holdout)[list(SUPPORT_GROUPS)].to_numpy(float)
    rows = []
    for j, g in enumerate(SUPPORT_GROUPS):
        sel = ok & (Gh[:, j] > 0)
        row: dict[str, object] = {"seed": seed, "group": g, "train outcomes": int(G[:, j].sum()),
                                  "train defaults": int(y[G[:, j] > 0].sum()),
                                  "offset (no prior)": round(float(d_mle[j]), 3), "its SE": round(float(se[j]), 3),
                                  "offset sd 0.25": round(float(shrunk[0.25][j]), 3),
                                  "offset sd 1.0": round(float(shrunk[1.0][j]), 3),
                                  "pred/true before": round(float(ph[sel].mean() / tp[sel].mean()), 3)}
        for sd, d in shrunk.items():
            pa = 1 / (1 + np.exp(-(logit(ph) + Gh @ d)))
            row[f"pred/true sd {sd}"] = round(float(pa[sel].mean() / tp[sel].mean()), 3)
        rows.append(row)
    print(pd.DataFrame(rows).to_string(index=False), flush=True)
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[42])
    a = ap.parse_args()
    out = [r for sd in a.seeds for r in run(sd)]
    print(pd.DataFrame(out).to_markdown(index=False))
