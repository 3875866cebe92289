"""The OpenTelemetry SDK behind ops.tracing: imported only when tracing is on.

- Resource: ``service.name`` from OTEL_SERVICE_NAME (or a ``service.name`` in
  OTEL_RESOURCE_ATTRIBUTES), else the project slug; ``service.version`` from APP_VERSION;
  ``deployment.environment.name`` from APP_ENV; plus whatever OTEL_RESOURCE_ATTRIBUTES adds.
- Spans: the SDK's sampler (OTEL_TRACES_SAMPLER, default parentbased_always_on), a
  BatchSpanProcessor (a bounded queue exported by a background thread: OTEL_BSP_*) and the
  OTLP/HTTP protobuf exporter (OTEL_EXPORTER_OTLP_*), all configured by the SDK itself.
- Django's instrumentation, placed right after ops.middleware.OpsEndpointsMiddleware: the
  operational endpoints are answered before it (no spans for them, on either port), and it never
  reads the Host header of a probe (it builds each request's URL, which validates the host). It
  continues an incoming W3C ``traceparent`` and names each server span ``{method} {route}`` with
  the route the request metrics use ("/items/<int:id>"), never the raw path.
- Logs: every JSON line written while a sampled span is active carries its ``trace_id`` and
  ``span_id`` (ops.logs), and so does the request's access line (gunicorn writes it after the span
  has ended: the ids travel in the WSGI environ).
- Failure: an unreachable or malformed endpoint is logged once per process, as one warning that
  names it; the exporter's own per-batch messages are kept off the log.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.sdk.resources import (
    SERVICE_NAME,
    SERVICE_VERSION,
    OTELResourceDetector,
    Resource,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.semconv.attributes.http_attributes import HTTP_ROUTE
from opentelemetry.trace import Span
from opentelemetry.util.http import sanitize_method

from config.env import Settings
from ops import logs, metrics
from ops.middleware import route_of

logger = logging.getLogger("ops.tracing")

DEPLOYMENT_ENVIRONMENT_NAME = "deployment.environment.name"
# The instrumentation goes right after this one (config/settings.py MIDDLEWARE).
OPS_MIDDLEWARE = "ops.middleware.OpsEndpointsMiddleware"
# Where the exporter and the batch processor log each failed batch and each full queue.
EXPORTER_LOGGER = OTLPSpanExporter.__module__
PROCESSOR_LOGGER = "opentelemetry.sdk._shared_internal"


@dataclass
class Pipeline:
    provider: TracerProvider

    def shutdown(self, timeout_seconds: float) -> None:
        """Export the spans still queued and stop, giving up after ``timeout_seconds``.

        The SDK's shutdown waits up to 30 s for the export thread, whatever the caller has left:
        it runs in a thread of its own (a greenlet under gevent) that is waited for only as long
        as the drain leaves.
        """
        stopping = threading.Thread(
            target=self.provider.shutdown, name="traces-shutdown", daemon=True
        )
        stopping.start()
        stopping.join(timeout_seconds)

    def flush(self) -> None:
        """Export the spans queued so far, now (tests)."""
        self.provider.force_flush()


class DroppedSpans(logging.Filter):
    """One warning per process when spans are first lost, naming the endpoint and the reason.

    Also a filter on the exporter's and the batch processor's loggers: it keeps their per-batch
    messages (retries, failures, a full queue) off the log, the first of them as the reason.
    """

    def __init__(self, endpoint: str) -> None:
        super().__init__()
        self.endpoint = endpoint
        self.reported = False
        self.reason = ""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == PROCESSOR_LOGGER:
            if not str(record.msg).startswith("Queue full"):
                return True
            self.report("the queue of spans waiting for export is full (OTEL_BSP_MAX_QUEUE_SIZE)")
        elif not self.reason:
            # The exception when the record carries one ("Connection refused"), else its text.
            errors = [arg for arg in (record.args or ()) if isinstance(arg, BaseException)]
            self.reason = str(errors[0]) if errors else record.getMessage()
        return False

    def report(self, reason: str = "") -> None:
        if self.reported:
            return
        self.reported = True
        logger.warning(
            "traces: spans are being dropped: cannot export them to the OTLP endpoint %s (%s); "
            "the service serves on, and this is logged once per process",
            self.endpoint,
            reason or self.reason or "export failed",
        )


class ReportingExporter(SpanExporter):
    """The OTLP exporter, with its failures reported once (DroppedSpans) instead of per batch."""

    def __init__(self, exporter: SpanExporter, dropped: DroppedSpans) -> None:
        self.exporter = exporter
        self.dropped = dropped

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.exporter.export(spans)
        except Exception as exc:  # reported once below instead of per batch
            self.dropped.reason = self.dropped.reason or repr(exc)
            result = SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            self.dropped.report()
        self.dropped.reason = ""
        return result

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)


def resource(env: Settings, service_name: str) -> Resource:
    own: dict[str, str] = {
        SERVICE_VERSION: env.app_version,
        DEPLOYMENT_ENVIRONMENT_NAME: env.app_env,
    }
    # OTEL_SERVICE_NAME, else a service.name in OTEL_RESOURCE_ATTRIBUTES, else the slug.
    if SERVICE_NAME not in OTELResourceDetector().detect().attributes:
        own[SERVICE_NAME] = service_name
    return Resource.create(own)


def otlp_exporter(env: Settings) -> OTLPSpanExporter:
    """The SDK's OTLP/HTTP exporter, configured by OTEL_EXPORTER_OTLP_* itself, but for the
    timeout's unit (Settings.export_timeout_seconds)."""
    return OTLPSpanExporter(timeout=env.export_timeout_seconds())


