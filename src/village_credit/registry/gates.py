"""Promotion gates: every check a model must pass before it may become ``@champion``.

A gate compares one number with one threshold. Missing or non-numeric evidence is a
**failed** gate, never a silent pass: a model whose fairness audit was not run has
not shown that it is fair.

Expected ``evidence`` (one dict per model version; produced by the validation and
fairness modules, recorded by :func:`village_credit.registry.promotion.promote`)::

    {
      "discrimination": {"auc": 0.78, "ks": 0.41},          # on the hold-out
      "calibration": {"ece": 0.012, "hosmer_lemeshow_p": 0.34},
      "stability": {"score_psi": 0.02,                       # hold-out vs training
                    "feature_psi": {"age": 0.01, ...}},      # or "max_feature_psi": 0.04
      "fairness": <the fairness module's JSON report>,       # see FAIRNESS_KEYS
      "schema": [{"name": "age", "type": "long"}, ...],      # model input columns;
                                                             # promote() fills it from
                                                             # the model signature
      "data_fingerprint": "vc-fp-1:...",                     # optional metadata
    }

Fairness numbers are read by dotted path from the fairness JSON; the paths are
configurable as ``thresholds["fairness_keys"]`` (defaults in ``FAIRNESS_KEYS``):
``equal_risk.max_excess_approval`` / ``equal_risk.max_excess_line`` (the model's own
largest equal-risk gap over the information ceiling, synthetic truth only),
``observed.min_calibration_p`` / ``observed.max_tpr_gap`` (observed outcomes, when
there is no truth; a gate that cannot apply passes as "not applicable: ...") and
``demographic_parity.min_ratio`` (smallest selection-rate ratio, the four-fifths rule).
A model that decides no approval (a table model without a cut-off) records why in
``demographic_parity.not_applicable`` and ``observed.approval_not_applicable``: the
parity and TPR-gap gates then say "not applicable: no cut-off declared ..." by name.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

DEFAULT_THRESHOLDS: dict[str, Any] = {
    # discrimination
    "auc_min": 0.65,
    "auc_tolerance": 0.01,  # candidate AUC may be at most this much below the champion's
    "ks_tolerance": 0.02,
    # calibration
    "ece_max": 0.03,
    "hosmer_lemeshow_p_min": 0.05,
    # stability (hold-out vs training)
    "score_psi_max": 0.10,
    "feature_psi_max": 0.25,
    # fairness (docs/fairness.md). approval_gap_max / line_gap_max are the programme's
    # targets: the fairness report's headline, never a gate a config could loosen. With
    # the synthetic truth the gates check the model's own excess over the information
    # ceiling (fairness/ceiling.py, both signs); without it, observed-outcome evidence.
    "approval_gap_max": 0.05,
    "line_gap_max": 0.10,
    "approval_excess_max": 0.02,
    "line_excess_max": 0.05,
    "group_calibration_p_min": 0.01,
    "tpr_gap_max": 0.05,
    "parity_ratio_min": 0.80,
    # the candidate's equal-risk approval gap as a share of the rule standard's gap on
    # the same households: a promoted model must treat elderly and formerly poor
    # households materially more equally than the points standard it replaces.
    "gap_vs_rules_max_ratio": 0.60,
    # schema compatibility with the champion: "exact" (same columns and types) or
    # "superset" (candidate accepts every champion column with the same type).
    "schema_mode": "exact",
    # outcome support: when True, fairness evidence without an ``outcome_support``
    # section fails; when False such (older) fairness evidence passes with a note. A
    # present section is always checked; no fairness evidence at all always fails.
    "outcome_support_required": False,
    # did the remedy work: an extrapolated group's explored households (lent to only by
    # the exploration grant) must not show a calibration gap (mean PD - observed default
    # rate) beyond this limit, i.e. the gap's CI must reach into [-limit, +limit]
    "outcome_support_calibration_max": 0.05,
}

FAIRNESS_KEYS: dict[str, str] = {
    "approval_gap": "equal_risk.max_gap_approval",
    "line_gap": "equal_risk.max_gap_line",
    "approval_excess": "equal_risk.max_excess_approval",
    "line_excess": "equal_risk.max_excess_line",
    "group_calibration_p": "observed.min_calibration_p",
    "tpr_gap": "observed.max_tpr_gap",
    "parity_ratio": "demographic_parity.min_ratio",
    "baseline_approval_gap": "equal_risk.rules.max_gap_approval",
}

_MISSING = object()


@dataclass(frozen=True)
class Gate:
    """One check: ``value <comparator> threshold`` decides ``passed``."""

    name: str
    value: float | None
    threshold: float | None
    comparator: str
    passed: bool
    detail: str = ""


@dataclass
class GateReport:
    """All gates of one evaluation; passes only if there are gates and all pass."""

    gates: list[Gate] = field(default_factory=list)
    champion_version: str | None = None

    @property
    def passed(self) -> bool:
        return bool(self.gates) and all(g.passed for g in self.gates)

    @property
    def failed(self) -> list[Gate]:
        return [g for g in self.gates if not g.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "champion_version": self.champion_version,
            "failed": [g.name for g in self.failed],
            "gates": [asdict(g) for g in self.gates],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False,
                          default=str)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "GateReport":
        return cls(gates=[Gate(**g) for g in data.get("gates", [])],
                   champion_version=data.get("champion_version"))


def _lookup(tree: Any, path: str) -> Any:
    node = tree
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _number(value: Any) -> float | None:
    """A finite float, or ``None`` for missing / non-numeric / NaN / inf evidence."""
    if value is _MISSING or value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _compare(value: float, comparator: str, threshold: float) -> bool:
    if comparator == ">=":
        return value >= threshold
    if comparator == "<=":
        return value <= threshold
    raise ValueError(f"unknown comparator {comparator!r}")


def _threshold_gate(name: str, raw: Any, comparator: str, threshold_raw: Any,
                    what: str) -> Gate:
    threshold = _number(threshold_raw)
    if threshold is None:
        return Gate(name, _number(raw), None, comparator, False,
                    f"threshold for {name} missing or not a number: {threshold_raw!r}")
    value = _number(raw)
    if value is None:
        shown = "missing" if raw is _MISSING or raw is None else f"not a finite number ({raw!r})"
        return Gate(name, None, threshold, comparator, False, f"evidence {what} {shown}")
    ok = _compare(value, comparator, threshold)
    return Gate(name, value, threshold, comparator, ok,
                f"{what} = {value:.6g} {'meets' if ok else 'fails'} {comparator} {threshold:.6g}")


def _paired_gate(name: str, metric: str, evidence: Mapping[str, Any], has_champion: bool,
                 champion_version: str | None, tolerance_raw: Any) -> Gate:
    """Candidate minus champion, **scored on one sample**, must be >= -tolerance.

    Reads ``discrimination.vs_champion`` (written by ``validate --challenger
    models:/NAME@champion``): ``{metric}_diff`` (candidate - champion on the same rows),
    for the AUC the paired DeLong CI (``auc_diff_ci``) and p-value, and the
    ``champion_version`` it was compared with, which must be the current champion. Two
    numbers from two samples are never compared.
    """
    tol = _number(tolerance_raw)
    cand = _number(_lookup(evidence, f"discrimination.{metric}"))
    if tol is None:
        return Gate(name, None, None, ">=", False, f"tolerance for {name} missing: {tolerance_raw!r}")
    if cand is None:
        return Gate(name, None, -tol, ">=", False, f"evidence discrimination.{metric} missing")
    if not has_champion:
        return Gate(name, 0.0, -tol, ">=", True,
                    f"no current champion: first model, {metric} = {cand:.6g}")
    paired = _lookup(evidence, "discrimination.vs_champion")
    hint = "validate it with `--challenger models:/<name>@champion` (both scored on one sample)"
    if not isinstance(paired, Mapping):
        return Gate(name, None, -tol, ">=", False,
                    f"no paired comparison with the champion on one sample: {hint}")
    against = paired.get("champion_version")
    if champion_version is not None and str(against) != str(champion_version):
        return Gate(name, None, -tol, ">=", False,
                    f"compared with v{against}, but the champion is v{champion_version}: {hint}")
    diff = _number(paired.get(f"{metric}_diff"))
    if diff is None:
        return Gate(name, None, -tol, ">=", False,
                    f"evidence discrimination.vs_champion.{metric}_diff missing")
    ok = diff >= -tol
    detail = (f"{metric} {cand:.6g} vs champion v{against} {cand - diff:.6g} on the same "
              f"{paired.get('n', '?')} rows: difference {diff:+.6g}, tolerance {tol:.6g}")
    ci = paired.get("auc_diff_ci") if metric == "auc" else None
    if isinstance(ci, (list, tuple)) and len(ci) == 2:
        lo, hi = _number(ci[0]), _number(ci[1])
        if lo is not None and hi is not None:
            detail += f"; paired DeLong 95% CI [{lo:+.4g}, {hi:+.4g}], p = {paired.get('auc_p_value')}"
    return Gate(name, diff, -tol, ">=", ok, detail)


def _max_feature_psi(stability: Any) -> Any:
    if not isinstance(stability, Mapping):
        return _MISSING
    if "max_feature_psi" in stability:
        return stability["max_feature_psi"]
    per = stability.get("feature_psi")
    if isinstance(per, Mapping) and per:
        nums = [_number(v) for v in per.values()]
        if any(n is None for n in nums):
            bad = [k for k, v in per.items() if _number(v) is None]
            return f"non-numeric PSI for {bad}"
        return max(nums)  # type: ignore[type-var]
    return _MISSING


def _schema_columns(schema: Any) -> dict[str, str] | None:
    """``{column: type}`` from a signature's ``inputs.to_dict()`` list (or a mapping)."""
    if isinstance(schema, Mapping):
        return {str(k): str(v) for k, v in schema.items()}
    if isinstance(schema, list) and all(isinstance(c, Mapping) and "name" in c for c in schema):
        return {str(c["name"]): str(c.get("type")) for c in schema}
    return None


