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
