"""Verdicts carried forward: a reviewer's verdict on a value holds for a later run's value of the same document,
record (the document, or the entity of the same name), variable definition and answer, so a second sample after a
refinement asks reviewers to judge only what changed, and a full run answered from the cache keeps every
correction. A carried verdict is a row of the later run, of the same reviewer, marked with the verdict and the run
it came from; the reviewer's own verdict on the later value always wins over it.

Only verdicts of a finished review carry (every reviewer of that run done): they were blind there, so they can
show to everybody in the later run without telling one reviewer another's answers. They are carried when the
later run's values are stored (pipeline/validate.py), and again when a review completes (a run coded before its
sample was reviewed)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy.orm import Session

from coderai_assets.domain.reviews import all_done
from coderai_assets.domain.specs import version_spec
from coderai_assets.engine.normalise import entity_key
from coderai_assets.storage.models import Extraction, Feedback, PromptVersion, Run, utcnow
from coderai_assets.storage.repositories import runs, values, verdicts


def _record_key(value: Extraction) -> str:
    """A value's record across runs: the document's, or the entity's by its name (indexes shift between runs)."""
    return entity_key(value.entity_text) if value.entity_text else f"#{value.entity_index}"


class _Definitions:
    """Each prompt version's stored definition per variable, read once."""

    def __init__(self, session: Session):
        self.session, self.cache = session, {}  # type: ignore[var-annotated]

    def of(self, version_id: uuid.UUID | None, name: str) -> dict[str, Any] | None:
        if version_id is None:
            return None
        if version_id not in self.cache:
            version = self.session.get(PromptVersion, version_id)
            spec = version_spec(self.session, version)[0] if version is not None else None
            self.cache[version_id] = {v.name: v.stored() for v in spec.variables} if spec else {}
        return self.cache[version_id].get(name)


def carry_verdicts(session: Session, run: Run, document_ids: list[uuid.UUID] | None = None) -> int:
    """Carries into `run` (its values of `document_ids`, or all) the current verdicts of finished reviews of the
    project's earlier runs on unchanged values; the newest run's verdict of each reviewer wins. Returns how many
    verdicts were carried (a stale carried verdict, whose source was edited since, is replaced)."""
    # The verdicts first (by document, indexed): most documents of a large run have none, and cost one query.
    rows = verdicts.earlier_reviewers_verdicts(session, run, document_ids)
    finished = {r for r in {f.run_id for f, _, _ in rows} if r is not None and all_done(session, r)}
    sources: dict[tuple[uuid.UUID, str, str], dict[uuid.UUID, tuple[Feedback, Extraction, Any]]] = defaultdict(dict)
    for feedback, value, created_at in rows:
        if feedback.run_id not in finished:
            continue
        key = (value.document_id, _record_key(value), value.variable_name)
        known = sources[key].get(feedback.user_id)  # type: ignore[arg-type]
        if known is None or known[2] < created_at:
            sources[key][feedback.user_id] = (feedback, value, created_at)  # type: ignore[index]
    if not sources:
        return 0
    documents = sorted({d for d, _, _ in sources})
    targets = values.of_documents(session, run, documents)
    current = {(f.extraction_id, f.user_id): f for f in verdicts.current_of_run_rows(session, run)}
    definitions, now, carried = _Definitions(session), utcnow(), 0
    for target in targets:
        for user_id, (source, value, _) in sources.get(
            (target.document_id, _record_key(target), target.variable_name), {}
        ).items():
            if target.value != value.value:
                continue
            definition = definitions.of(target.prompt_version_id, target.variable_name)
            if definition is None or definition != definitions.of(value.prompt_version_id, value.variable_name):
                continue
            mine = current.get((target.id, user_id))
            if mine is not None and (mine.carried_from_id is None or mine.carried_from_id == source.id):
                continue  # the reviewer's own verdict on this value, or this one already carried
            if mine is not None:
                mine.superseded_at = now
                session.flush()
            session.add(
                Feedback(
                    tenant_id=run.tenant_id,
                    extraction_id=target.id,
                    run_id=run.id,
                    document_id=target.document_id,
                    variable_name=target.variable_name,
                    user_id=user_id,
                    verdict=source.verdict,
                    corrected_value=source.corrected_value,
                    has_correction=source.has_correction,
                    comment=source.comment,
                    carried_from_id=source.id,
                    carried_from_run_id=source.run_id,
                )
            )
            carried += 1
    session.flush()
    return carried


def carry_to_later_runs(session: Session, run: Run) -> int:
    """After `run`'s review completed: its verdicts into the project's runs created since, on the documents it
    reviewed."""
    reviewed = verdicts.reviewed_document_ids(session, run)
    later = runs.later_of_project(session, run)
    return sum(carry_verdicts(session, target, [d for d in reviewed if d is not None]) for target in later)
