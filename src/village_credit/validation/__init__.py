"""validation layer of village-credit."""
