"""Blind double coding: who a run's reviewers are, what each reader sees before and after every reviewer is done,
and what the refiner, the gate and the export read meanwhile."""

from __future__ import annotations

import io
import uuid

import pandas as pd
from fastapi.testclient import TestClient

from coderai_api.main import create_app
from tests.test_agents import DatelineLLM, _do_tasks, _review_cities
from tests.test_api import login_as
from tests.test_assets import instance  # noqa: F401
from tests.test_feedback import _member
from tests.test_review import coded_run


def test_an_editor_who_has_not_reviewed_sees_only_their_own_feedback(
    database,
    settings,
    session_factory,
    instance,  # noqa: F811
    demo_files,
):
    """Alice reviews alone and is done: a reviewer set of one, all done. Carol, an editor with no verdict yet, could
    still code the run: she sees none of Alice's answers, and her agreement view is not complete. A viewer, who
    cannot code, sees them."""
    app = create_app(settings)
    with TestClient(app, base_url="http://test/api/v1") as alice:
        login_as(alice, f"alice-{uuid.uuid4().hex[:8]}@example.org")
        _, run_id, _ = coded_run(alice, settings, session_factory, instance, demo_files, DatelineLLM())
        carol, vera = _member(app, alice, "editor"), _member(app, alice, "viewer")
        _review_cities(alice, run_id)
        assert alice.post(f"/runs/{run_id}/review/done").json()["all_done"] is True
        assert carol.get(f"/runs/{run_id}/feedback").json() == []
        assert carol.get(f"/runs/{run_id}/agreement").json()["complete"] is False
        value = alice.get(f"/runs/{run_id}/values", params={"page_size": 1}).json()["items"][0]
        assert carol.get(f"/values/{value['id']}/feedback").json()["others"] == []
        assert len(vera.get(f"/runs/{run_id}/feedback").json()) == 20
        # Carol opens her review: she is a reviewer now, so Alice's answers are hidden from everybody again.
        assert carol.post(f"/runs/{run_id}/review").json()["all_done"] is False
        assert vera.get(f"/runs/{run_id}/feedback").json() == []
        assert len(alice.get(f"/runs/{run_id}/feedback").json()) == 20  # her own, always
        for client in (carol, vera):
            client.__exit__(None, None, None)


def test_nothing_team_wide_is_told_from_another_reviewers_blind_answers(
    database,
    settings,
    session_factory,
    instance,  # noqa: F811
    demo_files,
):
    """Bob has reviewed the cities (all wrong) and is not done; Alice has reviewed nothing. Her refinement learns
    from her own feedback only (none: refused), the gate refuses a full run as the review is incomplete without
    quoting Bob's figures, and her download holds none of his corrections."""
    app = create_app(settings)
    with TestClient(app, base_url="http://test/api/v1") as alice:
        login_as(alice, f"alice-{uuid.uuid4().hex[:8]}@example.org")
        project_id, run_id, _ = coded_run(alice, settings, session_factory, instance, demo_files, DatelineLLM())
        bob, vera = _member(app, alice, "editor"), _member(app, alice, "viewer")
        _review_cities(bob, run_id)
        assert alice.post(f"/runs/{run_id}/review").status_code == 200
        refused = alice.post(f"/projects/{project_id}/refinements", json={"run_id": str(run_id)})
        assert (refused.status_code, refused.json()["code"]) == (409, "too_few_reviewed_documents")
        estimate = alice.post(f"/projects/{project_id}/refinements/estimate", json={"run_id": str(run_id)})
        assert "city" not in estimate.text  # no weak variable named from Bob's answers
        assert estimate.status_code == 409 or estimate.json()["weak_variables"] == []
        gate = alice.post(f"/projects/{project_id}/runs", json={"kind": "full"})
        assert (gate.status_code, gate.json()["code"]) == (409, "review_incomplete") and "alpha" not in gate.text
        export = alice.get(f"/projects/{project_id}/export", params={"format": "xlsx", "run_id": str(run_id)})
        sheets = pd.read_excel(io.BytesIO(export.content), sheet_name=None)
        assert set(sheets["data"]["city__final_source"]) == {"model"} and sheets["feedback"].empty
        assert sheets["agreement"].empty  # no figure from Bob's answers, between reviewers or not
        # Bob's own refinement learns from his feedback; a viewer reading it sees no corrected value.
        task = bob.post(f"/projects/{project_id}/refinements", json={"run_id": str(run_id), "seed": 3}).json()
        assert task["request"]["feedback_of"] == bob.get("/auth/me").json()["id"]
        (done,) = [t for t in _do_tasks(settings, instance, bob) if t["id"] == task["id"]]
        assert done["status"] == "succeeded" and any(i.get("reviewer") for i in done["result"]["items"])
        shown = vera.get(f"/agent-tasks/{task['id']}").json()
        assert shown["result"]["items"] and all("reviewer" not in i for i in shown["result"]["items"])
        for client in (bob, vera):
            client.__exit__(None, None, None)
