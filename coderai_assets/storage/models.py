"""The application's data model (SQLAlchemy 2.0). Every tenant-owned table carries `tenant_id`."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Computed,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from coderai_assets.engine.codebook import ExtractionUnit
from coderai_assets.engine.variables import VariableSpec


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class Base(DeclarativeBase):
    type_annotation_map = {uuid.UUID: UUID(as_uuid=True), dict[str, Any]: JSONB, list[Any]: JSONB}


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Store the values (lower-case words), not the member names.
    return Enum(cls, name=name, values_callable=lambda e: [m.value for m in e])


class DocumentStatus(enum.StrEnum):
    uploaded = "uploaded"
    parsed = "parsed"
    extracted = "extracted"
    done = "done"
    failed = "failed"


class RunKind(enum.StrEnum):
    sample = "sample"
    full = "full"
    auto = "auto"  # new uploads of a project with auto-processing on, coded by the intake sensor


class RunStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    exporting = "exporting"
    succeeded = "succeeded"
    failed = "failed"
    canceled = "canceled"  # stopped by a user (POST /runs/{id}/cancel)


# A run queued or under way: a project has at most one full run so.
ACTIVE = (RunStatus.queued, RunStatus.running, RunStatus.exporting)


class RunDocumentStatus(enum.StrEnum):
    pending = "pending"
    done = "done"
    failed = "failed"


class ValueStatus(enum.StrEnum):
    ok = "ok"  # as the model gave it, valid
    coerced = "coerced"  # normalised to the variable's type (e.g. "5 May 2024" -> 2024-05-05)
    defaulted = "defaulted"  # missing, the variable's default used
    invalid = "invalid"  # could not be made valid; the raw value is kept, the value left empty
    missing = "missing"  # the model found nothing and there is no default
    skipped = "skipped"  # depends_on not satisfied
    # found by the model, but neither its quote nor the value itself is in the document: check it before trusting
    ungrounded = "ungrounded"


class Role(enum.StrEnum):
    owner = "owner"
    editor = "editor"
    viewer = "viewer"


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Tenant(Timestamped, Base):
    __tablename__ = "tenants"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    # USD the workspace's runs may spend a calendar month (UTC); None: the setting's default, or no cap.
    monthly_budget_usd: Mapped[float | None] = mapped_column(Float)
    # Deletion asked: hidden at once, removed with everything it holds by the deletions sensor (domain/deletion.py).
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WorkspaceSpend(Base):
    """What a workspace's runs spent in a month, added to as each answer is committed (pipeline/spending.py)."""

    __tablename__ = "workspace_spend"
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    spent_usd: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")


class User(Timestamped, Base):
    """A person; belongs to workspaces (tenants) through memberships."""

    __tablename__ = "users"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    display_name: Mapped[str] = mapped_column(String(200), default="")


class Membership(Timestamped, Base):
    __tablename__ = "memberships"
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))


