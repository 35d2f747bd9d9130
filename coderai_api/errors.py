"""One handler renders every CoderAIError as JSON with a stable `code`; the shape is declared in OpenAPI. The HTTP
status of each error is decided here: the pipeline's errors by their class (`STATUS`), the facade's own errors
(`HTTPError`: tokens, roles, quotas) carry theirs."""

from __future__ import annotations

import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from coderai_assets.errors import (
    CoderAIError,
    Conflict,
    DocumentRejected,
    InvalidInput,
    LLMConfigurationError,
    LLMError,
    NotFound,
)


class HTTPError(CoderAIError):
    """An error of the facade's own, whose status is part of what it says (401 for a token, 403 for a role)."""

    status_code: int = 400

    def __init__(self, message: str, *, code: str | None = None, status_code: int | None = None):
        super().__init__(message, code=code)
        if status_code is not None:
            self.status_code = status_code


# The pipeline's errors as the facade answers them; a subclass answers as its nearest listed base.
STATUS: dict[type[CoderAIError], int] = {
    NotFound: 404,
    Conflict: 409,
    InvalidInput: 422,
    DocumentRejected: 422,
    LLMError: 502,
    LLMConfigurationError: 500,
}


def status_of(exc: CoderAIError) -> int:
    if isinstance(exc, HTTPError):
        return exc.status_code
    return next((STATUS[cls] for cls in type(exc).__mro__ if cls in STATUS), 500)


class ErrorBody(BaseModel):
    code: str
    message: str
    detail: object | None = None


ERROR_RESPONSES: dict[int | str, dict] = {
    400: {"model": ErrorBody, "description": "The body cannot be parsed (malformed JSON or multipart, too many files)"},
    401: {"model": ErrorBody, "description": "Missing, invalid, expired or revoked token"},
    403: {"model": ErrorBody, "description": "The role may not do this"},
    404: {"model": ErrorBody, "description": "Not found (or another workspace's)"},
    409: {"model": ErrorBody, "description": "Conflict, or a quota of the workspace is reached (quota_exceeded)"},
    413: {"model": ErrorBody, "description": "The request body is over the route's limit"},
    422: {"model": ErrorBody, "description": "Invalid input"},
    429: {"model": ErrorBody, "description": "Too many attempts"},
}


_HTTP_CODES = {
    400: "invalid_body",
    404: "not_found",
    405: "method_not_allowed",
    408: "body_timeout",
    413: "request_too_large",
}


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods the OpenAPI document lists for the path template that `path` matches."""
    if not hasattr(app.state, "path_methods"):
        app.state.path_methods = [
            (
                re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)) + "$"),
                sorted(m.upper() for m in item),
            )
            for template, item in app.openapi()["paths"].items()
        ]
    return sorted({m for pattern, methods in app.state.path_methods if pattern.match(path) for m in methods})


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CoderAIError)
    async def _coderai_error(_: Request, exc: CoderAIError) -> JSONResponse:
        status = status_of(exc)
        headers = {}
        if status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        return JSONResponse(status_code=status, content={"code": exc.code, "message": exc.message}, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Errors raised by the framework (routing, body parsing and limits) in the same shape as ours, with their
        # headers. A 405's Allow names every method of the path: routing with nested routers named one only.
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(app, request.url.path)) or headers.get("Allow", "")
        return JSONResponse(
            status_code=exc.status_code,
            content={"code": _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}"), "message": str(exc.detail)},
            headers=headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        return JSONResponse(
            status_code=422,
            content={"code": "invalid_request", "message": validation_message(errors), "detail": jsonable(errors)},
        )


def validation_message(errors) -> str:
    """What is wrong, in words: each field and its problem ("query.page_size: Input should be less than or equal
    to 500"), so a client sees the limit without reading `detail`."""
    problems = [f"{'.'.join(str(part) for part in e.get('loc', ()))}: {e.get('msg', 'not valid')}" for e in errors[:5]]
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return f"The request is not valid: {'; '.join(problems)}{more}." if problems else "The request is not valid."


def jsonable(errors) -> list[dict]:
    return [{k: (str(v) if k in ("ctx", "input") else v) for k, v in e.items() if k != "url"} for e in errors]
