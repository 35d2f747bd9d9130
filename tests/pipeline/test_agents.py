"""The refiner and the co-pilot: their rules alone, and through the API with their Dagster job and sensor (the
model is the tests' DatelineModel, which codes a city as its country until the codebook mentions the dateline)."""

from __future__ import annotations

import threading
import uuid

import pytest
from dagster import build_sensor_context
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from sqlalchemy import select

from coderai_api.main import create_app
from coderai_assets.defs.agents import build_agent_job, build_agent_sensor
from coderai_assets.engine.copilot import checked_suggestions, snake_case
from coderai_assets.engine.llm import Answer, Extractor
from coderai_assets.engine.refiner import proposed_definition, split_documents, verdict
from coderai_assets.engine.variables import VariableSpec
from tests.fakes import COPILOT_SUGGESTIONS, AnsweringExtractor, DatelineModel, dateline_model
from tests.ports import free_port
from tests.support.api import login_as
from tests.support.dagster import _resources
from tests.support.review import DatelineLLM, _do_tasks, _review_cities, coded_run

# ---- the rules ------------------------------------------------------------------------------------------------


def test_the_split_is_seeded_and_keeps_a_document_on_each_side():
    ids = [f"d{i}" for i in range(10)]
    train, held = split_documents(ids, 0.3, seed=7)
    assert (len(train), len(held)) == (7, 3) and not set(train) & set(held)
    assert split_documents(list(ids), 0.3, seed=7) == (train, held)
    assert split_documents(ids, 0.3, seed=8) != (train, held)
    assert [len(side) for side in split_documents(["a", "b"], 0.9, seed=0)] == [1, 1]
    with pytest.raises(ValueError):
        split_documents(["a"], 0.5, seed=0)


def test_a_proposal_keeps_the_values_reviewers_used_and_must_be_a_definition():
    kind = VariableSpec(name="kind", type="category", allowed_values=["march", "strike"])
    narrowed = proposed_definition(kind, {"description": "d", "allowed_values": ["march"]}, {"strike"})
    assert narrowed.allowed_values == ["march", "strike"]  # dropping a reviewer's code is not taken
    widened = proposed_definition(kind, {"description": "d", "allowed_values": ["march", "strike", "rally"]}, set())
    assert widened.allowed_values == ["march", "strike", "rally"] and widened.description == "d"
    with pytest.raises(ValueError):
        proposed_definition(kind, {"description": "  "}, set())


def test_the_verdict_rejects_a_proposal_that_does_worse_on_held_out_documents():
    def score(name, before, after):
        return {"variable": name, "before": {"correct": before}, "after": {"correct": after}}

    assert verdict([score("city", 0, 2), score("date", 2, 2)], {"city"})[0] == "offered"
    assert verdict([score("city", 0, 2), score("date", 2, 1)], {"city"})[0] == "rejected"
    assert verdict([score("city", 1, 1)], {"city"})[0] == "rejected"


def test_suggestions_are_checked_named_and_their_quotes_located():
    texts = [("d1", "lyon.txt", "LYON. About 3,000 nurses marched.")]
    found = checked_suggestions(COPILOT_SUGGESTIONS, {"city"}, texts)
    assert [s["definition"]["name"] for s in found] == ["strike_size", "sector"]
    size, sector = found
    assert size["quote"]["document_id"] == "d1" and texts[0][2][size["quote"]["char_start"] :].startswith("About")
    assert sector["quote"] is None and sector["definition"]["type"] == "text" and sector["notes"]
    assert checked_suggestions(COPILOT_SUGGESTIONS, {"strike_size", "sector"}, texts) == []
    assert snake_case("2nd Wave!") == "v_2nd_wave"


# ---- through the API ------------------------------------------------------------------------------------------


def _run_here(client, session_factory, settings, task: dict, extractor_for, context_tokens: int = 8192) -> str:
    """The task done in this process (as the agent job's op does it) with `extractor_for`; its status."""
    from coderai_assets.engine.model_limits import ModelLimits
    from coderai_assets.pipeline.agents import run_task
    from coderai_assets.storage.db import tenant_session

    return run_task(
        lambda tenant_id: tenant_session(session_factory, tenant_id),
        uuid.UUID(task["id"]),
        uuid.UUID(client.get("/auth/me").json()["workspaces"][0]["id"]),
        extractor_for=extractor_for,
        parse=lambda path: "",
        settings=settings,
        limits=ModelLimits(context_tokens, 1.0, 2.0, "test"),
    )


