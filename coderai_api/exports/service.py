"""Finding the export to download: the one of a given run, or the project's latest."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from coderai_assets.errors import NotFound
from coderai_assets.storage.models import Export, Project


def find_export(session: Session, project: Project, run_id: uuid.UUID | None) -> Export:
    query = select(Export).where(Export.project_id == project.id)
    if run_id is not None:
        query = query.where(Export.run_id == run_id)
    export = session.scalars(query.order_by(Export.created_at.desc())).first()
    if export is None:
        raise NotFound("No export yet: it is written when a run finishes.", code="export_not_found")
    return export