def install(env: Settings, service_name: str, exporter: SpanExporter | None = None) -> Pipeline:
    """Tracing on in this process; ``exporter`` replaces the OTLP one (tests)."""
    dropped = DroppedSpans(env.traces_endpoint)
    for name in (EXPORTER_LOGGER, PROCESSOR_LOGGER):
        quiet = logging.getLogger(name)
        for old in [f for f in quiet.filters if isinstance(f, DroppedSpans)]:
            quiet.removeFilter(old)
        quiet.addFilter(dropped)
    provider = TracerProvider(resource=resource(env, service_name), shutdown_on_exit=False)
    provider.add_span_processor(
        BatchSpanProcessor(ReportingExporter(exporter or otlp_exporter(env), dropped))
    )
    trace.set_tracer_provider(provider)
    middleware = list(settings.MIDDLEWARE)
    DjangoInstrumentor().instrument(
        tracer_provider=provider,
        middleware_position=middleware.index(OPS_MIDDLEWARE) + 1
        if OPS_MIDDLEWARE in middleware
        else 0,
        request_hook=_request_started,
        response_hook=_request_answered,
    )
    logs.trace_ids = current_ids
    return Pipeline(provider)


def current_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) of the active span in lowercase hex, when it is sampled."""
    context = trace.get_current_span().get_span_context()
    if not context.trace_flags.sampled:  # also the invalid context outside any span
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def _request_started(span: Span, request: HttpRequest) -> None:
    context = span.get_span_context()
    if context.trace_flags.sampled:
        # For the access line (ops.server.JsonLogger.access): META is the WSGI environ.
        request.META[logs.TRACE_IDS] = (f"{context.trace_id:032x}", f"{context.span_id:016x}")


def _request_answered(span: Span, request: HttpRequest, response: HttpResponse) -> None:
    """Name the span after the route label of the request metrics (ops.middleware.route_of)."""
    route = route_of(request)
    if route == metrics.UNMATCHED or not span.is_recording():
        return  # no route: the method alone names the span, as the semantic conventions say
    method = sanitize_method(request.method or "")
    span.update_name(f"{'HTTP' if method == '_OTHER' else method} {route}")
    span.set_attribute(HTTP_ROUTE, route)
