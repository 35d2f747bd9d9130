"""The live API fuzzed against its own OpenAPI schema by Schemathesis, authenticated as each of two workspaces:
every response must be no 5xx, with a documented status, content type and body. Fuzzing and stateful phases
(stateful chains the responses' ids into later requests), bounded to about a minute with a fixed seed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.ports import free_port

PORT = int(os.environ.get("CODERAI_TEST_FUZZ_PORT") or free_port())
BASE = f"http://127.0.0.1:{PORT}"
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


@pytest.fixture(scope="module")
def live_api(database, tmp_path_factory):
    log = tmp_path_factory.mktemp("fuzz") / "api.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "coderai_api.main:app", "--port", str(PORT), "--no-access-log"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{BASE}/api/v1/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline and server.poll() is None, log.read_text()
                time.sleep(0.3)
            yield log
        finally:
            server.terminate()
            server.wait(20)


def _token(email: str) -> str:
    with httpx.Client(base_url=f"{BASE}/api/v1", timeout=30) as client:
        client.post("/auth/register", json={"email": email, "password": "correct horse battery"})
        tokens = client.post("/auth/login", json={"email": email, "password": "correct horse battery"}).json()
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        project = client.post("/projects", json={"name": "Fuzzed"}, headers=headers).json()["id"]
        client.post(f"/projects/{project}/variables", json={"name": "city", "type": "text"}, headers=headers)
        return tokens["access_token"]


@pytest.mark.parametrize("workspace", ["first", "second"])
def test_the_api_answers_every_generated_request_as_its_schema_says(live_api: Path, workspace: str):
    token = _token(f"fuzz-{workspace}-{uuid.uuid4().hex[:6]}@example.org")
    st = Path(sys.executable).with_name("st")
    result = subprocess.run(
        [
            str(st),
            "run",
            f"{BASE}/openapi.json",
            "-H",
            f"Authorization: Bearer {token}",
            "--phases",
            "examples,fuzzing,stateful",
            "--checks",
            CHECKS,
            "--max-examples",
            "40",
            "--seed",
            "20261129",
            "--workers",
            "2",
            # Logging out would end the session the run authenticates with.
            "--exclude-path",
            "/api/v1/auth/logout",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-6000:] + "\n--- API log ---\n" + live_api.read_text()[-4000:]
