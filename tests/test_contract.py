"""The service contract (docs/service-contract.md), one suite for Node, Go and Django.

Every case runs against each language's default render, built natively and started with its
production command (the image's command), exactly as a pod runs it. The team-owned checks file of a
private copy registers two checks, `needed` (required) and `optional`, that fail while a flag file
of that name exists: the same code a team would write for a real dependency, switched from here.

Bodies are validated against the one JSON Schema (docs/service-contract.schema.json); status codes,
words, headers, metric names and labels, limits and the slow-client guarantee are asserted with the
same expected values for all three languages.
"""

from __future__ import annotations

import http.client
import importlib
import json
import random
import re
import signal
import socket
import string
import threading
import time
from collections.abc import Iterator

import jsonschema
import pytest
from contract_service import OPS_PATHS, Response, Service, copies, request
from harness import free_port, wait_for
from helpers import LANGUAGES, ROOT, run
from prometheus_client.parser import text_string_to_metric_families

from extensions.facts import FACTS

SCHEMA = json.loads((ROOT / "docs" / "service-contract.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}
# Security headers no language may send unless all do (helmet's extras, among others).
FOREIGN_SECURITY_HEADERS = {"origin-agent-cluster", "x-dns-prefetch-control", "x-download-options",
                            "x-permitted-cross-domain-policies", "x-xss-protection"}
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER"}
ROUTES = {"/", *OPS_PATHS, "unmatched"}
BUCKETS = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "+Inf"]
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


# ------------------------------------------------------------------------------------------------
# The services under test (tests/contract_service.py): private copies of each language's built
# render with the checks file, run with their production command
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def contract_copy(built_service, request, tmp_path_factory):
    """contract_copy(language) -> Copy: the built default render with the checks file (CHECKS)."""
    return copies(built_service, request, tmp_path_factory, "contract")


@pytest.fixture(scope="module", params=LANGUAGES)
def served(request, contract_copy) -> Iterator[Service]:
    """Each language served on one port, as in local development (no MANAGEMENT_PORT)."""
    copy = contract_copy(request.param)
    copy.flag()
    service = Service(copy, "plain").start()
    yield service
    service.stop()


@pytest.fixture(scope="module", params=LANGUAGES)
def managed(request, contract_copy) -> Iterator[Service]:
    """Each language with MANAGEMENT_PORT set, as the Kubernetes manifests run it."""
    copy = contract_copy(request.param)
    service = Service(copy, "managed", management=True).start()
    yield service
    service.stop()


def valid(definition: str, body: dict) -> dict:
    errors = [f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
              for e in VALIDATOR.evolve(schema={"$ref": f"#/$defs/{definition}", **SCHEMA}).iter_errors(body)]
    assert not errors, f"{definition} body {body} breaks the contract schema:\n" + "\n".join(errors)
    return body


def assert_security_headers(response: Response, where: str) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.header(name) == value, f"{where}: {name} is {response.header(name)!r}, not {value!r}"
    sent = {name.lower() for name in response.headers}
    assert not sent & FOREIGN_SECURITY_HEADERS, f"{where}: headers outside the contract: {sent & FOREIGN_SECURITY_HEADERS}"
    assert REQUEST_ID.match(response.header("x-request-id") or ""), f"{where}: no X-Request-ID"


def assert_error(response: Response, status: int, word: str, where: str) -> None:
    assert response.status == status, f"{where}: {response}"
    body = valid("error", response.json())
    assert body["error"] == word, f"{where}: {body}"
    assert body["request_id"] == response.header("x-request-id"), f"{where}: {body} {response.headers}"
    assert (response.header("content-type") or "").startswith("application/json"), where


def metric_samples(service: Service) -> list:
    response = service.get("/metrics")
    assert response.status == 200, response
    return [sample for family in text_string_to_metric_families(response.body.decode())
            for sample in family.samples]


# ------------------------------------------------------------------------------------------------
# Endpoints, bodies, phases and check outcomes
# ------------------------------------------------------------------------------------------------
def test_health_answers_ok_with_the_contract_headers(served):
    for method in ("GET", "HEAD"):
        response = served.get("/health", method=method)
        assert response.status == 200, response
        if method == "GET":
            assert valid("health", response.json()) == {"status": "ok"}
        else:
            assert response.body == b""
        assert response.header("content-type").startswith("application/json")
        assert "no-store" in (response.header("cache-control") or "")
        assert_security_headers(response, f"{method} /health")


@pytest.mark.parametrize(("failing", "ready", "detailed"), [
    ((), (200, "ready"), (200, "ok")),
    (("optional",), (200, "ready"), (200, "degraded")),
    (("needed",), (503, "unavailable"), (503, "unavailable")),
    (("needed", "optional"), (503, "unavailable"), (503, "unavailable")),
], ids=["all-ok", "optional-fails", "required-fails", "both-fail"])
def test_ready_and_detailed_follow_the_check_outcomes(served, failing, ready, detailed):
    served.copy.flag(*failing)
    try:
        response = served.get("/ready")
        body = valid("ready", response.json())
        assert (response.status, body["status"]) == ready, response
        checks = {check["name"]: check for check in body["checks"]}
        assert {"needed", "optional"} <= checks.keys(), body
        assert checks["needed"]["required"] is True and checks["optional"]["required"] is False, body
        for name in ("needed", "optional"):
            assert checks[name]["status"] == ("fail" if name in failing else "ok"), body
        assert_security_headers(response, "/ready")

        response = served.get("/health/detailed")
        body = valid("detailed", response.json())
        assert (response.status, body["status"]) == detailed, response
        assert body["phase"] == "ready" and body["version"] == "1.2.3-contract", body
        assert body["environment"] == "production", body
        errors = {check["name"]: check.get("error") for check in body["checks"]}
        for name in ("needed", "optional"):
            assert (errors[name] == f"{name} is down" or f"{name} is down" in (errors[name] or "")) \
                if name in failing else errors[name] is None, body
        assert "no-store" in (response.header("cache-control") or "")
    finally:
        served.copy.flag()


def test_operational_endpoints_refuse_other_methods_with_405(served):
    for path in OPS_PATHS:
        response = served.get(path, method="POST", body=b"")
        assert_error(response, 405, "method_not_allowed", f"POST {path}")
        allowed = {m.strip() for m in (response.header("allow") or "").split(",")}
        assert allowed == {"GET", "HEAD"}, f"POST {path}: Allow: {response.header('allow')}"
        assert_security_headers(response, f"POST {path}")


def test_unknown_paths_answer_the_contract_404(served):
    response = served.get("/no/such/path")
    assert_error(response, 404, "not_found", "GET /no/such/path")
    assert_security_headers(response, "404")


def test_application_route_carries_the_contract_headers(served):
    response = served.get("/")
    assert response.status == 200, response
    assert_security_headers(response, "GET /")


def test_request_id_is_kept_when_plain_and_replaced_otherwise(served):
    kept = served.get("/", headers={"X-Request-ID": "contract:req-1.a_b"})
    assert kept.header("x-request-id") == "contract:req-1.a_b"
    replaced = served.get("/", headers={"X-Request-ID": "not plain/" + "x" * 200})
    assert REQUEST_ID.match(replaced.header("x-request-id") or ""), replaced.headers
    assert replaced.header("x-request-id") != "not plain/" + "x" * 200


def test_request_log_line_carries_the_request_id(served):
    served.get("/", headers={"X-Request-ID": "contract-log-line-1"})

    def logged() -> dict | None:
        return next((line for line in served.log_lines() if line.get("request_id") == "contract-log-line-1"
                     and line.get("status") == 200), None)

    line = wait_for(logged, 5, "the request's log line")
    assert line.get("method") == "GET", line
    assert isinstance(line.get("duration_ms"), (int, float)), line


# The one shape of a log line (docs/service-contract.md, "Request ids and logs").
LOG_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
LOG_LEVELS = {"debug", "info", "warning", "error"}
REQUEST_LINE = {"request_id": str, "method": str, "path": str, "route": str, "status": int, "duration_ms": (int, float),
                "trace_id": str, "span_id": str}


@pytest.mark.parametrize("language", LANGUAGES)
def test_log_lines_have_the_one_shape_in_every_language(contract_copy, language):
    """Every line: `time` (RFC 3339 UTC, milliseconds), `level` a LOG_LEVEL word, `msg`; the request
    line's keys and value types, with tracing on. The one `warning` every language writes through the
    contract is the dropped-spans line of an unreachable OTLP endpoint (see Traces)."""
    copy = contract_copy(language)
    copy.flag()
    endpoint = f"http://127.0.0.1:{free_port()}"
    service = Service(copy, "log-shape", OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_EXPORTER_OTLP_TIMEOUT="1000",
                      OTEL_BSP_SCHEDULE_DELAY="100", WEB_CONCURRENCY="1").start()
    try:
        assert service.get("/?token=secret-query", headers={"X-Request-ID": "log-shape-1"}).status == 200
        assert service.get("/no/such/path", headers={"X-Request-ID": "log-shape-2"}).status == 404

        def request_lines() -> dict | None:
            found = {line["request_id"]: line for line in service.log_lines()
                     if line.get("msg") == "request" and str(line.get("request_id")).startswith("log-shape-")}
            return found if len(found) == 2 else None

        lines = wait_for(request_lines, 10, "the two requests' log lines")
        for request_id, path, route, status in [("log-shape-1", "/", "/", 200),
                                                ("log-shape-2", "/no/such/path", "unmatched", 404)]:
            line = lines[request_id]
            wrong = {key: line.get(key) for key, kind in REQUEST_LINE.items()
                     if not isinstance(line.get(key), kind) or isinstance(line.get(key), bool)}
            assert not wrong, f"{language}: request line keys missing or of the wrong type {wrong}: {line}"
            assert (line["level"], line["method"], line["path"], line["route"], line["status"]) == (
                "info", "GET", path, route, status), line
            assert line["duration_ms"] >= 0, line
            assert re.fullmatch(r"[0-9a-f]{32}", line["trace_id"]) and re.fullmatch(r"[0-9a-f]{16}", line["span_id"]), line
            assert "message" not in line, line

        def warned() -> list[dict]:
            return [line for line in service.log_lines()
                    if endpoint.split("//")[1] in json.dumps(line) and "drop" in json.dumps(line).lower()]

        for _ in range(3):  # a batch or two to fail
            service.get("/")
        (warning, *_) = wait_for(warned, 30, f"the warning line naming {endpoint}", interval=0.2)
        assert warning["level"] == "warning", warning

        every = service.log_lines()
        assert every and len(every) == len([text for text in service.output().splitlines() if text.startswith("{")])
        for line in every:
            assert LOG_TIME.match(str(line.get("time"))), f"{language}: time not RFC 3339 UTC to the ms: {line}"
            assert line.get("level") in LOG_LEVELS, f"{language}: level not a LOG_LEVEL word: {line}"
            assert isinstance(line.get("msg"), str) and line["msg"], f"{language}: no msg: {line}"
        assert "secret-query" not in service.output()
    finally:
        service.stop()


# ------------------------------------------------------------------------------------------------
# Metrics
# ------------------------------------------------------------------------------------------------
def test_metrics_have_the_contract_names_labels_and_buckets(served):
    served.get("/")
    served.get("/no/such/path")
    served.get("/health")
    samples = metric_samples(served)
    requests = [s for s in samples if s.name == "http_requests_total"]
    buckets = [s for s in samples if s.name == "http_request_duration_seconds_bucket"]
    assert requests and buckets, "no http_requests_total or http_request_duration_seconds series"
    for sample in requests:
        assert set(sample.labels) == {"method", "route", "status_code"}, sample
    series = {(s.labels["method"], s.labels["route"], s.labels["status_code"]) for s in requests}
    assert {("GET", "/", "200"), ("GET", "unmatched", "404"), ("GET", "/health", "200")} <= series, series
    # le is a number: clients write 1 or 1.0, Prometheus reads both alike
    root = sorted({float(s.labels["le"]) for s in buckets
                   if (s.labels["method"], s.labels["route"], s.labels["status_code"]) == ("GET", "/", "200")})
    assert root == [float(le) for le in BUCKETS], root


def test_a_burst_of_random_methods_and_paths_keeps_the_series_bounded(served):
    rng = random.Random(14)
    for _ in range(200):
        method = rng.choice(["GET", "POST", "DELETE", "".join(rng.choices(string.ascii_uppercase, k=rng.randint(3, 12)))])
        path = "/" + "/".join("".join(rng.choices(string.ascii_lowercase + string.digits, k=rng.randint(1, 10)))
                              for _ in range(rng.randint(1, 3)))
        try:
            request(served.port, path, method=method, timeout=5)
        except (OSError, http.client.HTTPException):
            pass  # a parser that refuses an unknown method may close the connection
    samples = [s for s in metric_samples(served) if s.name == "http_requests_total"]
    methods = {s.labels["method"] for s in samples}
    routes = {s.labels["route"] for s in samples}
    assert methods <= METHODS, f"unbounded method label: {methods - METHODS}"
    assert routes <= ROUTES, f"unbounded route label: {routes - ROUTES}"
    assert len(samples) <= len(METHODS) * len(ROUTES) * 6, len(samples)


# ------------------------------------------------------------------------------------------------
# Limits and slow clients
# ------------------------------------------------------------------------------------------------
def test_eight_kib_of_headers_is_served_and_a_32_kib_header_is_refused(served):
    padding = {f"X-Pad-{i}": "p" * 2000 for i in range(4)}
    assert served.get("/health", headers=padding).status == 200
    assert served.get("/", headers=padding).status == 200
    refused = served.get("/", headers={"X-Big": "b" * 32 * 1024})
    assert refused.status == 431, refused


def test_a_body_over_one_mib_is_refused_with_413(served):
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-Proto: https\r\n"
                     b"Content-Type: application/json\r\n"
                     b"Content-Length: 2097152\r\n\r\n")
        response = http.client.HTTPResponse(sock)
        response.begin()
        answer = Response(response.status, response.headers, response.read())
    assert_error(answer, 413, "payload_too_large", "POST / with 2 MiB")
    small = served.get("/", method="POST", body=b"{}", headers={"Content-Type": "application/json"})
    assert small.status != 413, small


