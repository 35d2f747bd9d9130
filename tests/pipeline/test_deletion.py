"""Deleting what users own (domain/deletion.py, defs/sensors/deletions.py): asked through the API, hidden at once,
its runs stopped, then removed by the deletions sensor once its Dagster runs have ended: no row in any table, no
file, no Dagster run, partition or materialisation left; another project or workspace untouched."""

from __future__ import annotations

import uuid

import pytest
from dagster import AssetKey, AssetRecordsFilter, DagsterRun, DagsterRunStatus, build_sensor_context
from fastapi.testclient import TestClient
from sqlalchemy import text

from coderai_assets.defs.partitions import PROJECT_TAG, PROJECTS_PARTITIONS, document_key, project_partition
from coderai_assets.defs.resources import DatabaseResource, StorageResource
from coderai_assets.domain.runs import create_run
from coderai_assets.storage.db import tenant_session
from coderai_assets.storage.models import Project, Run, RunKind, RunStatus
from tests.support.api import login_as
from tests.support.dagster import SHARD, _code, _for, _project, _sensor, _tick

ASSETS = ("parsed_document", "extractions", "validated_rows")


def _purge(settings, instance):
    """One tick of the deletions sensor."""
    resources = {
        "db": DatabaseResource(url=settings.database_url),
        "files": StorageResource(root=str(settings.storage_dir)),
    }
    return _sensor(settings, "deletions")(build_sensor_context(instance=instance, resources=resources))


def rows_holding(owner_engine, ids: list[uuid.UUID]) -> dict[str, int]:
    """Rows of any table with one of `ids` in any of its uuid columns (as the owner: row-level security aside)."""
    found: dict[str, int] = {}
    with owner_engine.connect() as connection:
        columns = connection.execute(
            text(
                "select table_name, column_name from information_schema.columns "
                "where table_schema = 'public' and data_type = 'uuid'"
            )
        ).all()
        for table, column in columns:
            count = connection.scalar(
                text(f'select count(*) from "{table}" where "{column}" = any(:ids)'), {"ids": ids}
            )
            if count:
                found[f"{table}.{column}"] = count
    return found


def _materialised(instance, keys: list[str]) -> int:
    return sum(
        len(
            instance.fetch_materializations(
                AssetRecordsFilter(asset_key=AssetKey(name), asset_partitions=keys), limit=1000
            ).records
        )
        for name in ASSETS
    )


@pytest.fixture
def owner(app):
    with TestClient(app, base_url="http://test/api/v1") as client:
        login_as(client, f"deleter-{uuid.uuid4().hex[:8]}@example.org")
        client.tenant = uuid.UUID(client.get("/auth/me").json()["workspaces"][0]["id"])
        yield client


def _coded_project(settings, session_factory, instance, tenant, files):
    """A project whose documents are Dagster partitions and were coded by a full run (values, answers, export)."""
    project_id, doc_ids = _project(session_factory, tenant, settings, files)
    _tick(settings, instance)
    with tenant_session(session_factory, tenant) as session:
        run, _ = create_run(session, session.get(Project, project_id), RunKind.full, with_quotes=True)
        run_id = run.id
    (request,) = _for(_tick(settings, instance).run_requests, run_id)
    assert _code(settings, instance, request).success
    return project_id, doc_ids, run_id


