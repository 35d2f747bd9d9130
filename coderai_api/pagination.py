"""Every list of the API has one shape: `?limit=&cursor=` in, `{items, total, limit, next_cursor}` out.

The cursor is opaque: the key of the last row shown (repositories.keyset_page), so a page costs the same at row
10,000 as at row 1 and stays right while rows are added. Pass `next_cursor` back, with the same filters, for the
next page; it is null on the last. `total`, on the first page, counts the rows the filters select."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel

from coderai_assets.errors import InvalidInput
from coderai_assets.storage import repositories

MAX_LIMIT = 500
DEFAULT_LIMIT = 50
T = TypeVar("T")


class LimitTooLarge(InvalidInput):
    code = "limit_too_large"


class Page(BaseModel, Generic[T]):
    items: list[T]
    # On the first page (no cursor): the rows the filters select. Null on the pages after it.
    total: int | None
    limit: int
    next_cursor: str | None


@dataclass(frozen=True)
class PageRequest:
    limit: int
    cursor: str | None

    @property
    def args(self) -> dict[str, Any]:
        """What repositories.keyset_page takes of the request."""
        return {"limit": self.limit, "cursor": self.cursor}

    def answer(self, page: repositories.Page, shown: Callable[[Any], Any] = lambda row: row) -> dict:
        """The page as the API answers it, each row made an item by `shown`."""
        items = [shown(row) for row in page.rows]
        return {"items": items, "total": page.total, "limit": self.limit, "next_cursor": page.next_cursor}


async def page_request(
    limit: Annotated[int, Query(ge=1, description=f"Rows a page, at most {MAX_LIMIT} (`limit_too_large` above).")] = (
        DEFAULT_LIMIT
    ),
    cursor: Annotated[str | None, Query(max_length=2000, description="`next_cursor` of the page before.")] = None,
) -> PageRequest:
    # Checked here, not with Query(le=...), so that the answer names its own code and the maximum.
    if limit > MAX_LIMIT:
        raise LimitTooLarge(f"A page holds at most {MAX_LIMIT} rows; ask for limit={MAX_LIMIT} or fewer.")
    return PageRequest(limit, cursor)


Paged = Annotated[PageRequest, Depends(page_request)]
# Words a name holds, any case; %, _ and \ are taken literally.
Search = Annotated[str | None, Query(min_length=1, max_length=200)]