def test_the_refiner_proposes_scores_on_held_out_documents_and_applies_once(
    database,
    settings,
    session_factory,
    instance,
    demo_files,
):
    with TestClient(create_app(settings), base_url="http://test/api/v1") as client:
        login_as(client, f"refiner-{uuid.uuid4().hex[:8]}@example.org")
        project_id, run_id, _ = coded_run(client, settings, session_factory, instance, demo_files, DatelineLLM())
        too_early = client.post(f"/projects/{project_id}/refinements", json={})
        assert (too_early.status_code, too_early.json()["code"]) == (409, "no_feedback")
        _review_cities(client, run_id)
        assert client.post(f"/projects/{project_id}/refinements", json={"variables": ["nope"]}).status_code == 422

        estimate = client.post(f"/projects/{project_id}/refinements/estimate", json={"seed": 3}).json()
        assert estimate["weak_variables"] == ["city"] and estimate["held_out_documents"] == 2
        queued = client.post(f"/projects/{project_id}/refinements", json={"seed": 3})
        assert queued.status_code == 202 and queued.json()["status"] == "queued"
        not_ready = client.post(f"/agent-tasks/{queued.json()['id']}/accept", json={})
        assert (not_ready.status_code, not_ready.json()["code"]) == (409, "agent_task_not_ready")
        (task,) = _do_tasks(settings, instance, client)
        assert task["status"] == "succeeded", task
        result = task["result"]
        assert len(result["written_from_documents"]) == 2 and len(result["held_out_documents"]) == 2
        assert not set(result["written_from_documents"]) & set(result["held_out_documents"])
        (proposal,) = result["proposals"]
        assert proposal["variable"] == "city" and "dateline" in proposal["changes"]["description"]["to"]
        assert proposal["written_from"]["wrong"] == 2
        scores = {s["variable"]: s for s in result["held_out"]}
        assert scores["city"]["before"]["correct"] == 0 and scores["city"]["after"]["correct"] == 2
        assert scores["city"]["after"]["accuracy"] == 1.0 and scores["city"]["refined"]
        assert scores["participants"]["before"] == scores["participants"]["after"]
        assert result["verdict"] == "offered"
        held_out = set(result["held_out_documents"])
        assert {i["document_id"] for i in result["items"]} == held_out
        # Each re-coded value says where it stands in the text, as a run's values do.
        for item in result["items"]:
            text = client.get(f"/projects/{project_id}/documents/{item['document_id']}/text").json()["text"]
            start, end = item["after_offsets"]
            assert text[start:end] == item["after_quote"] and item["after"] in item["after_quote"]
        assert task["llm_calls"] == 1 + 2 and task["input_tokens"] > 0  # one proposal, two held-out documents
        assert estimate["calls"] == task["llm_calls"]  # the estimate counted the calls the task made
        assert 0.5 < estimate["input_tokens"] / task["input_tokens"] < 2

        # Two accepts at once: one applies it, the other is told so.
        codes: list[int] = []

        def accept() -> None:
            codes.append(client.post(f"/agent-tasks/{task['id']}/accept", json={}).status_code)

        threads = [threading.Thread(target=accept) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(codes) == [200, 409]
        shown = client.get(f"/agent-tasks/{task['id']}").json()
        assert shown["applied"]["variables"] == ["city"]
        variables = {v["name"]: v for v in client.get(f"/projects/{project_id}/variables").json()}
        assert "dateline" in variables["city"]["description"] and variables["city"]["examples"]
        version = shown["applied"]["prompt_version"]
        diff = client.get(f"/projects/{project_id}/prompt-versions/{version}/diff").json()
        assert [c["name"] for c in diff["changed"]] == ["city"]

        # A refinement proposed before the codebook changed is stale.
        again = client.post(f"/projects/{project_id}/refinements", json={"seed": 3}).json()
        client.patch(f"/projects/{project_id}/variables/{variables['city']['id']}", json={"description": "City."})
        (redone,) = _do_tasks(settings, instance, client)
        assert redone["id"] == again["id"] and redone["result"]["verdict"] == "offered"
        participants = variables["participants"]["id"]
        client.patch(f"/projects/{project_id}/variables/{participants}", json={"description": "How many."})
        stale = client.post(f"/agent-tasks/{again['id']}/accept", json={})
        assert (stale.status_code, stale.json()["code"]) == (409, "refinement_stale")


def test_a_refinement_that_does_not_help_on_held_out_documents_is_rejected(
    database,
    settings,
    session_factory,
    instance,
    demo_files,
):
    """The reviewer marks a correct participants count wrong on one document: the refiner writes a proposal from
    it, which codes the held-out documents no better, so it is not offered and cannot be accepted."""
    with TestClient(create_app(settings), base_url="http://test/api/v1") as client:
        login_as(client, f"rejected-{uuid.uuid4().hex[:8]}@example.org")
        project_id, run_id, _ = coded_run(client, settings, session_factory, instance, demo_files, DatelineLLM())
        values = client.get(f"/runs/{run_id}/values", params={"variable": "participants"}).json()["items"]
        by_file_name = sorted(values, key=lambda v: (v["file_name"], v["document_id"]))
        (written_from,), _ = split_documents([v["document_id"] for v in by_file_name], 0.75, seed=0)
        for value in values:
            wrong = value["document_id"] == written_from
            body = {"verdict": "wrong", "corrected_value": 1} if wrong else {"verdict": "correct"}
            client.put(f"/values/{value['id']}/feedback", json=body)
        client.post(f"/projects/{project_id}/refinements", json={"held_out_fraction": 0.75, "seed": 0})
        (task,) = _do_tasks(settings, instance, client)
        result = task["result"]
        assert [p["variable"] for p in result["proposals"]] == ["participants"]
        assert result["verdict"] == "rejected" and "no more values right" in result["reason"]
        refused = client.post(f"/agent-tasks/{task['id']}/accept", json={})
        assert (refused.status_code, refused.json()["code"]) == (409, "refinement_rejected")


def test_the_copilot_suggests_variables_from_unparsed_uploads_and_the_user_picks(
    database,
    settings,
    instance,
    demo_files,
):
    with TestClient(create_app(settings), base_url="http://test/api/v1") as client:
        login_as(client, f"copilot-{uuid.uuid4().hex[:8]}@example.org")
        project = client.post(
            "/projects", json={"name": "Protests", "domain_description": "Protest events in Europe"}
        ).json()
        refused = client.post(f"/projects/{project['id']}/suggestions", json={})
        assert (refused.status_code, refused.json()["code"]) == (409, "no_documents")
        for path in demo_files:
            with path.open("rb") as handle:
                client.post(f"/projects/{project['id']}/documents", files={"files": (path.name, handle)})
        queued = client.post(f"/projects/{project['id']}/suggestions", json={"documents": 4, "max_variables": 5})
        assert queued.status_code == 202
        (task,) = _do_tasks(settings, instance, client)
        assert task["status"] == "succeeded", task
        suggestions = {s["definition"]["name"]: s for s in task["result"]["suggestions"]}
        assert list(suggestions) == ["strike_size", "sector"]
        assert suggestions["strike_size"]["quote"]["file_name"] == "lyon_nurses.txt"
        assert len(task["result"]["documents"]) == 4 and task["llm_calls"] == 1

        wrong = client.post(f"/agent-tasks/{task['id']}/accept", json={"variables": ["nope"]})
        assert (wrong.status_code, wrong.json()["code"]) == (422, "unknown_variable")
        taken = client.post(
            f"/agent-tasks/{task['id']}/accept",
            json={"variables": ["strike_size"], "edits": {"strike_size": {"display_name": "Size", "name": "size"}}},
        )
        assert taken.status_code == 200, taken.json()
        assert [v["name"] for v in taken.json()["variables"]] == ["size"]
        assert taken.json()["task"]["applied"] == {"variables": ["size"], "dropped": ["sector"]}
        names = [v["name"] for v in client.get(f"/projects/{project['id']}/variables").json()]
        assert names == ["size"]


def test_an_agent_task_that_fails_says_why_and_keeps_what_its_calls_cost(
    database,
    settings,
    session_factory,
    instance,
    demo_files,
):
    from coderai_assets.storage.db import tenant_session
    from coderai_assets.storage.models import AgentTask

    class Mumbling(DatelineModel):
        def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
            usage = {"input_tokens": 900, "output_tokens": 30, "total_tokens": 930}
            message = AIMessage(content="I would suggest a few variables.", usage_metadata=usage)  # no tool call
            return ChatResult(generations=[ChatGeneration(message=message)])

    def mumbling(max_output_tokens: int | None = None) -> Extractor:
        return Extractor(Mumbling(messages=iter([])), "fake/mumbling")

    with TestClient(create_app(settings), base_url="http://test/api/v1") as client:
        login_as(client, f"failing-{uuid.uuid4().hex[:8]}@example.org")
        project_id, _, _ = coded_run(client, settings, session_factory, instance, demo_files, DatelineLLM())
        task = client.post(f"/projects/{project_id}/suggestions", json={}).json()
        status = _run_here(client, session_factory, settings, task, mumbling)
        assert status == "failed"
        shown = client.get(f"/agent-tasks/{task['id']}").json()
        assert shown["error_code"] == "llm_unparseable" and shown["llm_calls"] == 1 and shown["cost_usd"] > 0
        tenant = uuid.UUID(client.get("/auth/me").json()["workspaces"][0]["id"])
        with tenant_session(session_factory, tenant) as session:
            assert session.get(AgentTask, uuid.UUID(task["id"])).status == "failed"


def test_a_task_whose_dagster_run_died_is_failed_by_the_sensor(
    database,
    settings,
    instance,
    demo_files,
):
    with TestClient(create_app(settings), base_url="http://test/api/v1") as client:
        login_as(client, f"died-{uuid.uuid4().hex[:8]}@example.org")
        project = client.post("/projects", json={"name": "P"}).json()
        with demo_files[0].open("rb") as handle:
            client.post(f"/projects/{project['id']}/documents", files={"files": (demo_files[0].name, handle)})
        task = client.post(f"/projects/{project['id']}/suggestions", json={}).json()
        job = build_agent_job(settings)
        sensor = build_agent_sensor(job)
        resources = {"db": _resources(settings)["db"]}
        with build_sensor_context(instance=instance, resources=resources) as context:
            (request,) = [r for r in sensor(context).run_requests if r.tags["coderai/agent_task_id"] == task["id"]]
        # The run worker died before the task ended: its Dagster run failed, and no retry is coming.
        run = instance.create_run_for_job(job_def=job, tags=request.tags)
        instance.report_run_failed(run)
        with build_sensor_context(instance=instance, resources=resources) as context:
            again = sensor(context).run_requests
        assert task["id"] not in {r.tags["coderai/agent_task_id"] for r in again}
        shown = client.get(f"/agent-tasks/{task['id']}").json()
        assert (shown["status"], shown["error_code"]) == ("failed", "task_worker_failed")


class Claims(AnsweringExtractor):
    """Entity-level double: lists a report's incidents, codes each one's perpetrator as the police until the
    codebook says it is the group that claimed it, and proposes that definition when asked to refine."""

    REPORTS = {
        "A bombing in Lima": ("Lima", "the Red Front"),
        "A kidnapping in Quito": ("Quito", "the Blue Army"),
        "An arson in Cusco": ("Cusco", "the Green Cell"),
        "A shooting in Cali": ("Cali", "the Black Hand"),
    }

    def __init__(self):
        self.model_name = "fake/claims"

    def extract(self, codebook, *, text, **_):
        if "entities" in codebook.json_schema["properties"]:
            return Answer(payload={"entities": [{"entity_text": e} for e in self.REPORTS if e in text]})
        asked = text.rpartition(" to code: ")[2]
        city, group = self.REPORTS[asked]
        claimed = "the group that claimed" in codebook.system_prompt
        return Answer(payload={"city": city, "perpetrator": group if claimed else "the police"}, input_tokens=5)

    def ask(self, system_prompt, user, json_schema):
        payload = {"description": "the group that claimed the incident", "examples": [], "reason": "not the police"}
        return Answer(payload=payload, input_tokens=50, output_tokens=10)


def test_the_refiner_matches_entities_of_held_out_documents_by_name(session_factory, tenant, settings, code_run):
    from coderai_assets.domain.runs import create_run
    from coderai_assets.engine.variables import VariableType
    from coderai_assets.pipeline.refine import RefineOptions, Tally, refine
    from coderai_assets.storage.db import tenant_session
    from coderai_assets.storage.files import LocalFileStorage
    from coderai_assets.storage.models import (
        Document,
        Extraction,
        ExtractionUnit,
        Feedback,
        Project,
        RunKind,
        Variable,
    )

    storage, extractor = LocalFileStorage(settings.storage_dir), Claims()
    texts = ["A bombing in Lima and a later one. A kidnapping in Quito.", "An arson in Cusco. A shooting in Cali."]
    with tenant_session(session_factory, tenant) as session:
        project = Project(tenant_id=tenant, name="p", domain_description="News.", extraction_unit=ExtractionUnit.entity)
        session.add(project)
        session.flush()
        for i, name in enumerate(("city", "perpetrator")):
            spec = VariableSpec(name=name, type=VariableType.text)
            session.add(Variable.of(spec, tenant_id=tenant, project_id=project.id, position=i))
        for i, text in enumerate(texts):
            key = f"{tenant}/{project.id}/documents/{i}/original"
            storage.write(key, text.encode())
            session.add(
                Document(
                    tenant_id=tenant,
                    project_id=project.id,
                    file_name=f"news{i}.txt",
                    size_bytes=len(text),
                    sha256=uuid.uuid4().hex * 2,
                    storage_path=key,
                )
            )
        session.flush()
        run, _ = create_run(session, project, RunKind.full, with_quotes=False)
        project_id, run_id = project.id, run.id
    code_run(
        tenant,
        run_id,
        extractor,
        chunk_chars=4000,
        chunk_overlap_chars=0,
        llm_cache=False,
        llm_quotes=False,
        llm_context_tokens=32768,
    )
    with tenant_session(session_factory, tenant) as session:
        values = session.scalars(select(Extraction).where(Extraction.run_id == run_id)).all()
        assert len(values) == 2 * 4
        for value in values:
            group = Claims.REPORTS[value.entity_text][1]
            wrong = value.variable_name == "perpetrator"
            session.add(
                Feedback(
                    tenant_id=tenant,
                    extraction_id=value.id,
                    run_id=run_id,
                    document_id=value.document_id,
                    variable_name=value.variable_name,
                    verdict="wrong" if wrong else "correct",
                    corrected_value=group if wrong else None,
                    has_correction=wrong,
                )
            )
    result = refine(
        lambda: tenant_session(session_factory, tenant),
        project_id,
        extractor,
        RefineOptions(with_quotes=False, seed=0),
        Tally(),
    )
    scores = {s.variable: s for s in result.held_out}
    assert (scores["perpetrator"].before["correct"], scores["perpetrator"].after["correct"]) == (0, 2)
    assert scores["city"].before == scores["city"].after and scores["city"].after["correct"] == 2
    assert result.verdict == "offered"


def test_a_cancelled_task_makes_no_further_call_and_keeps_its_cost(
    database,
    settings,
    session_factory,
    instance,
    demo_files,
):

    with TestClient(create_app(settings), base_url="http://test/api/v1") as client:
        login_as(client, f"cancel-{uuid.uuid4().hex[:8]}@example.org")
        project_id, run_id, _ = coded_run(client, settings, session_factory, instance, demo_files, DatelineLLM())
        _review_cities(client, run_id)
        task = client.post(f"/projects/{project_id}/refinements", json={}).json()
        calls: list[str] = []

        class CancelledOnItsFirstCall(DatelineModel):
            def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
                calls.append(self.tool_name)
                if len(calls) == 1:  # the user cancels while the proposal is being written
                    assert client.post(f"/agent-tasks/{task['id']}/cancel").status_code == 200
                return super()._generate(messages, stop, run_manager, **kwargs)

        model = CancelledOnItsFirstCall(messages=iter([]), answers=dateline_model().answers)
        status = _run_here(client, session_factory, settings, task, lambda budget: Extractor(model, "fake/dateline"))
        shown = client.get(f"/agent-tasks/{task['id']}").json()
        assert status == shown["status"] == "canceled" and shown["result"] is None
        assert calls == ["propose_definition"] and shown["llm_calls"] == 1 and shown["cost_usd"] > 0
        ended = client.post(f"/agent-tasks/{task['id']}/cancel")
        assert (ended.status_code, ended.json()["code"]) == (409, "agent_task_ended")
        # A queued task cancelled before its tick is never launched.
        queued = client.post(f"/projects/{project_id}/refinements", json={}).json()
        client.post(f"/agent-tasks/{queued['id']}/cancel")
        job = build_agent_job(settings)
        with build_sensor_context(instance=instance, resources={"db": _resources(settings)["db"]}) as context:
            launched = {r.tags["coderai/agent_task_id"] for r in build_agent_sensor(job)(context).run_requests}
        assert queued["id"] not in launched


@pytest.fixture
def simulator_url():
    """bench/llm_simulator.py (an OpenAI-compatible server: tool calls answered from the tool's schema) on a port of
    its own, in a thread."""
    import importlib.util
    import time
    from pathlib import Path

    import uvicorn

    path = Path(__file__).resolve().parents[2] / "bench" / "llm_simulator.py"
    spec = importlib.util.spec_from_file_location("llm_simulator", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(module.create_app(module.Simulator()), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    thread.join(10)


def test_the_agents_work_with_an_openai_compatible_server(
    database,
    settings,
    session_factory,
    instance,
    demo_files,
    simulator_url,
):
    """The refiner and the co-pilot through the real LangChain OpenAI client (function calling) against an
    OpenAI-compatible server: what they ask parses, and the refiner's whole path runs."""
    from coderai_assets.engine.llm import build_chat_model
    from coderai_assets.settings import Settings

    compatible = Settings(llm_provider="openai_compatible", llm_base_url=simulator_url, llm_model="simulator")

    def extractor_for(budget: int | None) -> Extractor:
        model, name = build_chat_model(compatible, budget)
        assert name == "openai_compatible/simulator"  # the label tenants see: never the server's address
        return Extractor(model, name, compatible.llm_structured_method)

    with TestClient(create_app(settings), base_url="http://test/api/v1") as client:
        login_as(client, f"compatible-{uuid.uuid4().hex[:8]}@example.org")
        project_id, run_id, _ = coded_run(client, settings, session_factory, instance, demo_files, DatelineLLM())
        _review_cities(client, run_id)
        for kind, body in (("refinements", {"seed": 3}), ("suggestions", {"documents": 2})):
            task = client.post(f"/projects/{project_id}/{kind}", json=body).json()
            status = _run_here(client, session_factory, settings, task, extractor_for, context_tokens=128_000)
            shown = client.get(f"/agent-tasks/{task['id']}").json()
            assert status == "succeeded", shown
            assert shown["input_tokens"] > 0 and shown["output_tokens"] > 0
            if kind == "refinements":
                assert [p["variable"] for p in shown["result"]["proposals"]] == ["city"]
                assert shown["llm_calls"] == 1 + 2 and shown["result"]["verdict"] in ("offered", "rejected")
            else:
                (suggestion,) = shown["result"]["suggestions"]  # the simulator fills one item per array
                assert suggestion["definition"]["name"] and shown["llm_calls"] == 1


# ---- whatever a model answers --------------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)
_suggestion = st.fixed_dictionaries(
    {},
    optional={
        "name": _json | st.text(max_size=70),
        "display_name": _json,
        "type": st.sampled_from(["text", "integer", "category", "list", "boolean", "date", "number", "Text"]) | _json,
        "description": _json,
        "allowed_values": st.lists(_json, max_size=4) | _json,
        "reason": _json,
        "example_quote": _json | st.just("About 3,000 nurses"),
    },
)


@examples(max_examples=300, deadline=None)
@given(payload=st.dictionaries(st.just("variables"), st.lists(_suggestion | _json, max_size=6)) | _json)
def test_any_answer_to_the_copilot_gives_valid_suggestions_or_none(payload):
    texts = [("d1", "lyon.txt", "LYON. About 3,000 nurses marched.")]
    found = checked_suggestions(payload if isinstance(payload, dict) else {"variables": payload}, {"city"}, texts)
    names = [s["definition"]["name"] for s in found]
    assert len(names) == len(set(names)) and "city" not in names
    for suggestion in found:
        VariableSpec.model_validate(suggestion["definition"])
        quote = suggestion["quote"]
        assert quote is None or texts[0][2][quote["char_start"] : quote["char_end"]]


@examples(max_examples=300, deadline=None)
@given(payload=st.dictionaries(st.sampled_from(["description", "examples", "allowed_values", "reason"]), _json))
def test_any_answer_to_the_refiner_is_a_definition_or_a_value_error(payload):
    kind = VariableSpec(name="kind", type="category", allowed_values=["march", "strike"])
    try:
        proposed = proposed_definition(kind, payload, {"strike"})
    except ValueError:
        return
    assert proposed.name == "kind" and proposed.type == kind.type and "strike" in (proposed.allowed_values or [])
