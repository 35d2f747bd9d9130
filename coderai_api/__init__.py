"""CoderAI's HTTP facade: REST under /api/v1 for the web frontend; it drives Dagster, never the other way round."""
