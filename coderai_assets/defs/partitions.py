"""The fixed shape of the asset graph: shards, their partitions, job names and partition keys
(docs/decisions.md: asset graph).

Every project is pinned to one shard when it is created. A shard is one dynamic partitions definition holding the
documents of its projects, keyed `<project hex>-<document hex>` ([0-9a-f-] only, so Dagster's range syntax and UI
never trip on a key), and one asset chain. With one shard (the default) the graph is the plain chain
`parsed_document -> extractions -> validated_rows -> export`; more shards prefix it with `shard<N>`. Exports are
partitioned by project, in one definition shared by every shard.
"""

from __future__ import annotations

from dataclasses import dataclass

from dagster import AssetKey, DynamicPartitionsDefinition

from coderai_assets.storage.partition_keys import (
    AGENT_TASK_TAG,
    ATTEMPT_TAG,
    PROJECT_NAME_TAG,
    PROJECT_TAG,
    RANGE_END_TAG,
    RANGE_START_TAG,
    RUN_TAG,
    SLOT_TAG,
    WORKSPACE_NAME_TAG,
    WORKSPACE_TAG,
    document_key,
    parse_document_key,
    project_partition,
    shard_for,
)

__all__ = [
    "AGENT_TASK_TAG",
    "ATTEMPT_TAG",
    "PROJECT_NAME_TAG",
    "PROJECT_TAG",
    "RANGE_END_TAG",
    "RANGE_START_TAG",
    "RUN_TAG",
    "SLOT_TAG",
    "WORKSPACE_NAME_TAG",
    "WORKSPACE_TAG",
    "Shard",
    "document_key",
    "parse_document_key",
    "project_partition",
    "shard_for",
    "shards",
]

PROJECTS_PARTITIONS = "projects"
GROUP = "coding"

projects_partitions = DynamicPartitionsDefinition(name=PROJECTS_PARTITIONS)


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    @property
    def prefix(self) -> list[str]:
        return [] if self.count == 1 else [f"shard{self.index}"]

    @property
    def suffix(self) -> str:
        return "" if self.count == 1 else f"_shard{self.index}"

    def asset_key(self, name: str) -> AssetKey:
        return AssetKey([*self.prefix, name])

    @property
    def partitions_name(self) -> str:
        return f"documents{self.suffix}"

    @property
    def partitions(self) -> DynamicPartitionsDefinition:
        return DynamicPartitionsDefinition(name=self.partitions_name)

    @property
    def documents_job(self) -> str:
        return f"code_documents{self.suffix}"

    @property
    def export_job(self) -> str:
        return f"export_dataset{self.suffix}"

    @property
    def group(self) -> str:
        return f"{GROUP}{self.suffix}"


def shards(count: int) -> list[Shard]:
    return [Shard(i, count) for i in range(count)]
