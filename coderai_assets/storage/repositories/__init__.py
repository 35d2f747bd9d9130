"""One repository module per aggregate: the queries of its tables, so that a service (the API's, the pipeline's)
says what it needs by name and a query is written once. Repositories read and add rows; they decide nothing (the
rules live in the services that call them). Row-level security keeps every query inside the session's tenant;
the tenant and project filters here say the same thing again, so a query is right on its own."""

from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session


def page(session: Session, query: Select, number: int, size: int) -> tuple[list[Any], int]:
    """One page of a query's rows (numbered from 1) and the count of all of them."""
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    rows = session.execute(query.limit(size).offset((number - 1) * size)).all()
    return list(rows), total
