"""village-credit: credit scoring for rural whole-village credit programmes.

Rule-based points standards as declarative policies, blended with gradient-boosted
default prediction, explained, checked for fairness towards elderly and formerly
poor households, and promoted through MLflow gates.
"""

__version__ = "0.1.0"


def __getattr__(name: str):  # PEP 562: the estimator at the root without importing models eagerly
    if name == "CreditScoreClassifier":
        from village_credit.models.estimator import CreditScoreClassifier

        return CreditScoreClassifier
    raise AttributeError(f"module 'village_credit' has no attribute {name!r}")
