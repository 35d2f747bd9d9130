"""Engine and session factory; the tenant is set inside every transaction (DESIGN.md 4)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, **kwargs) -> Engine:
    return create_engine(url, pool_pre_ping=True, future=True, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


_SET_TENANT = text("select set_config('app.current_tenant', :t, true)")


@event.listens_for(Session, "after_begin")
def _set_tenant(session: Session, transaction, connection) -> None:
    # Transaction-local: a session-level setting leaked into the next pool checkout (DESIGN.md 4).
    tenant_id = session.info.get("tenant_id")
    connection.execute(_SET_TENANT, {"t": str(tenant_id) if tenant_id else ""})


def set_tenant(session: Session, tenant_id: uuid.UUID) -> None:
    """Switch an open session to `tenant_id`: for this transaction (set now) and any later one (after_begin)."""
    session.info["tenant_id"] = tenant_id
    session.execute(_SET_TENANT, {"t": str(tenant_id)})


@contextmanager
def tenant_session(factory: sessionmaker[Session], tenant_id: uuid.UUID | None) -> Iterator[Session]:
    """One unit of work for one tenant: commits once on success, rolls back on error."""
    session = factory()
    session.info["tenant_id"] = tenant_id
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
