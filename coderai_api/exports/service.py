"""Finding the export to download: the one of a given run, or of the project's latest, as the feedback stands.

A run's export files are written when it ends; reviewers give feedback afterwards. A download compares the
feedback an export was built with (domain/reviews.py `feedback_state`, and whose) with the feedback now, and
builds a new export when they differ, so a downloaded dataset always holds the corrections made until then. Two
downloads at once build it once: the second waits on a lock, then finds the first's."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from coderai_assets.domain.dataset import export_runs, write_export
from coderai_assets.domain.reviews import feedback_state, team_scope
from coderai_assets.errors import NotFound
from coderai_assets.storage.files import FileStorage
from coderai_assets.storage.models import Export, Project, Run
from coderai_assets.storage.repositories import exports


def find_export(session: Session, project: Project, run_id: uuid.UUID | None) -> Export:
    export = exports.latest(session, project, run_id)
    if export is None:
        raise NotFound("No export yet: it is written when a run finishes.", code="export_not_found")
    return export


def current_export(
    session: Session, storage: FileStorage, project: Project, run_id: uuid.UUID | None, reader: uuid.UUID
) -> Export:
    """The export of the run (or the project's latest) with the feedback `reader` may have now; built if none is."""
    latest = find_export(session, project, run_id)
    run = session.get(Run, latest.run_id) if latest.run_id else None
    runs = export_runs(session, project, run)
    state, scope = feedback_state(session, runs), team_scope(session, runs, reader)
    found = exports.built_with(session, latest, state, scope)
    if found is not None:
        return found
    key = f"export:{latest.run_id or project.id}:{scope}"
    exports.lock_building(session, key)
    found = exports.built_with(session, latest, state, scope)  # built by a download that held the lock before
    return found or write_export(session, storage, project, run, None, reader=reader)
