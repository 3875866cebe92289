"""Production protections: every path but the probes is held to ALLOWED_HOSTS and HTTPS; with
MANAGEMENT_PORT set the probes are served on that port only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from pytest_django import Settings

pytestmark = pytest.mark.django_db

POD_IP = "10.42.7.19"  # as a kubelet probe or a Prometheus scrape sends it
OPS_PATHS = ["/health", "/ready", "/health/detailed", "/metrics"]
PORT, MANAGEMENT_PORT = 8000, 9090


@pytest.fixture
def production(settings: Settings) -> Settings:
    """The settings APP_ENV=production gives (config/settings.py), applied to this test."""
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["service.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 31536000
    return settings


@dataclass
class AcceptedSocket:
    """What gunicorn passes as environ["gunicorn.socket"]: the accepted connection."""

    port: int

    def getsockname(self) -> tuple[str, int]:
        return ("10.42.7.19", self.port)


def on(port: int) -> dict[str, Any]:
    return {"gunicorn.socket": AcceptedSocket(port)}


@pytest.mark.usefixtures("production")
@pytest.mark.parametrize("path", OPS_PATHS)
def test_probes_by_pod_ip_over_http_are_answered(client: Client, path: str) -> None:
    response = client.get(path, HTTP_HOST=POD_IP)
    assert response.status_code == 200, response.content
    assert response["X-Frame-Options"] == "DENY"
    assert "Strict-Transport-Security" not in response  # plain HTTP


@pytest.mark.usefixtures("production")
def test_other_paths_reject_a_host_not_allowed(client: Client) -> None:
    assert client.get("/", HTTP_HOST=POD_IP, secure=True).status_code == 400
    refused = client.get("/", HTTP_HOST=POD_IP)
    assert refused.status_code == 400
    assert refused.json() == {"error": "bad_request", "request_id": refused["X-Request-ID"]}
    # Raised inside SecurityMiddleware (its HTTPS redirect reads the Host): headers all the same.
    assert (refused["X-Frame-Options"], refused["Referrer-Policy"]) == ("DENY", "no-referrer")
    assert refused["X-Content-Type-Options"] == "nosniff"


@pytest.mark.usefixtures("production")
def test_other_paths_redirect_plain_http_to_https(client: Client) -> None:
    response = client.get("/", HTTP_HOST="service.example.com")
    assert response.status_code == 301
    assert response["Location"] == "https://service.example.com/"


@pytest.mark.usefixtures("production")
def test_https_behind_the_proxy_is_served_with_security_headers(client: Client) -> None:
    response = client.get("/", HTTP_HOST="service.example.com", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 200
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["X-Frame-Options"] == "DENY"


@pytest.mark.usefixtures("production")
@pytest.mark.parametrize("path", OPS_PATHS)
def test_with_a_management_port_probes_are_served_there_only(
    client: Client, settings: Settings, path: str
) -> None:
    settings.MANAGEMENT_PORT = MANAGEMENT_PORT
    assert client.get(path, HTTP_HOST=POD_IP, **on(MANAGEMENT_PORT)).status_code == 200
    public = client.get(path, HTTP_HOST="service.example.com", **on(PORT))
    assert public.status_code == 404
    assert public.json() == {"error": "not_found", "request_id": public["X-Request-ID"]}
    # The Host header (and so SERVER_PORT) is the client's to choose: it changes nothing.
    spoofed = client.get(path, HTTP_HOST=f"{POD_IP}:{MANAGEMENT_PORT}", **on(PORT))
    assert spoofed.status_code == 404


@pytest.mark.usefixtures("production")
def test_the_management_port_serves_nothing_else(client: Client, settings: Settings) -> None:
    settings.MANAGEMENT_PORT = MANAGEMENT_PORT
    response = client.get(
        "/no-such-page", HTTP_HOST=POD_IP, HTTP_X_FORWARDED_PROTO="https", **on(MANAGEMENT_PORT)
    )
    assert response.status_code == 404
    served = client.get(
        "/", HTTP_HOST="service.example.com", HTTP_X_FORWARDED_PROTO="https", **on(PORT)
    )
    assert served.status_code == 200
