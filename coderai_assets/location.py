"""Builds the code location's definitions: one set of assets and jobs per project (DESIGN.md 2)."""

from __future__ import annotations

import uuid

from dagster import Definitions
from sqlalchemy import text

from coderai_assets.assets.documents import build_document_assets
from coderai_assets.assets.export import build_export_asset
from coderai_assets.db import make_engine
from coderai_assets.jobs import build_project_jobs
from coderai_assets.models import project_key
from coderai_assets.sensors.run_lifecycle import build_run_lifecycle_sensor


def list_projects(database_url: str) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(project id, tenant id) of every project, across tenants: the one query that must see them all, through
    a SECURITY DEFINER function that returns nothing else (DESIGN.md 4)."""
    engine = make_engine(database_url, pool_size=1)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("select id, tenant_id from coderai_list_projects()"))
            return [(row.id, row.tenant_id) for row in rows]
    finally:
        engine.dispose()


def build_definitions(projects: list[tuple[uuid.UUID, uuid.UUID]], resources: dict[str, object]) -> Definitions:
    assets: list = []
    jobs: list = []
    export_jobs: list = []
    for project_id, tenant_id in projects:
        key = project_key(project_id)
        document_assets = build_document_assets(project_id, tenant_id, key)
        export = build_export_asset(project_id, tenant_id, key, document_assets[-1])
        project_jobs = build_project_jobs(project_id, document_assets, export)
        assets += [*document_assets, export]
        jobs += project_jobs
        export_jobs.append(project_jobs[1])
    sensors = [build_run_lifecycle_sensor(projects, export_jobs)] if projects else []
    return Definitions(assets=assets, jobs=jobs, sensors=sensors, resources=resources)
