"""Per-project assets: parsed_document -> extractions -> validated_rows (one partition per document) -> export."""
