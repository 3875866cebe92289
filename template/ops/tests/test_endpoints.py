"""The fleet contract's endpoints: /health, /ready, /health/detailed, /metrics, errors, headers."""

from __future__ import annotations

import dataclasses
import datetime
import re
import time

import pytest
from django.db import OperationalError, connections
from django.test import Client
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable
from pytest_django import Settings

from ops import lifecycle
from ops.checks import Database, optional, run_checks

pytestmark = pytest.mark.django_db

OPS_PATHS = ["/health", "/ready", "/health/detailed", "/metrics"]
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


@dataclasses.dataclass
class Broken(HealthCheck):
    name = "payments-api"

    def run(self) -> None:
        raise ServiceUnavailable("connection refused by payments.internal")


@dataclasses.dataclass
class Hanging(HealthCheck):
    name = "slow-api"

    def run(self) -> None:
        time.sleep(3)


@dataclasses.dataclass
class AsyncOk(HealthCheck):
    name = "async-api"
    timeout = datetime.timedelta(seconds=2)

    async def run(self) -> None:
        return None


@pytest.fixture
def broken_dependency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("service.checks.READINESS_CHECKS", [Broken()])


@pytest.fixture
def broken_optional_dependency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("service.checks.READINESS_CHECKS", [optional(Broken())])


def test_health_is_ok_and_checks_nothing(client: Client, broken_dependency: None) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"
    assert client.head("/health").status_code == 200


