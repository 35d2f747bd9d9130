"""Dagster resources: the application database, the LLM and file storage."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster import ConfigurableResource
from sqlalchemy.orm import Session, sessionmaker

from coderai_assets.engine.llm import Extractor, build_chat_model, guard_config
from coderai_assets.engine.provider import guard_for
from coderai_assets.settings import Settings
from coderai_assets.storage.db import make_engine, make_session_factory, tenant_session
from coderai_assets.storage.files import FileStorage, LocalFileStorage

_factories: dict[str, sessionmaker[Session]] = {}


class DatabaseResource(ConfigurableResource):
    url: str
    # A run's document threads share the pool: each holds a connection only for a short transaction, and waits for
    # one when all are taken.
    pool_size: int = 5

    def factory(self) -> sessionmaker[Session]:
        # One engine (and pool) per process and URL, not one per asset invocation.
        if self.url not in _factories:
            engine = make_engine(self.url, pool_size=self.pool_size, max_overflow=2, pool_timeout=300)
            _factories[self.url] = make_session_factory(engine)
        return _factories[self.url]

    @contextmanager
    def session(self, tenant_id: uuid.UUID | None) -> Iterator[Session]:
        with tenant_session(self.factory(), tenant_id) as session:
            yield session


def llm_config(settings: Settings) -> str:
    """The model settings the definitions were built with, as the resource's config (JSON). The API key stays out:
    the Dagster UI shows resource config, so the key (and the Redis URL, which may hold a password) is read from the
    environment when the model is built."""
    return json.dumps(
        {
            name: value
            for name, value in settings.model_dump(mode="json").items()
            if name.startswith(("llm_", "local_llm_")) and name != "llm_api_key"
        }
    )


class LLMResource(ConfigurableResource):
    """Builds the configured LangChain chat model; tests pass a subclass that returns a fake one."""

    config_json: str = "{}"  # `llm_config(settings)`; "{}" takes every setting from the environment

    def extractor(self, max_output_tokens: int | None = None) -> Extractor:
        """`max_output_tokens`: the answer budget of the project's codebook, if lower than the configured cap."""
        settings = Settings(**json.loads(self.config_json))
        model, name = build_chat_model(settings, max_output_tokens)
        cap = min(settings.llm_max_output_tokens, max_output_tokens or settings.llm_max_output_tokens)
        return Extractor(
            model, name, settings.llm_structured_method, guard_for(guard_config(settings)), max_output_tokens=cap
        )


class StorageResource(ConfigurableResource):
    root: str

    def storage(self) -> FileStorage:
        return LocalFileStorage(Path(self.root))


def default_resources(settings: Settings) -> dict[str, object]:
    """The one place that decides the resources of the code location, from settings."""
    return {
        "db": DatabaseResource(url=settings.database_url, pool_size=settings.run_db_pool_size),
        "llm": LLMResource(config_json=llm_config(settings)),
        "files": StorageResource(root=str(settings.storage_dir)),
    }
