"""The Django service (language=django): its image recipe, its own quality gates, and the fleet
contract as `make run` serves it, against a real PostgreSQL started by these tests."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from docker.utils.build import PatternMatcher
from helpers import Project, run, tool_env

# Every variable the rendered config/env.py reads: tests start from none of them set.
SERVICE_VARIABLES = [
    "PORT", "MANAGEMENT_PORT", "APP_ENV", "LOG_LEVEL", "APP_VERSION", "SHUTDOWN_DELAY_SECONDS",
    "SHUTDOWN_TIMEOUT_SECONDS", "DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "DATABASE_URL",
    "WEB_CONCURRENCY", "GUNICORN_TIMEOUT", "PROMETHEUS_MULTIPROC_DIR", "GUNICORN_CMD_ARGS",
]
STRONG_KEY = "kR7w-Qp2zT9vL4xN8mB1sD6fH3jY0cE5gU2aV7yX4rN1mK8pL3sW6tZ0bC5dF9q"
POD_IP = "10.244.3.17"  # the Host header of a kubelet probe or a Prometheus scrape
PUBLIC_HOST = "service.example.com"
OPS_PATHS = ["/health", "/ready", "/health/detailed", "/metrics"]


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_env(**variables: str) -> dict[str, str]:
    """The tools' environment without any of the service's variables, plus `variables`."""
    env = {k: v for k, v in tool_env().items() if k not in SERVICE_VARIABLES}
    env["UV_PYTHON_DOWNLOADS"] = "never"  # the machine's Python 3.11+, never a download
    env.update(variables)
    return env


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


def get(port: int, path: str, host: str | None = None, timeout: float = 10,
        **headers: str) -> Response:
    """One GET on a fresh connection, with the Host header given and no redirect followed."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host or f"127.0.0.1:{port}", **headers})
        response = conn.getresponse()
        return Response(response.status, {k.lower(): v for k, v in response.getheaders()},
                        response.read())
    finally:
        conn.close()


# ------------------------------------------------------------------------------------------------
# PostgreSQL, started by the tests (one per pytest-xdist worker: own port, own directory)
# ------------------------------------------------------------------------------------------------
def postgres_bin() -> Path:
    """The server binaries' folder: Debian's /usr/lib/postgresql/N/bin (newest N), else PATH's."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    assert initdb, "PostgreSQL server not installed: run scripts/bootstrap.sh --system"
    return Path(initdb).parent


class Postgres:
    """A throwaway cluster on 127.0.0.1; as root, its files and processes belong to `postgres`
    (initdb and the server refuse to run as root)."""

    password = "s3cret-Pw"

    def __init__(self) -> None:
        self.bin = postgres_bin()
        # Not under pytest's basetemp: that is 0700 root, which the postgres user cannot enter.
        self.root = Path(tempfile.mkdtemp(prefix="django-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgres://app:{self.password}@127.0.0.1:{self.port}/app"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")

    def _run(self, *cmd: str) -> subprocess.CompletedProcess[str]:
        if os.geteuid() == 0:
            cmd = ("runuser", "-u", "postgres", "--", *cmd)
        return run(list(cmd), cwd=self.root, timeout=120)

    def init(self) -> None:
        pwfile = self.root / "pwfile"
        pwfile.write_text("unused-superuser-password\n")
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres", "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--no-locale",
                  "-E", "UTF8", "--auth-local=trust", "--auth-host=scram-sha-256",
                  f"--pwfile={pwfile}")
        self.start()
        sql = (f"CREATE ROLE app LOGIN PASSWORD '{self.password}'; "
               "CREATE DATABASE app OWNER app;")
        for statement in sql.split("; "):
            self._run(str(self.bin / "psql"), "-h", str(self.root), "-p", str(self.port),
                      "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-c", statement)

    def start(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
                  "-w", "-t", "60", "-o",
                  f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    server = Postgres()
    try:
        server.init()
        yield server
    finally:
        server.remove()


# ------------------------------------------------------------------------------------------------
# The rendered service, installed once per worker; `make run` as a managed process
# ------------------------------------------------------------------------------------------------
def make(project: Project, *targets: str, timeout: float = 900,
         **variables: str) -> subprocess.CompletedProcess[str]:
    """`make TARGETS` in the project with only `variables` of the service's set."""
    proc = subprocess.run(["make", *targets], cwd=project.path, env=service_env(**variables),
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"make {targets}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def install(project: Project) -> Project:
    make(project, "setup")
    return project


@pytest.fixture(scope="session")
def django_service(render, tmp_path_factory) -> Project:
    """The default django render, copied and installed (`make setup`)."""
    return install(render(language="django").clone_to(tmp_path_factory.mktemp("django") / "svc"))


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    port: int
    pidfile: Path
    log: Path
    started: float = field(default_factory=time.monotonic)

    def get(self, path: str, host: str | None = None, **headers: str) -> Response:
        return get(self.port, path, host, **headers)

    @property
    def master_pid(self) -> int:
        return int(self.pidfile.read_text())

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def make_run(tmp_path) -> Iterator[Callable[..., Running]]:
    """make_run(project, **env) -> Running, once /health answers; killed if a test leaves it."""
    started: list[Running] = []

    def start(project: Project, **variables: str) -> Running:
        port = free_port()
        pidfile = tmp_path / f"gunicorn-{port}.pid"
        log = tmp_path / f"make-run-{port}.log"
        env = service_env(PORT=str(port), GUNICORN_CMD_ARGS=f"--pid {pidfile}", **variables)
        with log.open("wb") as out:
            process = subprocess.Popen(["make", "run"], cwd=project.path, env=env, stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        server = Running(process, port, pidfile, log)
        started.append(server)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"make run exited {process.returncode}:\n{server.output()}")
            try:
                if pidfile.exists() and get(port, "/health", POD_IP, timeout=2).status == 200:
                    return server
            except OSError:
                pass
            time.sleep(0.2)
        pytest.fail(f"make run did not answer /health within 60 s:\n{server.output()}")

    yield start
    for server in started:
        if server.process.poll() is None:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()


def production(postgres: Postgres, **extra: str) -> dict[str, str]:
    return {"APP_ENV": "production", "DJANGO_SECRET_KEY": STRONG_KEY,
            "DJANGO_ALLOWED_HOSTS": PUBLIC_HOST, "DATABASE_URL": postgres.url, **extra}


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout} s waiting until {what}")


