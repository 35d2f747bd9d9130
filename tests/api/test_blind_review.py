"""Blind double coding: who a run's reviewers are, what each reader sees before and after every reviewer is done,
and what the refiner, the gate and the export read meanwhile."""

from __future__ import annotations

import io
import uuid

import pandas as pd
from fastapi.testclient import TestClient

from coderai_api.main import create_app
from tests.support.api import _member, login_as
from tests.support.review import DatelineLLM, _do_tasks, _review_cities, coded_run


def test_an_editor_who_has_not_reviewed_sees_only_their_own_feedback(
    database,
    settings,
    session_factory,
    instance,
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
        assert carol.get(f"/runs/{run_id}/feedback").json()["items"] == []
        assert carol.get(f"/runs/{run_id}/agreement").json()["complete"] is False
        value = alice.get(f"/runs/{run_id}/values", params={"limit": 1}).json()["items"][0]
        assert carol.get(f"/values/{value['id']}/feedback").json()["others"] == []
        assert len(vera.get(f"/runs/{run_id}/feedback").json()["items"]) == 20
        # Carol opens her review: she is a reviewer now, so Alice's answers are hidden from everybody again.
        assert carol.post(f"/runs/{run_id}/review").json()["all_done"] is False
        assert vera.get(f"/runs/{run_id}/feedback").json()["items"] == []
        assert len(alice.get(f"/runs/{run_id}/feedback").json()["items"]) == 20  # her own, always
        for client in (carol, vera):
            client.__exit__(None, None, None)


def test_nothing_team_wide_is_told_from_another_reviewers_blind_answers(
    database,
    settings,
    session_factory,
    instance,
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


def _at_once(*calls):
    import threading

    barrier, answers = threading.Barrier(len(calls)), [None] * len(calls)

    def run(i, call):
        barrier.wait()
        answers[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_two_reviewers_finishing_at_once_complete_the_review_and_carry_its_verdicts(
    database,
    settings,
    session_factory,
    instance,
    demo_files,
):
    """Each finishing alone would see the other not done yet: the review's completion (and the carrying of its
    verdicts to a run coded meanwhile) would be lost."""
    from tests.support.review import recode

    app = create_app(settings)
    with TestClient(app, base_url="http://test/api/v1") as alice:
        login_as(alice, f"alice-{uuid.uuid4().hex[:8]}@example.org")
        tenant = uuid.UUID(alice.get("/auth/me").json()["workspaces"][0]["id"])
        project_id, run_id, doc_ids = coded_run(alice, settings, session_factory, instance, demo_files, DatelineLLM())
        bob = _member(app, alice, "editor")
        _review_cities(alice, run_id)
        _review_cities(bob, run_id)
        meanwhile = recode(settings, session_factory, instance, tenant, project_id, doc_ids, DatelineLLM())
        answers = _at_once(
            lambda: alice.post(f"/runs/{run_id}/review/done"), lambda: bob.post(f"/runs/{run_id}/review/done")
        )
        assert [a.status_code for a in answers] == [200, 200]
        assert any(a.json()["all_done"] for a in answers)
        assert len(alice.get(f"/runs/{meanwhile}/feedback").json()["items"]) == 2 * 20  # both reviewers' verdicts
        bob.__exit__(None, None, None)


def test_two_downloads_at_once_after_a_correction_build_one_export(
    database,
    settings,
    session_factory,
    instance,
    demo_files,
):
    from coderai_assets.storage.db import tenant_session
    from coderai_assets.storage.models import Export

    with TestClient(create_app(settings), base_url="http://test/api/v1") as alice:
        login_as(alice, f"alice-{uuid.uuid4().hex[:8]}@example.org")
        tenant = uuid.UUID(alice.get("/auth/me").json()["workspaces"][0]["id"])
        project_id, run_id, _ = coded_run(alice, settings, session_factory, instance, demo_files, DatelineLLM())
        _review_cities(alice, run_id)
        with tenant_session(session_factory, tenant) as session:
            before = session.query(Export).filter(Export.run_id == run_id).count()

        def download():
            return alice.get(f"/projects/{project_id}/export", params={"run_id": str(run_id)})

        answers = _at_once(download, download, download)
        assert [a.status_code for a in answers] == [200] * 3
        assert len({a.text for a in answers}) == 1 and ",reviewer," in answers[0].text
        with tenant_session(session_factory, tenant) as session:
            assert session.query(Export).filter(Export.run_id == run_id).count() == before + 1
