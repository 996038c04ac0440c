"""data layer of village-credit."""
