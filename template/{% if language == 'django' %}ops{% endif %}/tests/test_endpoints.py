"""The fleet contract's endpoints: /health, /ready, /health/detailed, /metrics."""

from __future__ import annotations

import dataclasses
import re

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable
from pytest_django import Settings

from config import urls as config_urls

pytestmark = pytest.mark.django_db

OPS_PATHS = ["/health", "/ready", "/health/detailed", "/metrics"]


@dataclasses.dataclass
class Broken(HealthCheck):
    name = "payments-api"

    def run(self) -> None:
        raise ServiceUnavailable("connection refused")


@pytest.fixture
def broken_dependency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("service.checks.READINESS_CHECKS", [Broken()])


def test_health_is_ok_and_checks_nothing(client: Client, broken_dependency: None) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-store" in response["Cache-Control"]


def test_ready_lists_the_database_check(client: Client) -> None:
    response = client.get("/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    [database] = body["checks"]
    assert database["name"] == "database"
    assert database["status"] == "ok"
    assert database["latency_ms"] >= 0


def test_ready_is_503_naming_the_failing_check(client: Client, broken_dependency: None) -> None:
    response = client.get("/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    checks = {check["name"]: check for check in body["checks"]}
    assert checks["database"]["status"] == "ok"
    assert checks["payments-api"]["status"] == "error"
    assert "connection refused" in checks["payments-api"]["error"]


@pytest.mark.usefixtures("draining")
def test_while_draining_ready_is_503_and_health_stays_200(client: Client) -> None:
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.json()["status"] == "draining"
    assert client.get("/health").status_code == 200


def test_detailed_reports_version_uptime_and_latencies(client: Client, settings: Settings) -> None:
    settings.APP_VERSION = "1.4.2"
    response = client.get("/health/detailed")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["version"] == "1.4.2"
    assert body["uptime_seconds"] >= 0
    assert body["timestamp"].endswith("+00:00")
    assert [check["name"] for check in body["checks"]] == ["database"]
    assert all("latency_ms" in check for check in body["checks"])


def test_detailed_is_503_degraded_when_a_check_fails(
    client: Client, broken_dependency: None
) -> None:
    response = client.get("/health/detailed")
    assert response.status_code == 503
    assert response.json()["status"] == "degraded"


def failing_view(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom")


urlpatterns = [path("boom", failing_view), *config_urls.urlpatterns]


@pytest.mark.urls(__name__)
def test_metrics_count_requests_latency_and_errors() -> None:
    client = Client(raise_request_exception=False)
    assert client.get("/").status_code == 200
    assert client.get("/no-such-page").status_code == 404
    assert client.get("/boom").status_code == 500
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()

    def sample(name: str, **labels: str) -> float:
        selector = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
        series = name + "{" + selector + "}"
        match = re.search("^" + re.escape(series) + r" (\S+)$", text, re.MULTILINE)
        assert match, f"{series} not in /metrics"
        return float(match.group(1))

    assert sample("django_http_responses_total_by_status_total", status="404") >= 1
    assert sample("django_http_responses_total_by_status_total", status="500") >= 1
    assert sample("django_http_exceptions_total_by_type_total", type="RuntimeError") >= 1
    assert (
        sample(
            "django_http_requests_latency_seconds_by_view_method_count", method="GET", view="index"
        )
        >= 1
    )


@pytest.mark.parametrize("path", OPS_PATHS)
def test_ops_endpoints_refuse_writes(client: Client, path: str) -> None:
    response = client.post(path)
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


def test_every_response_carries_a_request_id(client: Client) -> None:
    generated = client.get("/health")["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert client.get("/", HTTP_X_REQUEST_ID="ingress-1234abcd")["X-Request-ID"] == (
        "ingress-1234abcd"
    )
    forged = client.get("/", HTTP_X_REQUEST_ID="x\nFAKE LOG LINE")["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", forged)


def test_unknown_paths_get_a_json_404(client: Client) -> None:
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.json() == {"error": "not found"}
