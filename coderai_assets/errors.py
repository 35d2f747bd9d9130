"""One error base class with a stable code and HTTP status; the facade renders it, the pipeline stores the code."""

from __future__ import annotations


class CoderAIError(Exception):
    code: str = "internal_error"
    status_code: int = 500

    def __init__(self, message: str, *, code: str | None = None, status_code: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code


class NotFound(CoderAIError):
    code = "not_found"
    status_code = 404


class Conflict(CoderAIError):
    code = "conflict"
    status_code = 409


class InvalidInput(CoderAIError):
    code = "invalid_input"
    status_code = 422


class DocumentRejected(CoderAIError):
    """A document that cannot be ingested. `code` says why (see ingest.codes)."""

    status_code = 422


class LLMError(CoderAIError):
    """A model call failed after its retries; wraps the provider's exception."""

    code = "llm_error"
    status_code = 502


class LLMConfigurationError(CoderAIError):
    code = "llm_misconfigured"
    status_code = 500
