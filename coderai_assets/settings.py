"""All configuration, read once from `CODERAI_*` environment variables and validated at start."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "postgresql+psycopg2://coderai_app@127.0.0.1:5432/coderai"
DEFAULT_MIGRATION_DATABASE_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/coderai"
DEV_SECRET = "coderai-development-secret-change-me-0123456789abcdef"


class Settings(BaseSettings):
    # An empty variable is unset: docker-compose passes `${NAME:-}` through as "".
    model_config = SettingsConfigDict(env_prefix="CODERAI_", extra="ignore", env_ignore_empty=True)

    env: Literal["development", "test", "production"] = "development"

    # Application database (projects, documents, extractions), reached as the role `coderai_app`, which owns
    # nothing and cannot bypass row-level security. Migrations run as the tables' owner. Dagster keeps its own
    # database.
    database_url: str = DEFAULT_DATABASE_URL
    migration_database_url: str = DEFAULT_MIGRATION_DATABASE_URL
    # Password given to coderai_app by `coderai migrate` (none with trust authentication).
    app_database_password: SecretStr = SecretStr("")
    # SQLAlchemy 2.1 defaults to psycopg 3, which dagster-postgres cannot use: name psycopg2
    # (docs/decisions.md: drivers).
    dagster_database_url: str = "postgresql+psycopg2://postgres@127.0.0.1:5432/coderai_dagster"

    # Where uploaded files and exports live.
    storage_dir: Path = Path("var/storage")

    # Dagster webserver the facade talks to (GraphQL), and the code location it reloads.
    dagster_host: str = "127.0.0.1"
    dagster_port: int = 3000
    dagster_location: str = "coderai"
    dagster_code_server_port: int = 4266
    # Shards of the asset graph: each is one dynamic partitions definition and one asset chain; a project is
    # pinned to one when created. Dagster advises at most about 100,000 partitions per asset: add shards before a
    # shard nears that (existing projects keep theirs; never lower the count).
    dagster_shards: int = Field(default=1, ge=1, le=64)
    # Where Dagster keeps its instance folder (DAGSTER_HOME); the project's dagster.yaml is copied there.
    dagster_home: Path = Path("var/dagster_home")

    # What `coderai up` and the run workers print: at `info`, what an operator needs (services started, each run
    # started and finished with its counts, errors); the frameworks' own chatter (sensor ticks, every run event,
    # access lines, llama.cpp's model dump) only at `debug`.
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    # LLM provider: `local` (embedded SmolLM2 served by llama.cpp), `openai`, `openai_compatible`,
    # or `factory` (any LangChain chat model returned by the callable named in `llm_factory`).
    llm_provider: Literal["local", "openai", "openai_compatible", "factory"] = "local"
    llm_model: str = ""
    llm_base_url: str = ""
    llm_api_key: SecretStr = SecretStr("")
    llm_factory: str = ""
    llm_temperature: float = 0.0
    llm_timeout_seconds: float = 120.0
    # Calls to the provider (engine/provider.py). Retries of a call that met a 429, a 5xx, a timeout or a dropped
    # connection, with backoff and jitter, never sooner than Retry-After (the SDK's own retries are off).
    llm_max_retries: int = Field(default=5, ge=0, le=20)
    llm_max_backoff_seconds: float = Field(default=60.0, gt=0)
    # The provider's limits, shared by every process through Redis; unset: no limit of ours (429s are retried).
    llm_requests_per_minute: int | None = Field(default=None, ge=1)
    llm_tokens_per_minute: int | None = Field(default=None, ge=1)
    # The circuit breaker: open after this many consecutive provider failures, a trial call after this long;
    # while open, documents wait, failing with `llm_unavailable` only after `llm_max_outage_seconds`.
    llm_breaker_fail_max: int = Field(default=5, ge=1)
    llm_breaker_reset_seconds: float = Field(default=30.0, gt=0)
    llm_max_outage_seconds: float = Field(default=3600.0, gt=0)
    # Where the rate limit and the breaker keep their state (shared by all run workers); `memory://` keeps it per
    # process (one run worker at a time only).
    redis_url: str = "redis://127.0.0.1:6379/0"
    llm_max_output_tokens: int = 1024
    # Answer a chunk from an earlier identical call (same model, prompt and text) instead of calling the model.
    llm_cache: bool = True
    # Below this self-reported confidence a value follows its variable's if_uncertain rule.
    uncertainty_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    # Ask the model for a supporting quote per value. Unset: yes, except for the embedded model, which
    # answers worse when asked (the engine then finds the value in the text itself).
    llm_quotes: bool | None = None
    # Context window of the model, in tokens; chunks are sized to fit it. Unset: from the model
    # (engine/model_limits.py).
    llm_context_tokens: int | None = Field(default=None, ge=512)
    # How structured output is requested. llama.cpp's server fails on json_schema (docs/decisions.md: model calls).
    llm_structured_method: Literal["function_calling", "json_schema", "json_mode"] = "function_calling"
    # USD per million tokens, for the run's cost figure. Unset: the model's published prices, if it is known.
    llm_input_price_per_mtok: float | None = Field(default=None, ge=0)
    llm_output_price_per_mtok: float | None = Field(default=None, ge=0)
    # What a workspace's runs may spend a calendar month (UTC), in USD, unless the workspace sets its own
    # (PATCH /workspaces/{id}); unset: no cap. A call that would pass it is not made: the run stops with
    # `budget_exceeded`.
    workspace_monthly_budget_usd: float | None = Field(default=None, ge=0)

    # The embedded model's OpenAI-compatible server (started by `coderai local-llm`).
    local_llm_host: str = "127.0.0.1"
    local_llm_port: int = 8765
    local_llm_model_path: str = ""

    # Ingestion limits: a document is parsed in a child process held to these.
    max_upload_bytes: int = 100 * 1024 * 1024
    # Request bodies, refused with 413 before they are read when the declared length is over (and cut off when an
    # undeclared one passes it): any route but uploads; an upload request (files, fields and multipart framing);
    # and files per upload request.
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_upload_request_bytes: int = Field(default=1024 * 1024 * 1024, ge=1024)
    max_files_per_upload: int = Field(default=100, ge=1)
    # Slow bodies: a body (any route but uploads) is read whole, within this deadline, before the request is
    # admitted to the database pool; an upload's next part must come within the same time. Per API worker, at most
    # `max_bodies_per_client` bodies of one client address are read at once (429 beyond).
    body_timeout_seconds: float = Field(default=15.0, gt=0)
    max_bodies_per_client: int = Field(default=32, ge=1)
    parse_timeout_seconds: float = 120.0
    parse_cpu_seconds: int = 120
    parse_memory_bytes: int = 2 * 1024 * 1024 * 1024
    # Characters of text one document may have (`too_large` beyond): chunks, grounding index and export grow with it.
    max_text_chars: int = Field(default=5_000_000, ge=1000)
    max_zip_uncompressed_bytes: int = 300 * 1024 * 1024
    max_zip_entries: int = 10_000
    max_zip_ratio: float = 200.0

    # Concurrency inside a run worker (one Dagster run): documents in flight, each in a thread that holds a database
    # connection only for its short transactions; model calls in flight (chunks of all those documents, shared);
    # sandboxed parse children the documents borrow (each costs about a second of CPU to start); and database
    # connections (every run worker holds up to this many plus 2: keep workers x (this + 2) + the API's pools
    # under the server's max_connections). The provider's rate limit, not these, should be what bounds a run.
    document_concurrency: int = Field(default=16, ge=1, le=256)
    # A started Dagster run whose worker has written no heartbeat for this long is failed by the lifecycle sensor
    # (and re-executed by Dagster's run retries): its worker is gone though its code server did not say so.
    run_worker_timeout_seconds: int = Field(default=120, ge=10, le=86_400)
    llm_concurrency: int = Field(default=16, ge=1, le=256)
    parse_concurrency: int = Field(default=2, ge=1, le=32)
    run_db_pool_size: int = Field(default=6, ge=1, le=50)
    # Dagster runs (processes) per application run with many documents, each over its own span of the keys: one
    # Python process computes on one core, so a large run uses several (at least 50 documents a part).
    run_parallelism: int = Field(default=2, ge=1, le=32)

    # Chunking, in characters; 0 means "what fits the context beside the project's prompt" (engine/budget.py).
    chunk_chars: int = 0
    chunk_overlap_chars: int = 200

    # The API: uvicorn worker processes, and per worker the database pool, which also bounds the threads that
    # serve sync routes (one connection per request), so workers x (pool + overflow) must stay under the
    # server's max_connections.
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_workers: int = Field(default=2, ge=1)
    api_db_pool_size: int = Field(default=20, ge=1)
    api_db_max_overflow: int = Field(default=0, ge=0)

    # GET /metrics (Prometheus): open when empty, as Prometheus expects on an internal network; else a scrape must
    # send it as a bearer token.
    metrics_token: SecretStr = SecretStr("")

    # Accounts and tokens.
    secret_key: SecretStr = SecretStr(DEV_SECRET)
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    jwt_issuer: str = "coderai"
    access_token_minutes: int = Field(default=15, ge=1)
    refresh_token_days: int = Field(default=14, ge=1)
    # A refresh token used again within this many seconds (two tabs, a retry) gets the same successor pair; later,
    # a second use is reuse and ends the session.
    refresh_grace_seconds: int = Field(default=30, ge=0, le=300)
    # Failed logins allowed within the window, per account and per client address, before 429.
    login_window_seconds: int = 900
    login_max_failures_per_account: int = 5
    login_max_failures_per_address: int = 20
    # Per-workspace quotas: projects, documents, runs queued or under way, and open WebSockets per API worker.
    quota_projects: int = Field(default=500, ge=1)
    quota_documents: int = Field(default=200_000, ge=1)
    quota_active_runs: int = Field(default=20, ge=1)  # runs and agent tasks queued or under way
    quota_workspaces_per_account: int = Field(default=10, ge=1)  # workspaces one account may own
    quota_websockets: int = Field(default=50, ge=1)
    # Proxies whose X-Forwarded-For is believed (IPs or networks, comma-separated), as uvicorn's
    # --forwarded-allow-ips; empty: none, and the client address is the connection's.
    trusted_proxies: str = ""
    # Invitations: a single-use link mailed to the address, valid this many days. Without CODERAI_SMTP_URL
    # (smtp://user:password@host:587, or smtps://...) mail stays in the `mail_outbox` table, and in development the
    # link is logged.
    public_url: str = "http://127.0.0.1:8000"
    smtp_url: SecretStr = SecretStr("")
    mail_from: str = "CoderAI <coderai@localhost>"
    invitation_days: int = Field(default=7, ge=1)

    def check_token_secret(self) -> None:
        """For the process that signs tokens (the API), not for the others: docker-compose gives them no secret."""
        secret = self.secret_key.get_secret_value()
        if self.env == "production" and (secret == DEV_SECRET or len(secret) < 32):
            raise ValueError("set CODERAI_SECRET_KEY to a random secret of at least 32 characters in production")

    @model_validator(mode="after")
    def _check_provider(self) -> Settings:
        if self.llm_provider == "openai" and not self.llm_api_key:
            raise ValueError("CODERAI_LLM_PROVIDER=openai needs CODERAI_LLM_API_KEY")
        if self.llm_provider == "openai_compatible" and not (self.llm_base_url and self.llm_model):
            raise ValueError("CODERAI_LLM_PROVIDER=openai_compatible needs CODERAI_LLM_BASE_URL and CODERAI_LLM_MODEL")
        if self.llm_provider == "factory" and ":" not in self.llm_factory:
            raise ValueError("CODERAI_LLM_PROVIDER=factory needs CODERAI_LLM_FACTORY='module:callable'")
        if self.chunk_overlap_chars < 0:
            raise ValueError("CODERAI_CHUNK_OVERLAP_CHARS must be >= 0")
        return self

    @property
    def framework_log_level(self) -> str:
        """The level of Dagster's daemon and webserver, uvicorn and llama.cpp: warnings, unless debugging."""
        return "debug" if self.log_level == "debug" else "warning"

    @property
    def request_quotes(self) -> bool:
        return self.llm_quotes if self.llm_quotes is not None else self.llm_provider != "local"

    @property
    def dagster_graphql_url(self) -> str:
        return f"http://{self.dagster_host}:{self.dagster_port}/graphql"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