def _schema_gate(evidence: Mapping[str, Any], champion: Mapping[str, Any] | None,
                 mode: str) -> Gate:
    name = "schema_compatible"
    cand = _schema_columns(evidence.get("schema"))
    if cand is None or not cand:
        return Gate(name, None, 0.0, "<=", False,
                    "candidate input schema missing (no named-column model signature)")
    if champion is None:
        return Gate(name, 0.0, 0.0, "<=", True,
                    f"no current champion: first model, {len(cand)} input columns")
    champ = _schema_columns(champion.get("schema"))
    if champ is None or not champ:
        return Gate(name, None, 0.0, "<=", False, "champion's input schema missing: cannot compare")
    missing = sorted(set(champ) - set(cand))
    changed = sorted(c for c in set(champ) & set(cand) if champ[c] != cand[c])
    extra = sorted(set(cand) - set(champ)) if mode == "exact" else []
    n = len(missing) + len(changed) + len(extra)
    parts = []
    if missing:
        parts.append(f"missing {missing}")
    if changed:
        parts.append("type changed " + ", ".join(f"{c}: {champ[c]}->{cand[c]}" for c in changed))
    if extra:
        parts.append(f"new {extra}")
    return Gate(name, float(n), 0.0, "<=", n == 0,
                "; ".join(parts) if parts else f"same {len(cand)} input columns and types ({mode})")


