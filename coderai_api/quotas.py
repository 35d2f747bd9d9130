"""Per-workspace quotas (settings `CODERAI_QUOTA_*`): open registration must not let one account load the whole
platform. Counts are taken under a lock on the workspace's row, so requests racing each other cannot both pass
the last free unit. WebSocket connections are counted per API worker process."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from coderai_api.errors import HTTPError
from coderai_assets.settings import Settings
from coderai_assets.storage.models import RunStatus
from coderai_assets.storage.repositories import accounts, agent_tasks, documents, projects, runs

ACTIVE = (RunStatus.queued, RunStatus.running, RunStatus.exporting)


class QuotaExceeded(HTTPError):
    code = "quota_exceeded"
    status_code = 409


def _lock(session: Session, tenant_id: uuid.UUID) -> None:
    accounts.lock_workspace(session, tenant_id)


def _check(used: int, adding: int, limit: int, what: str) -> None:
    if used + adding > limit:
        raise QuotaExceeded(f"The workspace has {used} {what} of its quota of {limit}; ask an operator for more.")


def check_projects(session: Session, settings: Settings, tenant_id: uuid.UUID) -> None:
    _lock(session, tenant_id)
    used = projects.count_of_tenant(session, tenant_id)
    _check(used, 1, settings.quota_projects, "projects")


def check_documents(session: Session, settings: Settings, tenant_id: uuid.UUID, adding: int) -> None:
    _lock(session, tenant_id)
    used = documents.count_of_tenant(session, tenant_id)
    _check(used, adding, settings.quota_documents, "documents")


def check_active_runs(session: Session, settings: Settings, tenant_id: uuid.UUID) -> None:
    """Runs and agent tasks (the refiner's, the co-pilot's) queued or under way share one quota: both take Dagster
    run slots and the model's rate limit (40 co-pilot tasks queued in 1.7 s slowed another workspace's sample
    tenfold)."""
    _lock(session, tenant_id)
    under_way = runs.active_count(session, tenant_id) + agent_tasks.open_count(session, tenant_id)
    _check(under_way, 1, settings.quota_active_runs, "runs and agent tasks under way")


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
