"""gunicorn integration, used by gunicorn.conf.py in the master process (no Django here).

- JsonLogger: gunicorn's own messages and its access log (one line per request, with the
  request id that the X-Request-ID response header carries; the operational endpoints at
  debug) as JSON lines on stdout.
- Draining: on SIGTERM, /ready turns 503 at once while the workers keep serving for
  SHUTDOWN_DELAY_SECONDS (so load balancers and Kubernetes endpoints stop routing here); then
  gunicorn's graceful stop closes the listener and lets in-flight requests finish within
  graceful_timeout (SHUTDOWN_TIMEOUT_SECONDS); the master exits 0.
- Prometheus multiprocess mode: every worker writes its metrics to a private directory, and
  /metrics, whichever worker answers it, adds them up.
- Fair turns between keep-alive connections: after each request a gevent worker lets its other
  connections' waiting requests go first (take_turns).
- Traces: the request's access line carries the trace and span ids of its server span, and a
  worker knows when it was told to stop, so that the spans it holds are flushed within what is
  left of the drain (watch_stop, time_left).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from gunicorn import glogging

from ops import lifecycle
from ops.logs import (
    ACCESS_FIELDS,
    REQUEST_ID,
    ROUTE,
    TRACE_IDS,
    AccessFormatter,
    JsonFormatter,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The operational endpoints (ops.middleware.OPS_ENDPOINTS; that module imports Django).
OPS_PATHS = frozenset({"/health", "/ready", "/health/detailed", "/metrics"})
# The route of a request no URL pattern matched (ops.metrics.UNMATCHED; that module is not
# imported here, in gunicorn's master, before the metrics directory is set).
UNMATCHED = "unmatched"


class JsonLogger(glogging.Logger):
    """gunicorn's logger, writing JSON lines to stdout (errors too: one stream, one format)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log, formatter in (
            (self.error_log, JsonFormatter()),
            (self.access_log, AccessFormatter()),
        ):
            for handler in log.handlers:
                if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stderr:
                    handler.setStream(sys.stdout)
                handler.setFormatter(formatter)
        # LOG_LEVEL applies to request lines too (they are "info").
        self.access_log.setLevel(self.loglevel)

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> None:
        if not self.access_log_enabled:
            return
        status = getattr(resp, "status_code", None)
        path = environ.get("PATH_INFO")
        # Probes and scrapes call the operational endpoints every few seconds: debug, not info.
        # Other 5xx answers: error (LOG_LEVEL=warning still shows them), as in every language.
        if path in OPS_PATHS and status != 404:
            level = logging.DEBUG
        elif status is not None and status >= 500:
            level = logging.ERROR
        else:
            level = logging.INFO
        log = self.access_log
        if not log.isEnabledFor(level):
            return  # nothing is built for a line that will not be written (probes at info)
        # No query string, bodies, client address or user agent: they can hold personal data
        # or secrets. The request id joins this line to the application's own log lines.
        # The contract's request line (docs/service-contract.md), then gunicorn's own extras.
        fields = {
            # the X-Request-ID header's value (ops.middleware.RequestIdMiddleware); a request
            # refused before it has none
            "request_id": environ.get(REQUEST_ID),
            "method": environ.get("REQUEST_METHOD"),
            "path": path,
            # ops.middleware.MetricsMiddleware's label; a request refused before it: unmatched
            "route": environ.get(ROUTE, UNMATCHED),
            "status": status,
            "duration_ms": round(request_time.total_seconds() * 1000, 2),
            "bytes": getattr(resp, "sent", None),
            "protocol": environ.get("SERVER_PROTOCOL"),
        }
        ids = environ.get(TRACE_IDS)  # set only when tracing is on and the request was sampled
        if ids is not None:
            fields["trace_id"], fields["span_id"] = ids
        # makeRecord and handle, not log(): log() would also walk the stack for the caller's file
        # and line, which no line shows. Handlers, filters and levels apply as usual.
        record = log.makeRecord(
            log.name, level, __file__, 0, "request", (), None, extra={ACCESS_FIELDS: fields}
        )
        log.handle(record)