def evaluate_gates(
    evidence: Mapping[str, Any] | None,
    thresholds: Mapping[str, Any] | None = None,
    champion_evidence: Mapping[str, Any] | None = None,
    champion_version: str | None = None,
) -> GateReport:
    """Evaluate all gates for a candidate; ``champion_evidence=None`` means no champion yet.

    The comparisons with a champion (``auc_vs_champion``, ``ks_vs_champion``) read the
    paired comparison on one sample (``discrimination.vs_champion``), made against
    ``champion_version`` when given. ``thresholds["not_applicable"]`` (``{gate: why}``,
    declared per experiment and recorded with the model) names gates that cannot apply
    to this model: each is reported "not applicable: <why>" and does not block.

    ``thresholds`` override ``DEFAULT_THRESHOLDS`` key by key. Never raises on bad
    evidence: every problem becomes a failed gate with a detail saying why.

    >>> from village_credit.registry import evaluate_gates
    >>> evidence = {
    ...     "discrimination": {"auc": 0.80, "ks": 0.45},
    ...     "calibration": {"ece": 0.01, "hosmer_lemeshow_p": 0.40},
    ...     "stability": {"score_psi": 0.02, "max_feature_psi": 0.05},
    ...     "fairness": {"equal_risk": {"max_gap_approval": 0.01, "max_gap_line": 0.02,
    ...                                 "max_excess_approval": 0.005, "max_excess_line": 0.01,
    ...                                 "rules": {"max_gap_approval": 0.40}},
    ...                  "demographic_parity": {"min_ratio": 0.92}},
    ...     "schema": [{"name": "head_age", "type": "long"}],
    ... }
    >>> evaluate_gates(evidence).passed
    True
    >>> evidence["calibration"]["ece"] = 0.05  # predicted and observed rates 5 points apart
    >>> report = evaluate_gates(evidence)
    >>> report.passed, [(g.name, g.value, g.threshold) for g in report.failed]
    (False, [('ece_max', 0.05, 0.03)])
    """
    ev: Mapping[str, Any] = evidence if isinstance(evidence, Mapping) else {}
    th: dict[str, Any] = {**DEFAULT_THRESHOLDS, **dict(thresholds or {})}
    fkeys = {**FAIRNESS_KEYS, **dict(th.get("fairness_keys") or {})}
    champ = champion_evidence if isinstance(champion_evidence, Mapping) else None

    g: list[Gate] = [
        _threshold_gate("auc_min", _lookup(ev, "discrimination.auc"), ">=", th.get("auc_min"),
                        "discrimination.auc"),
        _paired_gate("auc_vs_champion", "auc", ev, champ is not None, champion_version,
                     th.get("auc_tolerance")),
        _paired_gate("ks_vs_champion", "ks", ev, champ is not None, champion_version,
                     th.get("ks_tolerance")),
        _threshold_gate("ece_max", _lookup(ev, "calibration.ece"), "<=", th.get("ece_max"),
                        "calibration.ece"),
        _threshold_gate("hosmer_lemeshow_p_min", _lookup(ev, "calibration.hosmer_lemeshow_p"),
                        ">=", th.get("hosmer_lemeshow_p_min"), "calibration.hosmer_lemeshow_p"),
        _threshold_gate("score_psi_max", _lookup(ev, "stability.score_psi"), "<=",
                        th.get("score_psi_max"), "stability.score_psi"),
        _threshold_gate("feature_psi_max", _max_feature_psi(ev.get("stability")), "<=",
                        th.get("feature_psi_max"), "max feature PSI"),
        *_fairness_gates(ev.get("fairness", {}), fkeys, th),
        _parity_gate(ev.get("fairness", {}), fkeys, th),
        _gap_vs_baseline_gate(ev.get("fairness", {}), fkeys, th.get("gap_vs_rules_max_ratio")),
        _schema_gate(ev, champ, str(th.get("schema_mode", "exact"))),
        _outcome_support_gate(ev.get("fairness", {}), bool(th.get("outcome_support_required", False)),
                              th.get("outcome_support_calibration_max")),
    ]
    return GateReport(gates=_not_applicable(g, th.get("not_applicable")))


