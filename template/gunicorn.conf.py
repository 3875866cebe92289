"""gunicorn settings, from the same validated environment as Django (config/env.py).

`gunicorn --config gunicorn.conf.py config.wsgi:application` is the container's command and
`make run`'s. A bad environment stops the master here, before it binds, with one message naming
every bad variable (exit status 78).
"""

import math
from pathlib import Path
from typing import Any

from config.env import load_or_exit
from ops import server, tracing

env = load_or_exit()

# All interfaces of the container (the pod IP included); the operational endpoints' own port
# too when MANAGEMENT_PORT is set (ops.middleware tells the two apart by the accepting socket).
bind = [f"0.0.0.0:{env.port}"]
if env.management_port is not None:
    bind.append(f"0.0.0.0:{env.management_port}")

# gevent workers: every connection is a greenlet, so clients that send their request slowly cost
# a little memory each instead of a thread each. (A gthread worker hands a connection to a pool
# thread once its first byte arrives, and that thread then waits for the rest of the headers with
# no deadline: a few dozen slow clients would hold every thread, and the liveness probe with
# them.) psycopg 3 and the standard library yield to the other greenlets while they wait.
worker_class = "gevent"
workers = env.web_concurrency
worker_connections = 1000  # open client connections per worker
timeout = env.gunicorn_timeout  # a worker silent for longer (a blocked event loop) is replaced
# The gevent worker bounds the wait for each request line and headers (the first request's too)
# by keepalive: 10 s to send them, then the connection is closed. Idle kept-alive connections
# are closed after as long.
keepalive = 10
# Request headers: the request line up to 8190 bytes (gunicorn's maximum), each header field up
# to 16 KiB, at most 100 fields; over that gunicorn answers 431 (414 for the request line).
limit_request_line = 8190
limit_request_field_size = 16 * 1024
limit_request_fields = 100
# In-flight requests get this long to finish once the server stops accepting (whole seconds).
graceful_timeout = math.ceil(env.shutdown_timeout_seconds)
# Heartbeat files on tmpfs: never on a (read-only or slow, overlay) container filesystem.
worker_tmp_dir = "/dev/shm" if Path("/dev/shm").is_dir() else None  # noqa: S108
# gunicorn 25.1+ opens a control socket under $HOME by default: nothing uses it here, and the
# container's root filesystem is read-only.
control_socket_disable = True

loglevel = env.log_level
logger_class = "ops.server.JsonLogger"
accesslog = "-"
errorlog = "-"

_metrics_dir: tuple[str, bool] | None = None


def on_starting(arbiter: Any) -> None:
    global _metrics_dir  # noqa: PLW0603 - gunicorn hooks are module-level functions
    _metrics_dir = server.prepare_metrics_dir()


def when_ready(arbiter: Any) -> None:
    server.install_drain(arbiter, env.shutdown_delay_seconds)


def post_worker_init(worker: Any) -> None:
    # The worker has loaded the application (config/wsgi.py started the traces, if they are on).
    if tracing.running():
        server.watch_stop(worker)


def worker_exit(arbiter: Any, worker: Any) -> None:
    # After the drain: the spans the worker still holds are exported within what is left of
    # graceful_timeout (the master kills a worker still running after it). Nothing when off.
    tracing.shutdown(server.time_left(worker, graceful_timeout))


def post_request(worker: Any, req: Any, environ: dict[str, Any], resp: Any) -> None:
    # Each keep-alive connection waits its turn behind the worker's other ready connections
    # (ops.server.take_turns says why): without it the p99 under load was 10x the median.
    server.take_turns()


def child_exit(arbiter: Any, worker: Any) -> None:
    server.worker_exited(worker.pid)


def on_exit(arbiter: Any) -> None:
    if _metrics_dir is not None and _metrics_dir[1]:
        server.remove_metrics_dir(_metrics_dir[0])