class Project(Timestamped, Base):
    __tablename__ = "projects"
    __table_args__ = (
        UniqueConstraint("tenant_id", "id", name="uq_projects_tenant_id"),
        # The list's keyset order (GET /projects).
        Index("ix_projects_tenant_created", "tenant_id", "created_at", "id"),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # Indexed first in the list's order (ix_projects_tenant_created).
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    domain_description: Mapped[str] = mapped_column(Text, default="")
    extraction_unit: Mapped[ExtractionUnit] = mapped_column(
        _enum(ExtractionUnit, "extraction_unit"), default=ExtractionUnit.document
    )
    # For entity-level projects: what one row is (e.g. "a protest event the article reports").
    entity_description: Mapped[str] = mapped_column(Text, default="")
    # The shard of the fixed asset graph whose partitions hold this project's documents; set once, at creation.
    shard: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Code documents uploaded after a full run was accepted with that run's prompt version, without a request.
    auto_process: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    # The reliability gate: Krippendorff's alpha each variable must reach (model against reviewers) before a full
    # run; per-variable thresholds override the project's. 0.8 is the usual content-analysis bar.
    reliability_threshold: Mapped[float] = mapped_column(Float, default=0.8, server_default="0.8")
    reliability_thresholds: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # Deletion asked: hidden at once, removed with everything it holds by the deletions sensor (domain/deletion.py).
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Variable(Timestamped, Base):
    __tablename__ = "variables"
    __table_args__ = (
        UniqueConstraint("tenant_id", "project_id", "name", name="uq_variables_project_name"),
        ForeignKeyConstraint(["tenant_id", "project_id"], ["projects.tenant_id", "projects.id"], ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "id", name="uq_variables_tenant_id"),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    project_id: Mapped[uuid.UUID] = mapped_column(index=True)
    # The whole definition, `VariableSpec.stored()`; the name is derived from it for the uniqueness constraint.
    definition: Mapped[dict[str, Any]] = mapped_column(JSONB)
    name: Mapped[str] = mapped_column(String(63), Computed("definition ->> 'name'", persisted=True))
    position: Mapped[int] = mapped_column(Integer, default=0)

    @classmethod
    def of(cls, spec: VariableSpec, *, tenant_id: uuid.UUID, project_id: uuid.UUID, position: int = 0) -> Variable:
        return cls(tenant_id=tenant_id, project_id=project_id, position=position, definition=spec.stored())

    @property
    def spec(self) -> VariableSpec:
        return VariableSpec.model_validate(self.definition)


class Document(Timestamped, Base):
    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("tenant_id", "id", name="uq_documents_tenant_id"),
        UniqueConstraint("tenant_id", "project_id", "sha256", name="uq_documents_project_sha256"),
        ForeignKeyConstraint(["tenant_id", "project_id"], ["projects.tenant_id", "projects.id"], ondelete="CASCADE"),
        Index(
            "ix_documents_unregistered",
            "project_id",
            "created_at",
            postgresql_where=text("registered_at IS NULL"),
        ),
        # The list's keyset order (GET /projects/{id}/documents).
        # The tenant first, as row-level security asks for it: with stale statistics (a bulk upload a moment ago)
        # the planner took uq_documents_project_sha256 and sorted the whole project for a page of 50.
        Index("ix_documents_project_created", "tenant_id", "project_id", "created_at", "id"),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    project_id: Mapped[uuid.UUID] = mapped_column()  # indexed in ix_documents_project_created
    file_name: Mapped[str] = mapped_column(String(500))
    format: Mapped[str | None] = mapped_column(String(10))  # detected by content: pdf, docx, html, txt
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_path: Mapped[str] = mapped_column(String(1000))
    status: Mapped[DocumentStatus] = mapped_column(
        _enum(DocumentStatus, "document_status"), default=DocumentStatus.uploaded
    )
    error_code: Mapped[str | None] = mapped_column(String(50))
    error_message: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)
    page_count: Mapped[int | None] = mapped_column(Integer)
    parse_warnings: Mapped[list[Any] | None] = mapped_column(JSONB)
    # When the intake sensor made it a Dagster partition; until then no run can launch on it.
    registered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Deletion asked: hidden at once, removed with everything it holds by the deletions sensor (domain/deletion.py).
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DocumentChunk(Base):
    __tablename__ = "document_chunks"
    __table_args__ = (
        UniqueConstraint("tenant_id", "document_id", "index", name="uq_chunks_document_index"),
        ForeignKeyConstraint(["tenant_id", "document_id"], ["documents.tenant_id", "documents.id"], ondelete="CASCADE"),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    document_id: Mapped[uuid.UUID] = mapped_column(index=True)
    index: Mapped[int] = mapped_column(Integer)
    char_start: Mapped[int] = mapped_column(Integer)
    char_end: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)


class PromptVersion(Timestamped, Base):
    __tablename__ = "prompt_versions"
    __table_args__ = (
        UniqueConstraint("tenant_id", "id", name="uq_prompt_versions_tenant_id"),
        UniqueConstraint("tenant_id", "project_id", "version", name="uq_prompt_versions_project_version"),
        ForeignKeyConstraint(["tenant_id", "project_id"], ["projects.tenant_id", "projects.id"], ondelete="CASCADE"),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    project_id: Mapped[uuid.UUID] = mapped_column(index=True)
    version: Mapped[int] = mapped_column(Integer)
    system_prompt: Mapped[str] = mapped_column(Text)
    user_template: Mapped[str] = mapped_column(Text)
    json_schema: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # sha256 of the canonical codebook (domain + variables) the prompt was generated from.
    variables_hash: Mapped[str] = mapped_column(String(64))
    # The whole project specification the prompt was compiled from (codebook.spec_to_json): every stage of a run
    # and its export read this, never the live variables. Null only for versions older than migration 0005.
    spec: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    note: Mapped[str] = mapped_column(Text, default="")


class Run(Timestamped, Base):
    __tablename__ = "runs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "id", name="uq_runs_tenant_id"),
        Index("ix_runs_active", "created_at", postgresql_where=text("status IN ('queued', 'running', 'exporting')")),
        Index("ix_runs_project_created", "tenant_id", "project_id", "created_at", "id"),
        Index(
            "uq_runs_one_active_full",
            "project_id",
            unique=True,
            postgresql_where=text("kind = 'full' AND status IN ('queued', 'running', 'exporting')"),
        ),
        ForeignKeyConstraint(["tenant_id", "project_id"], ["projects.tenant_id", "projects.id"], ondelete="CASCADE"),
        # Foreign keys bypass row-level security: with tenant_id in them they cannot point across tenants.
        ForeignKeyConstraint(
            ["tenant_id", "prompt_version_id"],
            ["prompt_versions.tenant_id", "prompt_versions.id"],
            name="fk_runs_prompt_version",
        ),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    project_id: Mapped[uuid.UUID] = mapped_column()  # indexed in ix_runs_project_created
    kind: Mapped[RunKind] = mapped_column(_enum(RunKind, "run_kind"))
    status: Mapped[RunStatus] = mapped_column(_enum(RunStatus, "run_status"), default=RunStatus.queued)
    sample_size: Mapped[int | None] = mapped_column(Integer)
    prompt_version_id: Mapped[uuid.UUID | None] = mapped_column()
    model: Mapped[str | None] = mapped_column(String(200))
    documents_total: Mapped[int] = mapped_column(Integer, default=0)
    documents_done: Mapped[int] = mapped_column(Integer, default=0)
    documents_failed: Mapped[int] = mapped_column(Integer, default=0)
    llm_calls: Mapped[int] = mapped_column(Integer, default=0)
    # Chunks answered from the cache: same model, same prompt, same text as an earlier call; no model called.
    cached_calls: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Calls that asked only the variables whose definition changed, earlier answers giving the rest.
    partly_cached_calls: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    # Values of the run the document text does not support (status `ungrounded`).
    values_ungrounded: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    dagster_run_ids: Mapped[list[Any]] = mapped_column(JSONB, default=list)
    # Dagster run id -> status, as the lifecycle sensor last saw them: the API reads this, never Dagster.
    dagster_status: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    error: Mapped[str | None] = mapped_column(Text)
    # Why a run stopped, as a stable code (engine/provider.py), when it was stopped rather than failed by Dagster.
    error_code: Mapped[str | None] = mapped_column(String(50))
    # Raised by each POST /runs/{id}/retry: the Dagster runs of an attempt are tagged with it, so the sensors tell
    # the retry's runs from the earlier ones.
    attempt: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # USD per million tokens the run is costed at, recorded when it starts (the model's, or the settings').
    input_price_per_mtok: Mapped[float | None] = mapped_column(Float)
    output_price_per_mtok: Mapped[float | None] = mapped_column(Float)
    # The run's cap in USD (None: none), and what its committed answers cost, added to as each one is committed:
    # a call is not made when it would take the run or its workspace's month past its cap (`budget_exceeded`).
    max_cost_usd: Mapped[float | None] = mapped_column(Float)
    spent_usd: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    # W3C trace context (`traceparent`) of the request that started the run: its Dagster runs continue the trace.
    trace_context: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # A full run started although variables were under the reliability threshold: who, when, why, and the figures.
    reliability_override: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RunDocument(Base):
    """Which documents a run covers, and how each one ended."""

    __tablename__ = "run_documents"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "run_id"], ["runs.tenant_id", "runs.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "document_id"], ["documents.tenant_id", "documents.id"], ondelete="CASCADE"),
    )
    run_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    document_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    status: Mapped[RunDocumentStatus] = mapped_column(
        _enum(RunDocumentStatus, "run_document_status"), default=RunDocumentStatus.pending
    )
    error_code: Mapped[str | None] = mapped_column(String(50))
    # How far a pending document got in this run: None, "parsed" or "extracted" (progress while it runs).
    stage: Mapped[str | None] = mapped_column(String(20))
    llm_calls: Mapped[int] = mapped_column(Integer, default=0)
    cached_calls: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Calls that asked only the variables whose definition changed, earlier answers giving the rest.
    partly_cached_calls: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    values_ungrounded: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class RunWorkerBeat(Base):
    """A run worker's last sign of life for a run (pipeline/coding.py writes it every few seconds while coding);
    the lifecycle sensor fails a started Dagster run whose beat stopped (defs/sensors/run_lifecycle.py)."""

    __tablename__ = "run_worker_beats"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "run_id"], ["runs.tenant_id", "runs.id"], ondelete="CASCADE"),
        Index("ix_run_worker_beats_run", "run_id"),
    )
    dagster_run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    beat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Extraction(Timestamped, Base):
    """One value of one variable, for one document (or one entity in it), from one run."""

    __tablename__ = "extractions"
    __table_args__ = (
        UniqueConstraint(
            "tenant_id", "run_id", "document_id", "entity_index", "variable_id", name="uq_extractions_cell"
        ),
        UniqueConstraint("tenant_id", "id", name="uq_extractions_tenant_id"),
        ForeignKeyConstraint(["tenant_id", "run_id"], ["runs.tenant_id", "runs.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "document_id"], ["documents.tenant_id", "documents.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(
            ["tenant_id", "prompt_version_id"],
            ["prompt_versions.tenant_id", "prompt_versions.id"],
            name="fk_extractions_prompt_version",
        ),
        Index("ix_extractions_document", "document_id"),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    run_id: Mapped[uuid.UUID] = mapped_column(index=True)
    document_id: Mapped[uuid.UUID] = mapped_column()
    entity_index: Mapped[int] = mapped_column(Integer, default=0)
    entity_text: Mapped[str | None] = mapped_column(Text)
    entity_start: Mapped[int | None] = mapped_column(Integer)  # where the entity is named in the document text
    entity_end: Mapped[int | None] = mapped_column(Integer)
    # The variable as the run's prompt version defined it: no foreign key, so deleting or editing the variable
    # later never changes a finished run's values.
    variable_id: Mapped[uuid.UUID] = mapped_column()
    variable_name: Mapped[str] = mapped_column(String(63))
    raw_value: Mapped[Any] = mapped_column(JSONB, nullable=True)  # what the model wrote
    value: Mapped[Any] = mapped_column(JSONB, nullable=True)  # after coercion and validation
    status: Mapped[ValueStatus] = mapped_column(_enum(ValueStatus, "value_status"))
    message: Mapped[str | None] = mapped_column(Text)  # why a value is coerced, invalid, ...
    confidence: Mapped[float | None] = mapped_column(Float)
    quote: Mapped[str | None] = mapped_column(Text)
    char_start: Mapped[int | None] = mapped_column(Integer)
    char_end: Mapped[int | None] = mapped_column(Integer)
    # How the quote (or the value) was found in the document text: exact, fuzzy, not_found.
    alignment: Mapped[str | None] = mapped_column(String(12))
    chunk_index: Mapped[int | None] = mapped_column(Integer)
    prompt_version_id: Mapped[uuid.UUID | None] = mapped_column()
    model: Mapped[str | None] = mapped_column(String(200))


class Feedback(Timestamped, Base):
    """A reviewer's verdict on one value: correct or wrong, what it should have been, and a note. An edit adds a
    row and marks the earlier one superseded, so the history stays; one row per reviewer and value is current."""

    __tablename__ = "feedback"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "extraction_id"], ["extractions.tenant_id", "extractions.id"], ondelete="CASCADE"
        ),
        Index("ix_feedback_run", "run_id"),
        Index("ix_feedback_document", "document_id"),
        Index(
            "uq_feedback_current",
            "extraction_id",
            "user_id",
            unique=True,
            postgresql_where=text("superseded_at IS NULL"),
        ),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    extraction_id: Mapped[uuid.UUID] = mapped_column(index=True)
    run_id: Mapped[uuid.UUID | None] = mapped_column()
    document_id: Mapped[uuid.UUID | None] = mapped_column()
    variable_name: Mapped[str | None] = mapped_column(String(63))
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    verdict: Mapped[str] = mapped_column(String(20))  # correct, wrong
    corrected_value: Mapped[Any] = mapped_column(JSONB, nullable=True)
    # A wrong verdict with what the value should be (`corrected_value`, None: it should be empty); without one,
    # the reviewer says only "not this".
    has_correction: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    comment: Mapped[str] = mapped_column(Text, default="")
    superseded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A verdict carried to a later run's unchanged value (domain/carry.py): the reviewer's original verdict and
    # the run it was given in.
    carried_from_id: Mapped[uuid.UUID | None] = mapped_column()
    carried_from_run_id: Mapped[uuid.UUID | None] = mapped_column()


class EntityFeedback(Base):
    """For entity-level projects: an entity the model missed (its text and offsets) or one it made up (its row)."""

    __tablename__ = "entity_feedback"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "run_id"], ["runs.tenant_id", "runs.id"], ondelete="CASCADE"),
        Index("ix_entity_feedback_run", "run_id"),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    run_id: Mapped[uuid.UUID] = mapped_column()
    document_id: Mapped[uuid.UUID] = mapped_column()
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(10))  # missed, spurious
    entity_index: Mapped[int | None] = mapped_column(Integer)
    entity_text: Mapped[str | None] = mapped_column(Text)
    char_start: Mapped[int | None] = mapped_column(Integer)
    char_end: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Review(Base):
    """A reviewer's review of a run: started with their first feedback, done when they say so. Another
    reviewer's feedback on the run shows only once every reviewer of it is done (double coding)."""

    __tablename__ = "reviews"
    __table_args__ = (ForeignKeyConstraint(["tenant_id", "run_id"], ["runs.tenant_id", "runs.id"], ondelete="CASCADE"),)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    run_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AgentTaskKind(enum.StrEnum):
    refine = "refine"  # the refiner (pipeline/refine.py)
    suggest = "suggest"  # the co-pilot (pipeline/copilot.py)


class AgentTaskStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    canceled = "canceled"

    @property
    def ended(self) -> bool:
        return self in (AgentTaskStatus.succeeded, AgentTaskStatus.failed, AgentTaskStatus.canceled)


def _words(cls: type[enum.Enum], length: int) -> Enum:
    """An enum stored as its values in a plain VARCHAR column (no database type to migrate when one is added)."""
    return Enum(cls, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e])


class AgentTask(Timestamped, Base):
    """The refiner's or the co-pilot's work for a project (pipeline/agents.py): recorded by the API, done by a
    Dagster run the agent sensor launches, its result polled; `applied` is what a user accepted of it."""

    __tablename__ = "agent_tasks"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "project_id"], ["projects.tenant_id", "projects.id"], ondelete="CASCADE"),
        Index("ix_agent_tasks_project", "project_id", "created_at"),
        Index("ix_agent_tasks_open", "created_at", postgresql_where=text("status IN ('queued', 'running')")),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    project_id: Mapped[uuid.UUID] = mapped_column()
    kind: Mapped[AgentTaskKind] = mapped_column(_words(AgentTaskKind, 20))
    status: Mapped[AgentTaskStatus] = mapped_column(_words(AgentTaskStatus, 20), default=AgentTaskStatus.queued)
    request: Mapped[dict[str, Any]] = mapped_column(JSONB)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    dagster_run_id: Mapped[str | None] = mapped_column(String(64))
    llm_calls: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    applied: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    applied_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    applied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Export(Timestamped, Base):
    __tablename__ = "exports"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "project_id"], ["projects.tenant_id", "projects.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(
            ["tenant_id", "run_id"], ["runs.tenant_id", "runs.id"], ondelete="CASCADE", name="fk_exports_run"
        ),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    project_id: Mapped[uuid.UUID] = mapped_column(index=True)
    run_id: Mapped[uuid.UUID | None] = mapped_column()
    csv_path: Mapped[str] = mapped_column(String(1000))
    xlsx_path: Mapped[str] = mapped_column(String(1000))
    row_count: Mapped[int] = mapped_column(Integer)
    dagster_run_id: Mapped[str | None] = mapped_column(String(64))
    # The feedback it was built with (domain/reviews.py `feedback_state`) and whose (None: every reviewer's; a
    # user: that reviewer's own, the review being incomplete): a download rebuilds it when either differs.
    feedback_state: Mapped[str | None] = mapped_column(String(200))
    feedback_scope: Mapped[uuid.UUID | None] = mapped_column()