def _not_applicable(gates: list[Gate], declared: Any) -> list[Gate]:
    """Gates declared not applicable to this model, said so by name (they do not block)."""
    na = {str(k): str(v) for k, v in dict(declared or {}).items()} if isinstance(declared, Mapping) else {}
    return [Gate(g.name, None, None, "n/a", True, f"not applicable: {na[g.name]}") if g.name in na else g
            for g in gates]


def _fairness_gates(fairness: Any, fkeys: Mapping[str, str], th: Mapping[str, Any]) -> list[Gate]:
    """Equal-risk excess gates with the ground truth, observed-outcome gates without it.

    With equal-risk evidence (``fkeys["approval_gap"]`` present: synthetic truth): the model's largest |excess| over the
    information ceiling, approval and line (``approval_excess_max`` / ``line_excess_max``);
    the observed-outcome gates then say "not applicable". Without it: the smallest
    within-group calibration p and the largest TPR gap on observed outcomes
    (``group_calibration_p_min`` / ``tpr_gap_max``), and the excess gates say "not
    applicable". No fairness evidence at all fails every one ("evidence ... missing").
    """
    fair = fairness if isinstance(fairness, Mapping) else {}
    if isinstance(fair.get("not_applicable"), str):
        return [Gate(name, None, _number(th.get(tkey)), "<=", True, f"not applicable: {fair['not_applicable']}")
                for name, tkey in (("fairness_approval_excess_max", "approval_excess_max"),
                                   ("fairness_line_excess_max", "line_excess_max"),
                                   ("fairness_group_calibration_p_min", "group_calibration_p_min"),
                                   ("fairness_tpr_gap_max", "tpr_gap_max"))]
    truth = _lookup(fair, fkeys["approval_gap"]) is not _MISSING  # equal-risk gaps exist only with the truth
    specs = [("fairness_approval_excess_max", "approval_excess", "<=", "approval_excess_max", True),
             ("fairness_line_excess_max", "line_excess", "<=", "line_excess_max", True),
             ("fairness_group_calibration_p_min", "group_calibration_p", ">=", "group_calibration_p_min", False),
             ("fairness_tpr_gap_max", "tpr_gap", "<=", "tpr_gap_max", False)]
    gates = []
    for name, key, op, tkey, needs_truth in specs:
        if fair and needs_truth != truth:
            why = ("no ground truth (equal-risk gaps need the synthetic true PD); observed-outcome gates apply"
                   if needs_truth else "the ground truth's equal-risk excess gates apply")
            gates.append(Gate(name, None, _number(th.get(tkey)), op, True, f"not applicable: {why}"))
            continue
        raw = _lookup(fair, fkeys[key])
        obs = fair.get("observed")
        no_decision = obs.get("approval_not_applicable") if isinstance(obs, Mapping) else None
        if key == "tpr_gap" and isinstance(no_decision, str):  # no approval decided: no TPR to compare
            gates.append(Gate(name, None, _number(th.get(tkey)), op, True, f"not applicable: {no_decision}"))
            continue
        if not needs_truth and raw is None and isinstance(obs, Mapping):  # present, nothing to decide on
            gates.append(Gate(name, None, _number(th.get(tkey)), op, False,
                              f"undecided: fewer than two protected groups with at least "
                              f"{obs.get('min_outcomes')} observed outcomes ({obs.get('n_outcomes')} in all)"))
            continue
        gates.append(_threshold_gate(name, raw, op, th.get(tkey), f"fairness.{fkeys[key]}"))
    return gates


