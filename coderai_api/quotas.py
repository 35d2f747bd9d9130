"""Per-workspace quotas (settings `CODERAI_QUOTA_*`): open registration must not let one account load the whole
platform. Counts are taken under a lock on the workspace's row, so requests racing each other cannot both pass
the last free unit. WebSocket connections are counted per API worker process."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from coderai_api.errors import HTTPError
from coderai_assets.settings import Settings
from coderai_assets.storage.models import AgentTask, Document, Project, Run, RunStatus, Tenant

ACTIVE = (RunStatus.queued, RunStatus.running, RunStatus.exporting)


class QuotaExceeded(HTTPError):
    code = "quota_exceeded"
    status_code = 409


def _lock(session: Session, tenant_id: uuid.UUID) -> None:
    session.execute(select(Tenant.id).where(Tenant.id == tenant_id).with_for_update())


def _check(used: int, adding: int, limit: int, what: str) -> None:
    if used + adding > limit:
        raise QuotaExceeded(f"The workspace has {used} {what} of its quota of {limit}; ask an operator for more.")


def check_projects(session: Session, settings: Settings, tenant_id: uuid.UUID) -> None:
    _lock(session, tenant_id)
    used = session.scalar(select(func.count()).select_from(Project).where(Project.tenant_id == tenant_id)) or 0
    _check(used, 1, settings.quota_projects, "projects")


def check_documents(session: Session, settings: Settings, tenant_id: uuid.UUID, adding: int) -> None:
    _lock(session, tenant_id)
    used = session.scalar(select(func.count()).select_from(Document).where(Document.tenant_id == tenant_id)) or 0
    _check(used, adding, settings.quota_documents, "documents")


def check_active_runs(session: Session, settings: Settings, tenant_id: uuid.UUID) -> None:
    """Runs and agent tasks (the refiner's, the co-pilot's) queued or under way share one quota: both take Dagster
    run slots and the model's rate limit (40 co-pilot tasks queued in 1.7 s slowed another workspace's sample
    tenfold)."""
    _lock(session, tenant_id)
    runs = session.scalar(
        select(func.count()).select_from(Run).where(Run.tenant_id == tenant_id, Run.status.in_(ACTIVE))
    )
    tasks = session.scalar(
        select(func.count())
        .select_from(AgentTask)
        .where(AgentTask.tenant_id == tenant_id, AgentTask.status.in_(("queued", "running")))
    )
    _check((runs or 0) + (tasks or 0), 1, settings.quota_active_runs, "runs and agent tasks under way")


class WebSocketSlots:
    """Open WebSockets per workspace in this process."""

    def __init__(self) -> None:
        self._open: Counter[uuid.UUID] = Counter()
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, tenant_id: uuid.UUID, limit: int) -> Iterator[bool]:
        """Yields whether a slot was free; a taken slot is given back on exit."""
        with self._lock:
            taken = self._open[tenant_id] < limit
            if taken:
                self._open[tenant_id] += 1
        try:
            yield taken
        finally:
            if taken:
                with self._lock:
                    self._open[tenant_id] -= 1
