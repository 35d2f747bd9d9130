"""Projects and their variables. Services only flush; the request owns the transaction."""

from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from coderai_api.pagination import PageRequest
from coderai_api.projects.schemas import ProjectCreate, ProjectUpdate, VariableCreate, VariableRead, VariableUpdate
from coderai_assets.domain.specs import ensure_prompt_version, lock_project
from coderai_assets.engine.patterns import PatternError, compile_pattern
from coderai_assets.errors import Conflict, InvalidInput, NotFound
from coderai_assets.storage import repositories
from coderai_assets.storage.models import Project, Variable
from coderai_assets.storage.partition_keys import shard_for
from coderai_assets.storage.repositories import projects


def get_project(session: Session, tenant_id: uuid.UUID, project_id: uuid.UUID) -> Project:
    project = projects.get(session, tenant_id, project_id)
    if project is None:
        raise NotFound("No such project.", code="project_not_found")
    return project


def list_projects(session: Session, tenant_id: uuid.UUID, page: PageRequest, name: str | None) -> dict:
    query = projects.of_tenant_query(tenant_id, name=name)
    return page.answer(repositories.keyset_page(session, query, name="projects", scalars=True, **page.args))


def create_project(session: Session, tenant_id: uuid.UUID, body: ProjectCreate, *, shards: int) -> Project:
    project_id = uuid.uuid4()
    project = Project(id=project_id, tenant_id=tenant_id, shard=shard_for(project_id, shards), **body.model_dump())
    session.add(project)
    session.flush()
    return project


def update_project(session: Session, project: Project, body: ProjectUpdate) -> Project:
    lock_project(session, project)
    for field, value in body.model_dump(exclude_unset=True).items():
        if value is not None:
            setattr(project, field, value)
    session.flush()
    return project


def variable_read(variable: Variable) -> VariableRead:
    return VariableRead(id=variable.id, position=variable.position, **variable.definition)


def _check(checked: VariableCreate, others: set[str]) -> None:
    """The rules that need the rest of the project, or a code of their own."""
    if checked.depends_on and checked.depends_on not in others:
        raise InvalidInput(f"depends_on names an unknown variable {checked.depends_on!r}.", code="unknown_dependency")
    if checked.validation and checked.validation.pattern:
        try:
            compile_pattern(checked.validation.pattern)
        except PatternError as exc:
            raise InvalidInput(
                f"validation.pattern is not a regular expression: {exc}", code="invalid_pattern"
            ) from exc


def create_variable(session: Session, project: Project, body: VariableCreate) -> Variable:
    """Under the project's lock, so two creates of one name at once are one 201 and one 409 `variable_exists`,
    and each edit of the codebook is a prompt version of its own at once (its diff can be read before a run)."""
    lock_project(session, project)
    existing = {v.name for v in projects.variables(session, project)}
    if body.name in existing:
        raise Conflict(f"The project already has a variable {body.name!r}.", code="variable_exists")
    _check(body, existing)
    position = body.position
    if position is None:
        position = projects.last_position(session, project) + 1
    definition = body.definition()
    if not definition.display_name:
        definition = definition.model_copy(update={"display_name": body.name.replace("_", " ").capitalize()})
    variable = Variable.of(definition, tenant_id=project.tenant_id, project_id=project.id, position=position)
    try:
        with session.begin_nested():  # the database's word, should any writer not take the lock
            session.add(variable)
            session.flush()
    except IntegrityError as exc:
        raise Conflict(f"The project already has a variable {body.name!r}.", code="variable_exists") from exc
    return variable


def get_variable(session: Session, project: Project, variable_id: uuid.UUID) -> Variable:
    variable = projects.variable(session, project, variable_id)
    if variable is None:
        raise NotFound("No such variable.", code="variable_not_found")
    return variable


def update_variable(session: Session, project: Project, variable_id: uuid.UUID, body: VariableUpdate) -> Variable:
    lock_project(session, project)
    variable = get_variable(session, project, variable_id)
    changes = body.model_dump(exclude_unset=True)
    try:
        checked = VariableCreate.model_validate({**variable.definition, "position": variable.position, **changes})
    except ValueError as exc:
        raise InvalidInput(f"The edited variable is not valid: {exc}", code="invalid_variable") from exc
    _check(checked, {v.name for v in projects.variables(session, project) if v.id != variable.id})
    variable.definition = checked.definition().stored()
    variable.position = checked.position if checked.position is not None else variable.position
    try:
        with session.begin_nested():  # a rename onto a name another request just took
            session.flush()
    except IntegrityError as exc:
        raise Conflict(f"The project already has a variable {checked.name!r}.", code="variable_exists") from exc
    return variable


def delete_variable(session: Session, project: Project, variable_id: uuid.UUID) -> None:
    lock_project(session, project)
    variable = get_variable(session, project, variable_id)
    dependants = [v.name for v in projects.variables(session, project) if v.spec.depends_on == variable.name]
    if dependants:
        raise Conflict(f"Variables depend on {variable.name!r}: {', '.join(dependants)}.", code="variable_in_use")
    session.delete(variable)
    session.flush()


def record_codebook(session: Session, project: Project, *, with_quotes: bool) -> None:
    """After an edit of the codebook (a variable created, edited or deleted, the description changed): its
    prompt version, made at once, so that its diff can be read before any run; one per request, however many
    variables it changed. Nothing while the project has no variables (there is no codebook to compile)."""
    lock_project(session, project)
    if projects.variables(session, project):
        ensure_prompt_version(session, project, with_quotes)
