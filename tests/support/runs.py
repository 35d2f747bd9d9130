"""Helpers of the run resilience and tracing tests: a slow model, a run of long documents coded by it."""

from __future__ import annotations

import threading
import time
from typing import Any

from dagster import materialize

from coderai_assets.defs.partitions import RANGE_END_TAG, RANGE_START_TAG, RUN_TAG, WORKSPACE_TAG
from coderai_assets.defs.resources import LLMResource
from coderai_assets.domain.runs import create_run
from coderai_assets.engine.llm import Extractor
from coderai_assets.storage.db import tenant_session
from coderai_assets.storage.models import (
    Project,
    RunKind,
)
from tests.fakes import ToolCallingFakeModel
from tests.support.dagster import SHARD, _assets, _project, _register, _resources

ANSWER = {"city": "Lyon", "event_date": "2024-03-12", "participants": 10, "protest_type": "march", "violence": False}


class SlowModel(ToolCallingFakeModel):
    """Takes `delay` seconds a call, counts the calls in flight at once, and fails every call whose prompt holds
    one of `failing` (a provider error the guard gave up on)."""

    delay: float = 0.0
    failing: list[str] = []
    in_flight: int = 0
    most_in_flight: int = 0
    lock: Any = threading.Lock()

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        prompt = "\n".join(str(m.content) for m in messages)
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(self.delay)
            if any(marker in prompt for marker in self.failing):
                raise RuntimeError("503 Service Unavailable")
            return super()._generate(messages, stop, run_manager, **kwargs)
        finally:
            with self.lock:
                self.in_flight -= 1


def _llm(model: SlowModel) -> LLMResource:
    class Slow(LLMResource):
        def extractor(self, max_output_tokens: int | None = None) -> Extractor:
            return Extractor(model, "fake/slow")

    return Slow()


def _run(session_factory, tenant, settings, instance, files):
    project_id, doc_ids = _project(session_factory, tenant, settings, files)
    keys = _register(instance, project_id, doc_ids)
    with tenant_session(session_factory, tenant) as session:
        run, _ = create_run(session, session.get(Project, project_id), RunKind.full, with_quotes=True)
    return project_id, doc_ids, keys, run.id


def _code(settings, instance, tenant, run_id, keys, model, tags=None):
    ordered = [k for k in instance.get_dynamic_partitions(SHARD.partitions_name) if k in set(keys)]
    return materialize(
        _assets(settings, "validated_rows"),
        instance=instance,
        tags={
            RUN_TAG: str(run_id),
            WORKSPACE_TAG: str(tenant),
            RANGE_START_TAG: ordered[0],
            RANGE_END_TAG: ordered[-1],
            **(tags or {}),
        },
        resources=_resources(settings, _llm(model)),
    )
