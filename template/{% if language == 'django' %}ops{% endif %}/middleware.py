"""Request ids, and the operational endpoints answered ahead of host validation."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed

from ops import views
from ops.logs import request_id

REQUEST_ID_HEADER = "X-Request-ID"
# An id from the ingress or the caller is kept when it is short and plain; anything else is
# replaced so that logs cannot be forged or flooded through the header.
_ACCEPTABLE_ID = re.compile(r"[A-Za-z0-9._:-]{8,128}")

OPS_ENDPOINTS: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/health": views.health,
    "/ready": views.ready,
    "/health/detailed": views.detailed,
    "/metrics": views.metrics,
}


class RequestIdMiddleware:
    """Gives each request an id (kept from X-Request-ID when acceptable), returns it in the
    response's X-Request-ID header (which the access log records) and tags log lines with it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        current = incoming if _ACCEPTABLE_ID.fullmatch(incoming) else uuid.uuid4().hex
        token = request_id.set(current)
        try:
            response = self.get_response(request)
        finally:
            request_id.reset(token)
        response[REQUEST_ID_HEADER] = current
        return response


class OpsEndpointsMiddleware:
    """Answers /health, /ready, /health/detailed and /metrics itself.

    It sits before SecurityMiddleware and CommonMiddleware, so these paths are never redirected to
    HTTPS and never rejected by ALLOWED_HOSTS: Kubernetes probes and Prometheus scrapes address
    the pod IP over plain HTTP. They read no Host header and take no input, so skipping those
    protections exposes nothing; every other path still goes through all of them.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = OPS_ENDPOINTS.get(request.path_info.rstrip("/"))
        if view is None:
            return self.get_response(request)
        if request.method not in {"GET", "HEAD"}:
            return HttpResponseNotAllowed(["GET", "HEAD"])
        return view(request)
