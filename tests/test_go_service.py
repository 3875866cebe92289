"""The rendered Go service: its toolchain (make setup lint typecheck test build), and what only
Go has: a static binary, the module checksums, configuration errors, and the SIGTERM sequence
under concurrent load. The bodies, words, headers, limits and metrics every language shares are
tests/test_contract.py's.

Modules come from the Go module proxy (GOPROXY as the environment sets it, else Go's default),
checked against the committed go.sum; the toolchain is the local one (GOTOOLCHAIN=local). One
GOCACHE and one GOMODCACHE are shared by the whole session (and by the xdist workers): the first
compile of the standard library and the modules takes about a minute, later ones seconds.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Self

import pytest
from docker.utils.build import PatternMatcher
from helpers import Project, run, tool_env

from extensions.facts import FACTS

SHUTDOWN_DELAY = 1.0

# One worker builds the service once for the whole module (with `pytest -n 2 --dist loadgroup`).
pytestmark = pytest.mark.xdist_group("go-service")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def go_env(tmp_path_factory) -> dict[str, str]:
    """Environment for the go command: local toolchain, one build and one module cache per
    session (or the GOCACHE and GOMODCACHE given, which CI can keep between runs)."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by the workers of this session; Go's caches are concurrency-safe
    return {
        "GOTOOLCHAIN": "local",
        "GOCACHE": os.environ.get("GOCACHE") or str(base / "go-build-cache"),
        "GOMODCACHE": os.environ.get("GOMODCACHE") or str(base / "go-mod-cache"),
        "GOPATH": str(base / "go-path"),
    }


@pytest.fixture(scope="module")
def go_service(render, go_env, tmp_path_factory) -> Project:
    """A render on a non-default port, through `make setup lint typecheck test build`."""
    port = free_port()
    project = render(language="go", port=port).clone_to(tmp_path_factory.mktemp("go") / "service")
    run(["make", "setup", "lint", "typecheck", "test", "build", "VERSION=1.4.2-test"], cwd=project.path,
        timeout=900, **go_env)
    return project


def service_env(go_env: dict[str, str], **extra: str) -> dict[str, str]:
    """The tools' environment without any PORT of the caller's, plus extra variables."""
    env = tool_env(**go_env)
    env.pop("PORT", None)
    env.update(extra)
    return env


def has_interpreter(binary: Path) -> bool:
    """Whether an ELF executable asks for a dynamic loader (a PT_INTERP program header)."""
    data = binary.read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2, "a 64-bit ELF binary"
    phoff = int.from_bytes(data[0x20:0x28], "little")
    phentsize = int.from_bytes(data[0x36:0x38], "little")
    phnum = int.from_bytes(data[0x38:0x3A], "little")
    return any(int.from_bytes(data[phoff + i * phentsize:phoff + i * phentsize + 4], "little") == 3
               for i in range(phnum))


