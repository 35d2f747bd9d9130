"""Test session: a database of its own (created and dropped), its own storage and Dagster home, fake LLM.

The environment is set before anything reads the settings, so no test touches the demo's database.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from tests.ports import free_ports

_SESSION = uuid.uuid4().hex[:8]
_TMP = Path(tempfile.mkdtemp(prefix=f"coderai-test-{_SESSION}-"))
_PORTS = free_ports(4)
_BASE = os.environ.get("CODERAI_TEST_DATABASE_SERVER", "postgresql+psycopg2://postgres@127.0.0.1:5432")
_APP_BASE = os.environ.get("CODERAI_TEST_APP_DATABASE_SERVER", "postgresql+psycopg2://coderai_app@127.0.0.1:5432")
os.environ.update(
    {
        "CODERAI_ENV": "test",
        # The app connects as coderai_app (no BYPASSRLS, owns nothing); migrations run as the owner.
        "CODERAI_DATABASE_URL": f"{_APP_BASE}/coderai_test_{_SESSION}",
        "CODERAI_MIGRATION_DATABASE_URL": f"{_BASE}/coderai_test_{_SESSION}",
        "CODERAI_DAGSTER_DATABASE_URL": f"{_BASE}/coderai_test_{_SESSION}_dagster",
        "CODERAI_STORAGE_DIR": str(_TMP / "storage"),
        "CODERAI_DAGSTER_HOME": str(_TMP / "dagster_home"),
        "CODERAI_LLM_PROVIDER": "factory",
        "CODERAI_LLM_FACTORY": "tests.fakes:protest_model",
        "CODERAI_LLM_QUOTES": "true",
        # Free ports of their own, so tests never talk to a platform started by `make up` or `make demo`, nor collide
        # with another test session on the machine.
        "CODERAI_API_PORT": os.environ.get("CODERAI_TEST_API_PORT") or str(_PORTS[0]),
        "CODERAI_DAGSTER_PORT": os.environ.get("CODERAI_TEST_DAGSTER_PORT") or str(_PORTS[1]),
        "CODERAI_DAGSTER_CODE_SERVER_PORT": os.environ.get("CODERAI_TEST_CODE_SERVER_PORT") or str(_PORTS[2]),
        "CODERAI_LOCAL_LLM_PORT": os.environ.get("CODERAI_TEST_LOCAL_LLM_PORT") or str(_PORTS[3]),
    }
)

CORPUS = Path(os.environ.get("CODERAI_CORPUS", Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"))


@pytest.fixture(scope="session")
def settings():
    from coderai_assets.settings import get_settings

    get_settings.cache_clear()
    return get_settings()


@pytest.fixture(scope="session")
def database(settings):
    """The migrated test database, dropped at the end of the session."""
    from coderai_assets.database_setup import drop_database, ensure_database, run_migrations

    ensure_database(settings.migration_database_url)
    ensure_database(settings.dagster_database_url)
    run_migrations(settings.migration_database_url)
    yield settings.database_url
    from coderai_assets.defs.resources import _factories

    for factory in _factories.values():
        factory.kw["bind"].dispose()
    drop_database(settings.migration_database_url)
    drop_database(settings.dagster_database_url)
    shutil.rmtree(_TMP, ignore_errors=True)


@pytest.fixture(scope="session")
def session_factory(database):
    from coderai_assets.storage.db import make_engine, make_session_factory

    engine = make_engine(database)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def tenant(session_factory):
    from coderai_assets.storage.db import tenant_session
    from coderai_assets.storage.models import Tenant

    tenant_id = uuid.uuid4()
    # Row-level security: a workspace row is only written with itself as the transaction's tenant.
    with tenant_session(session_factory, tenant_id) as session:
        session.add(Tenant(id=tenant_id, name=f"tenant-{tenant_id.hex[:6]}"))
    return tenant_id


@pytest.fixture
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"the shared corpus is not at {CORPUS} (set CODERAI_CORPUS)")
    return CORPUS


@pytest.fixture
def demo_files(tmp_path) -> list[Path]:
    from coderai_assets.demo import write_corpus

    return write_corpus(tmp_path / "corpus")


@pytest.fixture
def code_run(session_factory, settings):
    """Codes a run's documents as a run worker does (pipeline/coding.py `DocumentCoder`: parse, extract, validate
    each), without Dagster: `code_run(tenant_id, run_id, extractor, **settings)` with the settings changed as
    given (`chunk_chars`, `llm_context_tokens`, `request_quotes`, `llm_cache`, ...); returns the stages done."""
    from sqlalchemy import select

    from coderai_assets.defs.partitions import RUN_TAG, WORKSPACE_TAG
    from coderai_assets.pipeline.coding import DocumentCoder, StageDone
    from coderai_assets.storage.db import tenant_session
    from coderai_assets.storage.files import LocalFileStorage
    from coderai_assets.storage.models import Run, RunDocument
    from coderai_assets.storage.partition_keys import document_key

    def code(tenant_id, run_id, extractor, **overrides) -> list[StageDone]:
        configured = settings.model_copy(update=overrides)
        with tenant_session(session_factory, tenant_id) as session:
            run = session.get(Run, run_id)
            documents = session.scalars(select(RunDocument.document_id).where(RunDocument.run_id == run_id)).all()
            keys = sorted(document_key(run.project_id, d) for d in documents)
        coder = DocumentCoder(
            session=lambda tenant: tenant_session(session_factory, tenant),
            storage=LocalFileStorage(configured.storage_dir),
            extractor_for=lambda answer_budget: extractor,
            settings=configured,
            tags={RUN_TAG: str(run_id), WORKSPACE_TAG: str(tenant_id)},
            dagster_run_id=f"test-{uuid.uuid4().hex[:8]}",
        )
        return list(coder.code(keys))

    return code


@pytest.fixture
def instance():
    """An ephemeral Dagster instance: the asset chain is materialised and the sensors ticked on it."""
    from dagster import DagsterInstance

    with DagsterInstance.ephemeral() as instance:
        yield instance


@pytest.fixture
def app(database, settings):
    from coderai_api.main import create_app

    return create_app(settings)


@pytest.fixture(scope="module")
def owner_engine(database, settings):
    """The database as its owner (migrations, catalog checks): row-level security does not bind it."""
    from sqlalchemy import create_engine

    engine = create_engine(settings.migration_database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def long_files(tmp_path):
    """Four reports of about 3,000 characters each, every paragraph distinct (no chunk is answered from the cache
    of another)."""
    files = []
    for d in range(4):
        paragraphs = [f"Report {d} paragraph {p}: " + f"marcher-{d}-{p} " * 25 for p in range(8)]
        path = tmp_path / f"report_{d}.txt"
        path.write_text("\n\n".join(paragraphs))
        files.append(path)
    return files
