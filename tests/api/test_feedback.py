"""Feedback on values through the API: verdicts and corrections checked against the variable, history kept,
double coding blind until both reviewers are done, viewers refused, missed and spurious entities."""

from __future__ import annotations

import threading
import uuid

from fastapi.testclient import TestClient

from coderai_api.main import create_app
from tests.support.api import _member, login_as
from tests.support.review import coded_run


def _values(client, run_id) -> dict[tuple[str, str], dict]:
    page = client.get(f"/runs/{run_id}/values", params={"limit": 100}).json()
    return {(v["file_name"], v["variable"]): v for v in page["items"]}


def test_feedback_is_checked_kept_and_blind_until_both_reviewers_are_done(
    database,
    settings,
    session_factory,
    instance,
    demo_files,
):
    app = create_app(settings)
    with TestClient(app, base_url="http://test/api/v1") as alice:
        login_as(alice, f"alice-{uuid.uuid4().hex[:8]}@example.org")
        _, run_id, doc_ids = coded_run(alice, settings, session_factory, instance, demo_files)
        bob, vera = _member(app, alice, "editor"), _member(app, alice, "viewer")
        values = _values(alice, run_id)
        city = values[("lyon_nurses.txt", "city")]

        first = alice.put(f"/values/{city['id']}/feedback", json={"verdict": "wrong", "corrected_value": "Lyon"})
        assert first.status_code == 200 and first.json()["corrected_value"] == "Lyon"
        again = alice.put(
            f"/values/{city['id']}/feedback", json={"verdict": "wrong", "corrected_value": "Lyon", "note": "sure"}
        )
        mine = alice.get(f"/values/{city['id']}/feedback").json()
        assert (
            mine["mine"]["id"] == again.json()["id"]
            and mine["mine"]["note"] == "sure"
            and "comment" not in mine["mine"]
        )
        assert [h["superseded_at"] is None for h in mine["history"]] == [False, True]  # the edit kept the first

        # Corrections are checked against the variable: its type, its allowed values; a date is stored as ISO.
        date = values[("lyon_nurses.txt", "event_date")]
        fixed = alice.put(
            f"/values/{date['id']}/feedback", json={"verdict": "wrong", "corrected_value": "13 March 2024"}
        )
        assert fixed.json()["corrected_value"] == "2024-03-13"
        for variable, bad in (("participants", "many"), ("protest_type", "riot")):
            target = values[("lyon_nurses.txt", variable)]
            refused = alice.put(f"/values/{target['id']}/feedback", json={"verdict": "wrong", "corrected_value": bad})
            assert (refused.status_code, refused.json()["code"]) == (422, "invalid_correction"), variable
        correct = values[("porto_dockers.html", "participants")]
        assert alice.put(f"/values/{correct['id']}/feedback", json={"verdict": "correct"}).status_code == 200

        # Viewers read but cannot give feedback.
        assert vera.put(f"/values/{city['id']}/feedback", json={"verdict": "correct"}).status_code == 403

        # Double coding: Bob codes the same value without seeing Alice's answer, and she cannot see his.
        assert bob.get(f"/values/{city['id']}/feedback").json()["others"] == []
        bob.put(f"/values/{city['id']}/feedback", json={"verdict": "correct"})
        assert alice.get(f"/values/{city['id']}/feedback").json()["others_visible"] is False
        assert len(alice.get(f"/runs/{run_id}/feedback").json()["items"]) == 3  # her own only
        assert alice.post(f"/runs/{run_id}/review/done").json()["all_done"] is False
        assert bob.get(f"/values/{city['id']}/feedback").json()["others"] == []
        review = bob.post(f"/runs/{run_id}/review/done").json()
        assert review["all_done"] is True and sorted(r["feedback"] for r in review["reviewers"]) == [1, 3]
        seen = alice.get(f"/values/{city['id']}/feedback").json()
        assert seen["others_visible"] and [o["verdict"] for o in seen["others"]] == ["correct"]
        assert len(bob.get(f"/runs/{run_id}/feedback").json()["items"]) == 4

        # A finished review is locked: after reading Bob's answer, Alice cannot quietly take it as her own.
        locked = alice.put(f"/values/{city['id']}/feedback", json={"verdict": "correct"})
        assert (locked.status_code, locked.json()["code"]) == (409, "review_finished")
        # Reopened, her verdicts can change (the history keeps them), and everybody's answers are hidden again.
        assert alice.post(f"/runs/{run_id}/review/reopen").json()["all_done"] is False
        assert bob.get(f"/values/{city['id']}/feedback").json()["others_visible"] is False
        assert len(bob.get(f"/runs/{run_id}/feedback").json()["items"]) == 1
        again_refused = bob.post(f"/runs/{run_id}/review/reopen")
        assert again_refused.status_code == 200  # Bob's was finished too; reopening his is his to do
        assert bob.post(f"/runs/{run_id}/review/done").status_code == 200

        # Entities: a missed one needs its text; a spurious one must be a row of the document.
        missed = {"document_id": str(doc_ids[0]), "kind": "missed", "entity_text": "a second march"}
        assert alice.post(f"/runs/{run_id}/entity-feedback", json=missed).status_code == 201
        spurious = {"document_id": str(doc_ids[0]), "kind": "spurious", "entity_index": 7}
        refused = alice.post(f"/runs/{run_id}/entity-feedback", json=spurious)
        assert (refused.status_code, refused.json()["code"]) == (422, "entity_not_found")
        unnamed = alice.post(f"/runs/{run_id}/entity-feedback", json={**missed, "entity_text": None})
        assert unnamed.status_code == 422
        assert len(alice.get(f"/runs/{run_id}/entity-feedback").json()["items"]) == 1
        assert alice.post(f"/runs/{run_id}/review/done").json()["all_done"] is True
        not_finished = alice.post(f"/runs/{run_id}/review/reopen")
        assert not_finished.status_code == 200
        refused = alice.post(f"/runs/{run_id}/review/reopen")
        assert (refused.status_code, refused.json()["code"]) == (409, "review_not_finished")
        for client in (bob, vera):
            client.__exit__(None, None, None)


