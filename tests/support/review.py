"""Helpers of the review and refiner tests: a coded run to review, another run of it, the dateline model's
reviews and agent tasks done here."""

from __future__ import annotations

import uuid

from dagster import build_sensor_context, materialize

from coderai_assets.defs.agents import build_agent_job, build_agent_sensor
from coderai_assets.defs.partitions import RANGE_END_TAG, RANGE_START_TAG, RUN_TAG, WORKSPACE_TAG
from coderai_assets.defs.resources import LLMResource
from coderai_assets.domain.runs import create_run
from coderai_assets.engine.llm import Extractor
from coderai_assets.storage.db import tenant_session
from coderai_assets.storage.models import Project, RunKind
from tests.fakes import (
    COUNTRIES,
    PROTEST_ANSWERS,
    ToolCallingFakeModel,
    dateline_model,
)
from tests.support.dagster import SHARD, _assets, _project, _register, _resources

# Lyon's report named as Marseille, with no quote: the value is nowhere in the text.
ANSWERS = {**PROTEST_ANSWERS, "LYON, 12 March 2024": {**PROTEST_ANSWERS["LYON, 12 March 2024"], "city": "Marseille"}}


class MisreadingLLM(LLMResource):
    def extractor(self, max_output_tokens: int | None = None) -> Extractor:
        return Extractor(ToolCallingFakeModel(messages=iter([]), answers=ANSWERS), "fake/misreading")


def recode(settings, session_factory, instance, tenant, project_id, doc_ids, llm=None) -> uuid.UUID:
    """Another full run of the project, coded by `llm` (MisreadingLLM) with the codebook as it stands."""
    with tenant_session(session_factory, tenant) as session:
        run_id = create_run(session, session.get(Project, project_id), RunKind.full, with_quotes=True)[0].id
    keys = _register(instance, project_id, doc_ids)
    ordered = [k for k in instance.get_dynamic_partitions(SHARD.partitions_name) if k in set(keys)]
    tags = {RUN_TAG: str(run_id), WORKSPACE_TAG: str(tenant), RANGE_START_TAG: ordered[0], RANGE_END_TAG: ordered[-1]}
    result = materialize(
        _assets(settings, "validated_rows"),
        instance=instance,
        tags=tags,
        resources=_resources(settings, llm or MisreadingLLM()),
    )
    assert result.success
    return run_id


def coded_run(
    client,
    settings,
    session_factory,
    instance,
    files,
    llm: LLMResource | None = None,
) -> tuple[uuid.UUID, uuid.UUID, list[uuid.UUID]]:
    """(project, run, documents): the demo reports coded by `llm` (MisreadingLLM) in the logged-in client's
    workspace."""
    tenant = uuid.UUID(client.get("/auth/me").json()["workspaces"][0]["id"])
    project_id, doc_ids = _project(session_factory, tenant, settings, files)
    keys = _register(instance, project_id, doc_ids)
    with tenant_session(session_factory, tenant) as session:
        run_id = create_run(session, session.get(Project, project_id), RunKind.full, with_quotes=True)[0].id
    ordered = [k for k in instance.get_dynamic_partitions(SHARD.partitions_name) if k in set(keys)]
    tags = {RUN_TAG: str(run_id), WORKSPACE_TAG: str(tenant), RANGE_START_TAG: ordered[0]}
    result = materialize(
        _assets(settings, "validated_rows"),
        instance=instance,
        tags={**tags, RANGE_END_TAG: ordered[-1]},
        resources=_resources(settings, llm or MisreadingLLM()),
    )
    assert result.success
    return project_id, run_id, doc_ids


class DatelineLLM(LLMResource):
    def extractor(self, max_output_tokens: int | None = None) -> Extractor:
        return Extractor(dateline_model(), "fake/dateline")


def _do_tasks(settings, instance, client) -> list[dict]:
    """One tick of the agent sensor, and its Dagster runs done in process: the client's tasks as the API then shows
    them. The sensor sees every workspace's queued tasks; another test's are left alone (the client cannot read
    them), so a test's count of its tasks does not depend on the tests before it."""
    job = build_agent_job(settings)
    sensor = build_agent_sensor(job)
    resources = _resources(settings, DatelineLLM())
    with build_sensor_context(instance=instance, resources={"db": resources["db"]}) as context:
        result = sensor(context)
    done = []
    for request in result.run_requests:
        task_id = request.tags["coderai/agent_task_id"]
        if client.get(f"/agent-tasks/{task_id}").status_code == 404:
            continue  # another workspace's
        assert job.execute_in_process(instance=instance, tags=request.tags, resources=resources).success
        done.append(client.get(f"/agent-tasks/{task_id}").json())
    return done


def _review_cities(client, run_id) -> None:
    """The reviewer: every city wrong (the model gave the country), with the city; everything else correct."""
    values = client.get(f"/runs/{run_id}/values", params={"limit": 500}).json()["items"]
    truth = {country: city for city, country in COUNTRIES.items()}
    for value in values:
        if value["variable"] == "city" and value["value"] in truth:
            body = {"verdict": "wrong", "corrected_value": truth[value["value"]], "note": "the city, not the country"}
        else:
            body = {"verdict": "correct"}
        assert client.put(f"/values/{value['id']}/feedback", json=body).status_code == 200
