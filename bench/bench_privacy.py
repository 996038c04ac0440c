"""Benchmark: what anonymisation protects and what it costs (issue 21 targets).

Usage: ``python bench/bench_privacy.py [--n 20000] [--seed 3] [--json out/privacy_bench.json]``.

Generates raw village records (as ``village-credit generate-raw --n-households N --seed S``),
anonymises them with the default threat model (k = 5 over the village insider's and the
outside party's quasi-identifiers), and prints, each with its target:

* the smallest equivalence class over the declared QIs (pycanon) and per attacker;
* anonymeter singling-out / linkability / inference risk (when anonymeter is installed);
* suppression per fairness age band and formerly-poor status;
* the default model's hold-out AUC trained on the raw vs the anonymised records of the
  same households (baseline: the raw model, measured in the same run) and the
  fairness-audit differences; wall time of the anonymiser;
* (issue 28) uniqueness against every declared record holder before and after, what
  protecting against the bank and the register keeper cost, the homogeneity attack, the
  burden per age band and formerly-poor status, and two yearly releases joined on their
  pseudonym (release-scoped: nothing joins; linked by choice: measured as one table).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from village_credit.data.generator import GeneratorConfig, generate_households
from village_credit.privacy.anonymise import anonymise
from village_credit.privacy.pseudonym import pseudonymise, release_context
from village_credit.privacy.raw_records import add_fake_pii
from village_credit.privacy.resident_id import parse_resident_ids
from village_credit.privacy.utility import utility_comparison

KEY = bytes(range(32))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--outcome-flip-rate", type=float, default=0.0,
                    help="randomized response on the released default_12m (privacy config outcome_noise)")
    ap.add_argument("--t", default=None, help="t-closeness target of default_12m ('none': not targeted); "
                                              "default: the threat model's")
    args = ap.parse_args()

    cfg = GeneratorConfig(n_households=args.n, seed=args.seed)
    households = generate_households(cfg)
    raw = add_fake_pii(households, cfg.seed)
    t0 = time.perf_counter()
    from dataclasses import replace

    from village_credit.privacy.threat_model import DEFAULT_PRIVACY_CONFIG

    pcfg = replace(DEFAULT_PRIVACY_CONFIG, outcome_flip_rate=args.outcome_flip_rate)
    if args.t is not None:
        pcfg = replace(pcfg, t=None if args.t == "none" else float(args.t))
    res = anonymise(raw, KEY, config=pcfg)
    t_anon = time.perf_counter() - t0
    rep = res.report
    # the raw household table of the same households, keyed by the same pseudonym
    ids = parse_resident_ids(raw["resident_id"].astype("string"), pd.Timestamp(households["snapshot_date"].iloc[0]))
    ctx = release_context(rep.pseudonyms["release"])
    raw_hh = households.assign(household_id=pseudonymise(ids.normalised, KEY, context=ctx).astype(str).to_numpy())
    t1 = time.perf_counter()
    util = utility_comparison(raw_hh, res.households, seed=0)
    t_util = time.perf_counter() - t1

    syn = rep.risk["syntactic"]
    att = rep.risk["attacks"]
    sup = rep.suppressed_by_group
    worst = max((v["share"] for g in sup.values() for v in g.values()), default=float("nan"))
    print(f"households: {rep.n_in} in, {rep.n_released} released, {rep.n_suppressed} suppressed, "
          f"{rep.n_quarantined} quarantined; anonymise {t_anon:.1f} s")
    print(f"QIs: {', '.join(rep.quasi_identifiers)}")
    from village_credit.privacy.kanon import class_sizes
    from village_credit.privacy.risk import syntactic_risk

    qis = list(rep.quasi_identifiers)
    raw_k = syntactic_risk(raw_hh, qis, [])["k_anonymity"]
    raw_unique = float((class_sizes(raw_hh, qis) == 1).mean())
    print(f"raw table (baseline): k = {raw_k}, {raw_unique:.1%} of households unique on the QIs")
    print(f"k over the declared QIs (pycanon): {syn['k_anonymity']} (target >= {rep.k_required}); "
          f"by attacker: {syn['k_by_attacker']}")
    print(f"l-diversity {syn['l_diversity']}, t-closeness {syn['t_closeness']}")
    print(f"location released at: {rep.location_levels}")
    for grp, cells in sup.items():
        print(f"suppressed by {grp}: " + ", ".join(f"{g} {v['n_suppressed']}/{v['n_in']} ({v['share']:.2%})"
                                                   for g, v in cells.items()))
    print(f"worst group suppression: {worst:.2%} (target <= 5 %)")
    if att.get("status") == "measured":
        for name in ("singling_out", "linkability", "inference"):
            a = att[name]
            print(f"anonymeter {name}: risk {a['risk']:.4f} CI {a['risk_ci']}, attack {a['attack_rate']}, "
                  f"baseline {a['baseline_rate']}, control {a['control_rate']}, "
                  f"attack within baseline: {a['attack_within_baseline']}")
    else:
        print(f"anonymeter: {att.get('status')}")
    auc = util["auc"]
    print(f"AUC raw model / raw hold-out: {auc['raw_model_raw_holdout']:.4f} (baseline)")
    print(f"AUC anonymised model / anonymised hold-out: {auc['anon_model_anon_holdout']:.4f} "
          f"(difference {util['auc_difference']:+.4f}, paired 95% CI {util['auc_difference_ci']}, "
          f"target within 0.01; ratio "
          f"{auc['anon_model_anon_holdout'] / auc['raw_model_raw_holdout']:.4f})")
    print(f"AUC anonymised model / raw hold-out: {auc['anon_model_raw_holdout']:.4f}")
    print(f"approval by group: {util['approval_by_group']}")
    print(f"largest fairness-disparity difference: {util['max_abs_fairness_difference']}")
    big = sorted(util["fairness_disparities"], key=lambda d: -abs(d["difference"] or 0))[:5]
    for d in big:
        print(f"  {d['feature']} {d['metric']}: raw {d['raw']}, anonymised {d['anonymised']}, "
              f"difference {d['difference']}")
    print(f"utility comparison {t_util:.1f} s")
    # issue 28: every record holder, before (exact dates and amounts) and after
    for name, after in rep.risk["holders"]["released"].items():
        before = rep.risk["holders"]["raw"][name]
        print(f"holder {name}: unique {before['unique_share']:.1%} -> {after['unique_share']:.1%}, "
              f"below k {before['below_k_share']:.1%} -> {after['below_k_share']:.1%}, k {before['k']} -> {after['k']}")
    print(f"holder protection: {rep.precision['holder_protection']}")
    print(f"precision release: events in {rep.precision['events_in']}, released {rep.precision['events_released']}, "
          f"outside every window {rep.precision['events_blanked_outside_windows']}; histories re-ordered "
          f"{rep.precision['history_households_reordered']}")
    for holder, attrs in rep.risk["homogeneity"]["by_holder"].items():
        print(f"homogeneity {holder}: " + ", ".join(f"{a} l={v['l']} certain {v['certain_share']:.1%}"
                                                    for a, v in attrs.items()))
    print(f"outcome noise (randomized response): {rep.risk['homogeneity']['outcome_noise']}")
    c = rep.closeness
    if c:  # issue 28 item 4: t-closeness of default_12m, and the homogeneity attack on both values
        print(f"t-closeness of {c['targets']}: target {c['t_target']}, achieved (true outcomes, own count) "
              f"{c['t_achieved']}, base rate {c['overall']}; withheld for it {c['n_suppressed']}: "
              + "; ".join(f"{grp} " + ", ".join(f"{g} {v['n_suppressed']}/{v['n_in']}" for g, v in cells.items())
                          for grp, cells in c["suppressed_by_group"].items()))
    for holder, v in rep.risk["homogeneity"].get("outcome", {}).get("by_holder", {}).items():
        print(f"outcome homogeneity {holder}: repaid certain {v['repaid_certain_share']:.1%} "
              f"({v['repaid_certain_n']}), default certain {v['default_certain_n']}, largest default posterior "
              f"{v['max_default_posterior']:.3f} (base rate {v['base_rate']:.3f}, t {v['t']:.3f})")
    for grp in ("age_band", "formerly_poor"):
        for g, v in rep.burden[grp].items():
            print(f"burden {grp}={g}: n {v['n']}, suppressed {v['suppressed_share']:.1%}, mean loss "
                  f"{v['mean_loss']:.3f}, location coarsened {v.get('altered_share.location', 0):.1%} (floor "
                  f"{v.get('location_floor_share', 0):.1%}), fairness band moved {v.get('altered_share.age_band', 0):.1%}, "
                  f"altered: " + ", ".join(f"{q.split('.', 1)[1]} {a:.0%}" for q, a in v.items()
                                           if q.startswith("altered_share.")))
    print(f"elderly loss / under-60s loss: {rep.burden['elderly_loss_ratio']} (target <= 2)")
    # repeated releases: next year's file of the same households, release-scoped vs linked
    from village_credit.data.generator import generate_vintage
    from village_credit.privacy.risk import joined_release_risk
    raw2 = add_fake_pii(generate_vintage(cfg, 2), cfg.seed)
    att = {a.name: a.knows for a in DEFAULT_PRIVACY_CONFIG.attackers}
    second = anonymise(raw2, KEY, measure_risk=False)
    scoped = joined_release_risk([res.households, second.households], att, rep.k_required)
    print(f"two yearly releases, release-scoped pseudonyms: {scoped['n_linked']} linked ({scoped['status']})")
    l1 = anonymise(raw, KEY, measure_risk=False, link_releases=True)
    l2 = anonymise(raw2, KEY, measure_risk=False, link_releases=True)
    linked = joined_release_risk([l1.households, l2.households], att, rep.k_required)
    for name, v in linked["holders"].items():
        print(f"two releases linked by choice, joined as one table, {name}: k {v['k']}, unique "
              f"{v['unique_share']:.1%}, below k {v['below_k_share']:.1%}, default_12m certain "
              f"{linked['homogeneity'][name]['default_12m']['certain_share']:.1%}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"report": rep.to_dict(), "utility": util, "linked_releases": linked,
                                         "seconds": {"anonymise": t_anon, "utility": t_util}},
                                        indent=2, default=str))


if __name__ == "__main__":
    main()
