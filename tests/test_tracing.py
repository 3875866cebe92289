"""OpenTelemetry traces (docs/service-contract.md, "Traces") against a real OpenTelemetry Collector.

One suite for Node, Go and Django. Each language's built default render is copied (as the contract
suite does, tests/contract_service.py) with a parametric route added to its team-owned routes file,
the way a team adds one, and run with its production command. The services export over OTLP/HTTP to
the OpenTelemetry Collector built from its Go modules (scripts/otelcol.sh, tests/otel.py), whose
file exporter writes what it received; the spans are read back from there, never from the SDK.
"""

from __future__ import annotations

import json
import re
import secrets
import signal
import statistics
import time
from collections.abc import Iterator

import pytest
from contract_service import OPS_PATHS, Service, copies, request
from harness import free_port, wait_for
from helpers import LANGUAGES
from otel import Collector, Span, collector_binary

# The route each language's copy gains, as its metrics label it: the span's name and http.route.
ROUTE = {"node": "/items/:id", "go": "/items/{id}", "django": "/items/<int:id>"}
# The team-owned routes files with that route added: GET /items/<id> logs one line inside the
# request and answers {"id": ...}, with 503 for the id 503 (a server error's span).
ROUTE_FILES = {
    "node": {"src/app/routes.ts": """\
import type { FastifyPluginAsync } from 'fastify';

import type { Config } from '../config.js';
import { SERVICE_NAME } from '../service.js';

export interface RoutesOptions {
  config: Config;
}

const routes: FastifyPluginAsync<RoutesOptions> = async (app, { config }) => {
  app.get('/', async () => ({ name: SERVICE_NAME, version: config.appVersion }));
  app.get<{ Params: { id: string } }>('/items/:id', async (request, reply) => {
    const { id } = request.params;
    request.log.info({ item: id }, 'item looked up');
    return reply.code(id === '503' ? 503 : 200).send({ id });
  });
};

export default routes;
"""},
    "go": {"internal/app/routes.go": """\
package app

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/{owner}/{slug}/internal/config"
)

type App struct {
	cfg    config.Config
	logger *slog.Logger
}

func New(cfg config.Config, logger *slog.Logger) (*App, error) {
	return &App{cfg: cfg, logger: logger}, nil
}

func (a *App) Close() error { return nil }

func (a *App) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", a.index)
	mux.HandleFunc("GET /items/{id}", a.item)
}

type indexBody struct {
	Service string `json:"service"`
	Version string `json:"version"`
}

func (a *App) index(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, indexBody{Service: config.ServiceName, Version: a.cfg.Version})
}

func (a *App) item(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	a.logger.InfoContext(r.Context(), "item looked up", slog.String("item", id))
	status := http.StatusOK
	if id == "503" {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]string{"id": id})
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(body); err != nil {
		slog.Warn("writing the answer", slog.Any("error", err))
	}
}
"""},
    "django": {"service/urls.py": """\
from django.urls import path

from service import views

urlpatterns = [
    path("", views.index, name="index"),
    path("items/<int:id>", views.item, name="item"),
]
""", "service/views.py": """\
import logging

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_safe

logger = logging.getLogger(__name__)


@require_safe
def index(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"name": settings.SERVICE_NAME, "version": settings.APP_VERSION})


@require_safe
def item(request: HttpRequest, id: int) -> JsonResponse:
    logger.info("item looked up", extra={"item": id})
    return JsonResponse({"id": id}, status=503 if id == 503 else 200)
"""},
}
TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
SPAN_ID = re.compile(r"^[0-9a-f]{16}$")
# Export fast: the batch processor's schedule delay, in milliseconds (the SDKs' default is 5 s).
FAST_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "100"}


# ------------------------------------------------------------------------------------------------
# The collector, the copies and the services
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def otelcol():
    """The collector binary (scripts/otelcol.sh: built when missing, then cached)."""
    return collector_binary()


@pytest.fixture(scope="session")
def collector(otelcol, tmp_path_factory) -> Iterator[Collector]:
    """One collector for the session's services; each test finds its spans by trace id or by
    service name."""
    with Collector(tmp_path_factory.mktemp("collector"), otelcol) as running:
        yield running


@pytest.fixture(scope="session")
def tracing_copy(built_service, request, tmp_path_factory):
    """tracing_copy(language) -> Copy: the built default render with the /items/<id> route."""
    return copies(built_service, request, tmp_path_factory, "tracing", ROUTE_FILES)


