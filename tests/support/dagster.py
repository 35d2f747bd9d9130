"""Helpers of the tests that materialise the asset chain and tick the sensors on an ephemeral Dagster
instance: a project with documents, its partitions registered, a materialisation, a sensor's evaluation."""

from __future__ import annotations

import uuid

from dagster import build_sensor_context, materialize

from coderai_assets.definitions import build_definitions
from coderai_assets.defs.partitions import (
    PROJECTS_PARTITIONS,
    RUN_TAG,
    WORKSPACE_TAG,
    Shard,
    document_key,
    project_partition,
)
from coderai_assets.defs.resources import DatabaseResource, LLMResource, StorageResource, default_resources
from coderai_assets.engine.llm import Extractor
from coderai_assets.engine.variables import VariableSpec, VariableType
from coderai_assets.storage.db import tenant_session
from coderai_assets.storage.files import LocalFileStorage
from coderai_assets.storage.models import (
    Document,
    ExtractionUnit,
    Project,
    Variable,
)
from tests.fakes import PROTEST_ANSWERS, ToolCallingFakeModel


class FakeLLM(LLMResource):
    def extractor(self, max_output_tokens: int | None = None) -> Extractor:
        return Extractor(ToolCallingFakeModel(messages=iter([]), answers=PROTEST_ANSWERS), "fake/protest")


def _project(session_factory, tenant, settings, files) -> tuple[uuid.UUID, list[uuid.UUID]]:
    storage = LocalFileStorage(settings.storage_dir)
    with tenant_session(session_factory, tenant) as session:
        project = Project(
            tenant_id=tenant,
            name="Protests",
            domain_description="Protest reports.",
            extraction_unit=ExtractionUnit.document,
        )
        session.add(project)
        session.flush()
        for i, (name, type_, allowed) in enumerate(
            [
                ("city", VariableType.text, None),
                ("event_date", VariableType.date, None),
                ("participants", VariableType.integer, None),
                ("protest_type", VariableType.category, ["march", "strike", "sit-in", "rally"]),
                ("violence", VariableType.boolean, None),
            ]
        ):
            session.add(
                Variable.of(
                    VariableSpec(name=name, type=type_, allowed_values=allowed),
                    tenant_id=tenant,
                    project_id=project.id,
                    position=i,
                )
            )
        ids = []
        for path in files:
            doc_id = uuid.uuid4()
            key = f"{tenant}/{project.id}/documents/{doc_id}/original"
            storage.write(key, path.read_bytes())
            session.add(
                Document(
                    id=doc_id,
                    tenant_id=tenant,
                    project_id=project.id,
                    file_name=path.name,
                    size_bytes=path.stat().st_size,
                    sha256=uuid.uuid4().hex * 2,
                    storage_path=key,
                )
            )
            ids.append(doc_id)
        return project.id, ids


SHARD = Shard(0, 1)


def _resources(settings, llm=None) -> dict:
    return {
        "db": DatabaseResource(url=settings.database_url),
        "llm": llm or FakeLLM(),
        "files": StorageResource(root=str(settings.storage_dir)),
    }


def _assets(settings, name: str):
    """The shard's document op (code_documents, materialising the three document assets) or its export."""
    defs = build_definitions(settings, {})
    return [a for a in defs.assets if any(k.path[-1] == name for k in a.keys)]


def _register(instance, project_id, doc_ids) -> list[str]:
    keys = [document_key(project_id, d) for d in doc_ids]
    instance.add_dynamic_partitions(SHARD.partitions_name, keys)
    return keys


def _materialise(project_id, tenant, settings, instance, run_id, partition_key, which, llm=None, tags=None):
    """`which`: "documents" (the three document assets) or "export"."""
    run_tags = {RUN_TAG: str(run_id), WORKSPACE_TAG: str(tenant)} if run_id else {}
    if which == "export":
        instance.add_dynamic_partitions(PROJECTS_PARTITIONS, [project_partition(project_id)])
        partition_key = project_partition(project_id)
    return materialize(
        _assets(settings, "export" if which == "export" else "validated_rows"),
        instance=instance,
        partition_key=partition_key,
        tags={**run_tags, **(tags or {})},
        resources=_resources(settings, llm),
    )


def definitions(settings):
    return build_definitions(settings, default_resources(settings))


def _sensor(settings, name: str):
    defs = definitions(settings)
    return next(s for s in defs.get_repository_def().sensor_defs if s.name == name)


def _tick(settings, instance, name: str = "intake"):
    """One evaluation of a sensor, with what the daemon does after it: partitions added."""
    context = build_sensor_context(instance=instance, resources={"db": DatabaseResource(url=settings.database_url)})
    result = _sensor(settings, name)(context)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def _for(requests, run_id) -> list:
    """The requests of one run: other tests' runs share the database, and the sensors see every tenant."""
    return [r for r in requests if r.tags.get(RUN_TAG) == str(run_id)]


def _code(settings, instance, request):
    code_documents = next(
        a for a in definitions(settings).assets if any(k.path[-1] == "validated_rows" for k in a.keys)
    )
    return materialize(
        [code_documents],
        instance=instance,
        tags=dict(request.tags),
        resources={
            "db": DatabaseResource(url=settings.database_url),
            "llm": FakeLLM(),
            "files": StorageResource(root=str(settings.storage_dir)),
        },
    )
