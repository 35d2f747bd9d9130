"""A project's prompt versions: each is the whole codebook a run sent the model, with the specification it was
compiled from. Listed, shown, compared, and restored (the live variables become the version's again)."""

from __future__ import annotations

import difflib
import uuid
from typing import Any

from sqlalchemy.orm import Session

from coderai_api.pagination import PageRequest
from coderai_assets.domain.specs import ensure_prompt_version, version_spec
from coderai_assets.engine.codebook import ProjectSpec
from coderai_assets.errors import NotFound
from coderai_assets.storage import repositories
from coderai_assets.storage.models import ExtractionUnit, Project, PromptVersion, Variable
from coderai_assets.storage.repositories import projects
from coderai_assets.storage.repositories import runs as run_rows

_PROJECT_FIELDS = ("domain_description", "extraction_unit", "entity_description")


def list_versions(session: Session, project: Project, page: PageRequest) -> dict:
    found = repositories.keyset_page(
        session, projects.prompt_versions_query(project), name="prompt-versions", scalars=True, **page.args
    )
    runs = run_rows.per_prompt_version(session, project)
    return page.answer(found, lambda version: _summary(version, runs))


def _summary(version: PromptVersion, runs: dict) -> dict:
    """The version, the variables it asks for and how many runs used it (`runs`: runs per version id)."""
    return {
        "id": version.id,
        "version": version.version,
        "created_at": version.created_at,
        "variables": list(version.json_schema.get("required", [])),
        "runs": runs.get(version.id, 0),
    }


def get_version(session: Session, project: Project, number: int) -> PromptVersion:
    version = projects.prompt_version(session, project, number)
    if version is None:
        raise NotFound(f"The project has no prompt version {number}.", code="prompt_version_not_found")
    return version


def show(session: Session, project: Project, number: int) -> dict:
    version = get_version(session, project, number)
    return {
        **_summary(version, run_rows.per_prompt_version(session, project)),
        "system_prompt": version.system_prompt,
        "user_template": version.user_template,
        "json_schema": version.json_schema,
        "spec": version.spec,
    }


def _spec(session: Session, version: PromptVersion) -> ProjectSpec:
    return version_spec(session, version)[0]


def diff(session: Session, project: Project, number: int, against: int | None) -> dict:
    new = get_version(session, project, number)
    old = get_version(session, project, against if against is not None else number - 1)
    before, after = _spec(session, old), _spec(session, new)
    was = {v.name: v.stored() for v in before.variables}
    now = {v.name: v.stored() for v in after.variables}
    changed = []
    for name in [n for n in now if n in was]:
        fields = {
            key: {"from": was[name].get(key), "to": now[name].get(key)}
            for key in sorted(set(was[name]) | set(now[name]))
            if was[name].get(key) != now[name].get(key)
        }
        if fields:
            changed.append({"name": name, "fields": fields})
    project_fields = {
        key: {"from": getattr(before, key), "to": getattr(after, key)}
        for key in _PROJECT_FIELDS
        if getattr(before, key) != getattr(after, key)
    }
    lines = difflib.unified_diff(
        old.system_prompt.splitlines(),
        new.system_prompt.splitlines(),
        f"version {old.version}",
        f"version {new.version}",
        lineterm="",
    )
    return {
        "from_version": old.version,
        "to_version": new.version,
        "added": [n for n in now if n not in was],
        "removed": [n for n in was if n not in now],
        "changed": changed,
        "project": project_fields,
        "system_prompt_diff": list(lines),
    }


def restore(session: Session, project: Project, number: int, *, with_quotes: bool) -> PromptVersion:
    """The live codebook becomes the version's: its variables (same ids, definitions and order; variables added
    since are deleted) and the project's description. The next run's prompt version is then the same codebook,
    so its chunks are answered from the cache."""
    version = get_version(session, project, number)
    spec, ids = version_spec(session, version)
    live = {v.id: v for v in projects.variables(session, project)}
    wanted = {ids.get(v.name) or uuid.uuid4(): v for v in spec.variables}
    for variable_id, variable in live.items():
        if variable_id not in wanted:
            session.delete(variable)
    session.flush()
    # Names move between variables (a rename and back): clear them first, so no two collide on the way.
    for i, variable_id in enumerate(wanted):
        if variable_id in live:
            live[variable_id].definition = {**live[variable_id].definition, "name": f"restoring_{i}"}
    session.flush()
    for position, (variable_id, definition) in enumerate(wanted.items()):
        stored: dict[str, Any] = definition.stored()
        if variable_id in live:
            live[variable_id].definition, live[variable_id].position = stored, position
        else:
            session.add(
                Variable(
                    id=variable_id,
                    tenant_id=project.tenant_id,
                    project_id=project.id,
                    position=position,
                    definition=stored,
                )
            )
    project.domain_description = spec.domain_description
    project.entity_description = spec.entity_description
    project.extraction_unit = ExtractionUnit(spec.extraction_unit)
    session.flush()
    return ensure_prompt_version(session, project, with_quotes)