def test_deleting_a_project_stops_its_run_in_flight_then_leaves_nothing_of_it(
    owner, settings, session_factory, instance, demo_files, tenant, owner_engine
):
    project_id, doc_ids, done_run = _coded_project(settings, session_factory, instance, owner.tenant, demo_files)
    kept_id, kept_docs, _ = _coded_project(settings, session_factory, instance, owner.tenant, demo_files[:1])
    foreign_id, foreign_docs, _ = _coded_project(settings, session_factory, instance, tenant, demo_files[:1])
    # A second run under way: its Dagster run has started.
    with tenant_session(session_factory, owner.tenant) as session:
        run, _ = create_run(session, session.get(Project, project_id), RunKind.sample, 2, with_quotes=True)
        flying_run = run.id
    (request,) = _for(_tick(settings, instance).run_requests, flying_run)
    worker = DagsterRun(
        job_name=request.job_name, run_id=str(uuid.uuid4()), status=DagsterRunStatus.STARTED, tags=request.tags
    )
    instance.add_run(worker)
    keys = [document_key(project_id, d) for d in doc_ids]
    assert _materialised(instance, keys) > 0 and (settings.storage_dir / str(owner.tenant) / str(project_id)).exists()

    assert owner.delete(f"/projects/{project_id}").json() == {
        "kind": "project",
        "id": str(project_id),
        "status": "deleting",
    }
    # Gone from every read at once; the run under way is cancelled.
    assert owner.get(f"/projects/{project_id}").json()["code"] == "project_not_found"
    assert [p["id"] for p in owner.get("/projects").json()["items"]] == [str(kept_id)]
    assert owner.delete(f"/projects/{project_id}").status_code == 404
    with tenant_session(session_factory, owner.tenant) as session:
        assert session.get(Run, flying_run).status == RunStatus.canceled

    # The sensor removes nothing while the Dagster run is under way (its worker may still write).
    _purge(settings, instance)
    assert rows_holding(owner_engine, [project_id])
    assert set(keys) <= set(instance.get_dynamic_partitions(SHARD.partitions_name))
    instance.report_run_canceled(instance.get_run_by_id(worker.run_id))  # the worker stopped

    _purge(settings, instance)
    ids = [project_id, *doc_ids, done_run, flying_run]
    assert rows_holding(owner_engine, ids) == {}, "a row of the deleted project was left"
    assert not (settings.storage_dir / str(owner.tenant) / str(project_id)).exists()
    assert not set(keys) & set(instance.get_dynamic_partitions(SHARD.partitions_name))
    assert project_partition(project_id) not in instance.get_dynamic_partitions(PROJECTS_PARTITIONS)
    assert instance.get_run_records(filters=_project_runs(project_id)) == []
    assert _materialised(instance, keys) == 0

    # The workspace's other project and another workspace's are untouched.
    for tenant_id, other, docs in [(owner.tenant, kept_id, kept_docs), (tenant, foreign_id, foreign_docs)]:
        assert rows_holding(owner_engine, [other])["documents.project_id"] == len(docs)
        assert (settings.storage_dir / str(tenant_id) / str(other)).exists()
        other_keys = [document_key(other, d) for d in docs]
        assert set(other_keys) <= set(instance.get_dynamic_partitions(SHARD.partitions_name))
        assert _materialised(instance, other_keys) == 3 * len(docs)
    assert owner.get(f"/projects/{kept_id}/documents").json()["total"] == len(kept_docs)


def _project_runs(project_id):
    from dagster import RunsFilter

    return RunsFilter(tags={PROJECT_TAG: str(project_id)})


def test_deleting_a_document_removes_it_and_the_exports_that_hold_it_and_keeps_the_rest(
    owner, settings, session_factory, instance, demo_files, owner_engine
):
    project_id, doc_ids, run_id = _coded_project(settings, session_factory, instance, owner.tenant, demo_files)
    gone, *kept = doc_ids
    assert rows_holding(owner_engine, [run_id]).get("exports.run_id")
    assert owner.delete(f"/projects/{project_id}/documents/{gone}").status_code == 202
    assert owner.get(f"/projects/{project_id}/documents/{gone}").json()["code"] == "document_not_found"
    assert owner.get(f"/projects/{project_id}/documents").json()["total"] == len(kept)

    _purge(settings, instance)
    assert rows_holding(owner_engine, [gone]) == {}
    assert not (settings.storage_dir / str(owner.tenant) / str(project_id) / "documents" / str(gone)).exists()
    assert document_key(project_id, gone) not in instance.get_dynamic_partitions(SHARD.partitions_name)
    # Its materialisations stay in the event log of the run that coded the others too (ids and counts only):
    # Dagster's SQL event storages cannot wipe one partition's events.
    # The run's export held the document's values: it is gone; the run and the other documents' values stay.
    left = rows_holding(owner_engine, [run_id])
    assert "exports.run_id" not in left and left["extractions.run_id"] > 0
    assert _materialised(instance, [document_key(project_id, d) for d in kept]) == 3 * len(kept)
    # The same bytes can be uploaded again once it is gone.
    again = owner.post(
        f"/projects/{project_id}/documents", files=[("files", ("again.txt", demo_files[0].read_bytes()))]
    )
    assert again.status_code == 201 and again.json()[0]["duplicate"] is False


