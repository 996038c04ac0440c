"""Fairness report: one self-contained HTML (PNG charts embedded) plus JSON of every figure.

Why JSON next to the HTML: the promotion gates read numbers, people read pictures; both
must come from the same run. Built on :mod:`village_credit.reporting.html`.

JSON keys the promotion gates read (all numbers are fractions; NaN is written as null):

* ``equal_risk.<system>.max_gap_approval``: largest |approval-rate gap| between protected
  households (60+, formerly poor) and others within a true-PD decile with at least
  ``min_count`` households in each group;
* ``equal_risk.<system>.max_gap_line``: the same for the relative mean-line gap;
* ``equal_risk.<system>.passes_5pct`` / ``.deciles_checked`` / ``.by_comparison``;
* ``disparities.<system>.<feature>.demographic_parity_ratio`` (min/max approval rate),
  ``.demographic_parity_difference``, ``.equalized_odds_difference``,
  ``.four_fifths_pass`` (bool), each ratio with ``_ci`` = [low, high] (bootstrap);
* headline copies for the *primary* system (default: the last audited, normally the
  blend), matching ``registry.gates.FAIRNESS_KEYS``: ``equal_risk.max_gap_approval``,
  ``equal_risk.max_gap_line``, ``equal_risk.system``, and ``demographic_parity.min_ratio``
  (smallest demographic parity ratio over all audited features), with per system
  ``demographic_parity.<system>.min_ratio``.

Other keys: ``params``, ``audit`` (tidy per-group rows), ``equal_risk_table``,
``tradeoff``, ``reject_inference``, and ``figures`` (the data behind each chart, by name).

``outcome_support`` (when given; gate ``outcome_support``): the training rows with an
observed outcome behind each protected group (:func:`~village_credit.fairness.support.support_diagnostics`),
``extrapolated_groups``, ``remedies`` applied, ``headline`` (per group predicted / true
and predicted / observed mean PD, signed worst equal-risk gaps) and ``remedy_costs``
(AUC and expected loss beside each remedy).
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from village_credit.data.groups import ELDERLY_AGE, group_order
from village_credit.fairness.audit import (
    ALL_GROUP,
    AuditResult,
    DecisionSystem,
    fairness_audit,
    records,
)
from village_credit.fairness.ceiling import EXCESS_LIMITS, CeilingSplit
from village_credit.fairness.equal_risk import TARGET_GAP, TARGET_LINE_GAP, EqualRiskResult, equal_risk_gaps
from village_credit.fairness.groups import FairnessInputError, sensitive_frame
from village_credit.fairness.mitigation import policy_change_systems, tradeoff_table
from village_credit.reporting.displays import (
    ApprovalByGroupDisplay,
    EqualRiskDisplay,
    TradeoffDisplay,
    legend_outside,
)
from village_credit.reporting.html import HtmlReport, new_figure, to_jsonable, write_report
from village_credit.reporting.progress import ProgressCallback, Steps

SCHEMA_VERSION = "village-credit/fairness/1"
CHART_FEATURES: tuple[str, ...] = ("age_band", "policy_age", "formerly_poor", "age_band_x_formerly_poor")


def _min_ratio(disp: dict[str, dict[str, Any]]) -> float | None:
    vals = [d.get("demographic_parity_ratio") for d in disp.values()]
    vals = [v for v in vals if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return min(vals) if vals else None


def fairness_json(audit: AuditResult, gaps: EqualRiskResult | None, tradeoff: pd.DataFrame | None = None,
                  reject: pd.DataFrame | None = None, primary_system: str | None = None,
                  support: dict[str, Any] | None = None, ceiling: CeilingSplit | None = None,
                  observed: dict[str, Any] | None = None) -> dict[str, Any]:
    """The report's JSON document (see module docstring for the keys).

    Examples
    --------
    >>> from village_credit.data import GeneratorConfig, generate_households
    >>> hh = generate_households(GeneratorConfig(n_households=200, seed=7))
    >>> from village_credit.fairness import fairness_audit, fairness_json, policy_change_systems, sensitive_frame
    >>> audit = fairness_audit(policy_change_systems(hh), sensitive_frame(hh), hh["default_12m"], n_boot=20,
    ...                        features=["elderly"])
    >>> doc = fairness_json(audit, None, primary_system="policy:jinxiang_2022")
    >>> doc["primary_system"], "disparities" in doc
    ('policy:jinxiang_2022', True)
    """
    systems = audit.systems
    primary = primary_system or (systems[-1] if systems else None)
    disp = audit.disparity_summary()
    er: dict[str, Any] = dict(gaps.summary) if gaps is not None else {}
    if primary in er:
        er.update(system=primary, max_gap_approval=er[primary]["max_gap_approval"],
                  max_gap_line=er[primary]["max_gap_line"], passes_5pct=er[primary]["passes_5pct"])
    if er:
        er["truth"] = "synthetic data only: equal-risk gaps need the generator's true PD"
    if ceiling is not None:
        er["excess"] = ceiling.summary
        split = ceiling.summary.get(primary or "", {})
        er.update({k: split.get(k) for k in ("max_excess_approval", "max_excess_line",
                                              "ceiling_max_gap_approval", "ceiling_max_gap_line")})
    dp: dict[str, Any] = {s: {"min_ratio": _min_ratio(disp.get(s, {}))} for s in systems}
    if primary in dp:
        dp.update(system=primary, min_ratio=dp[primary]["min_ratio"])
    figs = _figure_data(audit, gaps, tradeoff, reject)
    extra: dict[str, Any] = {"outcome_support": support} if support is not None else {}
    if ceiling is not None:
        extra["equal_risk_excess_table"] = records(ceiling.table)
    if observed is not None:
        extra["observed"] = observed
    return to_jsonable({**extra,
        "schema": SCHEMA_VERSION,
        "params": audit.params,
        "primary_system": primary,
        "systems": systems,
        "equal_risk": er,
        "disparities": disp,
        "demographic_parity": dp,
        "audit": records(audit.by_group),
        "equal_risk_table": records(gaps.table) if gaps is not None else [],
        "tradeoff": records(tradeoff),
        "reject_inference": records(reject),
        "figures": {k: records(v) for k, v in figs.items()},
    })


def _figure_data(audit: AuditResult, gaps: EqualRiskResult | None, tradeoff: pd.DataFrame | None,
                 reject: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
    bg = audit.by_group
    out = {"approval_by_group": bg[(bg.metric == "approval_rate") & (bg.group != ALL_GROUP)]
           .loc[:, ["system", "feature", "group", "n", "value", "ci_low", "ci_high"]].reset_index(drop=True)}
    if gaps is not None:
        out["equal_risk_by_decile"] = gaps.table.loc[:, ["system", "comparison", "decile", "gap_approval",
                                                          "gap_line", "checked"]]
    if tradeoff is not None and len(tradeoff):
        out["tradeoff"] = tradeoff
    if reject is not None and len(reject):
        out["reject_bias"] = reject.loc[:, ["remedy", "group", "mean_pred_pd", "mean_true_pd", "bias"]]
    return out


# --------------------------------------------------------------------------- labels
FEATURE_LABELS: dict[str, dict[str, str]] = {
    "age_band": {"en": "Age band of the head", "zh": "户主年龄段"},
    "elderly": {"en": "Head aged 60+", "zh": "户主60岁及以上"},
    "policy_age": {"en": "Within the policy's age limit", "zh": "政策年龄上限"},
    "formerly_poor": {"en": "Formerly poor household", "zh": "脱贫户"},
    "age_band_x_formerly_poor": {"en": "Age band x formerly poor", "zh": "年龄段 x 脱贫户"},
}
GROUP_LABELS: dict[str, dict[str, str]] = {
    "formerly_poor": {"en": "formerly poor", "zh": "脱贫户"},
    "other": {"en": "other", "zh": "其他"},
}
METRIC_LABELS: dict[str, str] = {
    "demographic_parity_ratio": "parity ratio (min/max approval)",
    "demographic_parity_difference": "parity difference",
    "equalized_odds_difference": "equalized odds difference",
    "four_fifths_pass": "four-fifths rule",
    "approval_rate": "approval rate", "mean_line": "mean line (yuan)",
    "mean_rate_approved": "mean rate of approved", "default_rate": "default rate", "tpr": "TPR",
    "fpr": "FPR", "auc": "AUC", "mean_pd": "mean PD", "mean_true_pd": "mean true PD",
    "max_gap_approval": "largest approval gap", "max_gap_line": "largest line gap",
    "deciles_checked": "cells checked", "passes_5pct": "within target",
}
COMPARISON_LABELS = {"elderly": "Head 60+ / 户主60岁及以上", "formerly_poor": "Formerly poor / 脱贫户"}


def tradeoff_labels(columns: Any) -> dict[str, str]:
    """Readable headers for the trade-off table (``approval_gap_elderly`` -> ``approval gap: 60+``)."""
    words = {"er_": "equal-risk ", "dp_ratio": "parity ratio", "auc_pd": "AUC of PD",
             "auc_decision": "AUC of decision", "n_approved": "approved households"}
    out = {}
    for c in columns:
        text = str(c)
        for suffix, who in (("_elderly", ": 60+"), ("_formerly_poor", ": formerly poor")):
            if text.endswith(suffix):
                text = text[: -len(suffix)] + who
        for k, v in words.items():
            text = text.replace(k, v)
        out[str(c)] = text.replace("_", " ")
    return out


def feature_label(feature: str) -> str:
    """``English / 中文`` label of a sensitive feature (codes never reach the reader)."""
    lab = FEATURE_LABELS.get(feature)
    return f"{lab['en']} / {lab['zh']}" if lab else feature


def group_label(group: str, lang: str = "en") -> str:
    """``65-69|formerly_poor`` -> ``65-69 · formerly poor`` (``lang="zh"``: ``65-69 · 脱贫户``)."""
    return " · ".join(GROUP_LABELS.get(part, {}).get(lang, part) for part in str(group).split("|"))


# --------------------------------------------------------------------------- charts
def _approval_chart(data: pd.DataFrame, feature: str):
    d = data[data.feature == feature].copy()
    order = sorted(dict.fromkeys(d.group), key=group_order)  # age groups youngest first
    d["group"] = d["group"].map(group_label)
    disp = ApprovalByGroupDisplay.from_table(
        d, title=f"Approval rate by {FEATURE_LABELS.get(feature, {}).get('en', feature).lower()} "
                 "(95% bootstrap CI)", group_order=[group_label(g) for g in order])
    return disp.figure_


def _gap_chart(table: pd.DataFrame, column: str, label: str):
    target = TARGET_LINE_GAP if column.endswith("line") else TARGET_GAP  # each gap's own target band
    return EqualRiskDisplay.from_table(table, column=column, ylabel=label, target=target,
                                       comparison_labels={k: v.split(" / ")[0]
                                                          for k, v in COMPARISON_LABELS.items()}).figure_


def _tradeoff_chart(t: pd.DataFrame):
    return TradeoffDisplay.from_table(t, target=TARGET_GAP).figure_


def _reject_chart(r: pd.DataFrame):
    groups = [g for g in ("all", "granted", "not_granted", "elderly_60plus", "formerly_poor") if g in set(r.group)]
    groups += [g for g in dict.fromkeys(r.group) if g not in groups]
    remedies = list(dict.fromkeys(r.remedy))
    fig = new_figure(7.0, 4.2)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / max(1, len(remedies))
    x = np.arange(len(groups))
    for i, m in enumerate(remedies):
        v = r[r.remedy == m].set_index("group").reindex(groups)["bias"].to_numpy(float)
        ax.bar(x + (i - (len(remedies) - 1) / 2) * width, v, width, label=m)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(x, [g.replace("_", " ") for g in groups], fontsize=8)
    ax.set_ylabel("mean predicted PD - mean true PD")
    ax.set_title("Reject inference: bias against the true PD by group")
    legend_outside(ax, ncols=min(4, len(remedies)))
    fig.set_layout_engine("constrained")
    return fig


def _light(ok: Any) -> str:
    if ok is None or (isinstance(ok, float) and math.isnan(ok)):
        return ""
    return "pass" if bool(ok) else "fail"


def _support_section(rep: HtmlReport, support: dict[str, Any]) -> None:
    """Outcome support first: a reader must know which figures rest on no observed outcome."""
    ext = support.get("extrapolated_groups") or []
    remedies = support.get("remedies") or []
    text = (f"A group with fewer than {support.get('min_observed')} training households with an observed "
            "outcome is EXTRAPOLATED: the model never saw how such households repay. ")
    text += (f"Extrapolated: {', '.join(ext)}. " if ext else "No protected group is extrapolated. ")
    text += f"Remedies applied: {', '.join(remedies) if remedies else 'none'}."
    if support.get("age_use"):
        text += f" Age in the model: {support['age_use']}."
    rep.add_section("Outcome support (extrapolated groups)", text)
    groups = pd.DataFrame(support.get("groups") or [])
    if len(groups):
        groups = groups.assign(extrapolated=groups["extrapolated"].map(lambda v: "EXTRAPOLATED" if v else ""),
                               unseen_columns=groups["unseen_columns"].map(lambda v: ", ".join(v[:6])
                                                                           + (" ..." if len(v) > 6 else "")))
        rep.add_table(groups, caption="Training households and observed outcomes per protected group; "
                                      "columns whose values the group has but no observed household had")
    head = pd.DataFrame(support.get("headline") or [])
    if len(head):
        rep.add_table(head, caption="Both ways: predicted / true and predicted / observed mean PD; the "
                                    "information ceiling's predicted / true (the best PD these columns allow: "
                                    "what it misses, no model on them reaches); worst equal-risk gaps with their "
                                    "sign (negative = protected group gets less)")
    costs = pd.DataFrame(support.get("remedy_costs") or [])
    if len(costs):
        rep.add_table(costs, caption="Each remedy's cost: hold-out AUC and expected loss")
    neutral = support.get("neutralised_items") or {}
    if neutral:
        rep.add_table(pd.DataFrame([{"item": k, **v} for k, v in neutral.items()]),
                      caption="Rule items not applied by the model (never varied among observed outcomes)")


# --------------------------------------------------------------------------- verdict
PROGRAMME_TARGETS: dict[str, float] = {"approval_gap_max": TARGET_GAP, "line_gap_max": TARGET_LINE_GAP,
                                       "parity_ratio_min": 0.80}
"""The programme's fairness targets: the headline's reference. A caller's limits may
tighten them, never loosen them (a looser one is shown and not applied)."""

DEFAULT_LIMITS: dict[str, float] = {
    **PROGRAMME_TARGETS,
    # promotion gates on the model's own excess over the information ceiling (synthetic truth)
    "approval_excess_max": EXCESS_LIMITS["approval"], "line_excess_max": EXCESS_LIMITS["line"],
    # promotion gates on observed outcomes (any labelled sample without the truth)
    "group_calibration_p_min": 0.01, "tpr_gap_max": TARGET_GAP,
}
"""Every limit the report judges by; keys as ``registry.gates.DEFAULT_THRESHOLDS``."""

NO_TRUTH = "not applicable: no ground truth (equal-risk gaps need the synthetic true PD)"
TRUTH_GATES = "not applicable: the ground truth's excess gates apply"


def _effective_limits(limits: Mapping[str, float] | None) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """Limits applied, and the caller's looser-than-target limits that were refused."""
    lim = {**DEFAULT_LIMITS, **{k: float(v) for k, v in (limits or {}).items() if k in DEFAULT_LIMITS}}
    refused = {}
    for k, target in PROGRAMME_TARGETS.items():
        looser = lim[k] < target if k.endswith("_min") else lim[k] > target
        if looser:
            refused[k] = (target, lim[k])
            lim[k] = target
    return lim, refused


