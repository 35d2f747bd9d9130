"""One handler renders every CoderAIError as JSON with a stable `code`; the shape is declared in OpenAPI."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from coderai_assets.errors import CoderAIError


class ErrorBody(BaseModel):
    code: str
    message: str
    detail: object | None = None


ERROR_RESPONSES: dict[int | str, dict] = {
    404: {"model": ErrorBody, "description": "Not found"},
    409: {"model": ErrorBody, "description": "Conflict"},
    422: {"model": ErrorBody, "description": "Invalid input"},
    503: {"model": ErrorBody, "description": "Orchestrator unavailable"},
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CoderAIError)
    async def _coderai_error(_: Request, exc: CoderAIError) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code, content={"code": exc.code, "message": exc.message})

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            status_code=422,
            content={
                "code": "invalid_request",
                "message": "The request is not valid.",
                "detail": jsonable(exc.errors()),
            },
        )


def jsonable(errors) -> list[dict]:
    return [{k: (str(v) if k in ("ctx", "input") else v) for k, v in e.items() if k != "url"} for e in errors]
