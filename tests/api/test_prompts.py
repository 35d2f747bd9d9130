"""Prompt versions through the API: listed, shown, compared, restored."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from coderai_api.main import create_app
from tests.support.api import login_as


def test_versions_are_listed_compared_and_restored(database, settings, demo_files):
    with TestClient(create_app(settings), base_url="http://test/api/v1") as client:
        login_as(client, f"versions-{uuid.uuid4().hex[:8]}@example.org")
        project = client.post("/projects", json={"name": "Versions", "domain_description": "Protests."}).json()
        base = f"/projects/{project['id']}"
        client.post(f"{base}/documents", files=[("files", (demo_files[0].name, demo_files[0].read_bytes()))])
        # Each edit of the codebook is a version at once; a run uses the version the codebook is at.
        city = client.post(f"{base}/variables", json={"name": "city", "type": "text", "description": "The city."})
        participants = client.post(f"{base}/variables", json={"name": "participants", "type": "integer"}).json()
        sample = {"kind": "sample", "sample_size": 1}
        assert client.post(f"{base}/runs", json=sample).status_code == 202  # version 2
        client.patch(f"{base}/variables/{city.json()['id']}", json={"description": "Where it happened."})
        assert client.post(f"{base}/runs", json=sample).status_code == 202  # version 3
        client.delete(f"{base}/variables/{participants['id']}")  # version 4
        client.post(f"{base}/variables", json={"name": "violence", "type": "boolean"})
        assert client.post(f"{base}/runs", json=sample).status_code == 202  # version 5

        versions = client.get(f"{base}/prompt-versions").json()["items"]
        assert [(v["version"], v["runs"]) for v in versions] == [(5, 1), (4, 0), (3, 1), (2, 1), (1, 0)]
        assert versions[0]["variables"] == ["city", "violence"]
        fifth = client.get(f"{base}/prompt-versions/5/diff", params={"against": 3}).json()
        assert (fifth["from_version"], fifth["added"], fifth["removed"]) == (3, ["violence"], ["participants"])
        second = client.get(f"{base}/prompt-versions/3/diff", params={"against": 2}).json()
        assert second["changed"] == [
            {"name": "city", "fields": {"description": {"from": "The city.", "to": "Where it happened."}}}
        ]
        assert any(line.startswith("+") and "Where it happened." in line for line in second["system_prompt_diff"])
        shown = client.get(f"{base}/prompt-versions/2").json()
        assert shown["json_schema"]["required"] == ["city", "participants"] and "The city." in shown["system_prompt"]

        restored = client.post(f"{base}/prompt-versions/2/restore").json()
        assert restored["version"] == 6 and restored["json_schema"] == shown["json_schema"]
        assert restored["system_prompt"] == shown["system_prompt"]
        live = client.get(f"{base}/variables").json()
        assert [(v["name"], v.get("description")) for v in live] == [("city", "The city."), ("participants", "")]
        assert live[1]["id"] == participants["id"]  # the deleted variable is back with its id
        missing = client.get(f"{base}/prompt-versions/9")
        assert (missing.status_code, missing.json()["code"]) == (404, "prompt_version_not_found")
