"""Projects and their variables. Services only flush; the request owns the transaction."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from coderai_api.projects.schemas import ProjectCreate, ProjectUpdate, VariableCreate, VariableRead, VariableUpdate
from coderai_assets.errors import Conflict, InvalidInput, NotFound
from coderai_assets.storage.models import Project, Variable
from coderai_assets.storage.partition_keys import shard_for


def get_project(session: Session, tenant_id: uuid.UUID, project_id: uuid.UUID) -> Project:
    project = session.scalars(select(Project).where(Project.id == project_id, Project.tenant_id == tenant_id)).first()
    if project is None:
        raise NotFound("No such project.", code="project_not_found")
    return project


def list_projects(session: Session, tenant_id: uuid.UUID) -> list[Project]:
    return list(session.scalars(select(Project).where(Project.tenant_id == tenant_id).order_by(Project.created_at)))


def create_project(session: Session, tenant_id: uuid.UUID, body: ProjectCreate, *, shards: int) -> Project:
    project_id = uuid.uuid4()
    project = Project(id=project_id, tenant_id=tenant_id, shard=shard_for(project_id, shards), **body.model_dump())
    session.add(project)
    session.flush()
    return project


def update_project(session: Session, project: Project, body: ProjectUpdate) -> Project:
    for field, value in body.model_dump(exclude_unset=True).items():
        if value is not None:
            setattr(project, field, value)
    session.flush()
    return project


def list_variables(session: Session, project: Project) -> list[Variable]:
    return list(
        session.scalars(
            select(Variable).where(Variable.project_id == project.id).order_by(Variable.position, Variable.created_at)
        )
    )


def create_variable(session: Session, project: Project, body: VariableCreate) -> Variable:
    existing = {v.name: v for v in list_variables(session, project)}
    if body.name in existing:
        raise Conflict(f"The project already has a variable {body.name!r}.", code="variable_exists")
    if body.depends_on and body.depends_on not in existing:
        raise InvalidInput(f"depends_on names an unknown variable {body.depends_on!r}.", code="unknown_dependency")
    if body.validation and body.validation.pattern:
        try:
            re.compile(body.validation.pattern)
        except re.error as exc:
            raise InvalidInput(
                f"validation.pattern is not a regular expression: {exc}", code="invalid_pattern"
            ) from exc
    data = body.model_dump(exclude={"position", "validation"})
    position = body.position
    if position is None:
        position = (
            session.scalar(select(func.max(Variable.position)).where(Variable.project_id == project.id)) or 0
        ) + 1
    variable = Variable(
        tenant_id=project.tenant_id,
        project_id=project.id,
        position=position,
        validation=body.validation.model_dump(exclude_none=True) if body.validation else None,
        **{**data, "display_name": body.display_name or body.name.replace("_", " ").capitalize()},
    )
    session.add(variable)
    session.flush()
    return variable


def get_variable(session: Session, project: Project, variable_id: uuid.UUID) -> Variable:
    variable = session.scalars(
        select(Variable).where(Variable.id == variable_id, Variable.project_id == project.id)
    ).first()
    if variable is None:
        raise NotFound("No such variable.", code="variable_not_found")
    return variable


def update_variable(session: Session, project: Project, variable_id: uuid.UUID, body: VariableUpdate) -> Variable:
    variable = get_variable(session, project, variable_id)
    current = VariableRead.model_validate(variable).model_dump(exclude={"id"})
    changes = body.model_dump(exclude_unset=True)
    merged = {**current, **changes}
    if merged.get("validation") is not None and not isinstance(merged["validation"], dict):
        merged["validation"] = merged["validation"].model_dump()
    try:
        checked = VariableCreate.model_validate(merged)
    except ValueError as exc:
        raise InvalidInput(f"The edited variable is not valid: {exc}", code="invalid_variable") from exc
    others = {v.name for v in list_variables(session, project) if v.id != variable.id}
    if checked.depends_on and checked.depends_on not in others:
        raise InvalidInput(f"depends_on names an unknown variable {checked.depends_on!r}.", code="unknown_dependency")
    if checked.validation and checked.validation.pattern:
        try:
            re.compile(checked.validation.pattern)
        except re.error as exc:
            raise InvalidInput(
                f"validation.pattern is not a regular expression: {exc}", code="invalid_pattern"
            ) from exc
    for field in changes:
        value = getattr(checked, field)
        if field == "validation":
            value = value.model_dump(exclude_none=True) if value else None
        setattr(variable, field, value)
    session.flush()
    return variable


def delete_variable(session: Session, project: Project, variable_id: uuid.UUID) -> None:
    variable = get_variable(session, project, variable_id)
    dependants = [v.name for v in list_variables(session, project) if v.depends_on == variable.name]
    if dependants:
        raise Conflict(f"Variables depend on {variable.name!r}: {', '.join(dependants)}.", code="variable_in_use")
    session.delete(variable)
    session.flush()
