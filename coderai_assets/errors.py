"""The project's errors: each has a stable `code` that the pipeline stores and the facade returns. What HTTP status
an error answers with is the facade's business (coderai_api/errors.py), not the pipeline's."""

from __future__ import annotations


class CoderAIError(Exception):
    code: str = "internal_error"

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class NotFound(CoderAIError):
    code = "not_found"


class Conflict(CoderAIError):
    code = "conflict"


class InvalidInput(CoderAIError):
    code = "invalid_input"


class DocumentRejected(CoderAIError):
    """A document that cannot be ingested. `code` says why (see ingest.codes)."""


class LLMError(CoderAIError):
    """A model call failed after its retries; wraps the provider's exception. The document fails alone."""

    code = "llm_error"


class LLMConfigurationError(CoderAIError):
    code = "llm_misconfigured"


class StopsWork(CoderAIError):
    """No further call is to be made: the run (or agent task) stops with `code`, since no other document would
    fare better. The provider's refusals (engine/provider.py `ProviderFatal`), a spending cap, a cancellation."""


class Canceled(StopsWork):
    """A user cancelled the work (a run, an agent task) while it was under way: its next call is not made."""

    code = "canceled"
