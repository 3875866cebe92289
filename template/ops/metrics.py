"""The fleet's two request series, with prometheus_client (multiprocess mode under gunicorn).

http_requests_total and http_request_duration_seconds, labelled method, route and status_code,
with the same names, buckets and bounded label values in every language of the fleet
(docs/service-contract.md in the template), so one dashboard and one alert rule fit them all.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

# Methods counted by name; any other method is one label value, so that no client can create
# series without end.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
# Set by the gunicorn master (ops.server.prepare_metrics_dir) for its workers: not configuration.
# (Not imported from ops.server: the master must not import this module, whose metrics would then
# be created before multiprocess mode is on and inherited by every worker.)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
LABELS = ("method", "route", "status_code")

REQUESTS = Counter("http_requests_total", "HTTP requests answered.", LABELS)
DURATION = Histogram(
    "http_request_duration_seconds", "Time to answer an HTTP request.", LABELS, buckets=BUCKETS
)


# The labelled children of both series, by (method, route, status code): labels() validates
# and converts its arguments and takes a lock on every call, so each combination is looked up
# once per worker. Bounded like the label values themselves.
_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe(method: str, route: str, status_code: int, seconds: float) -> None:
    key = (method, route, status_code)
    children = _children.get(key)
    if children is None:
        labels = (method if method in METHODS else "OTHER", route, str(status_code))
        children = _children[key] = (REQUESTS.labels(*labels), DURATION.labels(*labels))
    children[0].inc()
    children[1].observe(seconds)


def exposition() -> tuple[bytes, str]:
    """The text exposition and its content type: every gunicorn worker's series added up when
    PROMETHEUS_MULTIPROC_DIR is set (ops/server.py sets it in the master), else this process's
    (tests, manage.py), with its runtime metrics."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
