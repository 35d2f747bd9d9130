"""At most as many HTTP requests inside the app as the database pool has connections; the rest wait their turn
on the event loop, holding nothing.

A sync route holds its request's connection from the authentication dependency (run in one thread) to the route
(another thread) and the commit (a third). Without a limit, a burst lets more requests check out connections
than there are threads to finish them: with 100 clients and a pool of 20, requests waited 30 s for a connection
(the pool's timeout) while the requests holding the connections waited for a thread, and 40 of 100 failed.
With at most `limit` requests in flight, and at least as many threads, every admitted request can finish.
"""

from __future__ import annotations

import anyio
from starlette.types import ASGIApp, Receive, Scope, Send

from coderai_assets.settings import Settings


def request_limit(settings: Settings) -> int:
    return settings.api_db_pool_size + settings.api_db_max_overflow


def thread_limit(settings: Settings) -> int:
    """Threads for sync routes and dependencies: one per admitted request, and a margin for the thread calls that
    hold no connection (upload reads, file responses)."""
    limit = request_limit(settings)
    return limit + max(4, limit // 2)


class RequestLimit:
    """The limit comes from the app's settings (`app.state.settings`, set in its lifespan)."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self._limiter: anyio.CapacityLimiter | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # WebSockets take a connection per message, inside one thread call
            await self.app(scope, receive, send)
            return
        if self._limiter is None:  # created in the server's event loop, once the settings are known
            self._limiter = anyio.CapacityLimiter(request_limit(scope["app"].state.settings))
        async with self._limiter:
            await self.app(scope, receive, send)
