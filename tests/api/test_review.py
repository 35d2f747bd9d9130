"""Reading what the model did, through the API: a run's documents and values, filtered and paginated, the text
their offsets point into, and values the text does not support flagged `ungrounded`."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from coderai_api.main import create_app
from coderai_assets.defs.resources import LLMResource
from coderai_assets.storage.db import tenant_session
from tests.support.api import login_as
from tests.support.dagster import SHARD, _assets, _project, _register, _resources  # noqa: F401
from tests.support.review import ANSWERS, coded_run, recode

ANSWERS["LYON, 12 March 2024"] = {**ANSWERS["LYON, 12 March 2024"], "quotes": {"participants": "About 3,000 nurses"}}


def test_a_reviewer_reads_documents_values_and_text_of_a_run(
    database,
    settings,
    session_factory,
    instance,
    demo_files,
):
    with TestClient(create_app(settings), base_url="http://test/api/v1") as client:
        login_as(client, f"reviewer-{uuid.uuid4().hex[:8]}@example.org")
        project_id, run_id, doc_ids = coded_run(client, settings, session_factory, instance, demo_files)

        run = client.get(f"/runs/{run_id}").json()
        # Marseille, which no text holds. The answers "no violence" claim no evidence, so they are not flagged;
        # the date the model wrote as 2023-06-03 is found as "3 June 2023".
        assert (run["status"], run["values_ungrounded"]) == ("succeeded", 1)
        documents = client.get(f"/runs/{run_id}/documents").json()
        assert documents["total"] == 4 and {d["status"] for d in documents["items"]} == {"done"}
        assert all(d["llm_calls"] == 1 for d in documents["items"])

        flagged = client.get(f"/runs/{run_id}/values", params={"status": "ungrounded"}).json()
        assert flagged["total"] == 1
        found = {(v["file_name"], v["variable"]): v for v in flagged["items"]}
        assert set(found) == {("lyon_nurses.txt", "city")}
        absent = client.get(f"/runs/{run_id}/values", params={"variable": "violence"}).json()["items"]
        said = sorted((v["value"], v["status"], v["alignment"]) for v in absent)
        assert said == [(False, "coerced", None), (False, "ok", None), (False, "ok", None), (True, "ok", "exact")]
        value = found[("lyon_nurses.txt", "city")]
        assert value["value"] == "Marseille"
        assert value["char_start"] is None and "not grounded" in value["message"]
        assert (value["prompt_version"], value["model"]) == (1, "fake/misreading")

        # Every offset points at its quote in the parsed text.
        quoted = client.get(f"/runs/{run_id}/values", params={"variable": "participants", "limit": 10}).json()
        assert quoted["total"] == 4
        for item in quoted["items"]:
            if item["char_start"] is None:
                continue
            text = client.get(
                f"/projects/{project_id}/documents/{item['document_id']}/text",
                params={"offset": item["char_start"], "limit": item["char_end"] - item["char_start"]},
            ).json()
            assert text["text"] == item["quote"] and text["total_chars"] > item["char_end"]

        # Pages: 4 documents x 5 variables.
        pages = [client.get(f"/runs/{run_id}/values", params={"limit": 3}).json()]
        while pages[-1]["next_cursor"]:
            params = {"limit": 3, "cursor": pages[-1]["next_cursor"]}
            pages.append(client.get(f"/runs/{run_id}/values", params=params).json())
        assert [len(page["items"]) for page in pages] == [3] * 6 + [2] and pages[0]["total"] == 20
        assert len({item["id"] for page in pages for item in page["items"]}) == 20
        detail = client.get(f"/projects/{project_id}/documents/{doc_ids[0]}").json()
        assert detail["text_chars"] > 0 and detail["status"] == "done"
        missing = client.get(f"/projects/{project_id}/documents/{uuid.uuid4()}")
        assert (missing.status_code, missing.json()["code"]) == (404, "document_not_found")


def test_an_estimate_after_a_run_counts_what_the_cache_will_answer(
    database,
    settings,
    session_factory,
    instance,
    demo_files,
):
    """The estimate matches earlier answers on the label the configured model records them with: after a run with
    the configured model, a full run of the same codebook is all cache, no call (it said every chunk a call)."""
    from coderai_assets.defs.resources import llm_config

    with TestClient(create_app(settings), base_url="http://test/api/v1") as client:
        login_as(client, f"estimate-{uuid.uuid4().hex[:8]}@example.org")
        configured = LLMResource(config_json=llm_config(settings))
        project_id, _, _ = coded_run(client, settings, session_factory, instance, demo_files, configured)
        estimate = client.post(f"/projects/{project_id}/runs/estimate", json={"kind": "full"}).json()
        assert estimate["chunks"] == estimate["cached_chunks"] == 4 and estimate["calls"] == 0
        assert estimate["model"] == "factory/protest_model" and estimate["output_basis"] == "typical"


def test_a_download_holds_the_feedback_as_it_stands_and_says_when_it_was_built(
    database,
    settings,
    session_factory,
    instance,
    demo_files,
):
    """The run's export was written when it ended; a correction given afterwards is in the next download (the
    Lyon participants corrected from the model's value to 3000), a wrong date "should be empty" is an empty final
    value from the reviewer, and a download with nothing new serves the same export again."""
    import io

    import pandas as pd

    from coderai_assets.storage.models import Export

    with TestClient(create_app(settings), base_url="http://test/api/v1") as client:
        login_as(client, f"download-{uuid.uuid4().hex[:8]}@example.org")
        project_id, run_id, _ = coded_run(client, settings, session_factory, instance, demo_files)
        values = client.get(f"/runs/{run_id}/values", params={"limit": 100}).json()["items"]
        by = {(v["file_name"], v["variable"]): v for v in values}

        def download() -> dict[str, pd.DataFrame]:
            answer = client.get(f"/projects/{project_id}/export", params={"format": "xlsx", "run_id": str(run_id)})
            assert answer.status_code == 200
            return pd.read_excel(io.BytesIO(answer.content), sheet_name=None)

        before = download()
        assert set(before["data"]["participants__final_source"].dropna()) == {"model"}
        lyon = by[("lyon_nurses.txt", "participants")]
        date = by[("porto_dockers.html", "event_date")]
        assert client.put(f"/values/{lyon['id']}/feedback", json={"verdict": "wrong", "corrected_value": 3000})
        empty = client.put(f"/values/{date['id']}/feedback", json={"verdict": "wrong", "corrected_value": None})
        assert empty.json()["has_correction"] is True and empty.json()["corrected_value"] is None
        unsaid = by[("porto_dockers.html", "city")]
        said = client.put(f"/values/{unsaid['id']}/feedback", json={"verdict": "wrong"}).json()
        assert said["has_correction"] is False
        after = download()
        data = after["data"].set_index("file_name")
        assert (
            data.loc["lyon_nurses.txt", "participants__final"],
            data.loc["lyon_nurses.txt", "participants__final_source"],
        ) == (3000, "reviewer")
        assert pd.isna(data.loc["porto_dockers.html", "event_date__final"])
        assert data.loc["porto_dockers.html", "event_date__final_source"] == "reviewer"  # empty, as the reviewer says
        assert data.loc["porto_dockers.html", "city__final_source"] == "rejected"  # wrong, not said what
        assert len(after["feedback"]) == 3
        about = dict(zip(after["about"].iloc[:, 0], after["about"].iloc[:, 1], strict=False))
        assert about["built_at"] and about["feedback_as_of"] != "no feedback yet"
        figures = {v["variable"]: v for v in client.get(f"/runs/{run_id}/agreement").json()["model_vs_reviewers"]}
        assert figures["event_date"]["n"] == 1 and figures["event_date"]["accuracy"] == 0.0
        with tenant_session(session_factory, uuid.UUID(client.get("/auth/me").json()["workspaces"][0]["id"])) as s:
            exports = s.query(Export).filter(Export.run_id == run_id).count()
        download()  # nothing changed since: the same export, not a new one
        with tenant_session(session_factory, uuid.UUID(client.get("/auth/me").json()["workspaces"][0]["id"])) as s:
            assert s.query(Export).filter(Export.run_id == run_id).count() == exports


def test_a_finished_reviews_verdicts_carry_to_a_later_runs_unchanged_values(
    database,
    settings,
    session_factory,
    instance,
    demo_files,
):
    """Reviewed and done, then the city's definition edited and the project coded again: every verdict on a value
    whose document, definition and answer are unchanged is carried (marked with its run), the cities' are not
    (their definition changed), a correction reaches the later run's dataset, and the reviewer's own verdict on a
    later value wins over the carried one. Verdicts of a review still under way never carry."""
    with TestClient(create_app(settings), base_url="http://test/api/v1") as client:
        login_as(client, f"carry-{uuid.uuid4().hex[:8]}@example.org")
        tenant = uuid.UUID(client.get("/auth/me").json()["workspaces"][0]["id"])
        project_id, first, doc_ids = coded_run(client, settings, session_factory, instance, demo_files)
        values = client.get(f"/runs/{first}/values", params={"limit": 100}).json()["items"]
        for value in values:
            wrong = (value["file_name"], value["variable"]) == ("porto_dockers.html", "participants")
            body = {"verdict": "wrong", "corrected_value": 500} if wrong else {"verdict": "correct"}
            assert client.put(f"/values/{value['id']}/feedback", json=body).status_code == 200
        unfinished = recode(settings, session_factory, instance, tenant, project_id, doc_ids)
        # The review is not done: nothing carries.
        assert client.get(f"/runs/{unfinished}/feedback").json()["items"] == []
        assert client.post(f"/runs/{first}/review/done").status_code == 200
        # Its completion carries to the run coded meanwhile, too.
        assert len(client.get(f"/runs/{unfinished}/feedback").json()["items"]) == 20

        city = next(v for v in client.get(f"/projects/{project_id}/variables").json() if v["name"] == "city")
        client.patch(f"/projects/{project_id}/variables/{city['id']}", json={"description": "The dateline's city"})
        later = recode(settings, session_factory, instance, tenant, project_id, doc_ids)
        carried = client.get(f"/runs/{later}/feedback").json()["items"]
        assert len(carried) == 16 and {f["variable_name"] for f in carried} == {
            "event_date",
            "participants",
            "protest_type",
            "violence",
        }
        assert {f["carried_from_run_id"] for f in carried} == {str(first)}
        export = client.get(f"/projects/{project_id}/export", params={"run_id": str(later)})
        assert "500" in export.text and ",reviewer," in export.text

        mine = next(
            v
            for v in client.get(f"/runs/{later}/values", params={"variable": "violence"}).json()["items"]
            if v["file_name"] == "lyon_nurses.txt"
        )
        own = client.put(f"/values/{mine['id']}/feedback", json={"verdict": "wrong", "corrected_value": True}).json()
        assert own["carried_from_run_id"] is None
        shown = client.get(f"/values/{mine['id']}/feedback").json()
        assert shown["mine"]["id"] == own["id"] and shown["history"][0]["carried_from_run_id"] == str(first)
