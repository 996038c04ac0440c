"""scoring layer of village-credit."""
