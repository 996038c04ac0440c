"""Fairness layer: how elderly and formerly poor households are treated, shown before promotion.

Takes *decisions* (approved, line, rate, PD per household), never models, so rule points,
the GBM, the blend and any mitigated variant are audited with the same code:

* :func:`sensitive_frame`: age bands, the policy's age cutoff, formerly-poor status, intersection;
* :func:`fairness_audit`: fairlearn's metrics per group (``MetricFrame``'s figures), disparities, bootstrap CIs;
* :func:`equal_risk_gaps`: approval and line gaps within true-PD deciles (synthetic truth);
* :func:`ceiling_system` and :func:`split_gaps`: the information ceiling (the best model the
  columns allow, fitted to the truth) and each gap split into ceiling + the model's own excess;
* :func:`group_calibration` and :func:`observed_outcome_evidence`: calibration within each
  protected group, parity and TPR/FPR gaps from observed outcomes (any labelled sample);
* :func:`selection_bias_study`: training on granted households only vs reject-inference remedies;
* :func:`infer_rejects`: the training sample (rows, labels, weights) of one remedy, for any model;
* :func:`tradeoff_table` and the mitigation options (policy change, ThresholdOptimizer,
  ExponentiatedGradient);
* :func:`support_diagnostics`, :func:`headline`, ``support.exploration_design``: which groups
  are decided without any observed outcome, the figures both ways (predicted / true and
  predicted / observed PD), and the exploration sample that would fix it;
* :func:`write_fairness_report`: HTML + JSON (the JSON is what the promotion gates read).

Result classes (``audit.AuditResult``, ``equal_risk.EqualRiskResult``), the input error
(``groups.FairnessInputError``, a ``VillageCreditError``) and helpers used only here or
in tests are reached through their modules.
"""

from village_credit.fairness.audit import DecisionSystem, fairness_audit
from village_credit.fairness.calibration import group_calibration
from village_credit.fairness.ceiling import ceiling_system, split_gaps
from village_credit.fairness.equal_risk import equal_risk_gaps
from village_credit.fairness.groups import sensitive_frame
from village_credit.fairness.mitigation import (
    combined_groups,
    policy_change_systems,
    threshold_optimizer_system,
    tradeoff_table,
)
from village_credit.fairness.observed import observed_outcome_evidence
from village_credit.fairness.reject_inference import infer_rejects, selection_bias_study
from village_credit.fairness.report import fairness_json, write_fairness_report
from village_credit.fairness.support import expected_loss, headline, support_diagnostics

__all__ = [
    "DecisionSystem",
    "ceiling_system",
    "combined_groups",
    "equal_risk_gaps",
    "expected_loss",
    "fairness_audit",
    "fairness_json",
    "group_calibration",
    "headline",
    "infer_rejects",
    "observed_outcome_evidence",
    "policy_change_systems",
    "selection_bias_study",
    "sensitive_frame",
    "split_gaps",
    "support_diagnostics",
    "threshold_optimizer_system",
    "tradeoff_table",
    "write_fairness_report",
]
