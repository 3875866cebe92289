"""The fleet's operational endpoints (served by ops.middleware.OpsEndpointsMiddleware) and the
JSON error answers (handler400/404/500 in config/urls.py)."""

from __future__ import annotations

import datetime
import json

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse

from ops import lifecycle
from ops import metrics as prometheus
from ops.checks import CheckResult, run_checks
from ops.logs import request_id


def _json(body: dict[str, object], status: int = 200) -> JsonResponse:
    response = JsonResponse(body, status=status)
    # A 503 here is an answer, not a server error: keep it out of django.request's error log (a
    # failing check is logged by ops.checks; every request is in the access log).
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def error(status: int, word: str) -> JsonResponse:
    """The contract's error body: {"error": word, "request_id": id}, never an exception's text."""
    return JsonResponse({"error": word, "request_id": request_id.get() or "-"}, status=status)


# Always the same body: encoded once, not per probe.
HEALTH_BODY = json.dumps({"status": "ok"}).encode()


def health(request: HttpRequest) -> HttpResponse:
    """Liveness: the process can serve. Checks no dependency, 200 in every phase."""
    return HttpResponse(HEALTH_BODY, content_type="application/json")


def ready(request: HttpRequest) -> HttpResponse:
    """Readiness: 200 "ready" when the phase is ready and no required check fails; 503 with
    "starting" or "draining" (checks not run) or "unavailable". Never any error text."""
    phase = lifecycle.phase()
    if phase != "ready":
        return _json({"status": phase, "checks": []}, status=503)
    results = run_checks()
    ok = all(result.ok for result in results if result.required)
    return _json(
        {
            "status": "ready" if ok else "unavailable",
            "checks": [result.as_dict(with_error=False) for result in results],
        },
        status=200 if ok else 503,
    )


def _detailed_status(results: list[CheckResult]) -> str:
    if any(result.required and not result.ok for result in results):
        return "unavailable"
    return "ok" if all(result.ok for result in results) else "degraded"


def detailed(request: HttpRequest) -> HttpResponse:
    """Diagnostics: phase, version, uptime and every check with its latency and error text. The
    status and code depend on the checks only: a draining pod with healthy dependencies is 200."""
    results = run_checks()
    status = _detailed_status(results)
    return _json(
        {
            "status": status,
            "phase": lifecycle.phase(),
            "service": settings.SERVICE_NAME,
            "version": settings.APP_VERSION,
            "environment": settings.APP_ENV,
            "uptime_seconds": round(lifecycle.uptime_seconds(), 3),
            "timestamp": datetime.datetime.now(datetime.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "checks": [result.as_dict(with_error=True) for result in results],
        },
        status=503 if status == "unavailable" else 200,
    )


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text exposition, aggregated over every gunicorn worker."""
    body, content_type = prometheus.exposition()
    return HttpResponse(body, content_type=content_type)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if isinstance(exception, RequestDataTooBig):
        return error(413, "payload_too_large")
    return error(400, "bad_request")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error(404, "not_found")


def server_error(request: HttpRequest) -> HttpResponse:
    return error(500, "internal_error")
