"""What is stored: the data model, sessions with the tenant set, file storage, runs, specifications, datasets and
their export files, partition keys."""
