"""A project's specification: the live one (from its variables), and the snapshot each prompt version keeps, which
every stage of a run and its export read."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from coderai_assets.engine.codebook import (
    Codebook,
    ProjectSpec,
    compile_codebook,
    spec_from_json,
    spec_to_json,
)
from coderai_assets.storage.models import (
    Project,
    PromptVersion,
)
from coderai_assets.storage.repositories import projects


def project_spec(session: Session, project: Project) -> ProjectSpec:
    """The live specification: what the next prompt version is compiled from. A run reads its version's."""
    variables = projects.variables(session, project)
    return ProjectSpec(
        name=project.name,
        domain_description=project.domain_description,
        extraction_unit=project.extraction_unit,
        entity_description=project.entity_description,
        variables=tuple(v.spec for v in variables),
    )


def lock_project(session: Session, project: Project) -> None:
    """The project row's lock, held to the end of the transaction, around whatever writes the next prompt version
    or depends on the codebook as it stands (variable edits, runs, accepting an agent's proposal). FOR NO KEY
    UPDATE: uploads, which only reference the row, go on."""
    projects.lock(session, project)


def ensure_prompt_version(session: Session, project: Project, with_quotes: bool = True) -> PromptVersion:
    """The prompt version for the project's current codebook: the latest one if unchanged, else a new one, which
    keeps the whole specification (and the variables' ids) for every stage and export of its runs."""
    spec = project_spec(session, project)
    codebook = compile_codebook(spec, with_quotes)
    latest = projects.latest_prompt_version(session, project)
    ids = {v.name: str(v.id) for v in projects.variables(session, project)}
    if latest is not None and latest.variables_hash == codebook.variables_hash:
        if latest.spec is None:  # a version from before snapshots: it gets one now, as it is unchanged
            latest.spec = spec_to_json(spec, ids)
        return latest
    version = PromptVersion(
        tenant_id=project.tenant_id,
        project_id=project.id,
        version=(latest.version + 1) if latest else 1,
        system_prompt=codebook.system_prompt,
        user_template=codebook.user_template,
        json_schema=codebook.json_schema,
        variables_hash=codebook.variables_hash,
        spec=spec_to_json(spec, ids),
    )
    session.add(version)
    session.flush()
    return version


def version_spec(session: Session, version: PromptVersion) -> tuple[ProjectSpec, dict[str, uuid.UUID]]:
    """The specification a prompt version was compiled from, and the variables' ids then. Versions older than the
    snapshot (migration 0005) fall back to the live project."""
    if version.spec is not None:
        spec, ids = spec_from_json(version.spec)
        return spec, {name: uuid.UUID(i) for name, i in ids.items()}
    project = session.get(Project, version.project_id)
    assert project is not None
    return project_spec(session, project), {v.name: v.id for v in projects.variables(session, project)}


def codebook_of(version: PromptVersion) -> Codebook:
    return Codebook(version.system_prompt, version.user_template, version.json_schema, version.variables_hash)
