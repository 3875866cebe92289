"""Request ids, request metrics, the headers Django has no setting for, the body limit, and the
operational endpoints, answered ahead of host validation (order: config/settings.py MIDDLEWARE)."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from ops import metrics, views
from ops.logs import REQUEST_ID, ROUTE, request_id

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_META = "HTTP_X_REQUEST_ID"
# An id from the ingress or the caller is kept when it is short and plain; anything else is
# replaced so that logs cannot be forged or flooded through the header.
_ACCEPTABLE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

OPS_ENDPOINTS: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/health": views.health,
    "/ready": views.ready,
    "/health/detailed": views.detailed,
    "/metrics": views.metrics,
}

# The contract's headers that Django 5.2 has no setting for (SecurityMiddleware and
# XFrameOptionsMiddleware send the others from settings). Django 6.0 adds SECURE_CSP: move the
# policy there when the service moves to Django 6.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def _from_settings() -> dict[str, str]:
    """The headers SecurityMiddleware and XFrameOptionsMiddleware send, from the same settings."""
    headers = {"X-Frame-Options": str(settings.X_FRAME_OPTIONS).upper()}
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers["X-Content-Type-Options"] = "nosniff"
    if settings.SECURE_REFERRER_POLICY:
        headers["Referrer-Policy"] = str(settings.SECURE_REFERRER_POLICY)
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers["Cross-Origin-Opener-Policy"] = str(settings.SECURE_CROSS_ORIGIN_OPENER_POLICY)
    return headers


Handler = Callable[[HttpRequest], HttpResponse]


def listener_port(request: HttpRequest) -> int | None:
    """The local port of the connection (gunicorn passes the socket). Never SERVER_PORT: gunicorn
    derives that from the Host header, which the client chooses."""
    sock: Any = request.META.get("gunicorn.socket")
    try:
        return int(sock.getsockname()[1])
    except (AttributeError, OSError, IndexError, TypeError, ValueError):
        return None


def on_management_port(request: HttpRequest) -> bool:
    port: int | None = settings.MANAGEMENT_PORT
    return port is not None and listener_port(request) == port


class RequestIdMiddleware:
    """Gives each request an id (kept from X-Request-ID when acceptable), returns it in the
    response's X-Request-ID header (which the access log records) and tags log lines with it."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # META, not request.headers: that builds a dict of every header on first use.
        incoming = request.META.get(REQUEST_ID_META, "")
        # A fresh id: 32 random hex digits (uuid4().hex's form, without building a UUID object).
        current = incoming if _ACCEPTABLE_ID.fullmatch(incoming) else secrets.token_hex(16)
        token = request_id.set(current)
        request.META[REQUEST_ID] = current  # for the access line (ops.server.JsonLogger.access)
        try:
            response = self.get_response(request)
        finally:
            request_id.reset(token)
        response[REQUEST_ID_HEADER] = current
        return response


class MetricsMiddleware:
    """http_requests_total and http_request_duration_seconds for every response, errors included.

    The route is the resolved URL pattern with a leading "/" ("/" for the index, "/items/<int:id>"),
    the operational endpoint's path when OpsEndpointsMiddleware answered, else "unmatched".
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        route = route_of(request)
        elapsed = time.perf_counter() - started
        metrics.observe(request.method or "", route, response.status_code, elapsed)
        request.META[ROUTE] = route  # for the access line (ops.server.JsonLogger.access)
        return response


def route_of(request: HttpRequest) -> str:
    route: str | None = getattr(request, "metrics_route", None)
    if route is not None:
        return route
    match = getattr(request, "resolver_match", None)
    if match is None or match.route is None:
        return metrics.UNMATCHED
    return "/" + str(match.route)


class SecurityHeadersMiddleware:
    """Content-Security-Policy and Cross-Origin-Resource-Policy on every response; a view that
    sets its own keeps it.

    It also adds Django's own security headers, from the same settings, to the few responses that
    SecurityMiddleware and XFrameOptionsMiddleware never see: the 400 of a request whose Host is
    not allowed is raised inside SecurityMiddleware (its HTTPS redirect reads the Host), so
    neither of them adds its headers to it.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response
        self.headers = {**_from_settings(), **HEADERS}

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        for name, value in self.headers.items():
            response.headers.setdefault(name, value)
        return response


class BodyLimitMiddleware:
    """413 before routing when Content-Length exceeds DATA_UPLOAD_MAX_MEMORY_SIZE (1 MiB).

    Django reads no body without a Content-Length (a chunked body is never read), and raises
    RequestDataTooBig past the limit when a view reads one (ops.views.bad_request answers 413).
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit: int | None = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and length > limit:
            return views.error(413, "payload_too_large")
        return self.get_response(request)


class OpsEndpointsMiddleware:
    """Answers /health, /ready, /health/detailed and /metrics itself, on the port they belong to.

    With MANAGEMENT_PORT set they are served on that port only (and nothing else is: 404), and
    PORT answers them 404 like any unknown path; without it PORT serves them. It sits before
    CommonMiddleware, and SECURE_REDIRECT_EXEMPT lists these paths, so they are never redirected
    to HTTPS and never rejected by ALLOWED_HOSTS: Kubernetes probes and Prometheus scrapes address
    the pod IP over plain HTTP. They read no Host header and take no input, so skipping those
    protections exposes nothing; every other path still goes through all of them.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        view = OPS_ENDPOINTS.get(path)
        management = on_management_port(request)
        if view is not None and (management or settings.MANAGEMENT_PORT is None):
            response: HttpResponse
            if request.method not in {"GET", "HEAD"}:
                response = views.error(405, "method_not_allowed")
                response["Allow"] = "GET, HEAD"
            else:
                request.metrics_route = path  # type: ignore[attr-defined]
                response = view(request)
            response["Cache-Control"] = "no-store"
            # Their bodies are small and complete: with Content-Length gunicorn writes the body in
            # one send instead of a chunk and an end-of-body chunk (one send in three fewer).
            # (CommonMiddleware, which adds it to the other answers, sits after this one.)
            if not response.streaming:
                response["Content-Length"] = str(len(response.content))
            return response
        if view is not None or management:
            return views.error(404, "not_found")
        return self.get_response(request)