# ------------------------------------------------------------------------------------------------
# Static: the image recipe and the files that must agree with each other (no install needed)
# ------------------------------------------------------------------------------------------------
def test_image_runs_gunicorn_from_a_copied_venv_without_uv(render):
    dockerfile = render(language="django").text("Dockerfile")
    runtime = dockerfile.split(" AS runtime", 1)[1]
    assert "COPY --from=build /app /app" in runtime
    assert "uv" not in re.sub(r"#.*", "", runtime).split(), "no uv in the runtime stage"
    assert "PYTHONDONTWRITEBYTECODE=1" in runtime and "PYTHONUNBUFFERED=1" in runtime
    assert re.search(r"^USER 10001:10001$", runtime, re.MULTILINE)
    assert 'CMD ["gunicorn", "--config", "gunicorn.conf.py", "config.wsgi:application"]' in runtime
    assert 'CMD ["python", "-m", "ops.healthcheck"]' in runtime
    assert "--mount=type=cache,target=/root/.cache/uv" in dockerfile
    assert "uv sync --frozen --no-dev" in dockerfile
    assert "manage.py collectstatic --noinput" in dockerfile
    assert "migrate" not in re.sub(r"#.*", "", dockerfile), "migrations are a deploy step"


def test_dockerignore_keeps_tests_caches_and_local_data_out(render):
    """Beyond the generic check (tests/test_dockerfile.py): the Django-specific paths."""
    project = render(language="django")
    matcher = PatternMatcher([line for line in project.text(".dockerignore").splitlines()
                              if line.strip() and not line.startswith("#")])
    for path in ["pyproject.toml", "uv.lock", "manage.py", "gunicorn.conf.py", "config/settings.py",
                 "ops/views.py", "service/views.py", "service/migrations/0001_initial.py"]:
        assert not matcher.matches(path), f"the build needs {path}"
    for path in [".venv/bin/python", "ops/__pycache__/views.cpython-314.pyc", "config/env.pyc",
                 "db.sqlite3", "service/local.sqlite3", "media/avatar.png",
                 "staticfiles/staticfiles.json", "htmlcov/index.html", ".coverage",
                 "ops/tests/test_endpoints.py", "service/tests/test_views.py",
                 ".mypy_cache/3.14/x.json", ".ruff_cache/x", "README.md"]:
        assert matcher.matches(path), f"{path} would enter the build context"


