"""models layer of village-credit."""