def test_one_reviewers_answers_sent_at_once_leave_one_current_answer(
    database,
    settings,
    session_factory,
    instance,
    demo_files,
):
    app = create_app(settings)
    with TestClient(app, base_url="http://test/api/v1") as alice:
        login_as(alice, f"racer-{uuid.uuid4().hex[:8]}@example.org")
        _, run_id, _ = coded_run(alice, settings, session_factory, instance, demo_files)
        value = next(iter(_values(alice, run_id).values()))
        statuses: list[int] = []
        barrier = threading.Barrier(8)

        def send(i: int) -> None:
            barrier.wait()
            response = alice.put(f"/values/{value['id']}/feedback", json={"verdict": "correct", "note": str(i)})
            statuses.append(response.status_code)

        threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert statuses == [200] * 8
        history = alice.get(f"/values/{value['id']}/feedback").json()["history"]
        assert len(history) == 8 and sum(h["superseded_at"] is None for h in history) == 1


def test_agreement_per_variable_and_the_reliability_gate_of_a_full_run(
    database,
    settings,
    session_factory,
    instance,
    demo_files,
):
    """Two reviewers code the run; the figures per variable; a full run is refused while a variable is under the
    threshold, and starts with an override whose reason the export's about sheet carries."""
    import pandas as pd

    from coderai_assets.domain.dataset import write_export
    from coderai_assets.storage.db import tenant_session
    from coderai_assets.storage.files import LocalFileStorage
    from coderai_assets.storage.models import Project, Run

    app = create_app(settings)
    with TestClient(app, base_url="http://test/api/v1") as alice:
        login_as(alice, f"coder-{uuid.uuid4().hex[:8]}@example.org")
        project_id, run_id, _ = coded_run(alice, settings, session_factory, instance, demo_files)
        bob = _member(app, alice, "editor")
        values = _values(alice, run_id)
        for (file_name, variable), value in values.items():
            if variable == "city":  # the model misread Lyon as Marseille; Alice corrects it (and Porto), Bob not
                fixes = {"lyon_nurses.txt": "Lyon", "porto_dockers.html": "Oporto"}
                verdict = {"verdict": "wrong", "corrected_value": fixes[file_name]} if file_name in fixes else {}
                alice.put(f"/values/{value['id']}/feedback", json=verdict or {"verdict": "correct"})
                bob.put(f"/values/{value['id']}/feedback", json={"verdict": "correct"})
            if variable == "participants":
                for reviewer in (alice, bob):
                    reviewer.put(f"/values/{value['id']}/feedback", json={"verdict": "correct"})
        mine = alice.get(f"/runs/{run_id}/agreement").json()
        assert mine["complete"] is False and mine["between_reviewers"] == []
        alice.post(f"/runs/{run_id}/review/done")
        bob.post(f"/runs/{run_id}/review/done")
        figures = alice.get(f"/runs/{run_id}/agreement").json()
        by_variable = {v["variable"]: v for v in figures["model_vs_reviewers"]}
        assert (by_variable["city"]["n"], by_variable["city"]["accuracy"]) == (8, 0.75)
        assert by_variable["city"]["level"] == "nominal" and by_variable["participants"]["level"] == "interval"
        assert by_variable["participants"]["accuracy"] == 1.0 and by_variable["participants"]["passes"]
        assert by_variable["city"]["alpha"] < 0.8 and not by_variable["city"]["passes"]
        (city,) = [b for b in figures["between_reviewers"] if b["variable"] == "city"]
        assert (city["n"], city["accuracy"]) == (4, 0.5)

        refused = alice.post(f"/projects/{project_id}/runs", json={"kind": "full"})
        assert (refused.status_code, refused.json()["code"]) == (409, "reliability_below_threshold")
        assert "city" in refused.json()["message"] and "participants" not in refused.json()["message"]
        override = {"reason": "City is checked by hand after the run."}
        started = alice.post(f"/projects/{project_id}/runs", json={"kind": "full", "reliability_override": override})
        assert started.status_code == 202
        recorded = started.json()["reliability_override"]
        assert recorded["reason"] == override["reason"] and recorded["variables"]["city"]["threshold"] == 0.8
        # A lower threshold for the variable lets the next one pass without an override.
        alice.patch(f"/projects/{project_id}", json={"reliability_thresholds": {"city": 0.0}})
        alice.post(f"/runs/{started.json()['id']}/cancel")
        assert alice.post(f"/projects/{project_id}/runs", json={"kind": "full"}).status_code == 202

        tenant = uuid.UUID(alice.get("/auth/me").json()["workspaces"][0]["id"])
        with tenant_session(session_factory, tenant) as session:
            project = session.get(Project, project_id)
            reviewed = write_export(
                session, LocalFileStorage(settings.storage_dir), project, session.get(Run, run_id), "x"
            )
            book = pd.read_excel(settings.storage_dir / reviewed.xlsx_path, sheet_name=None)
            data = book["data"].set_index("file_name")
            # The model's value, and next to it the final one: a reviewer's correction wins and says so.
            assert data.loc["lyon_nurses.txt", ["city", "city__final", "city__final_source"]].tolist() == [
                "Marseille",
                "Lyon",
                "reviewer",
            ]
            assert data.loc["porto_dockers.html", "city__final"] == "Oporto"
            assert data.loc["gdansk_students.pdf", ["city__final", "city__final_source"]].tolist() == [
                "Gdansk",
                "model",
            ]
            agreement_rows = book["agreement"]
            assert set(agreement_rows["variable"]) == {"city", "participants"}
            assert set(agreement_rows["comparison"]) == {"model vs reviewers", "between reviewers"}
            assert len(book["feedback"]) == 16  # 8 values, two reviewers each
            export = write_export(
                session, LocalFileStorage(settings.storage_dir), project, session.get(Run, started.json()["id"]), "x"
            )
            about = pd.read_excel(settings.storage_dir / export.xlsx_path, sheet_name="about").set_index("key")
        assert about.loc["reliability_override", "value"] == override["reason"]
        assert "city: alpha" in about.loc["reliability_below_threshold", "value"]
        bob.__exit__(None, None, None)
