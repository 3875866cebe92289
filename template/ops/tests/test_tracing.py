"""Traces (docs/service-contract.md, "Traces"): off unless an endpoint is set; one server span per
application request, named after its route; traceparent continued; ids in the logs; failures
logged once; spans flushed on SIGTERM."""

from __future__ import annotations

import io
import json
import logging
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import REGISTRY
from pytest_django import Settings as DjangoSettings

from config.env import Settings
from ops import logs, otel, tracing
from ops.logs import TRACE_IDS, JsonFormatter
from ops.otel import Pipeline
from ops.tests.otlp import otlp_receiver
from ops.tests.support import PRODUCTION, Server, free_port, python

pytestmark = pytest.mark.django_db

OPS_PATHS = ["/health", "/ready", "/health/detailed", "/metrics"]
ITEM_ROUTE = "/items/<int:item_id>"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
ROUTES = "ops.tests.routes"
ROUTES_SETTINGS = "ops.tests.routes_settings"


# -------------------------------------------------------------------------------------------------
# Off unless an endpoint is set
# -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("variables", "on", "endpoint"),
    [
        ({}, False, ""),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": " "}, False, ""),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, True, "http://c:4318/v1/traces"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}, True, "http://c:4318/v1/traces"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:4318/x"}, True, "http://t:4318/x"),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "TRUE"},
            False,
            "http://c:4318/v1/traces",
        ),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "false"},
            True,
            "http://c:4318/v1/traces",
        ),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"},
            False,
            "http://c:4318/v1/traces",
        ),
    ],
)
def test_tracing_is_on_only_with_an_endpoint(
    clean_env: pytest.MonkeyPatch, variables: dict[str, str], on: bool, endpoint: str
) -> None:
    for name, value in {"APP_ENV": "development", **variables}.items():
        clean_env.setenv(name, value)
    env = Settings()
    assert (env.tracing, env.traces_endpoint) == (on, endpoint)


@pytest.mark.parametrize(
    ("variables", "seconds"),
    [
        ({}, None),
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "2000"}, 2.0),
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "2000", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "250"}, 0.25),
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "soon"}, None),
    ],
)
def test_export_timeouts_are_milliseconds_as_the_standard_says(
    clean_env: pytest.MonkeyPatch, variables: dict[str, str], seconds: float | None
) -> None:
    for name, value in {"APP_ENV": "development", **variables}.items():
        clean_env.setenv(name, value)
    env = Settings()
    assert env.export_timeout_seconds() == seconds
    exporter = otel.otlp_exporter(env)
    assert exporter._client._timeout == (10.0 if seconds is None else seconds)


LOADED = (
    "import sys, config.wsgi; from django.conf import settings; "
    "print(sorted({m.split('.')[1] for m in sys.modules if m.startswith('opentelemetry.')})); "
    "print([m for m in settings.MIDDLEWARE if 'opentelemetry' in m or 'OpsEndpoints' in m])"
)


@pytest.mark.parametrize(
    "variables",
    [
        {},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"},
    ],
)
def test_off_the_application_loads_no_opentelemetry_at_all(
    tmp_path: Path, variables: dict[str, str]
) -> None:
    loaded = _application_loads(tmp_path, variables)
    assert loaded == ["[]", "['ops.middleware.OpsEndpointsMiddleware']"]


