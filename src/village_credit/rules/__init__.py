"""Rule-based points: the programmes' standards as declarative, validated policies.

Public API (the names used outside this subpackage)::

    load_policy(name_or_path) -> Policy         list_policies() -> list[str]
    score_rules(households, policy, eval_date=None) -> RuleScores
    programme_report(households, decisions, outcome=None) -> ProgrammeReport
    village_sums / add_village_sums / report_from_village_sums  (chunked reports)

The policy file format is declared in :mod:`village_credit.rules.policy_format`
(JSON Schema: ``policy_json_schema()``); grade order and policy age limits in
:mod:`village_credit.rules.grades`.

>>> sorted(list_policies())[:2]
['jinxiang_2022', 'jinxiang_2022_no_age_cutoff']
"""

from village_credit.rules.engine import RuleScores, score_rules
from village_credit.rules.policy import Policy, list_policies, load_policy
from village_credit.rules.report import (
    add_village_sums,
    programme_report,
    report_from_village_sums,
    village_sums,
)

__all__ = [
    "Policy",
    "RuleScores",
    "add_village_sums",
    "list_policies",
    "load_policy",
    "programme_report",
    "report_from_village_sums",
    "score_rules",
    "village_sums",
]
