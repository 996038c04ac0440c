"""explain layer of village-credit."""
