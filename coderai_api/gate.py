"""The first thing a request meets, before any of its body is read:

1. Its body size: a declared length over the route's limit is refused with 413 at once; an undeclared one
   (chunked) is counted as it is read and cut off with 413 once it passes the limit. Uploads have their own limit.
2. Anonymous bodies: a request with a body to any route but registration, login and refresh must carry a
   well-signed, unexpired access token, checked here without a database round trip. (FastAPI reads a route's body
   before it resolves its dependencies, so without this a 50 MiB anonymous upload was read in full before its 401.)
   The dependency in `deps.py` still checks the session, the user and the membership.

3. Slow bodies: a body of any route but uploads is read whole here, within `body_timeout_seconds`, before the
   request goes on to the concurrency limit, so a client sending a byte a second holds no database slot: 50 such
   anonymous logins made /health time out for as long as they were held. An upload (authenticated, streamed to
   disk) must send each part within the same time. Past the deadline: 408 `body_timeout`. One client address may
   have at most `max_bodies_per_client` bodies being read at once per worker (429 `too_many_bodies`).

4. The NUL character in the query string (`%00`), which PostgreSQL refuses in text: 422 before a route compares
   it with a column (a `variable=` filter with one answered 500; bodies are checked by `schemas.Body`).

Multipart limits (files and fields per upload) are FastAPI's `form_limits`, on the uploads router (main.py).
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coderai_api.auth import tokens
from coderai_api.auth.tokens import InvalidToken
from coderai_assets.settings import Settings

PUBLIC_WITH_BODY = frozenset({"/api/v1/auth/register", "/api/v1/auth/login", "/api/v1/auth/refresh"})
UPLOAD_PATH = re.compile(r"/api/v1/projects/[^/]+/documents/?")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_NUL = re.compile(rb"%00|\x00")


class BodyTooLarge(HTTPException):
    """Raised while the body is read; FastAPI re-raises HTTPExceptions, so errors.py renders it as JSON."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"The request body is over this route's limit of {limit} bytes.")


def body_limit(settings: Settings, method: str, path: str) -> int:
    if method == "POST" and UPLOAD_PATH.fullmatch(path):
        return settings.max_upload_request_bytes
    return settings.max_request_bytes


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    # Connection: close, so a client still sending the refused body does not hold the connection.
    return JSONResponse(
        status_code=status,
        content={"code": code, "message": message},
        headers={**(headers or {}), "Connection": "close"},
    )


class BodyTimeout(HTTPException):
    def __init__(self, seconds: float) -> None:
        super().__init__(status_code=408, detail=f"The request body did not arrive within {seconds:g} s.")


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else ""


def _declared_length(headers: dict[bytes, bytes]) -> int | None:
    declared = headers.get(b"content-length")
    try:
        return int(declared) if declared is not None else None
    except ValueError:
        return None


def _refusal(settings: Settings, scope: Scope, headers: dict[bytes, bytes], limit: int) -> JSONResponse | None:
    """What the headers alone refuse: a declared length over the limit (413), an anonymous body (401)."""
    length = _declared_length(headers)
    if length is not None and length > limit:
        return _error(413, "request_too_large", BodyTooLarge(limit).detail)
    if not _has_body(headers) or scope["path"] in PUBLIC_WITH_BODY:
        return None
    scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
    try:
        if scheme.lower() != "bearer" or not token.strip():
            raise InvalidToken("An access token is required.")
        tokens.decode(settings, token.strip(), tokens.ACCESS)
    except InvalidToken as exc:
        return _error(401, exc.code, exc.message, {"WWW-Authenticate": "Bearer"})
    return None


def _has_body(headers: dict[bytes, bytes]) -> bool:
    return b"transfer-encoding" in headers or bool(_declared_length(headers))


def _bounded(receive: Receive, limit: int, deadline: float) -> Receive:
    """`receive`, each message within the deadline and the body's bytes within the limit."""
    received = 0

    async def receive_within_limit() -> Message:
        nonlocal received
        try:
            message = await asyncio.wait_for(receive(), deadline)
        except TimeoutError:
            raise BodyTimeout(deadline) from None
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(limit)
        return message

    return receive_within_limit


class RequestGate:
    def __init__(self, app: ASGIApp):
        self.app = app
        self._reading: Counter[str] = Counter()  # bodies being read, per client address

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _NUL.search(scope.get("query_string", b"")):
            response = _error(422, "invalid_request", "the query string may not contain the NUL character (%00)")
            await response(scope, receive, send)
            return
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        settings: Settings = scope["app"].state.settings
        headers = dict(scope["headers"])
        limit = body_limit(settings, scope["method"], scope["path"])
        refused = _refusal(settings, scope, headers, limit)
        if refused is not None:
            await refused(scope, receive, send)
            return
        bounded = _bounded(receive, limit, settings.body_timeout_seconds)
        if not _has_body(headers) or (scope["method"] == "POST" and UPLOAD_PATH.fullmatch(scope["path"])):
            await self.app(scope, bounded, send)  # an upload streams to disk, each part in time
            return
        await self._read_then_forward(scope, bounded, receive, send, settings, limit)

    async def _read_then_forward(
        self, scope: Scope, bounded: Receive, receive: Receive, send: Send, settings: Settings, limit: int
    ) -> None:
        """The whole body read within the deadline, at most `max_bodies_per_client` at once per address, then
        handed to the app."""
        client = _client(scope)
        deadline = settings.body_timeout_seconds
        if self._reading[client] >= settings.max_bodies_per_client:
            message = "Too many request bodies from this address are being sent at once."
            await _error(429, "too_many_bodies", message, {"Retry-After": "1"})(scope, receive, send)
            return
        self._reading[client] += 1
        try:
            messages = await asyncio.wait_for(self._read_body(bounded), deadline)
        except (TimeoutError, BodyTimeout):
            await _error(408, "body_timeout", BodyTimeout(deadline).detail)(scope, receive, send)
            return
        except BodyTooLarge:
            await _error(413, "request_too_large", BodyTooLarge(limit).detail)(scope, receive, send)
            return
        finally:
            self._reading[client] -= 1
            if not self._reading[client]:
                del self._reading[client]

        async def replay() -> Message:
            if messages:
                return messages.pop(0)
            return await receive()  # after the body: a disconnect, when the client goes

        await self.app(scope, replay, send)

    @staticmethod
    async def _read_body(receive: Receive) -> list[Message]:
        """Every message of the body, up to its last part (or the client's disconnect)."""
        messages: list[Message] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                return messages
