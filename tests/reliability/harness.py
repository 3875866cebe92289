"""Zero-downtime harness: service instances, an nginx "Service" in front of them, and wrk as load.

Kubernetes routes traffic to the pods that a Service selects *and* that pass their readiness probe;
kube-proxy follows the endpoints as they change. Here, on one machine without a cluster:

* ``Instance``: one natively built service process (a "pod") on its own loopback port;
* ``Endpoints``: an nginx (Debian's package, started here, loopback only) whose upstream is kept
  equal to the *ready* members of a selector, by a thread that probes each member's ``/ready``
  like a kubelet and reloads nginx whenever the ready set or the weights change (canary weights
  become upstream weights). nginx retries a request on the next upstream after a connection error,
  as a client of a Service sees a new connection land on a live pod;
* ``Load``: wrk under a Lua script that counts every non-2xx response and prints one JSON summary.

Everything binds and connects to 127.0.0.1 only, and every loop is bounded in time.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from helpers import tool_env

LOOPBACK = "127.0.0.1"
NGINX = "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "nginx"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def get(port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": f"{LOOPBACK}:{port}"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def status_or_none(port: int, path: str, timeout: float = 0.5) -> int | None:
    try:
        return get(port, path, timeout)[0]
    except OSError:
        return None


def wait_for(predicate, timeout: float, what: str, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# --------------------------------------------------------------------------------------------
# Instances
# --------------------------------------------------------------------------------------------
@dataclass
class Recipe:
    """How to run a built render natively: the production command and its environment."""

    command: list[str]
    env: dict[str, str] = field(default_factory=dict)


class Instance:
    """One service process ("pod") of a version, on a free loopback port."""

    def __init__(self, cwd: Path, recipe: Recipe, version: str, logs: Path, **env: str):
        self.cwd, self.recipe, self.version = cwd, recipe, version
        self.port = free_port()
        self.log = logs / f"{version}-{self.port}.log"
        self.env = {
            "PORT": str(self.port),
            "APP_ENV": "production",
            "LOG_LEVEL": "warning",
            "APP_VERSION": version,
            "SHUTDOWN_DELAY_SECONDS": "1",
            "SHUTDOWN_TIMEOUT_SECONDS": "5",
            **recipe.env,
            **env,
        }
        self.proc: subprocess.Popen | None = None
        self.started = 0.0
        self.signalled = 0.0

    def __repr__(self) -> str:
        return f"<{self.version} :{self.port}>"

    def start(self) -> "Instance":
        with open(self.log, "ab") as out:
            self.started = time.monotonic()
            self.proc = subprocess.Popen(
                self.recipe.command,
                cwd=self.cwd,
                env=tool_env(**self.env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ready(self) -> bool:
        return self.alive and status_or_none(self.port, "/ready") == 200

    def wait_ready(self, timeout: float = 90) -> float:
        """Seconds from process start until /ready answered 200."""

        def check():
            if not self.alive:
                raise AssertionError(f"{self} exited with {self.proc.returncode}:\n{self.tail()}")
            return self.ready()

        wait_for(check, timeout, f"{self} to be ready")
        return time.monotonic() - self.started

    def terminate(self) -> None:
        """SIGTERM to the service process itself, as the kubelet sends it to PID 1."""
        self.signalled = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)

    def wait_exit(self, timeout: float = 30) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired as error:
            raise AssertionError(f"{self} still running {timeout} s after SIGTERM:\n{self.tail()}") from error

    def kill(self) -> None:
        if self.alive:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def tail(self, lines: int = 30) -> str:
        return (
            "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""
        )


# --------------------------------------------------------------------------------------------
# nginx as the Service: the upstream follows the ready members of the selector
# --------------------------------------------------------------------------------------------
NGINX_CONF = """\
{user}
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  client_body_temp_path {dir}/tmp/body;
  proxy_temp_path {dir}/tmp/proxy;
  fastcgi_temp_path {dir}/tmp/fastcgi;
  uwsgi_temp_path {dir}/tmp/uwsgi;
  scgi_temp_path {dir}/tmp/scgi;
  log_format cutover '{generation} $upstream_addr $upstream_status $status';
  access_log {dir}/access.log cutover buffer=256k flush=1s;
  upstream service {{
{servers}
    keepalive 32;
  }}
  server {{
    listen {listen};
    location = /__generation {{ access_log off; return 200 "{generation}"; }}
    location / {{
      proxy_pass http://service;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      # what a client of a Kubernetes Service sees: a refused or reset connection lands elsewhere
      proxy_next_upstream error timeout http_502 http_503 http_504;
      proxy_next_upstream_tries 3;
      proxy_connect_timeout 1s;
      proxy_read_timeout 10s;
    }}
  }}
}}
"""


class Endpoints:
    """nginx on a free loopback port whose upstream = ready members of ``selector``, with weights.

    A background thread probes each member's /ready every ``period`` seconds (a kubelet's
    readiness probe) and reloads nginx when the ready set changes (the endpoints controller and
    kube-proxy); ``select`` changes the selector, as a blue-green switch or a canary step does.
    """

    def __init__(self, workdir: Path, period: float = 0.1):
        self.dir = workdir
        (self.dir / "tmp").mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.period = period
        self.selector: dict[Instance, int] = {}
        self.applied: tuple = ()
        self.generation = 0
        self.history: dict[int, dict[int, int]] = {}  # generation -> {port: weight}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.proc: subprocess.Popen | None = None
        self.thread = threading.Thread(target=self._reconcile_loop, daemon=True)
        self.errors: list[str] = []

    # -- configuration --------------------------------------------------------------------------
    def _write(self, endpoints: tuple) -> None:
        self.generation += 1
        self.history[self.generation] = dict(endpoints)
        servers = "\n".join(
            f"    server {LOOPBACK}:{port} weight={weight} max_fails=1 fail_timeout=5s;"
            for port, weight in endpoints
        )
        user = "user root root;" if os.geteuid() == 0 else ""  # workers otherwise drop to nobody
        (self.dir / "nginx.conf").write_text(
            NGINX_CONF.format(
                user=user,
                dir=self.dir,
                servers=servers,
                listen=f"{LOOPBACK}:{self.port}",
                generation=self.generation,
            )
        )
        self.applied = endpoints

    def _desired(self) -> tuple:
        with self.lock:
            members = list(self.selector.items())
        return tuple(sorted((m.port, w) for m, w in members if w > 0 and m.ready()))

    def _reconcile_loop(self) -> None:
        while not self.stopping.wait(self.period):
            try:
                desired = self._desired()
                if desired and desired != self.applied:
                    self._write(desired)
                    self.proc.send_signal(signal.SIGHUP)  # graceful reload: old workers finish
            except Exception as error:  # noqa: BLE001 - reported by the test, never silently lost
                self.errors.append(repr(error))

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, members: dict[Instance, int]) -> "Endpoints":
        self.selector = dict(members)
        desired = self._desired()
        assert desired, f"no ready member among {members}"
        self._write(desired)
        self.proc = subprocess.Popen(
            [
                NGINX,
                "-p",
                str(self.dir),
                "-c",
                str(self.dir / "nginx.conf"),
                "-e",
                str(self.dir / "error.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(lambda: self.serving_generation() == self.generation, 10, "nginx to serve")
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(timeout=5)
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful stop
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    # -- the choreography's verbs -------------------------------------------------------------
    def select(self, members: dict[Instance, int]) -> None:
        """Change which instances the Service selects (weight 0 = none of the traffic)."""
        with self.lock:
            self.selector = dict(members)

    def serving_generation(self) -> int | None:
        try:
            status, body = get(self.port, "/__generation", timeout=1)
        except OSError:
            return None
        return int(body) if status == 200 else None

    def settle(self, timeout: float = 30) -> int:
        """Wait until nginx routes exactly to the ready selected members; returns the generation."""

        def settled():
            desired = self._desired()
            return desired and desired == self.applied and self.serving_generation() == self.generation

        wait_for(settled, timeout, f"the Service to route to {self.selector}")
        # Right after a reload the old worker may still accept for a moment: settled means that
        # several fresh connections in a row land on the new configuration.
        wait_for(
            lambda: all(self.serving_generation() == self.generation for _ in range(5)),
            timeout,
            "nginx's old workers to stop accepting",
        )
        return self.generation

    def version(self) -> str:
        """The version that answers through the Service (from /health/detailed)."""
        return json.loads(get(self.port, "/health/detailed")[1])["version"]

    def expect_version(self, expected: str, timeout: float = 10) -> None:
        """Every fresh request answers `expected` within `timeout`: on a loaded machine an old nginx
        worker can still accept a connection for a moment after the reload settled."""
        wait_for(lambda: self.version() == expected, timeout, f"the Service to answer {expected}")

    def retried(self) -> int:
        """Requests nginx passed to a second upstream after an error from the first."""
        log = self.dir / "access.log"
        return sum(", " in line for line in log.read_text().splitlines()) if log.exists() else 0

    def shares(self) -> dict[int, tuple[int, dict[int, float]]]:
        """Per configuration generation: (requests, {upstream port: share of them it answered})."""
        counts: dict[int, Counter] = defaultdict(Counter)
        log = self.dir / "access.log"
        for line in log.read_text().splitlines() if log.exists() else []:
            generation, rest = line.split(" ", 1)
            addresses = re.findall(r":(\d+)", rest)  # after a retry: "a:1, b:2"; the last one answered
            if addresses:
                counts[int(generation)][int(addresses[-1])] += 1
        return {
            gen: (sum(c.values()), {port: n / sum(c.values()) for port, n in c.items()})
            for gen, c in counts.items()
        }


# --------------------------------------------------------------------------------------------
# Load: wrk with a Lua script that counts non-2xx answers and prints one JSON line
# --------------------------------------------------------------------------------------------
WRK_SCRIPT = """\
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) non2xx = 0 end
%(headers)s
function delay() return %(delay_ms)d end
function response(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end
function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do bad = bad + thread:get("non2xx") end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%%d,"duration_s":%%.3f,"non2xx":%%d,"connect":%%d,"read":%%d,' ..
    '"write":%%d,"status":%%d,"timeout":%%d,"p50_ms":%%.3f,"p99_ms":%%.3f}\\n',
    summary.requests, summary.duration / 1e6, bad, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50) / 1e3, latency:percentile(99) / 1e3))
