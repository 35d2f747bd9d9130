"""One dynamic partitions definition per project; a partition key is a document id (hex, [0-9a-f] only)."""

from __future__ import annotations

import uuid

from dagster import DynamicPartitionsDefinition

from coderai_assets.models import project_key


def partitions_name(project_id: uuid.UUID) -> str:
    return f"docs__{project_id.hex}"


def documents_partitions(project_id: uuid.UUID) -> DynamicPartitionsDefinition:
    return DynamicPartitionsDefinition(name=partitions_name(project_id))


def documents_job_name(project_id: uuid.UUID) -> str:
    return f"{project_key(project_id)}__documents_job"


def export_job_name(project_id: uuid.UUID) -> str:
    return f"{project_key(project_id)}__export_job"


RUN_TAG = "coderai/run_id"
PROJECT_TAG = "coderai/project_id"