def test_slow_clients_do_not_stall_health_or_the_application(served):
    """64 connections each sending one header byte per second; /health and / within 1 s."""
    stop = threading.Event()
    closed_after: list[float] = []
    started = time.monotonic()

    def slow_client() -> None:
        payload = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"s" * 100
        try:
            with socket.create_connection(("127.0.0.1", served.port), timeout=20) as sock:
                sock.settimeout(1)
                for byte in payload:
                    if stop.is_set():
                        return
                    sock.sendall(bytes([byte]))
                    try:
                        if sock.recv(1024) == b"":
                            closed_after.append(time.monotonic() - started)
                            return
                    except TimeoutError:
                        pass
                    except OSError:
                        closed_after.append(time.monotonic() - started)
                        return
        except OSError:
            closed_after.append(time.monotonic() - started)

    threads = [threading.Thread(target=slow_client, daemon=True) for _ in range(64)]
    for thread in threads:
        thread.start()
    time.sleep(2)
    latencies = []
    try:
        while time.monotonic() - started < 8:
            for path in ("/health", "/"):
                begun = time.monotonic()
                response = served.get(path, timeout=5)
                latencies.append((path, response.status, time.monotonic() - begun))
            time.sleep(0.2)
        slow = [entry for entry in latencies if entry[1] != 200 or entry[2] > 1.0]
        assert not slow, f"answers over 1 s or not 200 while 64 clients trickle headers: {slow}"
        # the header read timeout (10 s) closes the trickling connections
        wait_for(lambda: len(closed_after) == 64, 12, "the server to close the slow connections", interval=0.2)
        assert max(closed_after) < 18, closed_after
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)


