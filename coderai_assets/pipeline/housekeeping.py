"""What would otherwise grow forever or outlive its row, removed by the `housekeeping` job
every hour:

- login attempts older than the throttling window;
- refresh tokens expired for a day, and sessions that are revoked or whose every token has expired;
- stored originals with no document row (an upload whose transaction rolled back after the file was written),
  once they are an hour old, so an upload still in flight keeps its file.

Stored files are found by walking the storage folder, `<workspace>/<project>/documents/<document>/original`; each
workspace's rows are read as that workspace, so row-level security applies here too."""

from __future__ import annotations

import shutil
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import cast

from sqlalchemy import CursorResult, Delete, delete, exists, or_
from sqlalchemy.orm import Session, sessionmaker

from coderai_assets.settings import Settings
from coderai_assets.storage.db import tenant_session
from coderai_assets.storage.models import AuthSession, LoginAttempt, RefreshToken, utcnow
from coderai_assets.storage.repositories import documents

ORPHAN_AGE_SECONDS = 3600


@dataclass
class Swept:
    login_attempts: int = 0
    refresh_tokens: int = 0
    sessions: int = 0
    files: int = 0


def _deleted(session: Session, statement: Delete) -> int:
    result = cast(CursorResult, session.execute(statement))
    return result.rowcount


def sweep_accounts(factory: sessionmaker[Session], settings: Settings, swept: Swept) -> None:
    now = utcnow()
    window = timedelta(seconds=settings.login_window_seconds)
    with tenant_session(factory, None) as session:
        swept.login_attempts = _deleted(session, delete(LoginAttempt).where(LoginAttempt.attempted_at < now - window))
        swept.refresh_tokens = _deleted(
            session, delete(RefreshToken).where(RefreshToken.expires_at < now - timedelta(days=1))
        )
        live_token = exists().where(RefreshToken.session_id == AuthSession.id, RefreshToken.expires_at > now)
        swept.sessions = _deleted(
            session,
            delete(AuthSession).where(
                AuthSession.created_at < now - timedelta(days=1),
                or_(AuthSession.revoked_at.is_not(None), ~live_token),
            ),
        )


def _uuid(name: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(name)
    except ValueError:
        return None


def sweep_files(factory: sessionmaker[Session], root: Path, swept: Swept, min_age: float = ORPHAN_AGE_SECONDS) -> None:
    if not root.is_dir():
        return
    cutoff = time.time() - min_age
    for workspace in root.iterdir():
        tenant_id = _uuid(workspace.name)
        if tenant_id is None or not workspace.is_dir():
            continue
        folders = [
            (document_id, folder)
            for folder in workspace.glob("*/documents/*")
            if (document_id := _uuid(folder.name)) is not None and folder.stat().st_mtime < cutoff
        ]
        if not folders:
            continue
        with tenant_session(factory, tenant_id) as session:
            known = documents.existing(session, [d for d, _ in folders])
        for document_id, folder in folders:
            if document_id not in known:
                shutil.rmtree(folder, ignore_errors=True)
                swept.files += 1


def sweep(factory: sessionmaker[Session], settings: Settings, storage_root: Path) -> Swept:
    swept = Swept()
    sweep_accounts(factory, settings, swept)
    sweep_files(factory, storage_root, swept)
    return swept
