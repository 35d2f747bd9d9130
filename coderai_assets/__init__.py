"""CoderAI pipeline: ingestion, extraction, post-processing and export, orchestrated by Dagster."""
