"""Projects and their variables."""

from __future__ import annotations

import uuid

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from coderai_assets.storage.like import contains
from coderai_assets.storage.models import AgentTask, Project, PromptVersion, Variable


def get(session: Session, tenant_id: uuid.UUID, project_id: uuid.UUID) -> Project | None:
    """The project, unless its deletion was asked."""
    query = select(Project).where(Project.id == project_id, Project.tenant_id == tenant_id)
    return session.scalars(query.where(Project.deleted_at.is_(None))).first()


def of_tenant_query(tenant_id: uuid.UUID, *, name: str | None = None) -> Select:
    """The workspace's projects, oldest first; `name`: those whose name holds it (any case)."""
    query = select(Project).where(Project.tenant_id == tenant_id, Project.deleted_at.is_(None))
    query = query.order_by(Project.created_at, Project.id)
    return query.where(Project.name.ilike(contains(name), escape="\\")) if name else query


def variables(session: Session, project: Project) -> list[Variable]:
    """The live variables, in the codebook's order."""
    return list(
        session.scalars(
            select(Variable).where(Variable.project_id == project.id).order_by(Variable.position, Variable.created_at)
        )
    )


def variable(session: Session, project: Project, variable_id: uuid.UUID) -> Variable | None:
    return session.scalars(
        select(Variable).where(Variable.id == variable_id, Variable.project_id == project.id)
    ).first()


def last_position(session: Session, project: Project) -> int:
    return session.scalar(select(func.max(Variable.position)).where(Variable.project_id == project.id)) or 0


def of_task(session: Session, task: AgentTask) -> Project:
    return session.scalars(select(Project).where(Project.id == task.project_id)).one()


def count_of_tenant(session: Session, tenant_id: uuid.UUID) -> int:
    return session.scalar(select(func.count()).select_from(Project).where(Project.tenant_id == tenant_id)) or 0


def prompt_versions_query(project: Project) -> Select:
    """Newest first (a version number is the project's own, one per codebook edit)."""
    return select(PromptVersion).where(PromptVersion.project_id == project.id).order_by(PromptVersion.version.desc())


def prompt_version(session: Session, project: Project, number: int) -> PromptVersion | None:
    return session.scalars(
        select(PromptVersion).where(PromptVersion.project_id == project.id, PromptVersion.version == number)
    ).first()


def lock(session: Session, project: Project) -> None:
    """The project row's lock to the end of the transaction, FOR NO KEY UPDATE: uploads, which only reference the
    row, go on."""
    session.execute(select(Project.id).where(Project.id == project.id).with_for_update(key_share=True))


def latest_prompt_version(session: Session, project: Project) -> PromptVersion | None:
    return session.scalars(
        select(PromptVersion).where(PromptVersion.project_id == project.id).order_by(PromptVersion.version.desc())
    ).first()


def version_numbers(session: Session, project: Project) -> dict[str, int]:
    """Each prompt version's number by its id (as text)."""
    rows = session.execute(
        select(PromptVersion.id, PromptVersion.version).where(PromptVersion.project_id == project.id)
    )
    return {str(version_id): number for version_id, number in rows}
