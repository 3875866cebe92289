"""OpenTelemetry traces, off unless an OTLP endpoint is set (docs/service-contract.md, "Traces").

This module is the switch; ``ops.otel`` does the work and is imported only when tracing is on, so
with tracing off (the default) no OpenTelemetry package is even loaded: no spans, no
``traceparent`` handling, nothing sent, no trace ids in the logs, no cost per request.

``config/wsgi.py`` calls ``start()`` when the application is loaded: in each gunicorn worker,
after the fork and after the gevent worker's monkey-patching (gunicorn loads the application in
every worker; ``preload_app`` stays off), so the batch span processor's export thread belongs to
the worker that uses it and is a cooperative gevent thread like everything else there.
gunicorn.conf.py's ``worker_exit`` hook calls ``shutdown()`` after the drain, with what is left of
SHUTDOWN_TIMEOUT_SECONDS; ``manage.py runserver`` loads the application through the same file.
"""

from __future__ import annotations

import atexit
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from config.env import Settings
    from ops.otel import Pipeline

logger = logging.getLogger("ops.tracing")

# The running pipeline's shutdown (flush and stop within the seconds given); None while off.
_shutdown: Callable[[float], None] | None = None


def start(
    env: Settings, service_name: str, exporter: SpanExporter | None = None
) -> Pipeline | None:
    """Turn tracing on in this process when ``env`` asks for it: the pipeline, or None when off.

    Call it once per process, after Django's set-up and before its middleware is loaded (the
    instrumentation adds its own). A set-up that fails (an OTEL_* variable the SDK rejects)
    leaves tracing off with one warning: traces never stop the service. ``exporter`` replaces
    the OTLP exporter (tests).
    """
    global _shutdown  # noqa: PLW0603 - one pipeline per process
    if _shutdown is not None or not env.tracing:
        return None
    # The stable HTTP semantic conventions (http.request.method, http.response.status_code),
    # unless the operator chose otherwise; the instrumentation reads this when it is set up.
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    try:
        from ops import otel  # noqa: PLC0415 - the SDK is loaded only when tracing is on

        pipeline = otel.install(env, service_name, exporter)
    except Exception as exc:  # whatever the SDK raises, the service serves on
        logger.warning("traces off: the OpenTelemetry set-up failed: %s", exc)
        return None
    _shutdown = pipeline.shutdown
    # manage.py runserver and other servers without gunicorn's worker_exit hook.
    atexit.register(shutdown, env.shutdown_timeout_seconds)
    return pipeline


def running() -> bool:
    return _shutdown is not None


def shutdown(timeout_seconds: float) -> None:
    """Export the spans still held, within ``timeout_seconds``, and stop; nothing when off."""
    global _shutdown
    stop, _shutdown = _shutdown, None
    if stop is not None:
        stop(max(timeout_seconds, 0.0))
