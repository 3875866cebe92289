"""The fleet's operational endpoints (served by ops.middleware.OpsEndpointsMiddleware)."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers
from django_prometheus.exports import ExportToDjangoView

from ops import lifecycle
from ops.checks import CheckResult, run_checks


def _json(body: dict[str, object], status: int = 200) -> JsonResponse:
    response = JsonResponse(body, status=status)
    add_never_cache_headers(response)
    # A 503 here is an answer, not a server error: keep it out of django.request's error log (a
    # failing check is logged by django-health-check; every request is in the access log).
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def _overall(results: list[CheckResult], failed: str) -> str:
    """Overall status: draining after SIGTERM, else ok when every check passed, else `failed`."""
    if lifecycle.is_draining():
        return "draining"
    return "ok" if all(result.ok for result in results) else failed


def health(request: HttpRequest) -> HttpResponse:
    """Liveness: the process can serve. Checks no dependency, stays 200 while draining."""
    return _json({"status": "ok"})


def ready(request: HttpRequest) -> HttpResponse:
    """Readiness: 200 when every check passes; 503 while draining or when a check fails."""
    results = run_checks()
    status = _overall(results, failed="unavailable")
    return _json(
        {"status": status, "checks": [result.as_dict() for result in results]},
        status=200 if status == "ok" else 503,
    )


def detailed(request: HttpRequest) -> HttpResponse:
    """Diagnostics: version, uptime and every check with its latency."""
    results = run_checks()
    status = _overall(results, failed="degraded")
    return _json(
        {
            "status": status,
            "service": settings.SERVICE_NAME,
            "version": settings.APP_VERSION,
            "environment": settings.APP_ENV,
            "uptime_seconds": round(lifecycle.uptime_seconds(), 3),
            "timestamp": datetime.datetime.now(datetime.UTC).isoformat(),
            "checks": [result.as_dict() for result in results],
        },
        status=200 if status == "ok" else 503,
    )


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text exposition, aggregated over every gunicorn worker."""
    response: HttpResponse = ExportToDjangoView(request)
    add_never_cache_headers(response)
    return response


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return JsonResponse({"error": "not found"}, status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"error": "internal server error"}, status=500)
