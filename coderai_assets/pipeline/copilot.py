"""The co-pilot: variables suggested from the project's description and a few of its documents, each with a reason
and an example quote found in a document (engine/copilot.py checks them). A document no run has parsed yet is
parsed for it in the sandbox, and its text is not kept: parsing for a run is the run's stage."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from coderai_assets.engine.copilot import checked_suggestions, copilot_prompt, suggestion_schema
from coderai_assets.engine.llm import Extractor
from coderai_assets.errors import CoderAIError, Conflict, InvalidInput, NotFound
from coderai_assets.pipeline.refine import Tally
from coderai_assets.storage.models import Project
from coderai_assets.storage.repositories import documents as document_rows
from coderai_assets.storage.repositories import projects


@dataclass(frozen=True)
class SuggestOptions:
    document_ids: tuple[uuid.UUID, ...] = ()  # the documents to read; the first `documents` uploaded when empty
    documents: int = 3
    max_variables: int = 8


def suggest(
    session_scope: Callable[[], Any],
    project_id: uuid.UUID,
    extractor: Extractor,
    parse: Callable[[str], str],
    options: SuggestOptions,
    tally: Tally,
) -> dict[str, Any]:
    """`parse(storage path) -> text` for documents without parsed text (raises CoderAIError with its code)."""
    with session_scope() as session:
        project = session.get(Project, project_id)
        if project is None:
            raise NotFound("No such project.", code="project_not_found")
        documents = document_rows.first_of_project(session, project, list(options.document_ids), options.documents)
        if options.document_ids and len(documents) < len(set(options.document_ids)):
            raise InvalidInput("A document to read is not in the project.", code="document_not_found")
        if not documents:
            raise Conflict("The project has no documents: upload a few first.", code="no_documents")
        read = [(str(d.id), d.file_name, d.text, d.storage_path) for d in documents]
        existing = [v.spec.name for v in projects.variables(session, project)]
        framing = {
            "name": project.name,
            "domain_description": project.domain_description,
            "extraction_unit": project.extraction_unit,
            "entity_description": project.entity_description,
        }
    texts: list[tuple[str, str, str]] = []
    unreadable: list[dict[str, str]] = []
    for document_id, file_name, text, path in read:
        if text is None:
            try:
                text = parse(path)
            except CoderAIError as exc:
                unreadable.append({"document_id": document_id, "file_name": file_name, "error_code": exc.code})
                continue
        texts.append((document_id, file_name, text))
    if not texts:
        raise InvalidInput("None of the documents could be read.", code="no_readable_documents")
    system, user = copilot_prompt(
        **framing,
        existing=existing,
        excerpts=[(name, text) for _, name, text in texts],
        max_variables=options.max_variables,
    )
    answer = extractor.ask(system, user, suggestion_schema(options.max_variables))
    tally.add(answer)
    if answer.payload is None:
        raise CoderAIError(f"the model's suggestions could not be read: {answer.error}", code="llm_unparseable")
    suggestions = checked_suggestions(answer.payload, set(existing), texts)
    return {
        "documents": [{"document_id": d, "file_name": n} for d, n, _ in texts],
        "unreadable": unreadable,
        "suggestions": suggestions,
    }
