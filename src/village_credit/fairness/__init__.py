"""fairness layer of village-credit."""
