"""Databases of a deployment: create them, migrate the application schema, give the app role its password, drop
them (tests and benchmarks). Used by `coderai migrate`, the demo and the test session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from coderai_assets.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def ensure_database(url: str, admin_url: str | None = None) -> bool:
    """Create the database named in `url` if it does not exist; True when it was created. With `admin_url` (a role
    that may create roles), the database is created through it, owned by the user `url` names, which is created
    if missing: a login without superuser, database or role rights (Dagster's own role in docker-compose)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    target = make_url(url)
    admin = create_engine(
        make_url(admin_url or url).set(drivername="postgresql+psycopg2", database="postgres"),
        isolation_level="AUTOCOMMIT",
    )
    try:
        with admin.connect() as connection:
            owner = ""
            if admin_url and target.username and target.username != make_url(admin_url).username:
                role = connection.scalar(text("select quote_ident(:u)"), {"u": target.username})
                if not connection.scalar(text("select 1 from pg_roles where rolname = :u"), {"u": target.username}):
                    password = connection.scalar(text("select quote_literal(:p)"), {"p": target.password or ""})
                    connection.execute(
                        text(
                            f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS "
                            f"PASSWORD {password}"
                        )
                    )
                owner = f" OWNER {role}"
            exists = connection.scalar(text("select 1 from pg_database where datname = :n"), {"n": target.database})
            if not exists:
                connection.execute(text(f'CREATE DATABASE "{target.database}"{owner}'))
                return True
            return False
    finally:
        admin.dispose()


def drop_database(url: str) -> None:
    """Drop the database named in `url`, ending its connections first (tests and benchmarks)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    finally:
        admin.dispose()


def set_app_role_password(url: str, password: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            # A bind parameter cannot stand for a password in ALTER ROLE: quote it as a literal instead.
            literal = connection.scalar(text("select quote_literal(:p)"), {"p": password})
            connection.execute(text(f"ALTER ROLE coderai_app PASSWORD {literal}"))
    finally:
        engine.dispose()


def run_migrations(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["url"] = url
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")


def migrate_databases(settings: Settings, say: Callable[[str], object] = print) -> None:
    """Create the application's and Dagster's databases if needed and upgrade the application schema."""
    if ensure_database(settings.migration_database_url):
        say(f"created database {settings.migration_database_url.rsplit('/', 1)[-1]}")
    # Dagster's storage is owned by the role its URL names (created if missing), not by the migrations' owner.
    if ensure_database(settings.dagster_database_url, admin_url=settings.migration_database_url):
        say(f"created database {settings.dagster_database_url.rsplit('/', 1)[-1]}")
    run_migrations(settings.migration_database_url)
    if settings.app_database_password.get_secret_value():
        set_app_role_password(settings.migration_database_url, settings.app_database_password.get_secret_value())
    say("database schema is up to date")
