"""village-credit: credit scoring for rural whole-village credit programmes.

Rule-based points standards as declarative policies, blended with gradient-boosted
default prediction, explained, checked for fairness towards elderly and formerly
poor households, and promoted through MLflow gates.
"""

__version__ = "0.1.0"