def test_on_the_instrumentation_comes_right_after_the_operational_endpoints(
    tmp_path: Path,
) -> None:
    loaded = _application_loads(tmp_path, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    assert "'sdk'" in loaded[0]
    assert loaded[1] == (
        "['ops.middleware.OpsEndpointsMiddleware', "
        "'opentelemetry.instrumentation.django.middleware.otel_middleware._DjangoMiddleware']"
    )


def _application_loads(tmp_path: Path, variables: dict[str, str]) -> list[str]:
    result = python(tmp_path, "-c", LOADED, **variables)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.splitlines()


def test_a_failed_set_up_leaves_tracing_off_with_a_warning(
    clean_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clean_env.setenv("APP_ENV", "development")
    clean_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")

    def broken(*args: Any) -> None:
        raise ValueError("OTEL_BSP_MAX_QUEUE_SIZE is not a number")

    clean_env.setattr("ops.otel.install", broken)
    with caplog.at_level(logging.WARNING, logger="ops.tracing"):
        assert tracing.start(Settings(), "my-service") is None
    assert not tracing.running()
    assert [r.getMessage() for r in caplog.records] == [
        "traces off: the OpenTelemetry set-up failed: OTEL_BSP_MAX_QUEUE_SIZE is not a number"
    ]


# -------------------------------------------------------------------------------------------------
# In-process: the real set-up (ops.tracing.start) with an in-memory exporter
# -------------------------------------------------------------------------------------------------
@dataclass
class Traced:
    pipeline: Pipeline
    exporter: InMemorySpanExporter

    def spans(self) -> list[ReadableSpan]:
        self.pipeline.flush()
        return list(self.exporter.get_finished_spans())

    def only_span(self) -> ReadableSpan:
        (span,) = self.spans()
        return span


def start_tracing(
    monkeypatch: pytest.MonkeyPatch,
    exporter: SpanExporter | None,
    **variables: str,
) -> Pipeline:
    """ops.tracing.start as config/wsgi.py calls it, in a staging environment."""
    for name in ("OTEL_SERVICE_NAME", "OTEL_SEMCONV_STABILITY_OPT_IN", "OTEL_TRACES_SAMPLER"):
        monkeypatch.delenv(name, raising=False)
    defaults = {
        **PRODUCTION,
        "APP_ENV": "staging",
        "DATABASE_URL": "sqlite:///unused.sqlite3",
        "APP_VERSION": "1.2.3",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
        "OTEL_RESOURCE_ATTRIBUTES": "k8s.pod.name=test-pod",
    }
    for name, value in {**defaults, **variables}.items():
        monkeypatch.setenv(name, value)
    pipeline = tracing.start(Settings(), django_settings.SERVICE_NAME, exporter)
    assert pipeline is not None
    return pipeline


def stop_tracing() -> None:
    tracing.shutdown(5)
    DjangoInstrumentor().uninstrument()
    logs.trace_ids = None


@pytest.fixture
def traced(clean_env: pytest.MonkeyPatch, settings: DjangoSettings) -> Iterator[Traced]:
    exporter = InMemorySpanExporter()
    yield Traced(start_tracing(clean_env, exporter), exporter)
    stop_tracing()


@pytest.mark.urls(ROUTES)
def test_one_server_span_named_after_the_route_the_metrics_use(traced: Traced) -> None:
    assert Client().get("/items/42").status_code == 200
    span = traced.only_span()
    assert span.name == f"GET {ITEM_ROUTE}"
    assert span.kind == SpanKind.SERVER
    assert span.attributes is not None
    assert span.attributes["http.request.method"] == "GET"
    assert span.attributes["http.route"] == ITEM_ROUTE
    assert span.attributes["http.response.status_code"] == 200
    assert span.status.status_code == StatusCode.UNSET
    labels = {"method": "GET", "route": ITEM_ROUTE, "status_code": "200"}
    assert REGISTRY.get_sample_value("http_requests_total", labels)
    resource = span.resource.attributes
    assert resource["service.name"] == django_settings.SERVICE_NAME
    assert resource["service.version"] == "1.2.3"
    assert resource["deployment.environment.name"] == "staging"
    assert resource["k8s.pod.name"] == "test-pod"


@pytest.mark.urls(ROUTES)
def test_otel_service_name_names_the_service(
    clean_env: pytest.MonkeyPatch, settings: DjangoSettings
) -> None:
    exporter = InMemorySpanExporter()
    pipeline = start_tracing(clean_env, exporter, OTEL_SERVICE_NAME="orders", APP_ENV="development")
    try:
        Client().get("/items/1")
        pipeline.flush()
        (span,) = exporter.get_finished_spans()
        assert span.resource.attributes["service.name"] == "orders"
        assert span.resource.attributes["deployment.environment.name"] == "development"
    finally:
        stop_tracing()


@pytest.mark.urls(ROUTES)
def test_a_server_error_marks_the_span_as_an_error(traced: Traced) -> None:
    assert Client(raise_request_exception=False).get("/boom").status_code == 500
    span = traced.only_span()
    assert span.name == "GET /boom"
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 500
    assert span.status.status_code == StatusCode.ERROR


@pytest.mark.urls(ROUTES)
def test_a_request_no_route_answered_is_named_by_its_method_alone(traced: Traced) -> None:
    assert Client().get("/items/not-a-number").status_code == 404
    span = traced.only_span()
    assert span.name == "GET"
    assert span.attributes is not None
    assert "http.route" not in span.attributes
    assert span.attributes["http.response.status_code"] == 404


@pytest.mark.urls(ROUTES)
@pytest.mark.parametrize("management_port", [None, 9091])
def test_the_operational_endpoints_create_no_spans(
    traced: Traced, settings: DjangoSettings, management_port: int | None
) -> None:
    settings.MANAGEMENT_PORT = management_port
    client = Client()
    for path in OPS_PATHS:
        # 200 (503 from /ready without a database) on the port that serves them, else 404
        assert client.get(path, HTTP_HOST="10.1.2.3:8000").status_code in {200, 404, 503}
    assert traced.spans() == []
    client.get("/items/7")
    assert [span.name for span in traced.spans()] == [f"GET {ITEM_ROUTE}"]


@pytest.mark.urls(ROUTES)
def test_an_incoming_traceparent_is_continued(traced: Traced) -> None:
    Client().get("/items/7", HTTP_TRACEPARENT=f"00-{TRACE_ID}-{PARENT_ID}-01")
    span = traced.only_span()
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert span.parent is not None
    assert f"{span.parent.span_id:016x}" == PARENT_ID
    assert span.parent.is_remote


@pytest.mark.urls(ROUTES)
def test_log_lines_carry_the_ids_of_the_request_span(traced: Traced) -> None:
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(handler)
    try:
        response = Client().get("/items/7", HTTP_TRACEPARENT=f"00-{TRACE_ID}-{PARENT_ID}-01")
        logging.getLogger("service.items").info("outside any request")
    finally:
        logging.getLogger().removeHandler(handler)
    span = traced.only_span()
    ids = (f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}")
    written = [json.loads(line) for line in lines.getvalue().splitlines()]
    inside = next(line for line in written if line["msg"] == "item looked up")
    assert (inside["trace_id"], inside["span_id"]) == ids
    assert inside["trace_id"] == TRACE_ID
    outside = next(line for line in written if line["msg"] == "outside any request")
    assert "trace_id" not in outside
    assert "span_id" not in outside
    # The access line (ops.server.JsonLogger.access) takes them from the WSGI environ.
    assert response.wsgi_request.META[TRACE_IDS] == ids


@pytest.mark.urls(ROUTES)
def test_an_unsampled_parent_means_no_span_and_no_ids(traced: Traced) -> None:
    response = Client().get("/items/7", HTTP_TRACEPARENT=f"00-{TRACE_ID}-{PARENT_ID}-00")
    assert response.status_code == 200
    assert traced.spans() == []
    assert TRACE_IDS not in response.wsgi_request.META


@pytest.mark.urls(ROUTES)
def test_an_unreachable_endpoint_is_logged_once_and_nothing_else(
    clean_env: pytest.MonkeyPatch, settings: DjangoSettings, caplog: pytest.LogCaptureFixture
) -> None:
    closed = free_port()
    endpoint = f"http://127.0.0.1:{closed}/v1/traces"
    clean_env.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "500")
    pipeline = start_tracing(
        clean_env, None, OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{closed}"
    )
    try:
        with caplog.at_level(logging.DEBUG):
            for _ in range(3):  # three batches, three failed exports
                started = time.monotonic()
                assert Client().get("/items/7").status_code == 200
                assert time.monotonic() - started < 0.5
                pipeline.flush()
    finally:
        stop_tracing()
    warnings = about_traces(caplog.records)
    assert [(r.name, r.levelname) for r in warnings] == [("ops.tracing", "WARNING")]
    message = warnings[0].getMessage()
    assert endpoint in message
    assert "spans are being dropped" in message
    assert not [r for r in caplog.records if r.name.startswith("opentelemetry.exporter")]


def about_traces(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    """The warnings of ops.tracing, the exporter and the span processor. (Not the API's "Overriding
    of current TracerProvider is not allowed": each test starts a pipeline, a process only one.)"""
    return [
        r
        for r in records
        if r.levelno >= logging.WARNING
        and r.name.startswith(("ops.tracing", "opentelemetry.exporter", "opentelemetry.sdk"))
    ]


class Blocking(InMemorySpanExporter):
    """An exporter that holds its first batch until released: the queue fills up meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.exporting = threading.Event()
        self.release = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.exporting.set()
        self.release.wait(10)
        return super().export(spans)


@pytest.mark.urls(ROUTES)
def test_a_full_queue_is_the_same_single_warning(
    clean_env: pytest.MonkeyPatch, settings: DjangoSettings, caplog: pytest.LogCaptureFixture
) -> None:
    exporter = Blocking()
    start_tracing(
        clean_env,
        exporter,
        OTEL_BSP_MAX_QUEUE_SIZE="1",
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE="1",
        OTEL_BSP_SCHEDULE_DELAY="60000",
    )
    try:
        with caplog.at_level(logging.DEBUG):
            Client().get("/items/1")
            assert exporter.exporting.wait(5)
            for _ in range(4):
                assert Client().get("/items/2").status_code == 200
            exporter.release.set()
    finally:
        stop_tracing()
    warnings = about_traces(caplog.records)
    assert [r.name for r in warnings] == ["ops.tracing"]
    assert "queue of spans waiting for export is full" in warnings[0].getMessage()


# -------------------------------------------------------------------------------------------------
# gunicorn, as the container runs it: gevent workers export to an OTLP/HTTP receiver
# -------------------------------------------------------------------------------------------------
def access_line(server: Server, path: str) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for line in server.log_lines():
            if line.startswith("{") and (fields := json.loads(line)).get("path") == path:
                return dict(fields)
        time.sleep(0.05)
    raise AssertionError(f"no access line for {path}:\n" + "\n".join(server.log_lines()))


def get(server: Server, path: str, port: int | None = None, **headers: str) -> int:
    request = urllib.request.Request(server.url(path, port), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_gunicorn_workers_export_the_request_span(start_gunicorn: Callable[..., Server]) -> None:
    with otlp_receiver() as receiver:
        management = free_port()
        server = start_gunicorn(
            DJANGO_SETTINGS_MODULE=ROUTES_SETTINGS,
            MANAGEMENT_PORT=str(management),
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_BSP_SCHEDULE_DELAY="100",
            OTEL_RESOURCE_ATTRIBUTES="k8s.pod.name=test-pod",
            APP_VERSION="1.2.3",
        )
        for path in OPS_PATHS:  # on both ports: no spans
            get(server, path)
            get(server, path, port=management)
        traceparent = f"00-{TRACE_ID}-{PARENT_ID}-01"
        assert get(server, "/items/42", traceparent=traceparent) == 200

        span = receiver.wait_for(lambda span: span.trace_id == TRACE_ID)
        assert (span.name, span.kind, span.parent_span_id) == (
            f"GET {ITEM_ROUTE}",
            "SERVER",
            PARENT_ID,
        )
        assert span.attributes["http.route"] == ITEM_ROUTE
        assert span.attributes["http.request.method"] == "GET"
        assert span.attributes["http.response.status_code"] == 200
        assert span.resource["service.name"] == django_settings.SERVICE_NAME
        assert span.resource["service.version"] == "1.2.3"
        assert span.resource["deployment.environment.name"] == "development"
        assert span.resource["k8s.pod.name"] == "test-pod"

        line = access_line(server, "/items/42")
        assert (line["trace_id"], line["span_id"]) == (TRACE_ID, span.span_id)
        time.sleep(0.5)  # a batch later: still nothing but the application request
        assert [s.name for s in receiver.spans] == [f"GET {ITEM_ROUTE}"]


def test_gunicorn_without_an_endpoint_traces_nothing(start_gunicorn: Callable[..., Server]) -> None:
    server = start_gunicorn()
    assert get(server, "/", traceparent=f"00-{TRACE_ID}-{PARENT_ID}-01") == 200
    line = access_line(server, "/")
    assert "trace_id" not in line
    assert "span_id" not in line


def test_gunicorn_with_an_unreachable_endpoint_serves_and_warns_once(
    start_gunicorn: Callable[..., Server],
) -> None:
    closed = free_port()
    server = start_gunicorn(
        DJANGO_SETTINGS_MODULE=ROUTES_SETTINGS,
        WEB_CONCURRENCY="1",
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{closed}",
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_EXPORTER_OTLP_TIMEOUT="500",
    )
    slowest = 0.0
    for _ in range(12):  # over 2 s: several batches, several failed exports
        started = time.monotonic()
        assert get(server, "/items/7") == 200
        slowest = max(slowest, time.monotonic() - started)
        time.sleep(0.2)
    assert slowest < 0.5
    lines = [json.loads(line) for line in server.log_lines() if line.startswith("{")]
    warnings = [line for line in lines if line["level"] in {"warning", "error"}]
    assert len(warnings) == 1, warnings
    assert warnings[0]["logger"] == "ops.tracing"
    assert f"http://127.0.0.1:{closed}/v1/traces" in warnings[0]["msg"]
    assert "spans are being dropped" in warnings[0]["msg"]
    assert not [line for line in lines if line["logger"].startswith("opentelemetry")]


def test_gunicorn_flushes_the_spans_it_holds_on_sigterm(
    start_gunicorn: Callable[..., Server],
) -> None:
    with otlp_receiver() as receiver:
        server = start_gunicorn(
            DJANGO_SETTINGS_MODULE=ROUTES_SETTINGS,
            WEB_CONCURRENCY="1",
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_BSP_SCHEDULE_DELAY="60000",  # no export before the shutdown
            SHUTDOWN_DELAY_SECONDS="0.2",
            SHUTDOWN_TIMEOUT_SECONDS="5",
        )
        assert get(server, "/items/7", traceparent=f"00-{TRACE_ID}-{PARENT_ID}-01") == 200
        time.sleep(0.5)
        assert receiver.spans == []
        stopped = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=15) == 0
        assert time.monotonic() - stopped < 5
        assert [span.trace_id for span in receiver.spans] == [TRACE_ID]