# ------------------------------------------------------------------------------------------------
# The management port
# ------------------------------------------------------------------------------------------------
def test_public_port_answers_404_on_operational_paths(managed):
    for path in OPS_PATHS:
        assert_error(request(managed.port, path), 404, "not_found", f"public {path}")
    assert request(managed.port, "/").status == 200
    for path in OPS_PATHS:
        response = request(managed.management_port, path)
        assert response.status == 200, f"management {path}: {response}"
        assert_security_headers(response, f"management {path}")
    names = {s.name for s in metric_samples(managed)}
    assert "http_requests_total" in names, names


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_management_port_equal_to_port_stops_the_service_naming_it(contract_copy, language):
    copy = contract_copy(language)
    service = Service(copy, "bad-management")
    service.env["MANAGEMENT_PORT"] = service.env["PORT"]
    service.start(wait=False)
    try:
        code = service.proc.wait(timeout=60)
    finally:
        service.stop()
    assert code != 0
    assert "MANAGEMENT_PORT" in service.output(), service.output()


# ------------------------------------------------------------------------------------------------
# Phases: draining, and the fail-closed default
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("language", LANGUAGES)
def test_draining_phase_on_both_ports(contract_copy, language):
    copy = contract_copy(language)
    copy.flag()
    service = Service(copy, "draining", management=True, SHUTDOWN_DELAY_SECONDS="4").start()
    try:
        service.proc.send_signal(signal.SIGTERM)

        def draining() -> Response | None:
            response = request(service.management_port, "/ready", timeout=2)
            return response if response.status == 503 else None

        response = wait_for(draining, 2, "/ready to answer 503 after SIGTERM")
        assert valid("ready", response.json()) == {"status": "draining", "checks": []}
        assert request(service.management_port, "/health").status == 200
        detailed = request(service.management_port, "/health/detailed")
        body = valid("detailed", detailed.json())
        assert (detailed.status, body["status"], body["phase"]) == (200, "ok", "draining"), detailed
        assert request(service.port, "/").status == 200, "the public port stops serving during the delay"
        assert service.proc.wait(timeout=30) == 0, service.output()
    finally:
        service.stop()


