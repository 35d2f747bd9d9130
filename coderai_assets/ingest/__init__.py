"""Ingestion: a file's bytes become checked, parsed text with chunks that carry character offsets."""
