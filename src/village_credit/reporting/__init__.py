"""reporting layer of village-credit."""
