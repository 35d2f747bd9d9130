"""The per-document stages a run takes each document through (parse, extract, validate), their bookkeeping, and
the coder that runs them over a Dagster run's partition keys."""
