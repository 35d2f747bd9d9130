"""One trace from the API request that starts a run, through the run worker, to each model call."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from coderai_assets.storage.db import tenant_session
from coderai_assets.storage.models import Run
from coderai_assets.tracing import TRACEPARENT_TAG
from tests.support.api import login_as
from tests.support.runs import ANSWER, SlowModel, _code, _run

_EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    """An SDK provider with an in-memory exporter, as a collector would have (set once per process: OpenTelemetry
    allows one global provider)."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    return _EXPORTER


def test_the_request_that_starts_a_run_hands_its_trace_to_the_run(
    spans, database, settings, session_factory, demo_files
):
    from coderai_api.main import create_app

    spans.clear()
    with TestClient(create_app(settings), base_url="http://test/api/v1") as client:
        login_as(client, f"trace-{uuid.uuid4().hex[:8]}@example.org")
        project = client.post("/projects", json={"name": "Traced"}).json()
        client.post(f"/projects/{project['id']}/documents", files=[("files", ("a.txt", demo_files[0].read_bytes()))])
        run = client.post(f"/projects/{project['id']}/runs", json={"kind": "full"}).json()
        tenant = uuid.UUID(client.get("/auth/me").json()["workspaces"][0]["id"])
    (request,) = [s for s in spans.get_finished_spans() if s.name == "POST /api/v1/projects/{project_id}/runs"]
    with tenant_session(session_factory, tenant) as session:
        carrier = session.get(Run, uuid.UUID(run["id"])).trace_context
    assert carrier["traceparent"].split("-")[1] == format(request.context.trace_id, "032x")


def test_a_run_continues_the_trace_down_to_each_model_call(
    spans,
    session_factory,
    tenant,
    settings,
    instance,
    long_files,
):
    settings = settings.model_copy(update={"chunk_chars": 1000})
    model = SlowModel(messages=iter([]), answers={"*": ANSWER})
    _, doc_ids, keys, run_id = _run(session_factory, tenant, settings, instance, long_files[:2])
    trace_id, parent_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    spans.clear()
    tags = {TRACEPARENT_TAG: f"00-{trace_id}-{parent_id}-01"}
    assert _code(settings, instance, tenant, run_id, keys, model, tags).success
    finished = spans.get_finished_spans()
    (run_span,) = [s for s in finished if s.name == "coderai.run"]
    documents = [s for s in finished if s.name == "coderai.document"]
    calls = [s for s in finished if s.name == "llm.call"]
    assert format(run_span.context.trace_id, "032x") == trace_id
    assert format(run_span.parent.span_id, "016x") == parent_id
    assert len(documents) == 2 and all(d.parent.span_id == run_span.context.span_id for d in documents)
    assert len(calls) == len(model.prompts) >= 6
    document_ids = {d.context.span_id for d in documents}
    assert all(c.parent.span_id in document_ids and c.context.trace_id == run_span.context.trace_id for c in calls)
    assert all(c.attributes["gen_ai.usage.input_tokens"] > 0 for c in calls)