def _judge(value: Any, op: str, limit: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "undecided"
    return "pass" if (value <= limit if op == "<=" else value >= limit) else "fail"


def fairness_verdict(data: Mapping[str, Any], limits: Mapping[str, float] | None = None
                     ) -> tuple[str, list[dict[str, Any]]]:
    """The banner's word and one row per check (``check, kind, value, limit, result``).

    Kinds: ``programme target`` (the headline: equal-risk gaps 0.05 / 10 %, parity 0.8),
    ``promotion gate`` (what ``registry.gates`` checks: the model's excess over the
    information ceiling with the truth, observed-outcome calibration and TPR gap without
    it, and parity), ``information`` (the ceiling: the part only more data can close).
    Word: ``fail`` when a promotion gate fails; ``target missed`` when only a programme
    target is missed (the report never shows a green pass then); ``undecided`` when an
    applicable check could not be computed; else ``pass``.
    """
    lim, _ = _effective_limits(limits)
    er = data.get("equal_risk") or {}
    obs = data.get("observed") or {}
    parity = (data.get("demographic_parity") or {}).get("min_ratio")
    rows: list[dict[str, Any]] = []

    def add(check: str, kind: str, value: Any, op: str | None, limit: float | None, result: str | None = None
            ) -> None:
        res = result or (_judge(value, op, limit) if op and limit is not None else "info")
        rows.append({"check": check, "kind": kind, "value": value,
                     "limit": f"{op} {limit:g}" if op and limit is not None else "", "result": res})

    truth = bool(er)
    for what, key in (("approval", "approval_gap_max"), ("line", "line_gap_max")):
        if truth:
            add(f"largest equal-risk {what} gap", "programme target", er.get(f"max_gap_{what}"), "<=", lim[key])
        else:
            add(f"largest equal-risk {what} gap", "programme target", None, "<=", lim[key], NO_TRUTH)
    add("smallest demographic parity ratio", "programme target + promotion gate", parity, ">=",
        lim["parity_ratio_min"])
    for what, key in (("approval", "approval_excess_max"), ("line", "line_excess_max")):
        if truth:
            add(f"information ceiling: largest {what} gap of the best model these columns allow", "information",
                er.get(f"ceiling_max_gap_{what}"), None, None)
            add(f"model's own excess over the ceiling ({what}, both signs)", "promotion gate",
                er.get(f"max_excess_{what}"), "<=", lim[key])
        else:
            add(f"model's own excess over the ceiling ({what}, both signs)", "promotion gate", None, "<=",
                lim[key], NO_TRUTH)
    for check, key, op, lkey in (("smallest within-group calibration p (observed outcomes)",
                                  "min_calibration_p", ">=", "group_calibration_p_min"),
                                 ("largest TPR gap: approval of repaid households (observed outcomes)",
                                  "max_tpr_gap", "<=", "tpr_gap_max")):
        if truth:
            add(check, "information", obs.get(key), op, lim[lkey], TRUTH_GATES if obs else "not computed")
        else:
            add(check, "promotion gate", obs.get(key) if obs else None, op, lim[lkey])
    gates = [r["result"] for r in rows if "gate" in r["kind"]]
    targets = [r["result"] for r in rows if "target" in r["kind"]]
    if "fail" in gates:
        word = "fail"
    elif "fail" in targets:
        word = "target missed"
    elif "undecided" in gates + targets:
        word = "undecided"
    else:
        word = "pass"
    return word, rows


def _banner_text(data: Mapping[str, Any], rows: list[dict[str, Any]]) -> str:
    """The headline in words: each gap against the programme's target, split into the
    ceiling (only more data closes it) and the model's own excess (what the gate checks)."""
    er = data.get("equal_risk") or {}
    parts = []
    if er:
        for what, target in (("approval", rows[0]), ("line", rows[1])):
            gap, ceil, exc = (er.get(k) for k in (f"max_gap_{what}", f"ceiling_max_gap_{what}",
                                                   f"max_excess_{what}"))
            text = f"largest equal-risk {what} gap {_num(gap)} (target {target['limit']}: {target['result']})"
            if ceil is not None:
                text += (f" = information ceiling {_num(ceil)} (only more data, e.g. exploration, closes it)"
                         f" + model's own excess up to {_num(exc)}")
            parts.append(text)
    else:
        parts.append("equal-risk gaps: " + NO_TRUTH + "; judged on observed outcomes")
    parts += [f"{r['check']} {r['result']}" for r in rows if "gate" in r["kind"]]
    return "; ".join(parts)


def _num(v: Any) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{float(v):.3f}"


def _identity_block(rep: HtmlReport, data: Mapping[str, Any], identity: Mapping[str, Any] | None,
                    limits: Mapping[str, float] | None) -> None:
    """Model identity, thresholds, override and the one verdict: what a signer reads first."""
    ident = dict(identity or {})
    word, checks = fairness_verdict(data, limits)
    override = ident.pop("override", None)
    system = data.get("primary_system")
    ext = (data.get("outcome_support") or {}).get("extrapolated_groups") or []
    text = (f" {system}: " + _banner_text(data, checks)
            + (f". Promoted by override: {override}" if override else "")
            + (f". Decided by EXTRAPOLATION (no observed outcomes to check against): {', '.join(ext)}"
               if ext else ""))
    rep.add_verdict(word, text)
    shown = {"model": ident.pop("model", "not given"),
             "version": ident.pop("version", "not registered yet (the report is written before registration)"),
             "run": ident.pop("run_id", "not given"),
             **({"data fingerprint": ident.pop("data_fingerprint")} if "data_fingerprint" in ident else {}),
             "date (UTC)": ident.pop("date", _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M")),
             "system judged": system,
             "override": override or "none",
             **{str(k).replace("_", " "): v for k, v in ident.items()}}
    _, refused = _effective_limits(limits)
    if refused:
        shown["limits looser than the programme targets (not applied)"] = "; ".join(
            f"{k.replace('_', ' ')}: asked {b:g}, target {a:g} applied" for k, (a, b) in refused.items())
    rep.add_key_values(shown, caption="Model identity / 模型信息")
    rep.add_table(pd.DataFrame(checks), caption="Programme targets, promotion gates and the information ceiling "
                                                "/ 目标、晋升门槛与信息上限")


# --------------------------------------------------------------------------- writer
def _disparity_table(audit: AuditResult) -> pd.DataFrame:
    d = audit.disparities.pivot_table(index=["system", "feature"], columns="metric", values="value",
                                      aggfunc="first").reset_index()
    if "four_fifths_pass" in d:
        d["four_fifths_pass"] = d["four_fifths_pass"].map(_light)
    d["feature"] = d["feature"].map(feature_label)
    return d.rename(columns=METRIC_LABELS)


def _per_group_tables(audit: AuditResult) -> dict[str, pd.DataFrame]:
    """One narrow table per system (the 60-row wide table split), human labels."""
    bg = audit.by_group
    cols = ["approval_rate", "mean_line", "default_rate", "tpr", "fpr", "mean_pd", "mean_true_pd"]
    wide = bg[bg.metric.isin(cols)].pivot_table(index=["system", "feature", "group", "n"], columns="metric",
                                                values="value", aggfunc="first").reset_index()
    out = {}
    for system, t in wide.groupby("system", sort=False):
        t = t.drop(columns="system")
        t["feature"] = t["feature"].map(lambda f: FEATURE_LABELS.get(f, {}).get("en", f))
        t["group"] = [f"{group_label(g)} / {group_label(g, 'zh')}" if "formerly" in str(g) or "other" in str(g)
                      else group_label(g) for g in t["group"]]
        out[str(system)] = t[[c for c in ["feature", "group", "n", *cols] if c in t]].rename(columns=METRIC_LABELS)
    return out


def build_fairness_html(audit: AuditResult, gaps: EqualRiskResult | None, tradeoff: pd.DataFrame | None = None,
                        reject: pd.DataFrame | None = None, title: str = "Fairness report",
                        primary_system: str | None = None, identity: Mapping[str, Any] | None = None,
                        limits: Mapping[str, float] | None = None,
                        support: dict[str, Any] | None = None, ceiling: CeilingSplit | None = None,
                        observed: dict[str, Any] | None = None) -> HtmlReport:
    """Assemble the HTML report (not yet written).

    ``identity``: ``model``, ``version``, ``run_id``, ``data_fingerprint``, ``date``,
    ``override`` (the reason, when gates were overridden) and any other key shown as is.
    ``limits``: the promotion gates' fairness thresholds (``approval_gap_max``,
    ``line_gap_max``, ``parity_ratio_min``, ``approval_excess_max``, ...), defaults
    :data:`DEFAULT_LIMITS`; the programme targets are never loosened.
    ``ceiling``: :func:`~village_credit.fairness.ceiling.split_gaps` of the equal-risk gaps;
    ``observed``: :func:`~village_credit.fairness.observed.observed_outcome_evidence`.
    """
    p = audit.params
    rep = HtmlReport(title, subtitle=f"{p.get('n')} households; systems: {', '.join(audit.systems)}; "
                                     f"bootstrap {p.get('n_boot')} replicates, seed {p.get('seed')}")
    data = fairness_json(audit, gaps, tradeoff, reject, primary_system=primary_system, support=support,
                         ceiling=ceiling, observed=observed)
    _identity_block(rep, data, identity, limits)
    rep.add_section("How to read", "Positive outcome = no default within 12 months; positive decision = approved. "
                    "TPR = approval rate of households that did not default; FPR = approval rate of households that "
                    "did default. Disparities compare groups with at least "
                    f"{p.get('min_group')} households; smaller groups are shown with wide intervals.")
    if support is not None:
        _support_section(rep, support)
    rep.add_section("Disparities")
    rep.add_table(_disparity_table(audit),
                  caption="Demographic parity ratio / difference, equalized odds difference, four-fifths rule")
    figs = _figure_data(audit, gaps, tradeoff, reject)
    rep.add_section("Approval rate by group")
    for f in [f for f in CHART_FEATURES if f in set(figs["approval_by_group"].feature)]:
        rep.add_figure(_approval_chart(figs["approval_by_group"], f), caption=f"Approval rate by {feature_label(f)}")
    for system, t in _per_group_tables(audit).items():
        rep.add_table(t, caption=f"Per-group metrics: {system}", yuan=(METRIC_LABELS["mean_line"],))
    if observed is not None:
        _observed_section(rep, observed)
    if gaps is not None:
        rep.add_section("Equal risk, equal treatment (available on synthetic data only)",
                        "Within deciles of the true PD (the generator's truth; a real sample has none), the "
                        "approval-rate gap (rate points) and the relative mean-line gap between protected "
                        f"households and others; programme targets |approval gap| <= {TARGET_GAP:.0%}, "
                        f"|line gap| <= {TARGET_LINE_GAP:.0%}.")
        s = pd.DataFrame([{"system": k, **{m: v for m, v in val.items() if m != "by_comparison"},
                           "passes_5pct": _light(val["passes_5pct"])} for k, val in gaps.summary.items()])
        rep.add_table(s.rename(columns=METRIC_LABELS), caption="Equal-risk summary per system")
        rep.add_figure(_gap_chart(gaps.table, "gap_approval", "approval gap (protected - others)"),
                       caption="Approval-rate gap by true-PD decile")
        if gaps.table.gap_line.notna().any():
            rep.add_figure(_gap_chart(gaps.table, "gap_line", "relative line gap"),
                           caption="Mean credit-line gap by true-PD decile")
    if ceiling is not None:
        _ceiling_section(rep, ceiling)
    if tradeoff is not None and len(tradeoff):
        rep.add_section("Mitigation trade-off",
                        "No option is best on every axis: compare the gap, the risk of approved households and the "
                        "approval rate each option keeps.")
        rep.add_table(tradeoff.rename(columns=tradeoff_labels(tradeoff.columns)),
                      caption="Per option: ranking, risk of approved, access, gaps")
        rep.add_figure(_tradeoff_chart(tradeoff), caption="Trade-off: equal-risk gap vs risk, and access")
    if reject is not None and len(reject):
        rep.add_section("Missing outcomes (reject inference)",
                        "Models trained on granted households only vs remedies, scored on every household and "
                        "compared with the true PD. Negative bias = risk underestimated.")
        rep.add_table(reject, caption="Selection-bias study")
        rep.add_figure(_reject_chart(reject), caption="Bias against the true PD by group and remedy")
    return rep


def _ceiling_section(rep: HtmlReport, ceiling: CeilingSplit) -> None:
    """Each gap = information ceiling + the model's own excess (fairness/ceiling.py)."""
    rep.add_section("Information ceiling: which part of a gap only more data can close",
                    "The ceiling system decides with the best PD these columns allow (a model fitted to the "
                    "true PD on the same inputs, cross-fitted by village) through the same policy. Its gaps are "
                    "what no model on these columns can avoid; exploration and richer records close them. The "
                    "model's own excess (its gap minus the ceiling's, cell by cell, both signs) is what the "
                    f"promotion gates check: |excess| <= {EXCESS_LIMITS['approval']:g} in approval, "
                    f"<= {EXCESS_LIMITS['line']:.0%} in line.")
    rows = [{"system": k, **{m: v[m] for m in ("max_gap_approval", "ceiling_max_gap_approval",
                                                "max_excess_approval", "max_gap_line", "ceiling_max_gap_line",
                                                "max_excess_line", "cells_checked")},
             "excess within limits": _light(v["excess_passes"])} for k, v in ceiling.summary.items()]
    rep.add_table(pd.DataFrame(rows), caption="Largest |gap| of each system, of the ceiling, and the largest "
                                              "|excess| (over checked cells)")
    t = ceiling.table
    t = t.loc[t["checked"].astype(bool), ["system", "comparison", "decile", "gap_approval", "ceiling_approval",
                                          "excess_approval", "gap_line", "ceiling_line", "excess_line"]]
    rep.add_table(t, caption="Per true-PD decile: gap = ceiling + excess (checked cells)")


def _observed_section(rep: HtmlReport, observed: dict[str, Any]) -> None:
    """Evidence any labelled sample gives: calibration within groups, parity, error-rate gaps."""
    rep.add_section("Observed outcomes (any labelled sample)",
                    f"{observed.get('n_outcomes')} households with an observed outcome "
                    f"({observed.get('n_defaults')} defaults), system {observed.get('system')}. Groups with fewer "
                    f"than {observed.get('min_outcomes')} outcomes are shown but left out of the gaps. "
                    "TPR = approval rate of households that repaid; FPR = of households that defaulted.")
    for feat, f in (observed.get("by_feature") or {}).items():
        g = pd.DataFrame(f.get("groups") or [])
        cap = (f"{feature_label(feat)}: max TPR gap {_num(f.get('max_tpr_gap'))}, max FPR gap "
               f"{_num(f.get('max_fpr_gap'))}, approval ratio {_num(f.get('min_approval_ratio'))}, line ratio "
               f"{_num(f.get('min_line_ratio'))}, smallest calibration p {_num(f.get('min_calibration_p'))}"
               + (f"; too few outcomes: {', '.join(f['thin_groups'])}" if f.get("thin_groups") else ""))
        rep.add_table(g, caption=cap)


def write_fairness_report(
    audit: AuditResult,
    gaps: EqualRiskResult | None,
    tradeoff: pd.DataFrame | None = None,
    reject: pd.DataFrame | None = None,
    out_dir: str | Path = "reports/fairness",
    *,
    title: str = "Fairness report",
    primary_system: str | None = None,
    stem: str = "fairness",
    identity: Mapping[str, Any] | None = None,
    limits: Mapping[str, float] | None = None,
    support: dict[str, Any] | None = None,
    ceiling: CeilingSplit | None = None,
    observed: dict[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write ``<stem>.html`` and ``<stem>.json`` into ``out_dir``; returns both paths.

    ``identity`` and ``limits``: see :func:`build_fairness_html` (the HTML shows them;
    the JSON stays :func:`fairness_json`, the numbers the gates read). ``support``: the
    outcome-support section (which groups are decided by extrapolation).

    Examples
    --------
    >>> from village_credit.data import GeneratorConfig, generate_households
    >>> hh = generate_households(GeneratorConfig(n_households=200, seed=7))
    >>> import tempfile
    >>> from village_credit.fairness import (fairness_audit, policy_change_systems, sensitive_frame,
    ...                                      write_fairness_report)
    >>> audit = fairness_audit(policy_change_systems(hh), sensitive_frame(hh), hh["default_12m"], n_boot=20,
    ...                        features=["elderly"])
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     html_path, json_path = write_fairness_report(audit, None, out_dir=tmp)
    ...     print(html_path.name, json_path.name)
    fairness.html fairness.json
    """
    rep = build_fairness_html(audit, gaps, tradeoff, reject, title=title, primary_system=primary_system,
                              identity=identity, limits=limits, support=support, ceiling=ceiling,
                              observed=observed)
    data = fairness_json(audit, gaps, tradeoff, reject, primary_system=primary_system, support=support,
                         ceiling=ceiling, observed=observed)
    return write_report(rep, data, out_dir, stem=stem)


def align_decisions(households: pd.DataFrame, decisions: pd.DataFrame, name: str) -> pd.DataFrame:
    """Put a decisions frame in the households' row order (by ``household_id`` when both have it)."""
    if "household_id" in decisions.columns and "household_id" in households.columns:
        d = decisions.drop_duplicates("household_id").set_index("household_id")
        missing = ~households["household_id"].isin(d.index)
        if missing.any():
            raise FairnessInputError(f"decisions {name!r} lack {int(missing.sum())} household(s) of the "
                                     "household table (by household_id)")
        return d.loc[households["household_id"].to_numpy()].reset_index()
    if len(decisions) != len(households):
        raise FairnessInputError(f"decisions {name!r} have {len(decisions)} rows, households {len(households)}; "
                                 "add household_id to align them")
    return decisions.reset_index(drop=True)


def run_fairness(
    households: pd.DataFrame,
    decisions: dict[str, pd.DataFrame] | None = None,
    *,
    policies: tuple[str, ...] = (),
    policy_age_max: int = ELDERLY_AGE,
    out_dir: str | Path | None = None,
    n_boot: int = 200,
    seed: int = 0,
    min_group: int = 30,
    min_count: int = 50,
    primary_system: str | None = None,
    identity: Mapping[str, Any] | None = None,
    limits: Mapping[str, float] | None = None,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Audit, equal-risk check, trade-off table and report for decision frames and/or policies.

    ``households`` must carry ``head_age``, ``formerly_poor`` and ``default_12m``;
    ``true_pd`` enables the equal-risk check. Returns ``{"audit", "gaps", "tradeoff",
    "html", "json"}`` (paths None when ``out_dir`` is None). ``progress``: called
    ``(step, done, total)`` before each step (:mod:`village_credit.reporting.progress`).
    """
    hh = households.reset_index(drop=True)
    if "default_12m" not in hh.columns:
        raise FairnessInputError("households lack 'default_12m' (the observed outcome) needed by the audit")
    steps = Steps(progress, total=5)
    steps("decision systems")
    sens = sensitive_frame(hh, policy_age_max)
    systems = list(policy_change_systems(hh, policies)) if policies else []
    for name, frame in (decisions or {}).items():
        systems.append(DecisionSystem.from_decisions(name, align_decisions(hh, frame, name)))
    if not systems:
        raise FairnessInputError("nothing to audit: give decision frames or policies")
    tp = hh["true_pd"] if "true_pd" in hh.columns else None
    steps("audit (bootstrap)")
    audit = fairness_audit(systems, sens, hh["default_12m"], true_pd=tp, n_boot=n_boot, seed=seed,
                           min_group=min_group)
    steps("equal-risk gaps")
    gaps = equal_risk_gaps(systems, sens, tp, min_count=min_count) if tp is not None else None
    steps("trade-off table")
    trade = tradeoff_table(systems, sens, hh["default_12m"], true_pd=tp, min_count=min_count)
    html_path = json_path = None
    steps("report")
    if out_dir is not None:
        html_path, json_path = write_fairness_report(audit, gaps, trade, None, out_dir,
                                                     primary_system=primary_system, identity=identity,
                                                     limits=limits)
    steps.finish()
    return {"audit": audit, "gaps": gaps, "tradeoff": trade, "html": html_path, "json": json_path}