def test_an_account_is_deleted_with_the_workspaces_it_alone_belonged_to(
    app, owner, settings, session_factory, instance, demo_files, owner_engine
):
    project_id, doc_ids, _ = _coded_project(settings, session_factory, instance, owner.tenant, demo_files[:2])
    shared = owner.post("/workspaces", json={"name": "Shared"}).json()["id"]
    with TestClient(app, base_url="http://test/api/v1") as colleague:
        email = f"colleague-{uuid.uuid4().hex[:8]}@example.org"
        login_as(colleague, email)
        owner.headers["X-Workspace-Id"] = shared
        assert owner.post(f"/workspaces/{shared}/members", json={"email": email, "role": "editor"}).status_code == 201
        del owner.headers["X-Workspace-Id"]

        wrong = owner.request("DELETE", "/auth/me", json={"password": "not it"})
        assert (wrong.status_code, wrong.json()["code"]) == (401, "invalid_credentials")
        # The only owner of a workspace someone else belongs to: refused, and nothing changes.
        refused = owner.request("DELETE", "/auth/me", json={"password": "correct horse battery"})
        assert (refused.status_code, refused.json()["code"]) == (409, "sole_owner")
        assert owner.get("/projects").status_code == 200

        owner.headers["X-Workspace-Id"] = shared
        colleague_id = colleague.get("/auth/me").json()["id"]
        assert owner.patch(f"/workspaces/{shared}/members/{colleague_id}", json={"role": "owner"}).status_code == 200
        del owner.headers["X-Workspace-Id"]
        assert owner.request("DELETE", "/auth/me", json={"password": "correct horse battery"}).status_code == 204
        assert owner.get("/projects").json()["code"] == "invalid_token"  # its sessions ended with it

        _purge(settings, instance)
        assert rows_holding(owner_engine, [owner.tenant, project_id, *doc_ids]) == {}
        assert not (settings.storage_dir / str(owner.tenant)).exists()
        # The shared workspace stays, with its other owner.
        colleague.headers["X-Workspace-Id"] = shared
        assert [m["email"] for m in colleague.get(f"/workspaces/{shared}/members").json()] == [email]


def test_a_workspace_owner_deletes_the_workspace_but_not_their_only_one(owner, settings, instance, owner_engine):
    only = owner.delete(f"/workspaces/{owner.tenant}")
    assert (only.status_code, only.json()["code"]) == (409, "last_workspace")
    second = owner.post("/workspaces", json={"name": "Second"}).json()["id"]
    owner.headers["X-Workspace-Id"] = second
    project = owner.post("/projects", json={"name": "In the second"}).json()["id"]
    assert owner.delete(f"/workspaces/{second}").status_code == 202
    gone = owner.get("/projects")
    assert (gone.status_code, gone.json()["code"]) == (403, "not_a_member")  # nobody acts in it any more
    del owner.headers["X-Workspace-Id"]
    assert [w["id"] for w in owner.get("/workspaces").json()] == [str(owner.tenant)]
    _purge(settings, instance)
    assert rows_holding(owner_engine, [uuid.UUID(second), uuid.UUID(project)]) == {}