def test_ready_lists_the_database_check_without_error_text(client: Client) -> None:
    response = client.get("/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    [database] = body["checks"]
    assert database.keys() == {"name", "status", "required", "latency_ms"}
    assert (database["name"], database["status"], database["required"]) == ("database", "ok", True)
    assert database["latency_ms"] >= 0


def test_a_failing_required_check_makes_ready_503_without_its_error(
    client: Client, broken_dependency: None
) -> None:
    response = client.get("/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    checks = {check["name"]: check for check in body["checks"]}
    assert checks["database"]["status"] == "ok"
    assert checks["payments-api"] == {**checks["payments-api"], "status": "fail", "required": True}
    assert "error" not in checks["payments-api"]
    assert b"payments.internal" not in response.content

    detailed = client.get("/health/detailed")
    assert detailed.status_code == 503
    assert detailed.json()["status"] == "unavailable"
    [failed] = [check for check in detailed.json()["checks"] if check["name"] == "payments-api"]
    assert failed["error"] == "connection refused by payments.internal"


def test_a_failing_optional_check_only_degrades_detailed(
    client: Client, broken_optional_dependency: None
) -> None:
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"
    [failed] = [check for check in response.json()["checks"] if check["name"] == "payments-api"]
    assert (failed["status"], failed["required"]) == ("fail", False)
    detailed = client.get("/health/detailed")
    assert detailed.status_code == 200
    assert detailed.json()["status"] == "degraded"


def test_checks_run_concurrently_each_within_its_timeout() -> None:
    started = time.monotonic()
    results = {result.name: result for result in run_checks([Hanging(), Hanging(), AsyncOk()])}
    assert time.monotonic() - started < 2.5  # 1 s each (the default), concurrently
    slow = results["slow-api"]
    assert (slow.ok, slow.error) == (False, "no answer within 1000ms")
    assert 1000 <= slow.latency_ms < 2000
    assert results["async-api"].ok


@pytest.mark.usefixtures("draining")
def test_while_draining_ready_is_503_and_health_and_detailed_stay_200(client: Client) -> None:
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.json() == {"status": "draining", "checks": []}
    assert client.get("/health").status_code == 200
    detailed = client.get("/health/detailed")
    assert detailed.status_code == 200
    assert (detailed.json()["status"], detailed.json()["phase"]) == ("ok", "draining")


def test_while_starting_ready_is_503(client: Client) -> None:
    lifecycle.mark_starting()
    try:
        response = client.get("/ready")
        assert response.status_code == 503
        assert response.json() == {"status": "starting", "checks": []}
    finally:
        lifecycle.mark_ready()


def test_detailed_reports_phase_version_uptime_and_latencies(
    client: Client, settings: Settings
) -> None:
    settings.APP_VERSION = "1.4.2"
    response = client.get("/health/detailed")
    assert response.status_code == 200
    body = response.json()
    assert body.keys() == {
        "status",
        "phase",
        "service",
        "version",
        "environment",
        "uptime_seconds",
        "timestamp",
        "checks",
    }
    assert (body["status"], body["phase"], body["version"]) == ("ok", "ready", "1.4.2")
    assert body["uptime_seconds"] >= 0
    assert body["timestamp"].endswith("Z")
    assert [check["name"] for check in body["checks"]] == ["database"]
    assert all("latency_ms" in check for check in body["checks"])


# ops.tests.routes: the project's URLs plus a parametric route and a failing view
@pytest.mark.urls("ops.tests.routes")
def test_metrics_count_requests_by_method_route_and_status() -> None:
    client = Client(raise_request_exception=False)
    assert client.get("/").status_code == 200
    assert client.get("/items/7").status_code == 200
    assert client.get("/no-such-page").status_code == 404
    boom = client.get("/boom")
    assert boom.status_code == 500
    assert boom.json() == {"error": "internal_error", "request_id": boom["X-Request-ID"]}
    assert client.generic("BREW", "/").status_code == 405
    assert client.post("/metrics").status_code == 405
    assert client.get("/health").status_code == 200
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()

    def sample(name: str, **labels: str) -> float:
        selector = ",".join(f'{key}="{value}"' for key, value in labels.items())
        series = name + "{" + selector + "}"
        match = re.search("^" + re.escape(series) + r" (\S+)$", text, re.MULTILINE)
        assert match, f"{series} not in /metrics"
        return float(match.group(1))

    assert sample("http_requests_total", method="GET", route="/", status_code="200") >= 1
    item = "/items/<int:item_id>"
    assert sample("http_requests_total", method="GET", route=item, status_code="200") >= 1
    assert sample("http_requests_total", method="GET", route="unmatched", status_code="404") >= 1
    assert sample("http_requests_total", method="GET", route="/boom", status_code="500") >= 1
    assert sample("http_requests_total", method="OTHER", route="/", status_code="405") >= 1
    assert sample("http_requests_total", method="POST", route="unmatched", status_code="405") >= 1
    assert sample("http_requests_total", method="GET", route="/health", status_code="200") >= 1
    assert (
        sample(
            "http_request_duration_seconds_bucket",
            le="0.005",
            method="GET",
            route="/",
            status_code="200",
        )
        >= 0
    )
    assert "BREW" not in text


@pytest.mark.parametrize("path", OPS_PATHS)
def test_ops_endpoints_refuse_writes(client: Client, path: str) -> None:
    response = client.post(path)
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    body = response.json()
    assert body == {"error": "method_not_allowed", "request_id": response["X-Request-ID"]}


@pytest.mark.parametrize("path", [*OPS_PATHS, "/", "/no-such-page"])
def test_every_response_carries_the_security_headers(client: Client, path: str) -> None:
    response = client.get(path)
    for name, value in SECURITY_HEADERS.items():
        assert response[name] == value, name


def test_every_response_carries_a_request_id(client: Client) -> None:
    generated = client.get("/health")["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert client.get("/", HTTP_X_REQUEST_ID="a")["X-Request-ID"] == "a"
    assert client.get("/", HTTP_X_REQUEST_ID="ingress:12.34_ab-c")["X-Request-ID"] == (
        "ingress:12.34_ab-c"
    )
    forged = client.get("/", HTTP_X_REQUEST_ID="x\nFAKE LOG LINE")["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", forged)
    too_long = client.get("/", HTTP_X_REQUEST_ID="x" * 129)["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", too_long)


def test_unknown_paths_get_the_contract_404(client: Client) -> None:
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "request_id": response["X-Request-ID"]}


def test_a_body_over_one_mib_is_refused_before_routing(client: Client) -> None:
    response = client.generic(
        "POST", "/no-such-page", b"x", CONTENT_TYPE="application/json", CONTENT_LENGTH="1048577"
    )
    assert response.status_code == 413
    assert response.json() == {"error": "payload_too_large", "request_id": response["X-Request-ID"]}


def test_the_database_check_names_the_failure_without_connection_details(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ServiceUnavailable, match="alias does not exist"):
        Database(alias="nowhere").run()

    def refused() -> None:
        raise OperationalError("connection refused: host=db.internal user=app password=secret")

    monkeypatch.setattr(connections["default"], "temporary_connection", refused)
    with pytest.raises(ServiceUnavailable) as failure:
        Database().run()
    assert failure.value.message == "connection refused"
