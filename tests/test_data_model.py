"""The schema: migrations upgrade and downgrade cleanly and match the models; tenant columns everywhere."""

from sqlalchemy import create_engine, inspect, text

from coderai_assets.models import Base


def test_migration_round_trip_matches_the_models(database):
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.config import Config
    from alembic.migration import MigrationContext

    from coderai_assets.cli import ROOT

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["url"] = database
    config.attributes["configure_logger"] = False
    command.downgrade(config, "base")
    engine = create_engine(database)
    with engine.connect() as connection:
        left = set(inspect(connection).get_table_names()) - {"alembic_version"}
        types = connection.scalar(
            text(
                "select count(*) from pg_type t join pg_namespace n on n.oid = t.typnamespace "
                "where n.nspname = 'public' and t.typtype = 'e'"
            )
        )
    assert left == set() and types == 0
    command.upgrade(config, "head")
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert diff == []


def test_every_tenant_owned_table_has_tenant_id():
    global_tables = {"tenants", "users"}
    for table in Base.metadata.sorted_tables:
        if table.name not in global_tables:
            assert "tenant_id" in table.columns, table.name
