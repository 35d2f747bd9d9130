"""The embedded model through the real LangChain client and llama.cpp's server (slow: about a minute)."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from coderai_assets.demo import REPORTS, VARIABLES
from coderai_assets.engine.codebook import ProjectSpec, compile_codebook
from coderai_assets.engine.coercion import coerce_value
from coderai_assets.engine.llm import Extractor, build_chat_model
from coderai_assets.engine.variables import VariableSpec
from coderai_assets.settings import Settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_settings():
    settings = Settings(llm_provider="local", llm_quotes=None)
    process = subprocess.Popen(
        [sys.executable, "-m", "coderai_assets.cli", "local-llm"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://{settings.local_llm_host}:{settings.local_llm_port}/v1/models"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, "the model server exited"
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        yield settings
    finally:
        process.terminate()
        process.wait(20)


def test_embedded_model_codes_a_report(local_settings):
    spec = ProjectSpec(
        name="Protests",
        domain_description="Short news reports of protest events.",
        variables=tuple(VariableSpec(**v) for v in VARIABLES),
    )
    codebook = compile_codebook(spec, with_quotes=local_settings.request_quotes)
    model, name = build_chat_model(local_settings)
    title, body = REPORTS["porto_dockers"]
    text = f"{title}\n\n{body}"
    answer = Extractor(model, name).extract(
        codebook, file_name="porto.txt", text=text, part=1, parts=1, char_start=0, char_end=len(text)
    )
    assert name.startswith("local/")
    assert answer.error is None and answer.payload is not None
    assert set(answer.payload) >= {v["name"] for v in VARIABLES}
    assert answer.input_tokens > 0 and answer.output_tokens > 0
    # Demo quality, but at temperature 0 the answer is deterministic: this report's number and date come out right.
    variables = {v.name: v for v in spec.variables}
    assert coerce_value(variables["participants"], answer.payload["participants"]).value == 450
    assert coerce_value(variables["event_date"], answer.payload["event_date"]).value == "2023-06-03"


def test_the_refiner_works_with_the_embedded_model(local_settings, database, settings, session_factory, demo_files):
    """The whole refiner on the embedded model: it codes the demo reports, reviewers want the country where the
    codebook says city, and the model proposes definitions that are scored on the held-out reports. Demo quality:
    what is checked is that every weak variable gets a proposal or a reason, and the held-out figures."""
    import uuid

    from dagster import DagsterInstance
    from fastapi.testclient import TestClient

    from coderai_api.main import create_app
    from coderai_assets.defs.resources import LLMResource
    from coderai_assets.engine.model_limits import ModelLimits
    from coderai_assets.pipeline.agents import run_task
    from coderai_assets.storage.db import tenant_session
    from tests.fakes import COUNTRIES
    from tests.support.api import login_as
    from tests.support.review import coded_run

    class Embedded(LLMResource):
        def extractor(self, max_output_tokens: int | None = None) -> Extractor:
            model, name = build_chat_model(local_settings, max_output_tokens)
            return Extractor(model, name, local_settings.llm_structured_method)

    with (
        DagsterInstance.ephemeral() as instance,
        TestClient(create_app(settings), base_url="http://test/api/v1") as client,
    ):
        login_as(client, f"embedded-{uuid.uuid4().hex[:8]}@example.org")
        project_id, run_id, _ = coded_run(client, settings, session_factory, instance, demo_files, Embedded())
        countries = {f"{city.lower()}": country for city, country in COUNTRIES.items()}
        for value in client.get(f"/runs/{run_id}/values", params={"variable": "city"}).json()["items"]:
            country = next(c for key, c in countries.items() if value["file_name"].startswith(key))
            body = {"verdict": "wrong", "corrected_value": country, "note": "code the country"}
            client.put(f"/values/{value['id']}/feedback", json=body)
        task = client.post(f"/projects/{project_id}/refinements", json={"seed": 1}).json()
        tenant = uuid.UUID(client.get("/auth/me").json()["workspaces"][0]["id"])
        status = run_task(
            lambda tenant_id: tenant_session(session_factory, tenant_id),
            uuid.UUID(task["id"]),
            tenant,
            extractor_for=Embedded().extractor,
            parse=lambda path: "",
            settings=local_settings,
            limits=ModelLimits(8192, 0.0, 0.0, "test"),
        )
        shown = client.get(f"/agent-tasks/{task['id']}").json()
        assert status == "succeeded", shown
        result = shown["result"]
        assert [p["variable"] for p in result["proposals"]] + [s["variable"] for s in result["skipped"]] == ["city"]
        assert shown["llm_calls"] >= 1 and shown["output_tokens"] > 0
        if result["proposals"]:
            (city,) = [s for s in result["held_out"] if s["variable"] == "city"]
            assert city["before"]["n"] == city["after"]["n"] == 2 and result["verdict"] in ("offered", "rejected")


def test_the_copilot_works_with_the_embedded_model(local_settings):
    """The co-pilot's schema through llama.cpp's grammar: the embedded model answers with suggestions that pass
    the checks (names, types, definitions), whatever their quality."""
    from coderai_assets.engine.budget import answer_tokens
    from coderai_assets.engine.copilot import checked_suggestions, copilot_prompt, suggestion_schema

    texts = [(name, name, f"{title}\n\n{body}") for name, (title, body) in REPORTS.items()]
    system, user = copilot_prompt(
        name="Protests",
        domain_description="Short news reports of protest events.",
        extraction_unit="document",
        entity_description="",
        existing=[],
        excerpts=[(name, text) for _, name, text in texts],
        max_variables=4,
    )
    model, name = build_chat_model(local_settings, answer_tokens(12, local_settings.llm_max_output_tokens))
    answer = Extractor(model, name).ask(system, user, suggestion_schema(4))
    assert answer.error is None and isinstance(answer.payload, dict), answer.error
    assert isinstance(answer.payload["variables"], list) and len(answer.payload["variables"]) <= 4
    for suggestion in checked_suggestions(answer.payload, set(), texts):
        VariableSpec.model_validate(suggestion["definition"])