@pytest.mark.parametrize("language", LANGUAGES)
def test_unset_app_env_runs_as_production(contract_copy, language):
    copy = contract_copy(language)
    service = Service(copy, "no-app-env", APP_ENV=None).start()
    try:
        body = valid("detailed", service.get("/health/detailed").json())
        assert body["environment"] == "production", body
    finally:
        service.stop()


def test_smoke_test_script_checks_each_port_for_what_it_must_serve(managed):
    """deploy/scripts/smoke-test.sh: the port-forwarded gate (both ports) and the public check."""
    script = managed.copy.path / "deploy" / "scripts" / "smoke-test.sh"
    env = {"SMOKE_ATTEMPTS": "1", "SMOKE_DELAY_SECONDS": "0"}
    public, management = f"http://127.0.0.1:{managed.port}", f"http://127.0.0.1:{managed.management_port}"
    run([str(script), public, management], **env)
    run([str(script), "--public", public], **env)
    # The same checks fail where the operational endpoints answer (as on a port without
    # MANAGEMENT_PORT set) ...
    exposed = run([str(script), "--public", management], check=False, **env)
    assert exposed.returncode != 0, exposed
    assert "/health: HTTP 200, expected 404" in exposed.stderr, exposed.stderr
    # ... and where the management port is given as the application's.
    swapped = run([str(script), management, public], check=False, **env)
    assert swapped.returncode != 0, swapped


