"""registry layer of village-credit."""