end
"""


@dataclass
class LoadResult:
    requests: int
    duration_s: float
    non2xx: int
    connect: int
    read: int
    write: int
    status: int
    timeout: int
    p50_ms: float
    p99_ms: float

    @property
    def failed(self) -> int:
        """Every request that did not get a 2xx: non-2xx answers plus socket errors and timeouts."""
        return self.non2xx + self.connect + self.read + self.write + self.timeout

    def summary(self) -> str:
        return (
            f"{self.requests} requests in {self.duration_s:.1f} s, {self.failed} failed "
            f"(non-2xx {self.non2xx}, connect {self.connect}, read {self.read}, write {self.write}, "
            f"timeout {self.timeout}), p99 {self.p99_ms:.1f} ms"
        )


class Load:
    """Constant load with wrk against a loopback URL; bounded by ``max_seconds``; stop() ends it."""

    def __init__(
        self,
        port: int,
        workdir: Path,
        path: str = "/health",
        connections: int = 8,
        delay_ms: int = 2,
        max_seconds: int = 120,
        keepalive: bool = False,
    ):
        script = workdir / "load.lua"
        headers = "" if keepalive else 'wrk.headers["Connection"] = "close"'
        script.write_text(WRK_SCRIPT % {"delay_ms": delay_ms, "headers": headers})
        self.cmd = [
            "wrk",
            "-t",
            "1",
            "-c",
            str(connections),
            "-d",
            f"{max_seconds}s",
            "--timeout",
            "5s",
            "-s",
            str(script),
            f"http://{LOOPBACK}:{port}{path}",
        ]
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Load":
        self.proc = subprocess.Popen(
            self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
        time.sleep(0.3)  # let wrk connect before the choreography starts
        assert self.proc.poll() is None, self.proc.stdout.read()
        return self

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> LoadResult:
        """SIGINT: wrk stops and prints its summary (our Lua done() line)."""
        assert self.proc.poll() is None, "the load ended before the choreography: raise max_seconds"
        self.proc.send_signal(signal.SIGINT)
        output, _ = self.proc.communicate(timeout=30)
        match = re.search(r"^WRK_JSON (\{.*\})$", output, re.M)
        assert match, f"no summary from wrk:\n{output}"
        return LoadResult(**json.loads(match.group(1)))


# --------------------------------------------------------------------------------------------
# SIGTERM drill: straight at one instance, no proxy in between
# --------------------------------------------------------------------------------------------
@dataclass
class Sent:
    at: float  # monotonic time the request was sent
    status: int | None  # None: no answer (refused, reset, timed out)
    error: str = ""


class DirectLoad:
    """A few client threads, each sending GETs on fresh connections and recording every outcome."""

    def __init__(self, port: int, path: str = "/health", clients: int = 4, max_seconds: float = 60):
        self.port, self.path = port, path
        self.records: list[Sent] = []
        self.stopping = threading.Event()
        self.deadline = time.monotonic() + max_seconds
        self.threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]

    def _client(self) -> None:
        while not self.stopping.is_set() and time.monotonic() < self.deadline:
            sent = time.monotonic()
            try:
                status = get(self.port, self.path, timeout=10)[0]
                self.records.append(Sent(sent, status))
            except OSError as error:
                self.records.append(Sent(sent, None, type(error).__name__))
                time.sleep(0.01)  # refused: the listener is closed; do not spin

    def __enter__(self) -> "DirectLoad":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=15)


class PartialRequest:
    """A request begun but not finished: the request line and some headers are sent, the final
    blank line is held back. Servers count such a connection as active (in flight), not idle."""

    def __init__(self, port: int, path: str = "/health"):
        self.sock = socket.create_connection((LOOPBACK, port), timeout=10)
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\n".encode())

    def finish(self) -> int | None:
        """Send the rest; returns the status the server answered, or None if it never did."""
        try:
            self.sock.sendall(b"Connection: close\r\n\r\n")
            data = b""
            while b"\r\n" not in data:
                chunk = self.sock.recv(4096)
                if not chunk:
                    break
                data += chunk
            match = re.match(rb"HTTP/1\.[01] (\d{3})", data)
            return int(match.group(1)) if match else None
        except OSError:
            return None
        finally:
            self.sock.close()
