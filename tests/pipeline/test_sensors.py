"""The fixed asset graph and its sensors: the graph never changes with projects; uploads become partitions and runs
are launched by the intake sensor (one Dagster run per application run, samples included); auto-processing codes
new uploads without any API call; the lifecycle sensor requests the export."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from coderai_api.main import create_app
from coderai_assets.defs.partitions import (
    PROJECT_TAG,
    RANGE_END_TAG,
    RANGE_START_TAG,
    RUN_TAG,
    SLOT_TAG,
    Shard,
    document_key,
    parse_document_key,
)
from coderai_assets.defs.resources import default_resources
from coderai_assets.domain.runs import create_run
from coderai_assets.storage.db import tenant_session
from coderai_assets.storage.models import Document, Project, Run, RunDocument, RunKind, RunStatus
from tests.support.api import _client, login_as
from tests.support.dagster import _code, _for, _project, _tick, definitions

# The asset graph as reviewers should see it change: keys, their dependencies and groups, for one shard.
GRAPH_ONE_SHARD = {
    ("parsed_document",): ((), "coding"),
    ("extractions",): ((("parsed_document",),), "coding"),
    ("validated_rows",): ((("extractions",),), "coding"),
    ("export",): ((("validated_rows",),), "coding"),
}


def graph(defs) -> dict:
    asset_graph = defs.resolve_asset_graph()
    return {
        tuple(key.path): (
            tuple(sorted(tuple(p.path) for p in asset_graph.get(key).parent_keys)),
            asset_graph.get(key).group_name,
        )
        for key in asset_graph.get_all_asset_keys()
    }


def test_the_asset_graph_is_one_chain_per_shard(settings):
    assert graph(definitions(settings)) == GRAPH_ONE_SHARD
    two = graph(definitions(settings.model_copy(update={"dagster_shards": 2})))
    assert len(two) == 8 and two[("shard1", "export")] == ((("shard1", "validated_rows"),), "coding_shard1")


def test_the_definitions_do_not_change_when_a_project_is_created(settings, session_factory, tenant, demo_files):
    def shape() -> tuple:
        defs = definitions(settings)
        repository = defs.get_repository_def()
        return (
            graph(defs),
            sorted(job.name for job in repository.get_all_jobs()),
            sorted(s.name for s in repository.sensor_defs),
        )

    before = shape()
    _project(session_factory, tenant, settings, demo_files)
    assert shape() == before


def test_a_sample_of_random_documents_is_one_dagster_run(settings, session_factory, tenant, instance, demo_files):
    shard = Shard(0, 1)
    other_project, other_docs = _project(session_factory, tenant, settings, demo_files[:2])
    project_id, doc_ids = _project(session_factory, tenant, settings, demo_files * 2)  # 8 documents
    first = _tick(settings, instance)
    registered = instance.get_dynamic_partitions(shard.partitions_name)
    # Each project's uploads go in together, so its full run is one contiguous range.
    positions = [i for i, k in enumerate(registered) if parse_document_key(k)[0] == project_id]
    assert positions == list(range(positions[0], positions[0] + len(doc_ids)))
    # No run of this project yet (other tests' runs share the database, and the sensor sees every tenant).
    assert set(registered) >= {document_key(project_id, d) for d in doc_ids}
    assert [r for r in first.run_requests if r.tags.get(PROJECT_TAG) == str(project_id)] == []
    with tenant_session(session_factory, tenant) as session:
        assert all(d.registered_at is not None for d in session.scalars(select(Document)))
        run, sampled = create_run(
            session, session.get(Project, project_id), RunKind.sample, 5, seed=4, with_quotes=True
        )
        run_id, sampled_ids = run.id, {d.id for d in sampled}
    (request,) = _for(_tick(settings, instance).run_requests, run_id)
    assert request.job_name == shard.documents_job
    # Launched once: a second tick before the run starts asks for it again under the same run key only.
    assert [r.run_key for r in _for(_tick(settings, instance).run_requests, run_id)] == [request.run_key]

    result = _code(settings, instance, request)
    assert result.success
    materialised = {(e.asset_key.path[-1], e.partition) for e in result.get_asset_materialization_events()}
    keys = {document_key(project_id, d) for d in sampled_ids}
    stages = {(stage, k) for stage in ("parsed_document", "extractions", "validated_rows") for k in keys}
    # The run's last document done, the same Dagster run writes the export and records its project partition.
    assert materialised == stages | {("export", project_id.hex)}
    with tenant_session(session_factory, tenant) as session:
        run = session.get(Run, run_id)
        assert (run.status, run.documents_done, run.documents_total) == (RunStatus.succeeded, 5, 5)
        assert run.dagster_run_ids == [result.run_id]
        # The documents the range passed over (unsampled, or another project's) were not touched.
        untouched = [d for d in doc_ids if d not in sampled_ids] + other_docs
        assert {session.get(Document, d).status.value for d in untouched} == {"uploaded"}
    lifecycle = _tick(settings, instance, "run_lifecycle")
    assert _for(lifecycle.run_requests, run_id) == []  # exported already: no export job
    with tenant_session(session_factory, tenant) as session:
        assert session.get(Run, run_id).dagster_status == {}  # no longer active, so no longer followed

    # A documents run that ended before it could export (a crash after the last document): the sensor launches
    # the export job for it.
    with tenant_session(session_factory, tenant) as session:
        session.get(Run, run_id).status = RunStatus.exporting
    (export_request,) = _for(_tick(settings, instance, "run_lifecycle").run_requests, run_id)
    assert export_request.partition_key == project_id.hex and export_request.job_name == shard.export_job
    with tenant_session(session_factory, tenant) as session:
        assert session.get(Run, run_id).dagster_status == {result.run_id: "SUCCESS"}


def test_a_new_upload_is_coded_by_the_sensor_without_any_api_call(
    database, settings, session_factory, instance, demo_files
):
    app = create_app(settings)
    with TestClient(app, base_url="http://test/api/v1") as client:
        email, password = f"auto-{uuid.uuid4().hex[:8]}@example.org", "correct horse battery"
        client.post("/auth/register", json={"email": email, "password": password})
        tokens = client.post("/auth/login", json={"email": email, "password": password}).json()
        client.headers["Authorization"] = f"Bearer {tokens['access_token']}"
        project = client.post("/projects", json={"name": "Auto", "auto_process": True}).json()
        pid = project["id"]
        assert project["auto_process"] is True and project["shard"] == 0
        client.post(f"/projects/{pid}/variables", json={"name": "city", "type": "text"})
        client.post(f"/projects/{pid}/documents", files=[("files", (demo_files[0].name, demo_files[0].read_bytes()))])
        full = client.post(f"/projects/{pid}/runs", json={"kind": "full"})
        assert full.status_code == 202 and full.json()["status"] == "queued"  # recorded, not launched
        (request,) = _for(_tick(settings, instance).run_requests, full.json()["id"])
        assert _code(settings, instance, request).success
        # The full run is accepted; the user now only uploads.
        client.post(f"/projects/{pid}/documents", files=[("files", (demo_files[1].name, demo_files[1].read_bytes()))])
        tenant_id = uuid.UUID(tokens["workspace_id"])
    tick = _tick(settings, instance)
    (auto_request,) = [r for r in tick.run_requests if r.tags.get("coderai/project_id") == pid]
    assert _code(settings, instance, auto_request).success
    with tenant_session(session_factory, tenant_id) as session:
        auto = session.get(Run, uuid.UUID(auto_request.tags[RUN_TAG]))
        accepted = session.get(Run, uuid.UUID(full.json()["id"]))
        assert auto.kind == RunKind.auto and auto.prompt_version_id == accepted.prompt_version_id
        (document_id,) = session.scalars(select(RunDocument.document_id).where(RunDocument.run_id == auto.id))
        assert session.get(Document, document_id).file_name == demo_files[1].name
        assert (auto.status, auto.documents_done) == (RunStatus.succeeded, 1)
    # Nothing more to do: no second auto run for the same upload.
    assert [r for r in _tick(settings, instance).run_requests if r.tags.get("coderai/project_id") == pid] == []


def test_a_key_range_run_started_from_the_dagster_ui_gets_a_run_of_its_own(
    settings, session_factory, tenant, instance, demo_files
):
    project_id, doc_ids = _project(session_factory, tenant, settings, demo_files[:2])
    _tick(settings, instance)
    wanted = {document_key(project_id, d) for d in doc_ids}
    keys = [k for k in instance.get_dynamic_partitions(Shard(0, 1).partitions_name) if k in wanted]

    class Untagged:
        tags = {RANGE_START_TAG: keys[0], RANGE_END_TAG: keys[1]}

    result = _code(settings, instance, Untagged)
    assert result.success
    with tenant_session(session_factory, tenant) as session:
        (run,) = session.scalars(select(Run).where(Run.project_id == project_id))
        assert (run.documents_done, run.dagster_run_ids) == (2, [result.run_id])


def test_the_llm_resource_uses_the_settings_the_definitions_were_built_with(settings, monkeypatch):
    """Not the environment of the process that runs it; and the API key never enters the resource's config,
    which the Dagster UI shows."""
    built = settings.model_copy(
        update={
            "llm_provider": "openai_compatible",
            "llm_model": "built-with",
            "llm_base_url": "http://127.0.0.1:9/v1",
            "llm_api_key": SecretStr("sk-not-in-config"),
        }
    )
    monkeypatch.setenv("CODERAI_LLM_MODEL", "from-the-environment")
    monkeypatch.setenv("CODERAI_LLM_API_KEY", "sk-from-the-environment")
    llm = default_resources(built)["llm"]
    assert "sk-" not in llm.config_json
    extractor = llm.extractor()
    assert extractor.model_name == "openai_compatible/built-with"  # never the server's address
    assert extractor.model.openai_api_key.get_secret_value() == "sk-from-the-environment"


def test_a_large_run_is_split_into_parallel_parts_that_export_once(
    settings, session_factory, tenant, instance, demo_files
):
    """Each part is a Dagster run (a process) over its own span of the run's keys; the last to finish exports."""
    settings = settings.model_copy(update={"run_parallelism": 2})
    project_id, doc_ids = _project(session_factory, tenant, settings, [demo_files[0]] * 110)
    _tick(settings, instance)
    with tenant_session(session_factory, tenant) as session:
        run, _ = create_run(session, session.get(Project, project_id), RunKind.full, with_quotes=True)
        run_id = run.id
    parts = _for(_tick(settings, instance).run_requests, run_id)
    assert len(parts) == 2 and len({r.tags[SLOT_TAG] for r in parts}) == 2
    order = {k: i for i, k in enumerate(instance.get_dynamic_partitions(Shard(0, 1).partitions_name))}
    spans = [range(order[r.tags[RANGE_START_TAG]], order[r.tags[RANGE_END_TAG]] + 1) for r in parts]
    covered = [i for span in spans for i in span]
    assert len(covered) == len(set(covered)) == len(doc_ids)  # disjoint, and every document in one
    results = [_code(settings, instance, r) for r in parts]
    assert all(r.success for r in results)
    exports = [e for r in results for e in r.get_asset_materialization_events() if e.asset_key.path[-1] == "export"]
    assert len(exports) == 1 and exports[0].partition == project_id.hex
    with tenant_session(session_factory, tenant) as session:
        run = session.get(Run, run_id)
        assert (run.status, run.documents_done) == (RunStatus.succeeded, len(doc_ids))
        assert sorted(run.dagster_run_ids) == sorted(r.run_id for r in results)


