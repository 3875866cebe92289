"""Layer 4 for Node: the rendered service installs from its lockfile, lints, type-checks, tests,
builds, serves every endpoint of the contract and drains on SIGTERM under load, natively.

One `npm ci` per test session: the ``node_service`` fixture installs and builds a single private
copy of the render, shared by every test here (and by both xdist workers, through a file lock);
tests only read it, or work on copies that link its node_modules.
"""

from __future__ import annotations

import fcntl
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

import pytest
from docker.utils.build import PatternMatcher
from helpers import Project, run, tool_env

from extensions.facts import FACTS

SLUG = "my-service"


# ---------------------------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def node_service(render, tmp_path_factory, worker_id) -> Project:
    """The default Node render, installed (`make setup`) and built (`make build`) once."""
    project = render(language="node")
    base = tmp_path_factory.getbasetemp()
    shared = base if worker_id == "master" else base.parent  # shared by the xdist workers
    dest = shared / "node-service"
    with open(shared / "node-service.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = dest / ".installed-by-tests"
        if not marker.exists():
            if dest.exists():
                shutil.rmtree(dest)
            project.clone_to(dest)
            run(["make", "setup", "build"], cwd=dest, timeout=900)
            marker.write_text("make setup build passed\n")
    return Project(dest, project.answers)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(port: int, path: str, timeout: float = 5) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        res = conn.getresponse()
        return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read()
    finally:
        conn.close()


def wait_until_serving(port: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the service exited with {proc.returncode} before serving")
        try:
            if get(port, "/ready", timeout=1)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"nothing served /ready on port {port} within {timeout} s")


def start(cmd: list[str], cwd: Path, log: Path, **env: str) -> subprocess.Popen:
    """Starts a command in its own process group (so that the test can signal exactly it)."""
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, cwd=cwd, env=tool_env(**env), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def json_lines(log: Path) -> list[dict]:
    """The service's stdout: every line must be a JSON object (make's own echo lines aside)."""
    lines = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
        else:
            assert line.startswith(("node ", "npm ", ">", "make", "APP_ENV=")) or not line.strip(), \
                f"not a JSON log line: {line!r}"
    return lines


# ---------------------------------------------------------------------------------------------
# Without installing: the rendered package files are consistent
# ---------------------------------------------------------------------------------------------
def test_package_and_lockfile_carry_the_slug_and_exact_pins(render):
    project = render(language="node", project_name="Billing API", project_slug="billing-api",
                     description='Bills "customers" & <partners>')
    package = json.loads(project.text("package.json"))
    lock = json.loads(project.text("package-lock.json"))
    assert package["name"] == lock["name"] == lock["packages"][""]["name"] == "billing-api"
    assert package["description"] == 'Bills "customers" & <partners>'
    assert package["version"] == lock["version"] == lock["packages"][""]["version"]
    root = lock["packages"][""]
    for field in ("dependencies", "devDependencies"):
        assert root[field] == package[field], f"{field}: package-lock.json is out of step"
        for name, version in package[field].items():
            assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name} is not pinned: {version}"
            assert lock["packages"][f"node_modules/{name}"]["version"] == version
    assert package["type"] == "module", "dist/ is ESM"
    assert package["scripts"]["start"] == " ".join(FACTS["node"]["start_command"])


def _satisfies(version: str, spec: str) -> bool:
    """Enough of semver ranges for 'A B' conjunctions of >=, <, <=, > comparators."""
    def key(v: str) -> tuple[int, ...]:
        return tuple(int(x) for x in v.split("."))
    ops = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
           "<": lambda a, b: a < b}
    for comparator in spec.split():
        op = re.match(r"[<>]=?", comparator).group(0)
        if not ops[op](key(version), key(comparator[len(op):])):
            return False
    return True


def test_typescript_is_one_that_typescript_eslint_accepts(render):
    lock = json.loads(render(language="node").text("package-lock.json"))["packages"]
    typescript = lock["node_modules/typescript"]["version"]
    for plugin in ("typescript-eslint", "@typescript-eslint/eslint-plugin",
                   "@typescript-eslint/parser"):
        accepted = lock[f"node_modules/{plugin}"]["peerDependencies"]["typescript"]
        assert _satisfies(typescript, accepted), f"{plugin} accepts {accepted}, not {typescript}"