def test_env_example_documents_every_variable_the_service_reads(render):
    project = render(language="django")
    env_py = project.text("config/env.py")
    schema = env_py.split("class Settings(BaseSettings):", 1)[1].split("@field_validator", 1)[0]
    read = {name.upper() for name in re.findall(r"^    ([a-z_]+): ", schema, re.MULTILINE)}
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", project.text(".env.example"), re.MULTILINE))
    assert read == documented
    assert read >= {"PORT", "APP_ENV", "LOG_LEVEL", "APP_VERSION", "SHUTDOWN_DELAY_SECONDS",
                    "SHUTDOWN_TIMEOUT_SECONDS", "DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS",
                    "DATABASE_URL"}


def test_answers_reach_the_service(render):
    project = render(language="django", project_slug="ledger-api", port=9123)
    assert 'SERVICE_NAME = "ledger-api"' in project.text("config/settings.py")
    assert "default=9123" in project.text("config/env.py")
    assert 'os.environ.get("PORT", "9123")' in project.text("ops/healthcheck.py")
    assert 'name = "ledger-api"' in project.text("pyproject.toml")
    assert re.search(r'^name = "ledger-api"\nversion = "0.1.0"\nsource = \{ virtual = "." \}',
                     project.text("uv.lock"), re.MULTILINE)
    assert re.search(r"^EXPOSE 9123$", project.text("Dockerfile"), re.MULTILINE)


# ------------------------------------------------------------------------------------------------
# Toolchain: install, gates, run
# ------------------------------------------------------------------------------------------------
@pytest.mark.toolchain
def test_make_lint_typecheck_test_build(django_service):
    result = make(django_service, "lint", "typecheck", "test", "build", timeout=1200)
    assert re.search(r"\d+ passed", result.stdout)
    assert (django_service.path / "staticfiles" / "staticfiles.json").is_file()


@pytest.mark.toolchain
def test_make_run_in_production_against_postgres(django_service, postgres, make_run):
    env = production(postgres, APP_VERSION="1.4.2", SHUTDOWN_DELAY_SECONDS="0")

    # The migration step, as the deploy runs it before the rollout (never at container start).
    assert "Applying auth.0001_initial... OK" in make(django_service, "migrate", **env).stdout
    assert "No migrations to apply" in make(django_service, "migrate", **env).stdout

    server = make_run(django_service, **env)

    # Probes and scrapes by pod IP over plain HTTP: answered, not 400 (Host) nor 301 (HTTPS).
    for path in OPS_PATHS:
        response = server.get(path, host=POD_IP)
        assert response.status == 200, (path, response)
    ready = server.get("/ready", host=POD_IP).json()
    assert ready["status"] == "ready"
    assert [(c["name"], c["status"], c["required"]) for c in ready["checks"]] == [
        ("database", "ok", True)]
    detailed = server.get("/health/detailed", host=POD_IP).json()
    assert (detailed["version"], detailed["environment"]) == ("1.4.2", "production")
    assert detailed["uptime_seconds"] > 0
    metrics = server.get("/metrics", host=POD_IP)
    assert metrics.headers["content-type"].startswith("text/plain")
    assert re.search(rb'^http_request_duration_seconds_bucket\{.*route="/health".*\} ', metrics.body,
                     re.MULTILINE), metrics.body[:2000]

    # Every other path keeps the protections.
    assert server.get("/", host=POD_IP).status == 400
    redirect = server.get("/", host=PUBLIC_HOST)
    assert (redirect.status, redirect.headers["location"]) == (301, f"https://{PUBLIC_HOST}/")
    served = server.get("/", host=PUBLIC_HOST, **{"X-Forwarded-Proto": "https"})
    assert served.status == 200
    assert served.json() == {"name": "my-service", "version": "1.4.2"}
    assert served.headers["strict-transport-security"].startswith("max-age=31536000")

    # The database goes away: readiness fails naming it; liveness does not. It comes back: ready.
    postgres.stop()
    try:
        wait_for(lambda: server.get("/ready", host=POD_IP).status == 503, 15, "/ready is 503")
        failing = server.get("/ready", host=POD_IP).json()
        assert failing["status"] == "unavailable"
        [database] = failing["checks"]
        assert (database["name"], database["status"]) == ("database", "fail")
        assert "error" not in database  # /ready never carries error text; /health/detailed does
        assert "s3cret" not in json.dumps(failing)
        detailed = server.get("/health/detailed", host=POD_IP)
        assert (detailed.status, detailed.json()["status"]) == (503, "unavailable")
        [database] = detailed.json()["checks"]
        assert database["error"] and "s3cret" not in database["error"]
        assert server.get("/health", host=POD_IP).status == 200
    finally:
        postgres.start()
    wait_for(lambda: server.get("/ready", host=POD_IP).status == 200, 15, "/ready is 200 again")

    # One JSON line per request, with its request id; probes and scrapes only at LOG_LEVEL=debug.
    os.kill(server.master_pid, signal.SIGTERM)
    assert server.process.wait(timeout=30) == 0, server.output()
    lines = [line for line in server.output().splitlines() if line.startswith("{")]
    access = [json.loads(line) for line in lines if '"gunicorn.access"' in line]
    assert [record["path"] for record in access] == ["/", "/", "/"]
    assert all(re.fullmatch(r"[0-9a-f]{32}", record["request_id"]) for record in access)


