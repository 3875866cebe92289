"""The server as the container runs it: gunicorn with gunicorn.conf.py, SIGTERM, logs."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from config.env import BASE_DIR, EX_CONFIG
from ops.tests.support import Server, free_port, subprocess_env

SLOW_APP = "ops.tests.slow_wsgi:application"


def test_sigterm_drains_then_stops_gracefully(start_gunicorn: Callable[..., Server]) -> None:
    delay, slow = 1.0, 2.5
    server = start_gunicorn(
        SLOW_APP,
        SHUTDOWN_DELAY_SECONDS=str(delay),
        SHUTDOWN_TIMEOUT_SECONDS="10",
        WEB_CONCURRENCY="1",
    )
    in_flight: dict[str, object] = {}

    def slow_request() -> None:
        in_flight["result"] = server.get(f"/__slow?seconds={slow}", timeout=30)

    request = threading.Thread(target=slow_request)
    request.start()
    time.sleep(0.5)  # the request is now being served
    sigterm_at = time.monotonic()
    server.process.send_signal(signal.SIGTERM)

    # At once (as soon as the master has passed the signal on to the worker, well inside the
    # delay): not ready any more, still alive, still serving new connections.
    ready_by = sigterm_at + delay / 2
    while (answer := server.get("/ready"))[0] != 503 and time.monotonic() < ready_by:
        time.sleep(0.02)
    status, body = answer
    assert (status, json.loads(body)["status"]) == (503, "draining")
    assert server.get("/health")[0] == 200

    # After the delay the listener is closed: new connections are refused...
    deadline = time.monotonic() + delay + 3
    while time.monotonic() < deadline:
        try:
            server.get("/health", timeout=1)
            time.sleep(0.1)
        except OSError:
            break
    else:
        pytest.fail("still accepting connections long after SHUTDOWN_DELAY_SECONDS")
    assert time.monotonic() - sigterm_at >= delay

    # ...while the request begun before SIGTERM completes, and the server exits 0.
    request.join(timeout=15)
    assert in_flight["result"] == (200, b"done")
    assert server.process.wait(timeout=15) == 0
    assert time.monotonic() - sigterm_at < delay + 10


def test_json_logs_healthcheck_and_no_control_socket(
    start_gunicorn: Callable[..., Server], tmp_path: Path
) -> None:
    server = start_gunicorn()
    healthcheck = [sys.executable, "-m", "ops.healthcheck"]  # the image's HEALTHCHECK
    env = subprocess_env(tmp_path, PORT=str(server.port))
    assert subprocess.run(healthcheck, cwd=BASE_DIR, env=env, check=False).returncode == 0

    request = urllib.request.Request(server.url("/"), headers={"X-Request-ID": "trace-42abcdef"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.headers["X-Request-ID"] == "trace-42abcdef"

    # gunicorn 25.1+ would create $HOME/.gunicorn/gunicorn.ctl, which a read-only root
    # filesystem breaks; HOME is tmp_path here.
    assert not (tmp_path / ".gunicorn").exists()

    server.process.send_signal(signal.SIGINT)
    server.process.wait(timeout=15)
    assert subprocess.run(healthcheck, cwd=BASE_DIR, env=env, check=False).returncode == 1

    records = [json.loads(line) for line in server.log_lines()]  # every line is JSON
    assert all({"time", "level", "logger", "msg"} <= record.keys() for record in records)
    access = [record for record in records if record["logger"] == "gunicorn.access"]
    assert all(record["request_id"] for record in access)
    [index] = [record for record in access if record["path"] == "/"]
    assert index["request_id"] == "trace-42abcdef"
    assert (index["method"], index["status"], index["route"]) == ("GET", 200, "/")
    assert index["duration_ms"] > 0


def test_a_bad_environment_stops_gunicorn_before_it_binds(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            "gunicorn.conf.py",
            "config.wsgi:application",
        ],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=subprocess_env(
            tmp_path, PORT=str(free_port()), LOG_LEVEL="chatty", SHUTDOWN_TIMEOUT_SECONDS="soon"
        ),
    )
    assert result.returncode == EX_CONFIG
    assert "LOG_LEVEL" in result.stderr
    assert "SHUTDOWN_TIMEOUT_SECONDS" in result.stderr


def test_management_port_serves_the_probes_and_port_does_not(
    start_gunicorn: Callable[..., Server], tmp_path: Path
) -> None:
    management = free_port()
    server = start_gunicorn(MANAGEMENT_PORT=str(management))
    for path in ["/health", "/ready", "/health/detailed", "/metrics"]:
        assert server.get(path, port=management)[0] == 200
        status, body = server.get(path)
        assert (status, json.loads(body)["error"]) == (404, "not_found")
    assert server.get("/")[0] == 200
    assert server.get("/", port=management)[0] == 404
    # The image's HEALTHCHECK asks the management port.
    healthcheck = [sys.executable, "-m", "ops.healthcheck"]
    env = subprocess_env(tmp_path, PORT=str(server.port), MANAGEMENT_PORT=str(management))
    assert subprocess.run(healthcheck, cwd=BASE_DIR, env=env, check=False).returncode == 0
    # Requests on both ports are counted.
    metrics = server.get("/metrics", port=management)[1].decode()
    assert 'http_requests_total{method="GET",route="/health",status_code="200"}' in metrics
    assert 'http_requests_total{method="GET",route="unmatched",status_code="404"}' in metrics


def _raw(port: int, request: bytes, timeout: float = 5) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        return sock.recv(65536)


def test_header_limits(start_gunicorn: Callable[..., Server]) -> None:
    server = start_gunicorn()
    padding = "".join(f"X-Pad-{i}: {'p' * 2000}\r\n" for i in range(4))
    served = _raw(server.port, f"GET /health HTTP/1.1\r\nHost: x\r\n{padding}\r\n".encode())
    assert served.startswith(b"HTTP/1.1 200")
    big = f"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {'b' * 32 * 1024}\r\n\r\n".encode()
    assert _raw(server.port, big).startswith(b"HTTP/1.1 431")


def test_slow_clients_do_not_stall_health(start_gunicorn: Callable[..., Server]) -> None:
    """64 connections trickle their headers; /health still answers within 1 s."""
    server = start_gunicorn(WEB_CONCURRENCY="1")
    slow = []
    for _ in range(64):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: s")
        slow.append(sock)
    try:
        for _ in range(3):
            began = time.monotonic()
            assert server.get("/health", timeout=5)[0] == 200
            assert time.monotonic() - began < 1
            for sock in slow:
                sock.sendall(b"s")
            time.sleep(0.5)
    finally:
        for sock in slow:
            sock.close()


def test_a_busy_keep_alive_connection_does_not_starve_the_others(
    start_gunicorn: Callable[..., Server],
) -> None:
    """One connection sends 500 requests at once (pipelined); once the worker is serving them,
    another connection sends one: it is answered within the worker's next turns, not after the
    first connection's 500 (ops.server.take_turns)."""
    server = start_gunicorn(WEB_CONCURRENCY="1")
    count = 500
    busy = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    other = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    # The busy connection's answers are read as they come, so that no full socket buffer makes
    # the worker wait (and switch) on its own.
    reader = threading.Thread(target=lambda: _drain(busy), daemon=True)
    reader.start()
    try:
        request = b"GET /busy HTTP/1.1\r\nHost: localhost\r\n\r\n"
        busy.sendall(request * count)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not _paths(server):
            time.sleep(0.001)
        served_before = len(_paths(server))  # at least this many were served before /other came
        other.sendall(b"GET /other HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert other.recv(65536).startswith(b"HTTP/1.1 ")
        while time.monotonic() < deadline and len(_paths(server)) < count + 1:
            time.sleep(0.05)
    finally:
        busy.close()
        other.close()
    paths = _paths(server)
    assert len(paths) == count + 1
    # The access log is written in the order the requests were served: without turns, /other
    # would come after all 500.
    position = paths.index("/other")
    assert position - served_before < count // 5, (position, served_before)


def _drain(sock: socket.socket) -> None:
    try:
        while sock.recv(65536):
            pass
    except OSError:
        pass


def _paths(server: Server) -> list[str]:
    records = [json.loads(line) for line in server.log_lines()]
    return [record["path"] for record in records if record.get("logger") == "gunicorn.access"]


def test_the_app_loads_without_dnspython_and_the_bundled_checks_still_import(
    tmp_path: Path,
) -> None:
    """A worker's start does not pay for django-health-check's DNS check (ops/__init__.py); a
    service that lists a bundled check still imports it the usual ways."""
    script = (
        "import sys\n"
        "from config.wsgi import application\n"
        "from ops.checks import run_checks\n"
        "assert [r.ok for r in run_checks()] == [True], run_checks()\n"
        "assert 'dns' not in sys.modules, 'dnspython loaded'\n"
        "import health_check\n"
        "from health_check import Cache\n"
        "from health_check.checks import DNS\n"
        "assert health_check.Cache is Cache and health_check.checks.DNS is DNS\n"
        "assert health_check.__version__\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=BASE_DIR,
        env=subprocess_env(tmp_path),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
