"""The schema: migrations upgrade and downgrade cleanly and match the models; tenant columns everywhere."""

import uuid

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from coderai_assets.database_setup import ROOT, drop_database, ensure_database
from coderai_assets.storage.models import Base


def _config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["url"] = url
    config.attributes["configure_logger"] = False
    return config


def test_migration_round_trip_matches_the_models(settings):
    # A scratch database: the session's own database stays untouched for the other tests.
    url = make_url(settings.migration_database_url).set(database=f"coderai_mig_{uuid.uuid4().hex[:8]}")
    url_text = url.render_as_string(hide_password=False)
    ensure_database(url_text)
    engine = create_engine(url_text)
    try:
        config = _config(url_text)
        command.upgrade(config, "head")
        command.downgrade(config, "base")
        with engine.connect() as connection:
            left = set(inspect(connection).get_table_names()) - {"alembic_version"}
            types = connection.scalar(
                text(
                    "select count(*) from pg_type t join pg_namespace n on n.oid = t.typnamespace "
                    "where n.nspname = 'public' and t.typtype = 'e'"
                )
            )
            functions = connection.scalar(text("select count(*) from pg_proc where proname like 'coderai_%'"))
        assert (left, types, functions) == (set(), 0, 0)
        command.upgrade(config, "head")
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert diff == []
    finally:
        engine.dispose()
        drop_database(url_text)


def test_every_tenant_owned_table_has_tenant_id():
    global_tables = {"tenants", "users", "auth_sessions", "refresh_tokens", "login_attempts"}
    for table in Base.metadata.sorted_tables:
        if table.name not in global_tables:
            assert "tenant_id" in table.columns, table.name
