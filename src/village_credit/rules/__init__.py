"""Rule-based points: the programmes' standards as declarative, validated policies.

Public API::

    load_policy(name_or_path) -> Policy         list_policies() -> list[str]
    score_rules(households, policy, eval_date=None) -> RuleScores
    programme_report(households, decisions, outcome=None) -> ProgrammeReport
"""

from village_credit.rules.engine import DECISION_COLUMNS, RuleScores, item_points, score_rules
from village_credit.rules.policy import (
    CODE_SEP,
    GRADE_BANDS,
    Policy,
    list_policies,
    load_policy,
)
from village_credit.rules.report import (ProgrammeReport, ReportStandard, add_village_sums, programme_report,
                                         report_from_village_sums, village_sums)

__all__ = [
    "CODE_SEP",
    "DECISION_COLUMNS",
    "GRADE_BANDS",
    "Policy",
    "ProgrammeReport",
    "ReportStandard",
    "RuleScores",
    "item_points",
    "list_policies",
    "load_policy",
    "programme_report",
    "add_village_sums",
    "report_from_village_sums",
    "village_sums",
    "score_rules",
    "split_codes",
]


def split_codes(codes: str) -> list[str]:
    """``'veto_crime;veto_cult'`` -> ``['veto_crime', 'veto_cult']`` ('' -> [])."""
    return [c for c in codes.split(CODE_SEP) if c]