def take_turns() -> None:
    """After a request, let the worker's other ready connections go first (gunicorn's
    post_request hook).

    gunicorn's gevent worker reads a keep-alive connection's next request as soon as it has
    answered the previous one, and a read that finds data waiting does not yield to gevent's hub.
    Under load, a fast client's next request is usually there already, so one connection could
    be served many times in a row while the worker's other connections waited: measured under
    `wrk -c16`, a median of 0.4 ms and a p99 of 100 ms or more on the same worker. One
    `gevent.sleep(0)` per request puts this connection behind the others that are ready (a
    greenlet switch, a few microseconds). Without gevent (another worker class) nothing happens.
    """
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("socket"):
        import gevent  # noqa: PLC0415 - only under the gevent worker

        gevent.sleep(0)


def install_drain(server: Any, delay_seconds: float) -> None:
    """Make the first SIGTERM start draining; the real (graceful) stop follows after the delay.

    gunicorn's own SIGTERM handling stops accepting at once (on every bound port: the management
    port stops with the application port). Here the master's `handle_term` is
    wrapped: the first SIGTERM sets the shared draining flag (every worker's /ready answers 503)
    and arms a timer; when it fires, or on a second SIGTERM, gunicorn's graceful stop runs.
    SIGINT and SIGQUIT (Ctrl-C) keep gunicorn's immediate stop.
    """
    graceful_stop = server.handle_term

    def handle_term() -> None:
        if lifecycle.is_draining() or delay_seconds <= 0:
            graceful_stop()  # raises StopIteration: gunicorn halts gracefully, exit status 0
        lifecycle.start_draining()
        server.log.info(
            "SIGTERM received: readiness now 503; serving for %.1f s, then stopping", delay_seconds
        )

        def delay_over(signum: int, frame: FrameType | None) -> None:
            server.signal(signal.SIGTERM, frame)  # queued; handled by the master's main loop

        signal.signal(signal.SIGALRM, delay_over)
        signal.setitimer(signal.ITIMER_REAL, delay_seconds)

    server.handle_term = handle_term


# The attribute of a gunicorn worker that holds when it was told to stop (time.monotonic()).
STOP_SIGNALLED = "stop_signalled"


def watch_stop(worker: Any) -> None:
    """Note when the master tells this worker to stop (its SIGTERM, once the drain delay is over).

    From then on the master waits graceful_timeout for the worker before it kills it: time_left
    tells the worker_exit hook how much of that remains. gunicorn's own handler still runs.
    """
    handle_exit = signal.getsignal(signal.SIGTERM)

    def note_stop(signum: int, frame: FrameType | None) -> None:
        if getattr(worker, STOP_SIGNALLED, None) is None:
            setattr(worker, STOP_SIGNALLED, time.monotonic())
        if callable(handle_exit):
            handle_exit(signum, frame)

    signal.signal(signal.SIGTERM, note_stop)
    signal.siginterrupt(signal.SIGTERM, False)  # as gunicorn sets it: requests are not interrupted


def time_left(worker: Any, graceful_timeout: float, margin: float = 0.5) -> float:
    """Seconds the worker has left before the master kills it (all of them when not stopping)."""
    since: float | None = getattr(worker, STOP_SIGNALLED, None)
    spent = 0.0 if since is None else time.monotonic() - since
    return max(graceful_timeout - spent - margin, 0.0)


def prepare_metrics_dir() -> tuple[str, bool]:
    """Point prometheus_client's multiprocess mode at an empty directory before workers start.

    Returns the directory and whether we created it (and so remove it on exit). A directory given
    in PROMETHEUS_MULTIPROC_DIR is emptied of a previous run's files.
    """
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
        for stale in Path(given).glob("*.db"):
            stale.unlink()
        return given, False
    path = tempfile.mkdtemp(prefix="prometheus-")
    os.environ[MULTIPROC_ENV] = path
    return path, True


def worker_exited(pid: int) -> None:
    """Drop a dead worker's live gauges (its counters and histograms still count)."""
    from prometheus_client import multiprocess  # noqa: PLC0415 - after the directory is set

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def remove_metrics_dir(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
