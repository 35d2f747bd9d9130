"""The extraction engine, pure: codebook and prompts, the LLM client, grounding, coercion, token budgets and
evaluation. It knows nothing of the database or Dagster."""