class LlmAnswer(Timestamped, Base):
    """The model's answer for one chunk, as returned: the audit trail between a document and its values."""

    __tablename__ = "llm_answers"
    __table_args__ = (
        UniqueConstraint("tenant_id", "run_id", "document_id", "chunk_index", name="uq_llm_answers_chunk"),
        Index("ix_llm_answers_cache", "tenant_id", "cache_key"),
        Index("ix_llm_answers_chunk_key", "tenant_id", "chunk_key"),
        ForeignKeyConstraint(["tenant_id", "run_id"], ["runs.tenant_id", "runs.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "document_id"], ["documents.tenant_id", "documents.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(
            ["tenant_id", "prompt_version_id"],
            ["prompt_versions.tenant_id", "prompt_versions.id"],
            name="fk_llm_answers_prompt_version",
        ),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    run_id: Mapped[uuid.UUID] = mapped_column(index=True)
    document_id: Mapped[uuid.UUID] = mapped_column()
    chunk_index: Mapped[int] = mapped_column(Integer)
    prompt_version_id: Mapped[uuid.UUID | None] = mapped_column()
    model: Mapped[str] = mapped_column(String(200))
    payload: Mapped[Any] = mapped_column(JSONB, nullable=True)
    error: Mapped[str | None] = mapped_column(Text)
    # sha256 of (model, prompt, chunk text): an equal key means the same call, answered from this row.
    cache_key: Mapped[str | None] = mapped_column(String(64))
    cached: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    # sha256 of (model, chunk text), and per variable the hash of its definition: after an edit, the values of
    # unchanged variables are taken from here and only the changed ones are asked for.
    chunk_key: Mapped[str | None] = mapped_column(String(64))
    variable_hashes: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    # Calls this answer cost: 0 from the cache, one per codebook group, or one per entity plus one.
    calls: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # Variables taken from an earlier answer of the same chunk (their definitions unchanged), not asked again.
    reused_variables: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Invitation(Timestamped, Base):
    """A workspace invitation for an email address without an account yet. It is accepted only with the single-use
    token mailed to the address (`coderai_accept_invitation`): registering the address is no proof of owning it."""

    __tablename__ = "invitations"
    __table_args__ = (
        UniqueConstraint("tenant_id", "email", name="uq_invitations_tenant_email"),
        UniqueConstraint("token_hash", name="uq_invitations_token_hash"),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
    invited_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    token_hash: Mapped[str | None] = mapped_column(String(64))  # sha256 of the token; the token is only mailed
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MailMessage(Timestamped, Base):
    """Mail waiting to go out (`coderai_api/mail.py` sends it after the request that wrote it commits)."""

    __tablename__ = "mail_outbox"
    __table_args__ = (Index("ix_mail_outbox_unsent", "tenant_id", postgresql_where=text("sent_at IS NULL")),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    to_email: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


class AuthSession(Timestamped, Base):
    """One login: its refresh tokens form a family; revoking the session ends every token of it."""

    __tablename__ = "auth_sessions"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_reason: Mapped[str | None] = mapped_column(String(50))


class RefreshToken(Timestamped, Base):
    """Refresh tokens are stored hashed and used once: a second use revokes the whole session."""

    __tablename__ = "refresh_tokens"
    jti_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LoginAttempt(Base):
    """Failed logins, by account and by address, for throttling."""

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_key_at", "key", "attempted_at"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(400))
    attempted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


def utcnow() -> datetime:
    from datetime import UTC

    return datetime.now(UTC)