def test_env_example_documents_every_variable_the_service_reads(render):
    project = render(language="node")
    variables = project.text("src/config.ts").split("const VARIABLES = {", 1)[1].split("\n};", 1)[0]
    read = set(re.findall(r"^\s+([A-Z][A-Z0-9_]+):", variables, re.MULTILINE))
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", project.text(".env.example"), re.MULTILINE))
    assert read == {"PORT", "MANAGEMENT_PORT", "APP_ENV", "LOG_LEVEL", "APP_VERSION",
                    "SHUTDOWN_DELAY_SECONDS", "SHUTDOWN_TIMEOUT_SECONDS"}
    assert read <= documented


def test_make_run_is_development_unless_app_env_is_set(render):
    """The service fails closed (APP_ENV unset = production); `make run` is for local work."""
    project = render(language="node")
    dry = run(["make", "-n", "run"], cwd=project.path).stdout
    assert 'APP_ENV="${APP_ENV:-development}" node dist/server.js' in dry, dry
    config = project.text("src/config.ts")
    assert "APP_ENV: withDefault(oneOf(APP_ENVS), 'production')" in config


def test_default_port_follows_the_answer(render):
    project = render(language="node", port=9123)
    assert "export const DEFAULT_PORT = 9123;" in project.text("src/service.ts")
    assert "PORT ?= 9123" in project.text("Makefile")


def test_dockerfile_installs_production_dependencies_on_their_own(render):
    project = render(language="node")
    text = project.text("Dockerfile")
    # (the npm stages run on the build platform for every target: tests/test_multiarch.py)
    stages = {name: image for image, name in
              re.findall(r"^FROM (?:--platform=\$BUILDPLATFORM )?(\S+) AS (\S+)$", text, re.MULTILINE)}
    assert set(stages) == {"deps", "prod-deps", "build", "runtime"}
    assert stages["build"] == "deps"
    body = {name: chunk for name, chunk in zip(
        stages, re.split(r"^FROM .*$", text, flags=re.MULTILINE)[1:])}
    assert re.search(r"--mount=type=cache,target=/root/\.npm\S*\s*\\\n\s*npm ci ", body["deps"])
    assert re.search(r"--mount=type=cache,target=/root/\.npm\S*\s*\\\n\s*npm ci --omit=dev ",
                     body["prod-deps"])
    assert "npm prune" not in text
    runtime = body["runtime"]
    copies = re.findall(r"^COPY (.*)$", runtime, re.MULTILINE)
    assert copies == ["--from=prod-deps /app/node_modules ./node_modules",
                      "--from=build /app/dist ./dist", "package.json ./"]
    assert re.search(r"^ENV NODE_ENV=production$", runtime, re.MULTILINE)
    assert f"adduser -S -D -H -u {FACTS['node']['uid']} " in runtime


def _ignored(matcher: PatternMatcher, path: str) -> bool:
    """Like Docker's walk of the context: a path is skipped when it or a parent folder matches."""
    parts = path.split("/")
    return any(matcher.matches("/".join(parts[:i])) for i in range(1, len(parts) + 1))


def test_dockerignore_keeps_node_artefacts_out(render):
    project = render(language="node")
    patterns = [line.strip() for line in project.text(".dockerignore").splitlines()
                if line.strip() and not line.startswith("#")]
    matcher = PatternMatcher(patterns)
    for path in ["node_modules/fastify/package.json", "src/node_modules/x.js", "dist/server.js",
                 "coverage/lcov.info", "coverage/tmp/coverage-1.json", "test/health.test.ts",
                 "src/app/routes.test.ts", "npm-debug.log", ".npm/_cacache/index",
                 "tsconfig.tsbuildinfo", ".env", ".env.local", ".git/config", "docs/runbook.md",
                 "deploy/k8s/base/deployment.yaml", ".github/workflows/ci.yml"]:
        assert _ignored(matcher, path), f"{path} would be sent to the Docker build"
    for path in ["package.json", "package-lock.json", "tsconfig.json", "tsconfig.build.json",
                 "src/server.ts", "src/app/routes.ts", "src/healthcheck.ts"]:
        assert not _ignored(matcher, path), f"{path} is needed by the build and ignored"