def _parity_gate(fairness: Any, fkeys: Mapping[str, str], th: Mapping[str, Any]) -> Gate:
    """Smallest approval ratio between groups (four-fifths rule); a model that decides no
    approval (no cut-off declared) has none: "not applicable: <why>", never a missing-evidence failure."""
    fair = fairness if isinstance(fairness, Mapping) else {}
    parity = fair.get("demographic_parity")
    why = parity.get("not_applicable") if isinstance(parity, Mapping) else None
    if isinstance(why, str):
        return Gate("fairness_parity_ratio_min", None, _number(th.get("parity_ratio_min")), ">=", True,
                    f"not applicable: {why}")
    return _threshold_gate("fairness_parity_ratio_min", _lookup(fair, fkeys["parity_ratio"]), ">=",
                           th.get("parity_ratio_min"), f"fairness.{fkeys['parity_ratio']}")


def _gap_vs_baseline_gate(fairness: Any, fkeys: Mapping[str, str], max_ratio: Any) -> Gate:
    """Candidate equal-risk approval gap / the rule standard's gap must not exceed ``max_ratio``."""
    name = "fairness_gap_vs_rules"
    fair = fairness if isinstance(fairness, Mapping) else {}
    cand = _lookup(fair, fkeys["approval_gap"])
    base = _lookup(fair, fkeys["baseline_approval_gap"])
    if max_ratio is None:
        return Gate(name, None, None, "<=", False, "no threshold gap_vs_rules_max_ratio given")
    for what, v in (("candidate", cand), ("rule-standard baseline", base)):
        if not isinstance(v, (int, float)) or isinstance(v, bool) or math.isnan(float(v)):
            return Gate(name, None, float(max_ratio), "<=", False, f"evidence for the {what} gap missing")
    if float(base) <= 0:
        ok = float(cand) <= 0
        return Gate(name, 0.0 if ok else math.inf, float(max_ratio), "<=", ok,
                    "rule standard shows no gap; candidate must show none either")
    ratio = float(cand) / float(base)
    ok = ratio <= float(max_ratio)
    return Gate(name, ratio, float(max_ratio), "<=", ok,
                f"approval gap {float(cand):.4g} is {ratio:.2f} x the rule standard's {float(base):.4g}")