class Server:
    """The service's binary (or `make run`) in its own process group, killed if still running.

    Its output is read continuously: a full pipe would block the service's log writes, and with
    them every request.
    """

    def __init__(self, cmd: list[str], cwd: Path, port: int | None, env: dict[str, str]):
        self.port = port
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True)
        self._out: list[str] = []
        self._err: list[str] = []
        self._readers = [threading.Thread(target=self._read, args=(stream, sink), daemon=True)
                         for stream, sink in ((self.proc.stdout, self._out), (self.proc.stderr, self._err))]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, sink: list[str]) -> None:
        sink.extend(stream)  # line by line, as the service writes

    @property
    def stdout(self) -> str:
        return "".join(self._out)

    @property
    def stderr(self) -> str:
        return "".join(self._err)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def request(self, path: str, method: str = "GET", headers: dict | None = None,
                timeout: float = 5) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, headers={"Connection": "close", **(headers or {})})
            res = conn.getresponse()
            return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read()
        finally:
            conn.close()

    def wait_until_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.finish()
                raise AssertionError(f"exited {self.proc.returncode}\n{self.stdout}\n{self.stderr}")
            try:
                if self.request("/ready", timeout=1)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("the service never became ready")

    def signal(self, sig: int = signal.SIGTERM) -> None:
        os.killpg(self.proc.pid, sig)

    def finish(self, timeout: float = 30) -> int:
        self.proc.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=5)
        return self.proc.returncode

    def log_lines(self) -> list[dict]:
        """The JSON lines of stdout (`make run` also echoes its commands there)."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.startswith("{")]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.signal(signal.SIGKILL)
            self.finish()


def start_binary(project: Project, go_env: dict, port: int, **env: str) -> Server:
    variables = service_env(go_env, **{"PORT": str(port), "SHUTDOWN_DELAY_SECONDS": "0", **env})
    return Server([str(project.path / "bin" / "server")], project.path, port, variables)


# ---------------------------------------------------------------------------------------------
# Static: the files agree with the answers and with each other.
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("go_version", FACTS["go"]["versions"])
def test_go_mod_names_the_module_and_the_chosen_go_line(render, go_version):
    project = render(language="go", go_version=go_version, github_owner="Acme-Corp", project_slug="billing")
    go_mod = project.text("go.mod")
    assert re.search(r"^module github\.com/Acme-Corp/billing$", go_mod, re.MULTILINE)
    major_minor = ".".join(go_version.split(".")[:2])
    assert re.search(rf"^go {re.escape(major_minor)}\.0$", go_mod, re.MULTILINE)
    dockerfile = project.text("Dockerfile")
    assert f"FROM --platform=$BUILDPLATFORM golang:{go_version} AS build" in dockerfile
    required = re.findall(r"^\s*(?:require )?(\S+) v\S+$", go_mod, re.MULTILINE)
    for source in project.path.rglob("*.go"):
        for imported in re.findall(r'"(github\.com/[^"]+)"', source.read_text()):
            assert imported.startswith("github.com/Acme-Corp/billing/internal/") or \
                any(imported == module or imported.startswith(module + "/") for module in required), (source, imported)


def test_dockerfile_builds_where_the_runtime_stage_copies_from(render):
    """The binary path agrees across go build -o, COPY --from, CMD and HEALTHCHECK."""
    project = render(language="go")
    dockerfile = project.text("Dockerfile")
    built = re.search(r"go build .*-o (\S+) \./cmd/server", dockerfile).group(1)
    copied_from, copied_to = re.search(r"^COPY --from=build (\S+) (\S+)$", dockerfile, re.MULTILINE).groups()
    assert built == copied_from
    facts = FACTS["go"]
    assert copied_to == facts["start_command"][0] == facts["healthcheck_command"][0]
    assert f"CMD {json.dumps(facts['start_command'])}" in dockerfile
    assert json.dumps(facts["healthcheck_command"]) in dockerfile
    # cross-compilation on the build platform, with both caches mounted
    assert "GOOS=$TARGETOS GOARCH=$TARGETARCH" in dockerfile
    assert "--mount=type=cache,target=/go/pkg/mod" in dockerfile
    assert "--mount=type=cache,target=/root/.cache/go-build" in dockerfile
    assert "-X main.version=${APP_VERSION}" in dockerfile
    assert f"FROM {facts['runtime_image']} AS runtime" in dockerfile
    # the modules in their own cached layer, verified against go.sum, before the source
    assert dockerfile.index("COPY go.mod go.sum ./") < dockerfile.index("go mod download && go mod verify") \
        < dockerfile.index("COPY cmd ./cmd")


def test_go_sum_is_committed_and_ci_keys_its_cache_on_it(render):
    project = render(language="go")
    go_sum = project.text("go.sum")
    for required in re.findall(r"^\t(\S+) (v\S+)", project.text("go.mod"), re.MULTILINE):
        assert f"{required[0]} {required[1]}/go.mod h1:" in go_sum, required
    assert "github.com/prometheus/client_golang" in project.text("go.mod")
    ci = project.text(".github/workflows/ci.yml")
    assert "cache-dependency-path: go.sum" in ci and "make setup" in ci
    assert "$(GO) mod verify" in project.text("Makefile").split("\nsetup:")[1].split("\n\n")[0]


def test_port_answer_reaches_every_file(render):
    port = 9317
    project = render(language="go", port=port)
    assert f"const DefaultPort = {port}" in project.text("internal/config/config.go")
    assert f"EXPOSE {port}" in project.text("Dockerfile")
    assert f"PORT={port}" in project.text("Dockerfile")
    assert f"PORT={port}" in project.text(".env.example")
    assert f"PORT ?= {port}" in project.text("Makefile")


# ---------------------------------------------------------------------------------------------
# Toolchain: build, lint, run.
# ---------------------------------------------------------------------------------------------
@pytest.mark.toolchain
def test_make_check_builds_a_static_versioned_binary(go_service):
    binary = go_service.path / "bin" / "server"
    assert binary.stat().st_mode & 0o111
    # CGO_ENABLED=0: a static binary, which distroless/static (no C library, no loader) can run
    assert not has_interpreter(binary)
    # -trimpath: no path of the build machine inside
    assert str(go_service.path).encode() not in binary.read_bytes()
    assert (go_service.path / "coverage.out").is_file(), "make test writes the coverage profile CI uploads"


@pytest.mark.toolchain
def test_oldest_go_line_compiles(render, go_env, tmp_path):
    """The code keeps to the language version of the oldest supported Go line (go.mod's go)."""
    oldest = FACTS["go"]["versions"][-1]
    project = render(language="go", go_version=oldest).clone_to(tmp_path / "service")
    run(["make", "lint", "typecheck"], cwd=project.path, **go_env)


@pytest.mark.toolchain
def test_lint_fails_on_planted_problems(render, go_env, tmp_path):
    project = render(language="go").clone_to(tmp_path / "service")
    main_go = project.path / "internal" / "health" / "health.go"
    original = main_go.read_text()

    main_go.write_text(original.replace("func (r *Registry) MarkServing() {", "func (r *Registry) MarkServing()  {"))
    proc = run(["make", "lint"], cwd=project.path, check=False, **go_env)
    assert proc.returncode != 0 and "internal/health/health.go" in proc.stdout + proc.stderr

    main_go.write_text(original + '\nfunc planted() string { return fmt.Sprintf("%d", "text") }\n')
    proc = run(["make", "lint"], cwd=project.path, check=False, **go_env)
    assert proc.returncode != 0 and "Sprintf" in proc.stdout + proc.stderr, "go vet runs in lint"


@pytest.mark.toolchain
def test_build_context_alone_builds_the_binary(go_service, go_env, tmp_path):
    """What .dockerignore lets in is enough for the Dockerfile's build (and holds no test file)."""
    matcher = PatternMatcher([line.strip() for line in go_service.text(".dockerignore").splitlines()
                              if line.strip() and not line.startswith("#")])
    context = tmp_path / "context"
    for rel in go_service.files():
        if not matcher.matches(rel.as_posix()):
            (context / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(go_service.path / rel, context / rel)
    assert not list(context.rglob("*_test.go"))
    assert not (context / "bin").exists() and not (context / "coverage.out").exists()
    run(["go", "build", "-trimpath", "-o", str(tmp_path / "server"), "./cmd/server"], cwd=context,
        CGO_ENABLED="0", **go_env)


@pytest.mark.toolchain
def test_make_run_serves_every_endpoint_on_the_rendered_port(go_service, go_env):
    port = go_service.answers["port"]  # no PORT in the environment: the rendered one is used
    server = Server(["make", "run", "VERSION=1.4.2-test"], go_service.path, port,
                    service_env(go_env, SHUTDOWN_DELAY_SECONDS="0", LOG_LEVEL="debug"))
    with server:
        server.wait_until_ready()
        expectations = [
            # path, method, status, JSON fields
            ("/health", "GET", 200, {"status": "ok"}),
            ("/ready", "GET", 200, {"status": "ready", "checks": []}),
            # make run sets APP_ENV=development (unset, the binary runs as production)
            ("/health/detailed", "GET", 200, {"status": "ok", "phase": "ready", "version": "1.4.2-test",
                                             "environment": "development"}),
            ("/", "GET", 200, {"version": "1.4.2-test"}),
            ("/no/such/route", "GET", 404, {"error": "not_found"}),
            ("/ready", "DELETE", 405, {"error": "method_not_allowed"}),
        ]
        for i, (path, method, status, fields) in enumerate(expectations):
            got_status, headers, body = server.request(path, method, {"X-Request-ID": f"probe-{i}"})
            assert got_status == status, (path, got_status, body)
            assert headers["content-type"] == "application/json", (path, headers)
            assert headers["x-request-id"] == f"probe-{i}"
            data = json.loads(body)
            for key, value in fields.items():
                assert data[key] == value, (path, data)

        status, headers, body = server.request("/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
        metrics = body.decode()
        assert 'http_requests_total{method="GET",route="/health",status_code="200"} 1' in metrics
        assert 'http_requests_total{method="GET",route="unmatched",status_code="404"} 1' in metrics
        # client_golang's runtime collectors, under their usual names
        assert re.search(r"^go_goroutines \d+$", metrics, re.MULTILINE)
        assert re.search(r"^process_start_time_seconds \S+$", metrics, re.MULTILINE)

        binary = str(go_service.path / "bin" / "server")
        assert run([binary, "healthcheck"], cwd=go_service.path, check=False,
                   PORT=str(port)).returncode == 0
        assert run([binary, "healthcheck"], cwd=go_service.path, check=False,
                   PORT=str(free_port())).returncode == 1

        server.signal()
        server.finish()

    # One JSON access log line per request, carrying its request id.
    requests = [line for line in server.log_lines() if line.get("msg") == "request"]
    probes = [line for line in requests if line["request_id"].startswith("probe-")]
    assert sorted(line["request_id"] for line in probes) == sorted(f"probe-{i}" for i in range(len(expectations)))
    by_id = {line["request_id"]: line for line in probes}
    for i, (path, method, status, _) in enumerate(expectations):
        assert (by_id[f"probe-{i}"]["path"], by_id[f"probe-{i}"]["method"], by_id[f"probe-{i}"]["status"]) \
            == (path, method, status)
    assert by_id["probe-3"]["route"] == "/" and by_id["probe-4"]["route"] == "unmatched"
    # probes and scrapes (the four operational endpoints) at debug, the rest at info
    assert [by_id[f"probe-{i}"]["level"] for i in range(len(expectations))] == \
        ["debug", "debug", "debug", "info", "info", "info"]
    assert all(line["service"] == "my-service" and line["version"] == "1.4.2-test" for line in requests)
    assert all(isinstance(line["duration_ms"], (int, float)) for line in requests)


@pytest.mark.toolchain
@pytest.mark.parametrize(("env", "named"), [
    ({"LOG_LEVEL": "verbose"}, ["LOG_LEVEL"]),
    ({"MANAGEMENT_PORT": "80"}, ["MANAGEMENT_PORT"]),
    ({"LOG_LEVEL": "loud", "PORT": "http", "APP_ENV": "prod", "SHUTDOWN_TIMEOUT_SECONDS": "0"},
     ["LOG_LEVEL", "PORT", "APP_ENV", "SHUTDOWN_TIMEOUT_SECONDS"]),
], ids=["log-level", "management-port", "several"])
def test_bad_configuration_stops_with_one_message_naming_each_variable(go_service, go_env, env, named):
    server = start_binary(go_service, go_env, free_port(), **env)
    with server:
        code = server.finish(timeout=10)
    assert code != 0
    message = server.stderr.strip()
    assert message.count("\n") == 0, f"one message, got {message!r}"
    def names(name: str) -> bool:  # PORT is not named by MANAGEMENT_PORT
        return re.search(rf"(?<![A-Z_]){name}\b", message) is not None

    for name in named:
        assert names(name), f"{name} not named in {message!r}"
    for name in {"LOG_LEVEL", "PORT", "MANAGEMENT_PORT", "APP_ENV", "SHUTDOWN_TIMEOUT_SECONDS"} - set(named):
        assert not names(name), f"{name} named in {message!r}"


@pytest.mark.toolchain
def test_sigterm_under_load_loses_no_request_and_exits_zero(go_service, go_env):
    port = free_port()
    server = start_binary(go_service, go_env, port, SHUTDOWN_DELAY_SECONDS=str(SHUTDOWN_DELAY),
                          SHUTDOWN_TIMEOUT_SECONDS="10")
    with server:
        server.wait_until_ready()

        # A slow client: its request begins before SIGTERM and its headers end during the delay.
        slow = socket.create_connection(("127.0.0.1", port), timeout=10)
        slow.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n")

        results: list[tuple[float, int | str]] = []
        lock = threading.Lock()
        stop = threading.Event()

        def load(path: str) -> None:
            while not stop.is_set():
                began = time.monotonic()
                try:
                    outcome: int | str = server.request(path, timeout=10)[0]
                except OSError as exc:
                    outcome = type(exc).__name__
                    time.sleep(0.01)
                with lock:
                    results.append((began, outcome))

        workers = [threading.Thread(target=load, args=(path,), daemon=True)
                   for path in ["/health", "/", "/health", "/"]]
        for worker in workers:
            worker.start()
        try:
            time.sleep(0.5)

            signalled = time.monotonic()
            server.signal()
            readiness = []
            while time.monotonic() < signalled + SHUTDOWN_DELAY * 0.6:
                try:
                    readiness.append((time.monotonic() - signalled, server.request("/ready", timeout=2)[0]))
                except OSError as exc:
                    readiness.append((time.monotonic() - signalled, type(exc).__name__))
                time.sleep(0.02)
            slow.sendall(b"Connection: close\r\n\r\n")
            slow_answer = slow.makefile("rb").read()
            slow.close()

            # Past the delay the listener closes.
            while time.monotonic() < signalled + SHUTDOWN_DELAY + 5:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                except OSError:
                    break
                time.sleep(0.02)
            refused_at = time.monotonic() - signalled

            code = server.finish(timeout=20)
        finally:
            stop.set()
            for worker in workers:
                worker.join(timeout=15)

    assert code == 0, server.stdout + server.stderr
    assert refused_at >= SHUTDOWN_DELAY * 0.9, f"stopped accepting {refused_at:.2f}s after SIGTERM"
    assert slow_answer.startswith(b"HTTP/1.1 200"), slow_answer[:200]

    # Readiness flips at once and stays failed.
    first_503 = next(at for at, status in readiness if status == 503)
    assert first_503 < 0.3, readiness[:10]
    assert all(status == 503 for at, status in readiness if at >= first_503), readiness

    # Every request begun before SIGTERM, or during the delay, was answered 200.
    must_succeed = [(began - signalled, outcome) for began, outcome in results
                    if began < signalled + SHUTDOWN_DELAY * 0.8]
    before = [r for r in must_succeed if r[0] < 0]
    during = [r for r in must_succeed if r[0] >= 0]
    assert len(before) > 20 and len(during) > 5, (len(before), len(during))
    failed = [r for r in must_succeed if r[1] != 200]
    assert not failed, f"{len(failed)} of {len(must_succeed)} failed, e.g. {failed[:5]}"

    messages = [line["msg"] for line in server.log_lines()]
    assert messages[-1] == "shutdown: complete", messages[-5:]
