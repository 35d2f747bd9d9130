"""The Dagster code server, with run workers forked from a warm process (`python -m coderai_assets.defs.code_server`).

Dagster's gRPC code server starts each run worker with multiprocessing's `spawn`: a fresh interpreter that imports
Dagster, SQLAlchemy and our definitions again, about 3 s of CPU per run here (bench-service). Runs launched faster
than two cores can pay that queue behind each other (a median of 70 s from `POST /runs` to work under load). This
module serves the same API (`dagster api grpc`, same arguments) but starts run workers from a `forkserver` that has
imported all of that once: a worker then costs a fork. The forkserver is a clean single-threaded process started
before the gRPC server's threads, so forking it is safe; a worker still opens its own connections and loads its
run from the instance exactly as a spawned one does.

`dagster code-server start` is not used because it runs `dagster api grpc` as a child process to support reloads,
and our definitions never change while the platform runs (docs/decisions.md: asset graph)."""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import sys

from coderai_assets.defs.dagster_private import MP_CONTEXT_ATTRIBUTE, api_cli, grpc_server

# What a run worker imports: Dagster's execution machinery, the definitions, and what the assets import only when
# they call a model or write an export (LangChain alone is about 0.9 s of CPU).
PRELOAD = [
    "dagster",
    "dagster_postgres",
    "sqlalchemy",
    "coderai_assets.definitions",
    "langchain_openai",
    "langchain_core.messages",
    "httpx",
    "dateutil.parser",
    "charset_normalizer",
]


class ForkingApiServer(grpc_server.DagsterApiServer):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        setattr(self, MP_CONTEXT_ATTRIBUTE, multiprocessing.get_context("forkserver"))


def main(argv: list[str] | None = None) -> None:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    # Start (and warm) it now, before the server's threads, so the first run does not pay the imports either.
    multiprocessing.forkserver.ensure_running()
    # `dagster api grpc` looks the class up in its module when it builds the server.
    grpc_server.DagsterApiServer = ForkingApiServer  # type: ignore[misc]
    api_cli.main(args=["grpc", *(sys.argv[1:] if argv is None else argv)], prog_name="coderai-code-server")


if __name__ == "__main__":
    main()