def test_a_projects_next_run_waits_until_its_run_under_way_ends(
    settings, session_factory, tenant, instance, demo_files
):
    """Runs of one project share its documents' chunks: the intake sensor launches one at a time, oldest first."""
    project_id, _ = _project(session_factory, tenant, settings, demo_files[:2])
    _tick(settings, instance)
    with tenant_session(session_factory, tenant) as session:
        project = session.get(Project, project_id)
        first, _ = create_run(session, project, RunKind.sample, 1, seed=1, with_quotes=True)
    with tenant_session(session_factory, tenant) as session:
        second, _ = create_run(session, session.get(Project, project_id), RunKind.full, with_quotes=True)
    requests = _tick(settings, instance).run_requests
    assert len(_for(requests, first.id)) == 1 and _for(requests, second.id) == []
    assert _code(settings, instance, _for(requests, first.id)[0]).success
    with tenant_session(session_factory, tenant) as session:
        assert session.get(Run, first.id).status == RunStatus.succeeded
    assert len(_for(_tick(settings, instance).run_requests, second.id)) == 1


def test_loading_the_definitions_does_not_import_langchain():
    """Every Dagster run worker loads the definitions when it starts; LangChain (about 0.9 s) waits until a
    document is extracted."""
    import subprocess
    import sys

    code = "import sys, coderai_assets.definitions; print(sorted(m for m in sys.modules if m.startswith('langchain')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_orphans_are_never_made_or_are_swept(app, settings, session_factory):
    """Partitions registered before an upload's commit outlived a failed commit; files of failed uploads stayed;
    login attempts, sessions and refresh tokens grew forever. Now partitions come from committed rows only (the
    intake sensor), a failed upload removes its files, and an hourly job sweeps the rest."""
    import os
    import time
    from datetime import timedelta

    from dagster import DagsterInstance

    from coderai_assets.definitions import build_definitions
    from coderai_assets.pipeline.housekeeping import ORPHAN_AGE_SECONDS, sweep
    from coderai_assets.storage.files import LocalFileStorage
    from coderai_assets.storage.models import AuthSession, LoginAttempt, RefreshToken, User, utcnow
    from tests.support.dagster import _tick

    storage = LocalFileStorage(settings.storage_dir)
    with _client(app) as client:
        tokens = login_as(client, f"orphans-{uuid.uuid4().hex[:8]}@example.org")
        workspace = tokens["workspace_id"]
        project = client.post("/projects", json={"name": "Orphans"}).json()["id"]
        good, empty = ("files", ("good.txt", b"A report.")), ("files", ("empty.txt", b""))
        failed = client.post(f"/projects/{project}/documents", files=[good, empty])
        assert (failed.status_code, failed.json()["code"]) == (422, "empty_file")
        folder = storage.path(f"{workspace}/{project}/documents")
        assert not folder.exists() or not any(folder.rglob("original"))
    with DagsterInstance.ephemeral() as instance:
        _tick(settings, instance)
        assert not [k for k in instance.get_dynamic_partitions("documents") if k.startswith(uuid.UUID(project).hex)]

    # What a failed commit would leave: a stored file with no row. Swept once it is an hour old, not before.
    fresh, stale = (f"{workspace}/{project}/documents/{uuid.uuid4()}/original" for _ in range(2))
    for key in (fresh, stale):
        storage.write(key, b"orphan")
    old = time.time() - ORPHAN_AGE_SECONDS - 60
    os.utime(storage.path(stale).parent, (old, old))
    with tenant_session(session_factory, None) as session:
        user = User(email=f"old-{uuid.uuid4().hex[:8]}@example.org", password_hash=None)
        session.add(user)
        session.flush()
        long_ago = utcnow() - timedelta(days=30)
        ended = AuthSession(user_id=user.id, revoked_at=long_ago, created_at=long_ago)
        live = AuthSession(user_id=user.id)
        session.add_all([ended, live])
        session.flush()
        session.add(LoginAttempt(key=f"old:{user.id}", attempted_at=long_ago))
        session.add(
            RefreshToken(
                jti_hash=uuid.uuid4().hex,
                session_id=ended.id,
                user_id=user.id,
                workspace_id=uuid.UUID(workspace),
                expires_at=long_ago,
            )
        )
        ended_id, live_id, user_id = ended.id, live.id, user.id
    swept = sweep(session_factory, settings, settings.storage_dir)
    assert swept.files >= 1 and swept.login_attempts >= 1 and swept.refresh_tokens >= 1 and swept.sessions >= 1
    assert not storage.path(stale).exists() and storage.path(fresh).exists()
    with tenant_session(session_factory, None) as session:
        assert session.get(AuthSession, ended_id) is None and session.get(AuthSession, live_id) is not None
        assert not session.scalars(select(LoginAttempt).where(LoginAttempt.key == f"old:{user_id}")).all()
    from coderai_assets.defs.resources import default_resources

    definitions = build_definitions(settings, default_resources(settings))
    (hourly,) = [s for s in definitions.schedules if s.name == "housekeeping_hourly"]
    assert hourly.default_status.value == "RUNNING"  # Dagster's schedules are stopped unless told otherwise
    assert definitions.get_job_def("housekeeping").execute_in_process().success
