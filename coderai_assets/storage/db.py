"""Engine and session factory; the tenant is set inside every transaction (docs/decisions.md: tenancy)."""

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


# A flag in `Session.info`: the transaction's first statement sets `app.current_tenant` itself.
FIRST_STATEMENT_SETS_TENANT = "first_statement_sets_tenant"
_SET_TENANT = text("select set_config('app.current_tenant', :t, true)")


@event.listens_for(Session, "after_begin")
def _set_tenant(session: Session, transaction, connection) -> None:
    # Transaction-local: a session-level setting leaked into the next pool checkout (docs/decisions.md:
    # tenancy); the empty setting also overrides one that someone made at session level. A session whose first
    # statement sets the tenant itself (the API's authentication) skips the round trip.
    tenant_id = session.info.get("tenant_id")
    if tenant_id or not session.info.get(FIRST_STATEMENT_SETS_TENANT):
        connection.execute(_SET_TENANT, {"t": str(tenant_id) if tenant_id else ""})


def set_tenant(session: Session, tenant_id: uuid.UUID) -> None:
    """Switch an open session to `tenant_id`: for this transaction (set now) and any later one (after_begin)."""
    remember_tenant(session, tenant_id)
    session.execute(_SET_TENANT, {"t": str(tenant_id)})


def remember_tenant(session: Session, tenant_id: uuid.UUID) -> None:
    """For a session whose current transaction already set `tenant_id` itself: later transactions set it too."""
    session.info["tenant_id"] = tenant_id


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
