"""Every use of Dagster's private API, in one module, with the Dagster version it was written against. An upgrade
of Dagster then fails in one place (tests/platform/test_dagster_private.py) instead of somewhere in a sensor or the code
server at run time.

- The code server swaps the gRPC server class for one whose run workers are forked from a warm process
  (`defs/code_server.py`): `dagster api grpc`'s command, the server module, and the server's multiprocessing
  context attribute.
- The lifecycle sensor reads the tags Dagster's run retries write on a failed run: whether it will be retried, and
  the id of the re-execution."""

from __future__ import annotations

from dagster._cli.api import api_cli
from dagster._core.storage.tags import AUTO_RETRY_RUN_ID_TAG, WILL_RETRY_TAG
from dagster._grpc import server as grpc_server

# requirements.lock pins this version; each name above, and the attribute below, was read in its source.
WRITTEN_FOR = "1.13.27"
# The DagsterApiServer attribute holding the multiprocessing context its run workers are started with.
MP_CONTEXT_ATTRIBUTE = "_mp_ctx"

__all__ = ["AUTO_RETRY_RUN_ID_TAG", "MP_CONTEXT_ATTRIBUTE", "WILL_RETRY_TAG", "WRITTEN_FOR", "api_cli", "grpc_server"]
