"""Defects a security and reliability review found, each test reproducing the attack or failure as it was found
and passing only with its fix; each is named after the behaviour it protects."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from coderai_api.main import create_app


def test_compose_publishes_no_operator_ui_and_gives_each_service_least_privilege(settings):
    """The Dagster UI was published on 0.0.0.0:3000 with no login, and every service got the superuser's URL."""
    import yaml
    from sqlalchemy.engine import make_url

    from coderai_assets.settings import Settings

    compose = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["dagster-webserver"]["ports"] == ["127.0.0.1:3000:3000"]
    published = {name: s.get("ports", []) for name, s in services.items() if s.get("ports")}
    assert set(published) == {"dagster-webserver", "api", "prometheus"}
    assert services["prometheus"]["ports"] == ["127.0.0.1:9090:9090"]  # operators only, as the Dagster UI
    users = {}
    for name, service in services.items():
        environment = service.get("environment", {})
        users[name] = {
            key: make_url(value.replace("${", "").replace("}", "")).username
            for key, value in environment.items()
            if key.endswith("DATABASE_URL")
        }
    assert users["migrate"]["CODERAI_MIGRATION_DATABASE_URL"] == "postgres"  # creates roles: the only superuser
    for name, urls in users.items():
        if name != "migrate":
            assert set(urls.values()) <= {"coderai_app", "coderai_dagster"}, (name, urls)
    assert set(users["api"]) == {"CODERAI_DATABASE_URL"}
    api = services["api"]["environment"]
    assert "CODERAI_LLM_API_KEY" not in api and "CODERAI_SECRET_KEY" in api
    assert not any("SECRET" in key for key in services["dagster-daemon"]["environment"])
    # Only the process that signs tokens needs the secret: the others start without it in production.
    production = Settings(env="production", secret_key=settings.model_fields["secret_key"].default)
    with pytest.raises(ValueError, match="CODERAI_SECRET_KEY"):
        create_app(production)


def test_migrate_creates_dagsters_storage_owned_by_a_role_of_its_own(settings, owner_engine):
    from sqlalchemy.engine import make_url

    from coderai_assets.database_setup import drop_database, ensure_database

    role, database = f"dagster_{uuid.uuid4().hex[:6]}", f"coderai_dg_{uuid.uuid4().hex[:6]}"
    url = (
        make_url(settings.migration_database_url)
        .set(username=role, password="pw-0123", database=database)
        .render_as_string(hide_password=False)
    )
    try:
        assert ensure_database(url, admin_url=settings.migration_database_url)
        with owner_engine.connect() as connection:
            owner, superuser, createdb, createrole = connection.execute(
                text(
                    "select r.rolname, r.rolsuper, r.rolcreatedb, r.rolcreaterole from pg_database d "
                    "join pg_roles r on r.oid = d.datdba where d.datname = :d"
                ),
                {"d": database},
            ).one()
        assert (owner, superuser, createdb, createrole) == (role, False, False, False)
    finally:
        drop_database(make_url(url).set(username=None, password=None).render_as_string(hide_password=False))
        with owner_engine.connect() as connection:
            connection.execute(text(f'drop role if exists "{role}"'))
            connection.commit()