@pytest.mark.toolchain
@pytest.mark.parametrize(("variables", "named"), [
    ({"LOG_LEVEL": "verbose"}, ["LOG_LEVEL"]),
    ({"APP_ENV": "production", "DJANGO_ALLOWED_HOSTS": PUBLIC_HOST,
      "DATABASE_URL": "postgres://app:pw@127.0.0.1:9/app"}, ["DJANGO_SECRET_KEY"]),
    ({"APP_ENV": "production", "LOG_LEVEL": "loud"},
     ["LOG_LEVEL", "DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "DATABASE_URL"]),
], ids=["bad-log-level", "production-without-secret-key", "everything-at-once"])
def test_bad_configuration_stops_make_run_naming_the_variables(django_service, variables, named):
    result = subprocess.run(["make", "run"], cwd=django_service.path, capture_output=True,
                            text=True, timeout=120, check=False,
                            env=service_env(PORT=str(free_port()), **variables))
    assert result.returncode != 0
    assert "Invalid configuration" in result.stderr
    for name in named:
        assert f"  {name}: " in result.stderr
    assert "Traceback" not in result.stderr
    assert "Error 78" in result.stderr  # make reports the service's EX_CONFIG exit status


SLOW_VIEW = '''

@require_safe
def slow(request: HttpRequest) -> JsonResponse:
    """Takes ?seconds=N: a long request for the shutdown drill."""
    seconds = float(request.GET.get("seconds", "1"))
    time.sleep(seconds)
    return JsonResponse({"slept": seconds})
'''


@pytest.mark.toolchain
def test_sigterm_under_load_loses_no_request_begun_before_it(private_render, make_run):
    # A team's change: one slow route, to have requests in flight when SIGTERM arrives.
    project = private_render(language="django")
    views = project.path / "service" / "views.py"
    views.write_text("import time\n\n" + views.read_text() + SLOW_VIEW)
    urls = project.path / "service" / "urls.py"
    urls.write_text(urls.read_text().replace(
        'path("", views.index, name="index"),',
        'path("", views.index, name="index"),\n    path("slow", views.slow, name="slow"),'))
    install(project)
    delay, slow_seconds = 1.5, 3.0
    server = make_run(project, SHUTDOWN_DELAY_SECONDS=str(delay), SHUTDOWN_TIMEOUT_SECONDS="15",
                      WEB_CONCURRENCY="2")

    outcomes: list[tuple[float, str, object]] = []  # (began, path, status or exception)
    lock = threading.Lock()
    stop_load = threading.Event()

    def request(path: str) -> bool:
        began = time.monotonic()
        try:
            result: object = get(server.port, path, timeout=30).status
        except OSError as exc:
            result = exc
        with lock:
            outcomes.append((began, path, result))
        return isinstance(result, int)

    def load() -> None:
        while not stop_load.is_set() and request("/"):
            pass

    workers = [threading.Thread(target=load) for _ in range(6)]
    slow = [threading.Thread(target=request, args=(f"/slow?seconds={slow_seconds}",))
            for _ in range(4)]
    for thread in workers + slow:
        thread.start()
    time.sleep(1.0)  # under load, and the slow requests are in flight
    sigterm_at = time.monotonic()
    os.kill(server.master_pid, signal.SIGTERM)

    for thread in slow:
        thread.join(timeout=60)
    stop_load.set()
    for thread in workers:
        thread.join(timeout=60)
    assert server.process.wait(timeout=60) == 0, server.output()
    assert time.monotonic() - sigterm_at < delay + slow_seconds + 10

    before = [(path, result) for began, path, result in outcomes if began < sigterm_at]
    assert len(before) >= 20, "the service was not under load"
    assert [r for r in before if r[1] != 200] == [], "a request begun before SIGTERM was lost"
    assert sum(path.startswith("/slow") for path, _ in before) == 4
    # While draining (readiness already 503), the service still served new requests.
    during_delay = [result for began, _, result in outcomes
                    if sigterm_at + 0.1 < began < sigterm_at + delay - 0.3]
    assert during_delay and all(result == 200 for result in during_delay)