# ------------------------------------------------------------------------------------------------
# The rendered docs and checklist speak of what this suite checks
# ------------------------------------------------------------------------------------------------
# The parts of the contract the production-readiness checklist ticks (facts `contract_files`), and
# the cases above that check each one in the running service of every language.
CHECKED_PARTS = {
    "health": [test_health_answers_ok_with_the_contract_headers, test_ready_and_detailed_follow_the_check_outcomes],
    "config": [test_a_management_port_equal_to_port_stops_the_service_naming_it, test_unset_app_env_runs_as_production],
    "logging": [test_request_log_line_carries_the_request_id, test_log_lines_have_the_one_shape_in_every_language],
    "metrics": [test_metrics_have_the_contract_names_labels_and_buckets,
                test_a_burst_of_random_methods_and_paths_keeps_the_series_bounded],
    "shutdown": [test_draining_phase_on_both_ports],
    "security_headers": [test_health_answers_ok_with_the_contract_headers, test_unknown_paths_answer_the_contract_404,
                         test_application_route_carries_the_contract_headers],
    # tests/test_tracing.py, against the real OpenTelemetry Collector (named here, imported below:
    # a test function imported at module level would be collected twice)
    "tracing": ["test_server_span_continues_the_callers_trace_under_the_route_pattern",
                "test_operational_endpoints_create_no_spans",
                "test_a_failing_endpoint_never_slows_a_request_and_is_logged_once"],
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_ticked_contract_item_is_checked_by_this_suite(render, language):
    checklist = render(language=language).text("docs/production-readiness.md")
    ticked = {part for part, file in FACTS[language]["contract_files"].items()
              if file and re.search(rf"^- \[x\] .*Guaranteed by [^\n]*`{re.escape(file)}`", checklist, re.MULTILINE)}
    assert ticked, "the checklist ticks no contract item"
    unchecked = ticked - CHECKED_PARTS.keys()
    assert not unchecked, f"ticked without a contract test: {unchecked}"
    tracing = importlib.import_module("test_tracing")
    assert all(callable(getattr(tracing, name, None)) for name in CHECKED_PARTS["tracing"])
    open_items = {part for part, file in FACTS[language]["contract_files"].items() if not file}
    assert not open_items, f"{language} leaves contract parts without a file: {open_items}"


def test_the_error_rate_expression_is_one_and_uses_the_contract_series(render):
    expressions = set()
    for language in LANGUAGES:
        project = render(language=language)
        found = re.findall(r"`(sum\(rate\(.*?)`", project.text("docs/production-readiness.md"))
        assert found, f"{language}: no error-rate expression in the checklist"
        expressions.update(found)
    (expression,) = expressions
    assert set(re.findall(r"([a-z_]+)\{", expression)) == {"http_requests_total"}, expression
    assert set(re.findall(r"([a-z_]+)=~?", expression)) == {"namespace", "status_code"}, expression
