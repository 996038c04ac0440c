"""rules layer of village-credit."""
