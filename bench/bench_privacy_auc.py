"""Benchmark: where the anonymised release's AUC cost comes from (issue 28, one factor at a time).

Usage: ``python bench/bench_privacy_auc.py [--n 20000] [--seed 3] [--split-seeds 0 1 2] [--no-holders]``.

Anonymises generated raw records with the default threat model, then, for each group of
released columns (the insider's recoded QIs, event dates, repayment history, the bank's
figures, ``income_volatility``, ...), releases the *raw* values of that group only and
measures the default model's hold-out AUC (same households, village split and seed as
``utility_comparison``). Baseline: the raw model in the same run. Each difference carries
its paired-bootstrap CI (hold-out rows resampled; both models' scores on the same rows) and
the paired DeLong CI, so a cost can be told from the noise of one hold-out.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from village_credit.config import ExperimentConfig
from village_credit.data.generator import GeneratorConfig, generate_households
from village_credit.data.schema import history_columns, months_in
from village_credit.models.splits import split_by_village
from village_credit.privacy.anonymise import anonymise
from village_credit.privacy.precision import event_columns
from village_credit.privacy.pseudonym import pseudonymise, release_context
from village_credit.privacy.raw_records import add_fake_pii
from village_credit.privacy.resident_id import parse_resident_ids
from village_credit.privacy.utility import _fit_and_decide
from village_credit.validation.discrimination import delong_paired

KEY = bytes(range(32))


def column_groups(columns: list[str], qis: list[str]) -> dict[str, list[str]]:
    m = months_in(columns)
    hist = [c for k in ("due", "paid", "dpd") for c in history_columns(k, m)] if m else []
    return {
        "insider QIs (recoding)": [q for q in qis if q in columns],
        "event dates": event_columns(columns),
        "repayment history": [c for c in hist if c in columns],
        "bank line / balance": [c for c in ("credit_limit_yuan", "balance_yuan") if c in columns],
        "income_volatility": [c for c in ("income_volatility",) if c in columns],
        "dependents": [c for c in ("dependents",) if c in columns and c not in qis],
        "incomes (rounded)": [c for c in columns if c.startswith("income_") and c != "income_volatility"
                              and c not in qis],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--boot", type=int, default=1_000)
    ap.add_argument("--split-seeds", type=int, nargs="+", default=[0, 1, 2],
                    help="village splits (and model seeds) the differences are measured and averaged over")
    ap.add_argument("--release-only", action="store_true", help="the whole release only, no column groups")
    ap.add_argument("--no-holders", action="store_true", help="anonymise without the bank / keeper protection")
    ap.add_argument("--t", nargs="+", default=None,
                    help="t-closeness targets of default_12m to compare, each a release of its own ('none': "
                         "not targeted); default: the threat model's")
    args = ap.parse_args()
    t0 = time.perf_counter()
    cfg = GeneratorConfig(n_households=args.n, seed=args.seed)
    households = generate_households(cfg)
    raw = add_fake_pii(households, cfg.seed)
    from dataclasses import replace

    from village_credit.privacy.threat_model import DEFAULT_PRIVACY_CONFIG
    pc = DEFAULT_PRIVACY_CONFIG
    if args.no_holders:
        pc = replace(pc, attackers=tuple(a for a in pc.attackers if a.recoded))
    res = anonymise(raw, KEY, measure_risk=False, config=pc)
    rep = res.report
    ids = parse_resident_ids(raw["resident_id"].astype("string"), pd.Timestamp(households["snapshot_date"].iloc[0]))
    raw_hh = households.assign(household_id=pseudonymise(ids.normalised, KEY, context=release_context(
        rep.pseudonyms["release"])).astype(str).to_numpy())
    pos = pd.Index(raw_hh["household_id"]).get_indexer(pd.Index(res.households["household_id"]))
    r = raw_hh.iloc[pos].reset_index(drop=True)
    a = res.households.reset_index(drop=True)
    for c in a.columns:  # the released table's dtypes, so a restored column is read alike
        if c in r.columns and r[c].dtype != a[c].dtype:
            try:
                r[c] = r[c].astype(a[c].dtype)
            except (TypeError, ValueError):
                pass
    groups = column_groups(list(a.columns), list(rep.quasi_identifiers))
    variants: dict[str, pd.DataFrame] = {f"anonymised release (all stages, t={pc.t})": a}
    for tv in args.t or []:  # the same households released under another t-closeness target
        t_val = None if tv == "none" else float(tv)
        if t_val == pc.t:
            continue
        other = anonymise(raw, KEY, measure_risk=False, config=replace(pc, t=t_val)).households
        if set(other["household_id"]) != set(a["household_id"]):
            print(f"t={tv}: another set of households released ({len(other)}); not comparable, skipped")
            continue
        variants[f"anonymised release (all stages, t={t_val})"] = other.set_index("household_id").loc[
            a["household_id"]].reset_index()[a.columns]
    for name, cols in ({} if args.release_only else groups).items():
        if cols:
            changed = int(np.column_stack([(a[c].ne(r[c]) & ~(a[c].isna() & r[c].isna())).to_numpy(bool)
                                           for c in cols]).any(axis=1).sum())
            t = a.copy()
            for c in cols:  # the raw values of this group only
                t[c] = r[c]
            variants[f"raw {name} ({len(cols)} cols, {changed} rows differ)"] = t
    rest = [c for c in a.columns if c in r.columns and not any(c in g for g in groups.values())
            and (a[c].ne(r[c]) & ~(a[c].isna() & r[c].isna())).any()]
    print(f"{len(a)} released; holder protection: {rep.precision['holder_protection']}")
    print(f"other released columns that differ from raw: {rest}")
    diffs: dict[str, list[float]] = {name: [] for name in variants}
    for split_seed in args.split_seeds:
        ecfg = ExperimentConfig()
        ecfg.seed = split_seed
        split = split_by_village(r, (0.6, 0.2, 0.2), seed=split_seed)
        y = split.frames(r)[2]["default_12m"].to_numpy()

        def score(table: pd.DataFrame, split=split, ecfg=ecfg) -> np.ndarray:
            tr, ca, ho = split.frames(table)
            return _fit_and_decide(tr, ca, {"h": ho}, ecfg)["h"]["pd"].to_numpy(float)

        rng = np.random.default_rng(split_seed)
        boot = [rng.integers(0, len(y), len(y)) for _ in range(args.boot)]
        base = score(r)
        print(f"split seed {split_seed}: hold-out {len(y)} ({int(y.sum())} defaults); raw AUC "
              f"{roc_auc_score(y, base):.4f} (baseline)", flush=True)
        for name, table in variants.items():
            s = score(table)
            d = np.array([roc_auc_score(y[i], s[i]) - roc_auc_score(y[i], base[i]) for i in boot])
            dl = delong_paired(y, s, base)
            diffs[name].append(dl["diff"])
            print(f"  {name:<52} AUC {roc_auc_score(y, s):.4f} diff {dl['diff']:+.4f} bootstrap 95% CI "
                  f"[{np.quantile(d, 0.025):+.4f}, {np.quantile(d, 0.975):+.4f}] P(diff < -0.01) "
                  f"{(d < -0.01).mean():.2f}; DeLong CI [{dl['ci_low']:+.4f}, {dl['ci_high']:+.4f}]", flush=True)
    print(f"mean over split seeds {args.split_seeds} (difference to the raw model):")
    for name, d in diffs.items():
        print(f"  {name:<52} {np.mean(d):+.4f} (sd {np.std(d, ddof=1) if len(d) > 1 else float('nan'):.4f})")
    print(f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