def traced_service(copy, collector: Collector, name: str, management: bool = False, **env: str | None) -> Service:
    """A service exporting to the collector, under a service name of its own unless given (a
    variable given as None is unset)."""
    env.setdefault("OTEL_SERVICE_NAME", f"{copy.language}-{name}-{secrets.token_hex(4)}")
    return Service(copy, name, management=management,
                   **{"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint, **FAST_EXPORT, **env})


@pytest.fixture(scope="module", params=LANGUAGES)
def traced(request, tracing_copy, collector) -> Iterator[Service]:
    """Each language exporting to the collector with the resource the Kubernetes manifests give it,
    under its default service name (the slug)."""
    copy = tracing_copy(request.param)
    copy.flag()
    service = Service(copy, "traced", OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint, APP_ENV="staging",
                      APP_VERSION="1.2.3-traced", OTEL_RESOURCE_ATTRIBUTES="k8s.pod.name=test-pod",
                      **FAST_EXPORT).start()
    yield service
    service.stop()


def traceparent() -> tuple[str, str, str]:
    """(header, trace id, parent span id) of a sampled W3C trace context."""
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{parent}-01", trace_id, parent


def request_line(service: Service, request_id: str) -> dict:
    """The request's own log line (the one with its status)."""
    def logged() -> dict | None:
        return next((line for line in service.log_lines()
                     if line.get("request_id") == request_id and "status" in line), None)

    return wait_for(logged, 10, f"the log line of request {request_id}", interval=0.05)


def server_spans(collector: Collector, trace_id: str, count: int = 1) -> list[Span]:
    return collector.wait_for_spans(lambda s: s.trace_id == trace_id and s.kind == "SERVER", count=count,
                                    what=f"the SERVER span of trace {trace_id}")


# ------------------------------------------------------------------------------------------------
# The server span, the resource and the logs
# ------------------------------------------------------------------------------------------------
def test_server_span_continues_the_callers_trace_under_the_route_pattern(traced, collector):
    language = traced.copy.language
    header, trace_id, parent = traceparent()
    response = traced.get("/items/42", headers={"traceparent": header, "X-Request-ID": "trace-continued-1"})
    assert response.status == 200, response

    (span,) = server_spans(collector, trace_id)
    time.sleep(0.5)  # a second server span for the same request would have arrived by now
    servers = [s for s in collector.spans() if s.trace_id == trace_id and s.kind == "SERVER"]
    assert len(servers) == 1, f"one SERVER span per request, got {[(s.name, s.scope) for s in servers]}"
    assert span.parent_span_id == parent, f"the caller's span is not the parent: {span}"
    assert SPAN_ID.match(span.span_id) and span.span_id != parent, span
    assert span.name == f"GET {ROUTE[language]}", f"span name {span.name!r}: not the route pattern"
    assert span.attributes.get("http.route") == ROUTE[language], span.attributes
    assert span.attributes.get("http.request.method") == "GET", span.attributes
    assert span.attributes.get("http.response.status_code") == 200, span.attributes
    assert span.status != "ERROR", span

    resource = span.resource
    assert resource.get("service.name") == traced.copy.slug, resource
    assert resource.get("service.version") == "1.2.3-traced", resource
    assert resource.get("deployment.environment.name") == "staging", resource
    assert resource.get("k8s.pod.name") == "test-pod", resource

    line = request_line(traced, "trace-continued-1")
    assert (line.get("trace_id"), line.get("span_id")) == (trace_id, span.span_id), (
        f"the request's log line does not carry the server span's ids: {line}")
    # the line the handler wrote inside the request carries the same trace
    inside = [entry for entry in traced.log_lines()
              if entry.get("trace_id") == trace_id and "item looked up" in json.dumps(entry)]
    assert inside, f"the handler's log line carries no trace_id: {traced.log_lines()[-5:]}"
    trace_spans = {s.span_id for s in collector.spans() if s.trace_id == trace_id}
    assert all(entry.get("span_id") in trace_spans for entry in inside), (inside, trace_spans)


def test_a_request_without_traceparent_starts_a_sampled_trace(traced, collector):
    response = traced.get("/items/7", headers={"X-Request-ID": "trace-root-1"})
    assert response.status == 200, response
    line = request_line(traced, "trace-root-1")
    assert TRACE_ID.match(str(line.get("trace_id"))) and SPAN_ID.match(str(line.get("span_id"))), line
    (span,) = server_spans(collector, line["trace_id"])
    assert span.span_id == line["span_id"] and span.parent_span_id == "", span
    assert span.name == f"GET {ROUTE[traced.copy.language]}", span


def test_a_server_error_marks_the_span_error(traced, collector):
    header, trace_id, _ = traceparent()
    response = traced.get("/items/503", headers={"traceparent": header})
    assert response.status == 503, response
    (span,) = server_spans(collector, trace_id)
    assert span.attributes.get("http.response.status_code") == 503, span.attributes
    assert span.status == "ERROR", span


def test_a_server_error_is_logged_at_error(traced):
    """The request line of a 5xx answer is at `error` in every language, other answers at `info`
    (docs/service-contract.md, "Request ids and logs"): LOG_LEVEL=warning still shows server errors."""
    assert traced.get("/items/503", headers={"X-Request-ID": "level-5xx-1"}).status == 503
    assert traced.get("/items/8", headers={"X-Request-ID": "level-2xx-1"}).status == 200
    assert traced.get("/no/such/item", headers={"X-Request-ID": "level-4xx-1"}).status == 404
    levels = {request_id: request_line(traced, request_id).get("level")
              for request_id in ("level-5xx-1", "level-2xx-1", "level-4xx-1")}
    assert levels == {"level-5xx-1": "error", "level-2xx-1": "info", "level-4xx-1": "info"}, levels


# ------------------------------------------------------------------------------------------------
# The operational endpoints
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("management", [False, True], ids=["one-port", "management-port"])
@pytest.mark.parametrize("language", LANGUAGES)
def test_operational_endpoints_create_no_spans(tracing_copy, collector, language, management):
    copy = tracing_copy(language)
    copy.flag()
    # APP_ENV unset: the resource says production
    service = traced_service(copy, collector, "ops", management=management, APP_ENV=None).start()
    name = service.env["OTEL_SERVICE_NAME"]
    try:
        probed = {}
        for _ in range(3):
            for path in OPS_PATHS:
                header, trace_id, _ = traceparent()
                probed[trace_id] = path
                assert service.get(path, headers={"traceparent": header}).status == 200, path
        if management:  # the public port answers them 404: no span there either
            for path in OPS_PATHS:
                header, trace_id, _ = traceparent()
                probed[trace_id] = f"public {path}"
                assert request(service.port, path, headers={"traceparent": header}).status == 404, path
        # one application request after them: once its span is in, theirs would be too
        header, marker, _ = traceparent()
        assert service.get("/items/1", headers={"traceparent": header}).status == 200
        (span,) = server_spans(collector, marker)
        assert span.resource.get("service.name") == name, span.resource
        assert span.resource.get("deployment.environment.name") == "production", span.resource
        time.sleep(1)
        own = [s for s in collector.spans() if s.resource.get("service.name") == name]
        stray = [(s.name, probed.get(s.trace_id, "?")) for s in own if s.trace_id != marker]
        assert not stray, f"spans for operational endpoints: {stray}"
    finally:
        service.stop()


# ------------------------------------------------------------------------------------------------
# Off unless an endpoint is set
# ------------------------------------------------------------------------------------------------
OFF = {
    "no-endpoint": {},
    "sdk-disabled": {"OTEL_SDK_DISABLED": "true"},
    "exporter-none": {"OTEL_TRACES_EXPORTER": "none"},
}


@pytest.mark.parametrize("switch", OFF)
@pytest.mark.parametrize("language", LANGUAGES)
def test_tracing_off_sends_nothing_and_logs_no_trace_ids(tracing_copy, collector, otelcol, tmp_path,
                                                          language, switch):
    copy = tracing_copy(language)
    copy.flag()
    name = f"{language}-off-{secrets.token_hex(4)}"
    listening = collector
    if switch == "no-endpoint":
        # without an endpoint an SDK would export to its default, http://localhost:4318: listen
        # there when the port is free, so that a service exporting anyway is caught
        default = Collector(tmp_path / "default-collector", otelcol, port=4318)
        try:
            listening = default.start(timeout=15)
        except AssertionError:
            listening = None
        service = Service(copy, "off", OTEL_SERVICE_NAME=name, **FAST_EXPORT, **OFF[switch])
    else:
        service = traced_service(copy, collector, "off", OTEL_SERVICE_NAME=name, **OFF[switch])
    try:
        service.start()
        traces = []
        for i in range(5):
            header, trace_id, _ = traceparent()
            traces.append(trace_id)
            assert service.get("/items/3", headers={"traceparent": header, "X-Request-ID": f"off-{i}"}).status == 200
        request_line(service, "off-4")
        time.sleep(1.5)  # fifteen schedule delays
        lines = service.log_lines()
        traced_lines = [line for line in lines if "trace_id" in line or "span_id" in line]
        assert not traced_lines, f"tracing is off, yet log lines carry trace ids: {traced_lines[:3]}"
        if listening is not None:
            received = [s for s in listening.spans() if s.resource.get("service.name") == name or s.trace_id in traces]
            assert not received, f"tracing is off, yet the collector received {[(s.name, s.trace_id) for s in received]}"
    finally:
        service.stop()
        if switch == "no-endpoint" and listening is not None:
            listening.stop()


# ------------------------------------------------------------------------------------------------
# A failing endpoint: the service serves, quickly, and says so once
# ------------------------------------------------------------------------------------------------
def failing_endpoints() -> dict[str, str]:
    return {"closed-port": f"http://127.0.0.1:{free_port()}", "malformed": "http://127.0.0.1:99999"}


@pytest.mark.parametrize("failure", ["closed-port", "malformed"])
@pytest.mark.parametrize("language", LANGUAGES)
def test_a_failing_endpoint_never_slows_a_request_and_is_logged_once(tracing_copy, language, failure):
    copy = tracing_copy(language)
    copy.flag()
    endpoint = failing_endpoints()[failure]
    # one process serves (Django: one gunicorn worker): the warning is once per process
    service = Service(copy, f"failing-{failure}", OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_EXPORTER_OTLP_TIMEOUT="2000",
                      WEB_CONCURRENCY="1", **FAST_EXPORT)
    hostport = endpoint.split("//", 1)[1]

    def mentions(text: str) -> bool:
        return hostport in text

    try:
        service.start()
        latencies = []

        def burst(seconds: float) -> None:
            until = time.monotonic() + seconds
            while time.monotonic() < until:
                header, _, _ = traceparent()
                began = time.monotonic()
                assert service.get("/items/5", headers={"traceparent": header}).status == 200
                latencies.append(time.monotonic() - began)
                time.sleep(0.05)

        burst(3)  # about thirty export attempts at one every 100 ms

        def warned() -> list[dict]:
            return [line for line in service.log_lines() if mentions(json.dumps(line))]

        wait_for(warned, 30, f"a log line naming {hostport}", interval=0.2)
        burst(3)  # more batches fail after the warning
        time.sleep(2.5)  # the last export's timeout
        lines = warned()
        assert len(lines) == 1, f"expected one line naming the endpoint, got {len(lines)}: {lines}"
        (line,) = lines
        assert line.get("level") == "warning", line
        assert "drop" in json.dumps(line).lower(), f"the line does not say spans are dropped: {line}"
        # and nothing else about it: the SDK's own per-batch errors are silenced
        other = [text for text in service.output().splitlines()
                 if not text.startswith("{") and re.search(r"export|otlp|span", text, re.IGNORECASE)]
        assert not other, f"the SDK's own output about the failure: {other[:5]}"
        # (the maximum has room for a loaded machine: the suite runs beside builds on two cores)
        assert max(latencies) < 2.0 and statistics.median(latencies) < 0.25, (
            f"requests slowed by the failing exporter: median {statistics.median(latencies):.3f} s, "
            f"max {max(latencies):.3f} s")
        assert service.get("/health").status == 200
    finally:
        service.stop()


# ------------------------------------------------------------------------------------------------
# Shutdown flushes
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("language", LANGUAGES)
def test_sigterm_flushes_the_spans_still_held(tracing_copy, collector, language):
    copy = tracing_copy(language)
    copy.flag()
    # a minute between scheduled exports: only the flush at shutdown sends the span in time; the
    # endpoint given as the traces-only variable, which turns tracing on as well
    service = traced_service(copy, collector, "flush", OTEL_BSP_SCHEDULE_DELAY="60000", OTEL_EXPORTER_OTLP_ENDPOINT=None,
                             OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{collector.endpoint}/v1/traces")
    service.start()
    try:
        header, trace_id, _ = traceparent()
        assert service.get("/items/8", headers={"traceparent": header}).status == 200
        time.sleep(0.5)
        assert not [s for s in collector.spans() if s.trace_id == trace_id], "exported before the schedule delay"
        service.proc.send_signal(signal.SIGTERM)
        code = service.proc.wait(timeout=30)
        assert code == 0, service.output()
        (span,) = server_spans(collector, trace_id)
        assert span.name == f"GET {ROUTE[language]}", span
    finally:
        service.stop()