# ---------------------------------------------------------------------------------------------
# Toolchain: install, check, build, run
# ---------------------------------------------------------------------------------------------
@pytest.mark.toolchain
def test_make_lint_typecheck_test_build_pass(node_service):
    proc = run(["make", "lint", "typecheck", "test", "build"], cwd=node_service.path, timeout=900)
    out = proc.stdout
    assert "All matched files use Prettier code style!" in out
    passed = int(re.search(r"^# pass (\d+)$", out, re.MULTILINE).group(1))
    assert passed >= 40 and re.search(r"^# fail 0$", out, re.MULTILINE), out[-3000:]
    assert re.search(r"^All files\s+\|", out, re.MULTILINE), "c8 printed its coverage table"
    assert (node_service.path / "coverage" / "lcov.info").is_file()
    # What the image runs exists where the Dockerfile and the facts say.
    for command in (FACTS["node"]["start_command"], FACTS["node"]["healthcheck_command"]):
        assert (node_service.path / command[-1]).is_file(), f"{command} has nothing to run"


@pytest.mark.toolchain
def test_runtime_stage_contents_serve_on_their_own(node_service, tmp_path):
    """What the image's runtime stage holds, natively: package.json, `npm ci --omit=dev` and dist/.

    Catches a runtime import of a dev dependency, which the full node_modules of the tests hides.
    """
    image = tmp_path / "app"
    image.mkdir()
    for name in FACTS["node"]["dependency_files"]:
        shutil.copy(node_service.path / name, image / name)
    run(["npm", "ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=image,
        timeout=600)
    assert not (image / "node_modules" / "typescript").exists(), "dev dependencies stayed out"
    shutil.copytree(node_service.path / "dist", image / "dist")
    port = free_port()
    proc = start(FACTS["node"]["start_command"], image, tmp_path / "server.log", PORT=str(port),
                 NODE_ENV="production", SHUTDOWN_DELAY_SECONDS="0")
    try:
        wait_until_serving(port, proc)
        healthcheck = run(FACTS["node"]["healthcheck_command"], cwd=image, check=False,
                          PORT=str(port))
        assert healthcheck.returncode == 0, healthcheck.stderr
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        stop(proc)
    healthcheck = run(FACTS["node"]["healthcheck_command"], cwd=image, check=False, PORT=str(port))
    assert healthcheck.returncode == 1 and "healthcheck failed" in healthcheck.stderr


@pytest.mark.toolchain
def test_lint_and_typecheck_catch_planted_mistakes(node_service, tmp_path):
    """The checks are not just present: type-aware ESLint, Prettier and strict tsc all bite."""
    copy = tmp_path / "service"
    shutil.copytree(node_service.path, copy,
                    ignore=shutil.ignore_patterns("node_modules", "dist", "coverage"))
    (copy / "node_modules").symlink_to(node_service.path / "node_modules")
    (copy / "src" / "planted.ts").write_text(
        "export async function save(): Promise<void> {}\n"
        "export function handler(): void {\n"
        "  save();\n"                               # a floating promise: only type-aware rules see it
        "}\n"
        "export const port: number = process.env['PORT'];\n"  # string | undefined into number
        "export const  sloppy = {a:1}\n"            # formatting
    )
    eslint = run(["npx", "eslint", "src/planted.ts"], cwd=copy, check=False)
    assert eslint.returncode != 0 and "@typescript-eslint/no-floating-promises" in eslint.stdout, \
        eslint.stdout + eslint.stderr
    prettier = run(["npx", "prettier", "--check", "src/planted.ts"], cwd=copy, check=False)
    assert prettier.returncode != 0 and "planted.ts" in prettier.stdout + prettier.stderr
    tsc = run(["npm", "run", "typecheck"], cwd=copy, check=False)
    assert tsc.returncode != 0 and "src/planted.ts" in tsc.stdout and "TS2322" in tsc.stdout, \
        tsc.stdout + tsc.stderr


@pytest.mark.toolchain
def test_make_run_serves_every_endpoint(node_service, tmp_path):
    port = free_port()
    log = tmp_path / "run.log"
    proc = start(["make", "run"], node_service.path, log, PORT=str(port), APP_ENV="staging",
                 LOG_LEVEL="info", APP_VERSION="7.7.7", SHUTDOWN_DELAY_SECONDS="0")
    try:
        wait_until_serving(port, proc)

        status, headers, body = get(port, "/")
        assert status == 200 and json.loads(body) == {"name": SLUG, "version": "7.7.7"}
        request_id = headers["x-request-id"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
        assert "strict-transport-security" not in headers, "HSTS is the TLS terminator's job"

        status, _, body = get(port, "/health")
        assert status == 200 and json.loads(body) == {"status": "ok"}

        status, _, body = get(port, "/ready")
        assert status == 200 and json.loads(body) == {"status": "ready", "checks": []}

        status, _, body = get(port, "/health/detailed")
        detailed = json.loads(body)
        assert status == 200
        assert detailed["status"] == "ok" and detailed["phase"] == "ready"
        assert detailed["version"] == "7.7.7" and detailed["environment"] == "staging"
        assert detailed["uptime_seconds"] >= 0 and detailed["checks"] == []

        status, headers, body = get(port, "/metrics")
        metrics = body.decode()
        assert status == 200 and headers["content-type"].startswith("text/plain")
        assert re.search(r'^http_requests_total\{method="GET",route="/",status_code="200"\} 1$',
                         metrics, re.MULTILINE)
        assert re.search(r'^http_request_duration_seconds_count\{method="GET",route="/ready",'
                         r'status_code="200"\} \d+$', metrics, re.MULTILINE)
        assert re.search(r"^process_resident_memory_bytes \d+", metrics, re.MULTILINE)

        status, headers, body = get(port, "/no-such-page")
        assert status == 404
        assert json.loads(body) == {"error": "not_found", "request_id": headers["x-request-id"]}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        finally:
            stop(proc)

    lines = json_lines(log)
    requests = [line for line in lines if line.get("msg") == "request"]
    home = [line for line in requests if line.get("request_id") == request_id]
    assert len(home) == 1, "one log line per request, with its request id"
    assert home[0]["level"] == "info" and home[0]["route"] == "/" and home[0]["status"] == 200
    paths = {line.get("path") for line in requests}
    assert paths >= {"/", "/no-such-page"}
    assert not paths & {"/health", "/ready", "/health/detailed", "/metrics"}, "probes log at debug"
    assert any(line.get("msg", "").startswith("drained") for line in lines)


@pytest.mark.toolchain
def test_bad_log_level_stops_the_service_naming_it(node_service):
    proc = run(["make", "run"], cwd=node_service.path, check=False, timeout=300,
               PORT=str(free_port()), LOG_LEVEL="verbose")
    assert proc.returncode != 0
    assert re.search(r"invalid configuration: LOG_LEVEL must be one of debug, info, warning, "
                     r'error \(got "verbose"\)', proc.stderr), proc.stdout + proc.stderr


@pytest.mark.toolchain
def test_sigterm_under_load_loses_no_request_and_exits_0(node_service, tmp_path):
    """The image's command under concurrent keep-alive load: SIGTERM in the middle of it."""
    port = free_port()
    delay = 2.0
    log = tmp_path / "server.log"
    proc = start(FACTS["node"]["start_command"], node_service.path, log, PORT=str(port),
                 LOG_LEVEL="warning", SHUTDOWN_DELAY_SECONDS=str(delay), SHUTDOWN_TIMEOUT_SECONDS="10")
    results: list[tuple[float, str]] = []  # (time the request began, outcome)
    lock = threading.Lock()
    done = threading.Event()

    def client() -> None:
        conn = None
        while not done.is_set():
            began = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", "/")
                res = conn.getresponse()
                res.read()
                outcome = str(res.status)
                if res.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except OSError as exc:  # refused, reset: recorded, judged by when it began
                outcome = type(exc).__name__
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.01)
            with lock:
                results.append((began, outcome))

    try:
        wait_until_serving(port, proc)
        threads = [threading.Thread(target=client, daemon=True) for _ in range(8)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        signalled = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)

        readiness = []  # (seconds since SIGTERM, status)
        while time.monotonic() < signalled + delay - 0.7:
            asked = time.monotonic() - signalled
            try:
                readiness.append((asked, get(port, "/ready", timeout=2)[0]))
            except OSError as exc:
                readiness.append((asked, type(exc).__name__))
            time.sleep(0.1)
        code = proc.wait(timeout=30)
        done.set()
        for thread in threads:
            thread.join(timeout=15)
    finally:
        done.set()
        stop(proc)

    assert code == 0, log.read_text()
    # "At once": the signal needs one turn of the event loop; from then on readiness is 503.
    settled = [status for asked, status in readiness if asked >= 0.2]
    assert len(settled) >= 3 and set(settled) == {503}, readiness
    before = [outcome for began, outcome in results if began < signalled]
    # Requests begun well inside the delay are served too (the margin absorbs scheduling jitter).
    during = [outcome for began, outcome in results if signalled <= began < signalled + delay - 0.7]
    assert len(before) > 50, f"too little load to judge: {len(before)} requests before SIGTERM"
    assert set(before) == {"200"}, f"requests begun before SIGTERM failed: {set(before)}"
    assert during and set(during) == {"200"}, f"requests during the delay failed: {set(during)}"
    assert all(line["level"] in {"warning", "error"} for line in json_lines(log))
