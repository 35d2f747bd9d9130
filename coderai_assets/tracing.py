"""OpenTelemetry traces from the API request through the run to each model call, exported when a collector is
configured (the standard OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTLP over HTTP) and
off otherwise: without one, every span below is the API's no-op.

The chain: the API's request span (FastAPI instrumentation) -> `POST /runs` stores its trace context on the run
(`runs.trace_context`) -> the intake sensor puts it on the run's Dagster runs as a tag -> the run worker opens a
`coderai.run` span under it -> one `coderai.document` span per document -> one `llm.call` span per model call (the
call pool's threads carry the document's context)."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping

from opentelemetry import propagate, trace
from opentelemetry.context import Context

TRACEPARENT_TAG = "coderai/traceparent"
_configured = threading.Lock()
_done = False


def configure_tracing(service_name: str) -> bool:
    """Sets up export to the configured collector once per process; False (and nothing done) without one."""
    global _done
    if not (os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        return False
    with _configured:
        if not _done:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import SERVICE_NAME, Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
            trace.set_tracer_provider(provider)
            _done = True
    return True


def tracing_enabled() -> bool:
    """Whether spans go anywhere: an SDK provider is set (by configure_tracing, or by a test)."""
    return type(trace.get_tracer_provider()).__module__.startswith("opentelemetry.sdk")


def flush() -> None:
    """Exports what is buffered: a run worker's process ends right after its run."""
    provider = trace.get_tracer_provider()
    if hasattr(provider, "force_flush"):
        provider.force_flush(5000)


def current_context_carrier() -> dict[str, str]:
    """The current trace context as W3C headers (`traceparent`), to store with what continues elsewhere."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_from(carrier: Mapping[str, str] | None) -> Context | None:
    return propagate.extract(dict(carrier)) if carrier else None


tracer = trace.get_tracer("coderai")
