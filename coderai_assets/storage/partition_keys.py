"""Partition keys, shard placement and the tags Dagster runs carry, without Dagster: the facade assigns shards and
must not import Dagster, and the pipeline reads a run's tags."""

from __future__ import annotations

import uuid
import zlib

RUN_TAG = "coderai/run_id"
# The run's attempt (POST /runs/{id}/retry raises it): the sensors look only at the current attempt's Dagster runs.
ATTEMPT_TAG = "coderai/attempt"
PROJECT_TAG = "coderai/project_id"
# Dagster's concurrency key (dagster.yaml: one run per value): `<project>:<part>`, so the parts of one run go in
# parallel while anything else on the same part of the project waits.
SLOT_TAG = "coderai/slot"
WORKSPACE_TAG = "coderai/workspace_id"
AGENT_TASK_TAG = "coderai/agent_task_id"  # the refiner's or co-pilot's task a Dagster run does
PROJECT_NAME_TAG = "coderai/project"
WORKSPACE_NAME_TAG = "coderai/workspace"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def shard_for(project_id: uuid.UUID, count: int) -> int:
    """Where a new project goes: spread by its id, stable for a given count."""
    return zlib.crc32(project_id.bytes) % count


def document_key(project_id: uuid.UUID, document_id: uuid.UUID) -> str:
    return f"{project_id.hex}-{document_id.hex}"


def parse_document_key(key: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    """(project id, document id) of a partition key, or None for a key that is not one of ours."""
    project, _, document = key.partition("-")
    try:
        return uuid.UUID(hex=project), uuid.UUID(hex=document)
    except ValueError:
        return None


def project_partition(project_id: uuid.UUID) -> str:
    return project_id.hex