def _outcome_support_gate(fairness: Any, required: bool, limit_raw: Any = 0.05) -> Gate:
    """No protected group may be decided by extrapolation alone unless a remedy **worked**.

    Reads ``fairness.outcome_support`` (:func:`village_credit.fairness.support.support_diagnostics`
    plus ``remedies`` and ``explored_calibration``, see
    :func:`village_credit.fairness.support.explored_calibration`). Extrapolated groups
    (fewer observed outcomes than ``min_observed``) without a remedy fail (value: their
    number). With a remedy, each extrapolated group's explored households are the
    measure: value = the largest distance of a group's calibration-gap CI from the band
    ``[-limit, +limit]`` (0 when the CI reaches into it), which must be 0; a group with
    no explored household is not measured and fails. An override (who, why, until) is
    the other way past it.
    """
    name = "outcome_support"
    sup = _lookup(fairness if isinstance(fairness, Mapping) else {}, "outcome_support")
    if not isinstance(sup, Mapping):
        if not isinstance(fairness, Mapping) or not fairness:
            return Gate(name, None, 0.0, "<=", False, "evidence fairness missing")
        if required:
            return Gate(name, None, 0.0, "<=", False, "evidence fairness.outcome_support missing")
        return Gate(name, 0.0, 0.0, "<=", True, "no outcome-support evidence (not required)")
    ext = sup.get("extrapolated_groups")
    if not isinstance(ext, list):
        return Gate(name, None, 0.0, "<=", False, "fairness.outcome_support.extrapolated_groups missing")
    remedies = [str(r) for r in (sup.get("remedies") or [])]
    if not ext:
        return Gate(name, 0.0, 0.0, "<=", True, "every protected group has enough observed outcomes")
    if remedies:
        return _remedy_worked_gate(name, [str(e) for e in ext], remedies, sup.get("explored_calibration"),
                                   limit_raw)
    return Gate(name, float(len(ext)), 0.0, "<=", False,
                f"extrapolated without remedy (fewer than {sup.get('min_observed')} observed outcomes): "
                f"{', '.join(map(str, ext))}")


def _remedy_worked_gate(name: str, ext: list[str], remedies: list[str], cal: Any, limit_raw: Any) -> Gate:
    """The remedy measured: calibration of each extrapolated group's explored households."""
    limit = _number(limit_raw)
    head = f"extrapolated: {', '.join(ext)}; remedies applied: {', '.join(remedies)}"
    if limit is None:
        return Gate(name, None, None, "<=", False, f"{head}; no outcome_support_calibration_max given")
    if not isinstance(cal, Mapping):
        return Gate(name, None, 0.0, "<=", False,
                    f"{head}; not measured: no calibration of the explored households "
                    "(fairness.outcome_support.explored_calibration missing)")
    worst, parts, unmeasured = 0.0, [], []
    for group in ext:
        row = cal.get(group) if isinstance(cal.get(group), Mapping) else {}
        ci = row.get("gap_ci")
        lo, hi = (_number(ci[0]), _number(ci[1])) if isinstance(ci, (list, tuple)) and len(ci) == 2 else (None, None)
        if not row.get("n_explored") or lo is None or hi is None:
            unmeasured.append(group)
            continue
        beyond = max(lo - limit, -limit - hi, 0.0)
        worst = max(worst, beyond)
        parts.append(f"{group}: predicted {float(row['mean_pd']):.3f} vs observed {float(row['observed_rate']):.3f} "
                     f"on {int(row['n_explored'])} explored (gap CI [{lo:+.3f}, {hi:+.3f}])")
    if unmeasured:
        return Gate(name, None, 0.0, "<=", False,
                    f"{head}; not measured for {', '.join(unmeasured)}: no explored household with an "
                    "observed outcome" + (f"; {'; '.join(parts)}" if parts else ""))
    ok = worst <= 0.0
    return Gate(name, worst, 0.0, "<=", ok,
                f"{head}; limit +-{limit:g}: " + "; ".join(parts)
                + ("" if ok else f"; the remedy did not work: a gap CI lies {worst:.3f} beyond the limit"))
