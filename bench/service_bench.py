#!/usr/bin/env python3
"""Each rendered service against a bare hello-world of the same framework, measured in the same run.

Per language, natively (no Docker engine on the development machines):

* time-to-ready: from process start until GET /ready answers 200 (median of --starts runs,
  alternating the servers);
* throughput, p99 latency and resident memory (idle, and after the load) under wrk on two routes:
  GET /health (the probe) and GET / (the seeded application route), median of --rounds rounds,
  alternating the servers so that all see the same machine load.

The hello-worlds answer /health, /ready and / with a constant JSON body and nothing else, on the
same framework and server settings: Go's net/http (ServeMux), Fastify (logger off), and Django
behind gunicorn with the rendered gunicorn.conf.py's worker class, workers and keep-alive. A second
baseline per language, "hello + contract headers", is the same hello-world that also sends the
contract's nine response headers with constant values (CONTRACT_HEADERS and Content-Type) and
nothing else: the floor any service that honours the contract pays, measured side by side. Ratios
stay against the plain hello-world. Node has a third baseline, "hello + contract libraries": the
hello-world with pino as Fastify's logger and prom-client's default metrics set up, nothing more (the
floor of its time-to-ready). Every language has "hello + contract (direct)": the contract's
per-request work written the direct way with the libraries the service uses (a request id taken or
made and answered back, the nine headers, a counter and a histogram by method, route and status,
one JSON log line per request on / and none on the probes: client_golang and slog; prom-client and
pino; Django's deploy-check middleware, prometheus_client and logging), the floor of the contract
with those libraries. The Go and Node hello-worlds use the service's server settings (timeouts,
header and body limits), read from the render. The rendered service runs as in production
(APP_ENV=production) at the default LOG_LEVEL=info.

A "service + tracing" row per language is the same service with OpenTelemetry traces on
(OTEL_EXPORTER_OTLP_ENDPOINT set, the SDKs' defaults otherwise: every request sampled, batches of
512 every 5 s, a queue of 2048), exporting to a real OpenTelemetry Collector (scripts/otelcol.sh,
tests/otel.py) on the same machine: what tracing costs. The collector's own work (decoding, and its
file exporter writing JSON) shares the two cores, as a node-local agent would; the CPU per request
counts the service's processes only.

With --ablations, the service is also measured with each contract feature switched off in turn
(bench/ablations/<language>.py: the edits that switch it off in a copy of the render), in the same
run: what each feature costs.

Targets (issue 15): throughput at least 0.9x the hello-world's on both routes, p99 at most 1.5x,
time-to-ready at most 1.2x.

    .venv/bin/python bench/service_bench.py [--languages go node django] [--duration 5] [--ablations]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from benchlib import ROOT, env, machine, render, sh, snapshot

sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "reliability")]
from harness import free_port, status_or_none
from otel import Collector

WRK_LUA = """\
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_JSON {"requests":%d,"seconds":%.3f,"p99_ms":%.3f,"errors":%d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(99) / 1e3,
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""

# The contract's nine response headers with constant values (docs/service-contract.md): the six
# security headers, X-Request-ID, Cache-Control and Content-Type. The "hello + contract headers"
# rows are the hello-world that also sends them and does nothing else: the floor of every service
# that honours the contract, measured in the same run.
def contract_security_headers() -> dict[str, str]:
    """The security headers and their constant values, read from the contract's table."""
    text = (ROOT / "docs" / "service-contract.md").read_text()
    section = text.split("\n## Security headers\n", 1)[1].split("\n## ", 1)[0]
    headers = dict(re.findall(r"^\| `([A-Za-z-]+)` \| `([^`]+)` \|$", section, re.MULTILINE))
    assert len(headers) == 6, f"docs/service-contract.md: expected six security headers, read {headers}"
    return headers


CONTRACT_HEADERS = {
    **contract_security_headers(),
    "X-Request-ID": "0123456789abcdef0123456789abcdef",
    "Cache-Control": "no-store",
}
HEADERS_JSON = json.dumps(CONTRACT_HEADERS)

# HELLO_HEADERS=1 picks the handlers that also send the contract's headers (pre-built values
# assigned to the header map: the cheapest way net/http offers); the plain handlers are unchanged.
GO_HELLO = """\
package main

import (
\t"encoding/json"
\t"net/http"
\t"os"
\t"time"
)

// contract is set by contract.go, which only the "hello-contract" binary is built with: the
// plain hello-world links no library (client_golang's package init alone takes milliseconds).
var contract func() func(next http.HandlerFunc, route string, logged bool) http.HandlerFunc

type header struct {
\tname   string
\tvalues []string
}

func main() {
\tok := func(w http.ResponseWriter, r *http.Request) {
\t\tw.Header().Set("Content-Type", "application/json")
\t\t_, _ = w.Write([]byte(`{"status":"ok"}`))
\t}
\tindex := func(w http.ResponseWriter, r *http.Request) {
\t\tw.Header().Set("Content-Type", "application/json")
\t\t_, _ = w.Write([]byte(`{"service":"hello","version":"bench"}`))
\t}
\tif os.Getenv("HELLO_HEADERS") != "" {
\t\tvar constant map[string]string
\t\t_ = json.Unmarshal([]byte(os.Getenv("HELLO_HEADERS")), &constant)
\t\tif contract != nil {
\t\t\tdelete(constant, "X-Request-ID") // contract() answers the request's own
\t\t}
\t\theaders := []header{{"Content-Type", []string{"application/json"}}}
\t\tfor name, value := range constant {
\t\t\theaders = append(headers, header{http.CanonicalHeaderKey(name), []string{value}})
\t\t}
\t\twithHeaders := func(body []byte) http.HandlerFunc {
\t\t\treturn func(w http.ResponseWriter, r *http.Request) {
\t\t\t\th := w.Header()
\t\t\t\tfor _, each := range headers {
\t\t\t\t\th[each.name] = each.values
\t\t\t\t}
\t\t\t\t_, _ = w.Write(body)
\t\t\t}
\t\t}
\t\tok = withHeaders([]byte(`{"status":"ok"}`))
\t\tindex = withHeaders([]byte(`{"service":"hello","version":"bench"}`))
\t\tif contract != nil {
\t\t\twrap := contract()
\t\t\tok, index = wrap(ok, "/health", false), wrap(index, "/", true)
\t\t}
\t}
\tmux := http.NewServeMux()
\tmux.HandleFunc("GET /health", ok)
\tmux.HandleFunc("GET /ready", ok)
\tmux.HandleFunc("GET /{$}", index)
\t// The service's server settings (internal/server/server.go; prepare() checks they still match):
\t// net/http sets a read and a write deadline per request because of them.
\tsrv := &http.Server{
\t\tAddr:              "127.0.0.1:" + os.Getenv("PORT"),
\t\tHandler:           mux,
\t\tReadHeaderTimeout: 10 * time.Second,
\t\tReadTimeout:       30 * time.Second,
\t\tWriteTimeout:      60 * time.Second,
\t\tIdleTimeout:       120 * time.Second,
\t\tMaxHeaderBytes:    16<<10 - 4096,
\t}
\t_ = srv.ListenAndServe()
}
"""

GO_HELLO_CONTRACT = """\
//go:build contract

package main

import (
\t"crypto/rand"
\t"log/slog"
\t"net/http"
\t"os"
\t"strconv"
\t"time"

\t"github.com/prometheus/client_golang/prometheus"
\t"github.com/prometheus/client_golang/prometheus/collectors"
)

func init() { contract = direct }

// direct: the contract's per-request work done the direct way with the libraries the service
// links, around a handler that sends the constant headers: a request id (an X-Request-ID of 1 to
// 128 bytes, its characters not checked, or rand.Text), answered back; a client_golang counter and histogram by method, route and status;
// one slog JSON line on standard output for the application route (the probes log at debug).
func direct() func(next http.HandlerFunc, route string, logged bool) http.HandlerFunc {
\tlogger := slog.New(slog.NewJSONHandler(os.Stdout, nil))
\treg := prometheus.NewRegistry()
\treg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
\tlabels := []string{"method", "route", "status_code"}
\trequests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "http_requests_total", Help: "requests"}, labels)
\tduration := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "http_request_duration_seconds",
\t\tHelp: "latency", Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}}, labels)
\treg.MustRegister(requests, duration)
\treturn func(next http.HandlerFunc, route string, logged bool) http.HandlerFunc {
\t\treturn func(w http.ResponseWriter, r *http.Request) {
\t\t\tstart := time.Now()
\t\t\tid := r.Header.Get("X-Request-Id")
\t\t\tif id == "" || len(id) > 128 {
\t\t\t\tid = rand.Text()
\t\t\t}
\t\t\tw.Header()["X-Request-Id"] = []string{id}
\t\t\tnext(w, r)
\t\t\telapsed := time.Since(start)
\t\t\tstatus := strconv.Itoa(http.StatusOK)
\t\t\trequests.WithLabelValues(r.Method, route, status).Inc()
\t\t\tduration.WithLabelValues(r.Method, route, status).Observe(elapsed.Seconds())
\t\t\tif logged {
\t\t\t\tlogger.LogAttrs(r.Context(), slog.LevelInfo, "request", slog.String("request_id", id),
\t\t\t\t\tslog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("route", route),
\t\t\t\t\tslog.Int("status", http.StatusOK), slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000))
\t\t\t}
\t\t}
\t}
}
"""

NODE_HELLO = """\
import Fastify, { LogController } from "fastify";

// HELLO_LIBRARIES: also load and set up the two libraries the contract needs before the service
// can be ready (pino as Fastify's logger, prom-client with its default metrics), and do nothing
// more with them: the time-to-ready floor of a Fastify service that logs and exports metrics.
// HELLO_CONTRACT (with HELLO_HEADERS): the contract's per-request work done the direct way with
// those libraries and the service's logger settings: a request id (a valid X-Request-ID or a
// random UUID) on the request's logger and in the answer, the constant headers, one pino line
// per request on / (none on the probes, which log at debug) and a prom-client counter and
// histogram by method, route and status.
const contract = Boolean(process.env.HELLO_CONTRACT);
let logger = false;
let observe = () => {};
if (process.env.HELLO_LIBRARIES || contract) {
  const { default: pino } = await import("pino");
  const { Registry, Counter, Histogram, collectDefaultMetrics } = await import("prom-client");
  const register = new Registry();
  collectDefaultMetrics({ register });
  const stream = contract
    ? pino.destination({ dest: 1, sync: false, minLength: 4096, maxLength: 16 * 1024 * 1024, periodicFlush: 100 })
    : pino.destination({ dest: 1, sync: false });
  logger = { level: "info", messageKey: "msg", timestamp: pino.stdTimeFunctions.isoTime, stream,
    ...(contract ? { base: { version: "bench", env: "production" } } : {}) };
  if (contract) {
    const labelNames = ["method", "route", "status_code"];
    const requests = new Counter({ name: "http_requests_total", help: "requests", labelNames, registers: [register] });
    const duration = new Histogram({ name: "http_request_duration_seconds", help: "latency", labelNames,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [register] });
    observe = (method, route, status, seconds) => {
      requests.labels(method, route, status).inc();
      duration.labels(method, route, status).observe(seconds);
    };
  }
}
const { randomUUID } = await import("node:crypto");
const REQUEST_ID = /^[\\w.:-]{1,128}$/;
const app = Fastify({
  logger,
  logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: "request_id" }),
  // the service's server settings (src/app.ts; prepare() checks they still match)
  bodyLimit: 1024 * 1024,
  http: { maxHeaderSize: 16 * 1024, headersTimeout: 10_000, connectionsCheckingInterval: 1000 },
  return503OnClosing: false,
  ...(contract ? {
    requestIdHeader: false,
    genReqId: (raw) => {
      const header = raw.headers["x-request-id"];
      return typeof header === "string" && REQUEST_ID.test(header) ? header : randomUUID();
    },
  } : {}),
});
if (contract) {
  app.addHook("onResponse", (request, reply, next) => {
    const route = request.routeOptions.url ?? "unmatched";
    observe(request.method, route, String(reply.statusCode), reply.elapsedTime / 1000);
    if (route === "/") {
      request.log.info({ method: request.method, path: request.url, route, status: reply.statusCode,
        duration_ms: Math.round(reply.elapsedTime * 10) / 10 }, "request");
    }
    next();
  });
}
if (process.env.HELLO_HEADERS) {
  const headers = JSON.parse(process.env.HELLO_HEADERS);
  const answer = (body) => async (request, reply) => {
    reply.headers(headers);
    if (contract) reply.header("x-request-id", request.id);
    return body;
  };
  app.get("/health", answer({ status: "ok" }));
  app.get("/ready", answer({ status: "ok" }));
  app.get("/", answer({ service: "hello", version: "bench" }));
} else {
  app.get("/health", async () => ({ status: "ok" }));
  app.get("/ready", async () => ({ status: "ok" }));
  app.get("/", async () => ({ service: "hello", version: "bench" }));
}
await app.listen({ port: Number(process.env.PORT), host: "127.0.0.1" });
"""

DJANGO_HELLO = """\
import json
import logging
import os
import re
import sys
import time
import uuid

from django.conf import settings

# HELLO_CONTRACT (with HELLO_HEADERS): the contract's per-request work done the direct way: the
# Django middleware that `manage.py check --deploy` asks for, a request id (a valid X-Request-ID
# or a random UUID) answered back, prometheus_client's counter and histogram by method, route
# and status (multiprocess mode: two workers), one JSON line through logging for / (none for the
# probes, which log at debug).
CONTRACT = bool(os.environ.get("HELLO_CONTRACT"))
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    __name__ + ".contract",
] if CONTRACT else []
settings.configure(DEBUG=False, ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__, MIDDLEWARE=MIDDLEWARE,
                   SECRET_KEY="hello-world-benchmark-only-" + "x" * 40)

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402


def ok(request):
    return JsonResponse({"status": "ok"})


def index(request):
    return JsonResponse({"service": "hello", "version": "bench"})


if os.environ.get("HELLO_HEADERS"):
    HEADERS = json.loads(os.environ["HELLO_HEADERS"])

    def ok(request):  # noqa: F811
        return JsonResponse({"status": "ok"}, headers=HEADERS)

    def index(request):  # noqa: F811
        return JsonResponse({"service": "hello", "version": "bench"}, headers=HEADERS)


if CONTRACT:
    from prometheus_client import Counter, Histogram

    LABELS = ["method", "route", "status_code"]
    REQUESTS = Counter("http_requests_total", "requests", LABELS)
    DURATION = Histogram("http_request_duration_seconds", "latency", LABELS,
                         buckets=[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])
    REQUEST_ID = re.compile(r"[\\w.:-]{1,128}")
    log = logging.getLogger("request")
    log.addHandler(logging.StreamHandler(sys.stdout))
    log.setLevel(logging.INFO)
    log.propagate = False

    def contract(get_response):
        def middleware(request):
            start = time.perf_counter()
            incoming = request.META.get("HTTP_X_REQUEST_ID", "")
            request_id = incoming if REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
            response = get_response(request)
            response["X-Request-ID"] = request_id
            elapsed = time.perf_counter() - start
            route = request.path_info  # the hello's routes have no parameters
            status = str(response.status_code)
            REQUESTS.labels(request.method, route, status).inc()
            DURATION.labels(request.method, route, status).observe(elapsed)
            if route == "/":
                log.info(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                     "level": "info", "msg": "request", "request_id": request_id,
                                     "method": request.method, "path": request.path, "route": route,
                                     "status": response.status_code,
                                     "duration_ms": round(elapsed * 1000, 1)}))
            return response

        return middleware


urlpatterns = [path("health", ok), path("ready", ok), path("", index)]
application = get_wsgi_application()
"""

# gunicorn settings of the hello-world: read from the render's gunicorn.conf.py so both match.
DJANGO_HELLO_CONF = """\
import importlib.util, os
spec = importlib.util.spec_from_file_location("rendered", "gunicorn.conf.py")
rendered = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rendered)
bind = ["127.0.0.1:" + os.environ["PORT"]]
for name in ("worker_class", "workers", "threads", "keepalive", "timeout", "worker_tmp_dir",
             "control_socket_disable"):
    if hasattr(rendered, name):
        globals()[name] = getattr(rendered, name)
accesslog = None
"""


@dataclass
class Server:
    name: str
    cwd: Path
    command: list[str]
    env: dict[str, str]


def prepare(language: str, project: Path) -> tuple[Server, Server, list[Server]]:
    """Build the render (make setup build) and its hello-world; returns (service, hello, the
    floors: hello with the contract's headers; for Node, hello with the contract's libraries;
    hello doing the contract's work the direct way)."""
    sh(["make", "setup", "build"], cwd=project)
    common = {
        "APP_ENV": "production",
        "APP_VERSION": "bench",
        "LOG_LEVEL": "info",  # the default: one JSON line per application request
        "SHUTDOWN_DELAY_SECONDS": "0",
        "SHUTDOWN_TIMEOUT_SECONDS": "5",
    }
    settings = {  # the server settings the hello-worlds copy (GO_HELLO, NODE_HELLO), as the render has them
        "go": ("internal/server/server.go", ["ReadHeaderTimeout = 10 * time.Second", "ReadTimeout = 30 * time.Second",
                                             "WriteTimeout = 60 * time.Second", "IdleTimeout = 120 * time.Second",
                                             "MaxHeaderBytes = 16<<10 - 4096"]),
        "node": ("src/app.ts", ["bodyBytes: 1024 * 1024", "headerBytes: 16 * 1024", "headersTimeoutMs: 10_000",
                                "connectionsCheckingInterval: 1000", "return503OnClosing: false"]),
    }
    if language in settings:
        source, declarations = settings[language]
        text = " ".join((project / source).read_text().split())  # gofmt's alignment aside
        missing = [each for each in declarations if each not in text]
        if missing:
            raise SystemExit(f"{source} no longer declares {missing}: update the {language} hello-world's server settings")
    if language == "go":
        hello_dir = project.parent / "hello-go"
        hello_dir.mkdir()
        (hello_dir / "main.go").write_text(GO_HELLO)
        (hello_dir / "contract.go").write_text(GO_HELLO_CONTRACT)
        # the render's requirements and go.sum: the contract row links the same client_golang
        module = (project / "go.mod").read_text()
        (hello_dir / "go.mod").write_text(re.sub(r"^module .*$", "module hello", module, count=1, flags=re.MULTILINE))
        shutil.copy(project / "go.sum", hello_dir / "go.sum")
        for binary, tags in (("hello", []), ("hello-contract", ["-tags", "contract"])):
            sh(
                ["go", "build", "-trimpath", "-ldflags", "-s -w", *tags, "-o", binary, "."],
                cwd=hello_dir,
                CGO_ENABLED="0",
            )
        command, hello = ["bin/server"], Server("net/http hello", hello_dir, ["./hello"], {})
    elif language == "node":
        (project / "hello.mjs").write_text(NODE_HELLO)  # beside node_modules: the same fastify
        command, hello = (
            ["node", "dist/server.js"],
            Server("fastify hello", project, ["node", "hello.mjs"], {}),
        )
    else:
        (project / "hello_django.py").write_text(DJANGO_HELLO)
        (project / "hello.gunicorn.conf.py").write_text(DJANGO_HELLO_CONF)
        common.update(
            DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
            DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
            DATABASE_URL=f"sqlite:///{project / 'bench.sqlite3'}",
        )
        command = [".venv/bin/gunicorn", "--config", "gunicorn.conf.py", "config.wsgi:application"]
        # the hello-world reads the same gunicorn.conf.py values, so it needs the same environment
        hello = Server(
            "gunicorn hello",
            project,
            [".venv/bin/gunicorn", "--config", "hello.gunicorn.conf.py", "hello_django:application"],
            dict(common),
        )
    floors = [Server(f"{hello.name} + contract headers", hello.cwd, hello.command,
                     {**hello.env, "HELLO_HEADERS": HEADERS_JSON})]
    if language == "node":  # Node's time-to-ready floor: see NODE_HELLO
        floors.append(Server(f"{hello.name} + contract libraries", hello.cwd, hello.command,
                             {**hello.env, "HELLO_LIBRARIES": "1"}))
    # the contract done the direct way: see GO_HELLO, NODE_HELLO, DJANGO_HELLO
    direct = {**hello.env, "HELLO_HEADERS": HEADERS_JSON, "HELLO_CONTRACT": "1"}
    if language == "django":  # prometheus_client's multiprocess mode, as the service's two workers need
        (project.parent / "hello-metrics").mkdir()
        direct["PROMETHEUS_MULTIPROC_DIR"] = str(project.parent / "hello-metrics")
    direct_command = ["./hello-contract"] if language == "go" else hello.command  # see GO_HELLO_CONTRACT
    floors.append(Server(f"{hello.name} + contract (direct)", hello.cwd, direct_command, direct))
    return Server("service", project, command, common), hello, floors


# What a build leaves that an ablated copy shares with the full build instead of rebuilding.
SHARED = {"node": ["node_modules"], "go": [], "django": [".venv"]}


def ablations(language: str) -> dict[str, list[tuple[str, str, str]]]:
    """bench/ablations/<language>.py: per contract feature, the edits that switch it off."""
    spec = importlib.util.spec_from_file_location(f"ablations_{language}",
                                                  ROOT / "bench" / "ablations" / f"{language}.py")
    if spec is None or spec.loader is None or not spec.origin or not Path(spec.origin).exists():
        raise SystemExit(f"no bench/ablations/{language}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ABLATIONS


def ablated(service: Server, language: str, feature: str, edits: list[tuple[str, str, str]]) -> Server:
    """A copy of the built service with one contract feature switched off, rebuilt."""
    dest = service.cwd.parent / f"without-{feature}"
    shutil.copytree(service.cwd, dest, symlinks=True,
                    ignore=shutil.ignore_patterns(*SHARED[language], "dist", "bin", "staticfiles"))
    for name in SHARED[language]:
        (dest / name).symlink_to(service.cwd / name)
    for relative, old, new in edits:
        path = dest / relative
        text = path.read_text()
        if text.count(old) != 1:
            raise SystemExit(f"ablation {language}/{feature}: {old!r} occurs {text.count(old)} times in {relative}")
        path.write_text(text.replace(old, new))
    sh(["make", "build"], cwd=dest)
    return Server(f"service without {feature}", dest, service.command, service.env)


def start(server: Server, port: int) -> subprocess.Popen:
    return subprocess.Popen(
        server.command,
        cwd=server.cwd,
        env=env(**server.env, PORT=str(port)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def rss_mb(proc: subprocess.Popen) -> float:
    """Resident memory of the server's whole session (gunicorn's master and workers), in MB."""
    # ps exits 1 when the session has no process left: then there is nothing resident
    out = subprocess.run(["ps", "-o", "rss=", "--sid", str(proc.pid)], capture_output=True, text=True,
                         check=False).stdout
    return sum(int(kb) for kb in out.split()) / 1024


def cpu_seconds(proc: subprocess.Popen) -> float:
    """CPU time (user + system) used so far by the server's whole session: a measure that other
    load on the machine disturbs far less than throughput does."""
    pids = subprocess.run(["ps", "-o", "pid=", "--sid", str(proc.pid)], capture_output=True, text=True,
                          check=False).stdout.split()
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


def wait_ready(server: Server, proc: subprocess.Popen, port: int, began: float) -> float:
    deadline = began + 120
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{server.name} exited with {proc.returncode}")
        if status_or_none(port, "/ready", timeout=1) == 200:
            return time.perf_counter() - began
        time.sleep(0.001)  # Go is ready within milliseconds: a coarser poll would round it up
    raise SystemExit(f"{server.name} not ready within 120 s")


def time_to_ready(server: Server) -> float:
    port = free_port()
    began = time.perf_counter()
    proc = start(server, port)
    try:
        return wait_ready(server, proc, port, began)
    finally:
        stop(proc)


class Row(NamedTuple):
    """One line of the results table: a server on a route, its medians and its ratios to the hello."""

    language: str
    server: str
    route: str
    ready_s: float
    ready_x: float
    rps: float
    rps_x: float
    p99_ms: float
    p99_x: float
    cpu_us: float
    cpu_x: float
    idle_mb: float
    loaded_mb: float


@dataclass
class Run:
    rps: float
    p99_ms: float
    idle_mb: float
    loaded_mb: float
    cpu_us: float  # server CPU per request answered


# As the Gateway sends it: TLS ended in front of the service (Django redirects plain HTTP otherwise).
WRK_HEADERS = ["-H", "X-Forwarded-Proto: https"]


def throughput(server: Server, route: str, seconds: int, connections: int, script: Path) -> Run:
    port = free_port()
    proc = start(server, port)
    try:
        wait_ready(server, proc, port, time.perf_counter())
        idle = rss_mb(proc)
        url = f"http://127.0.0.1:{port}{route}"
        # warm-up (JIT, caches, worker threads), then the measured run
        subprocess.run(["wrk", "-t1", f"-c{connections}", "-d1s", *WRK_HEADERS, "-s", str(script), url],
                       capture_output=True, check=True)
        cpu_before = cpu_seconds(proc)
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", *WRK_HEADERS, "-s", str(script), url],
            capture_output=True, text=True, check=True,
        ).stdout
        cpu = cpu_seconds(proc) - cpu_before
        loaded = rss_mb(proc)
    finally:
        stop(proc)
    result = json.loads(re.search(r"^WRK_JSON (\{.*\})$", out, re.MULTILINE).group(1))
    if result["errors"]:
        raise SystemExit(f"{server.name} {route}: {result['errors']} failed requests under load")
    return Run(result["requests"] / result["seconds"], result["p99_ms"], idle, loaded,
               cpu / max(result["requests"], 1) * 1e6)


ROUTES = ["/health", "/"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--languages", nargs="+", default=["go", "node", "django"])
    parser.add_argument("--duration", type=int, default=5, help="seconds of each measured wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--ablations", action="store_true",
                        help="also measure the service with each contract feature switched off in turn")
    parser.add_argument("--no-tracing", action="store_true",
                        help="leave out the rows with traces exported to an OpenTelemetry Collector")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(
        f"wrk: 1 thread, {args.connections} connections, {args.duration} s x {args.rounds} rounds per route; "
        f"time-to-ready: median of {args.starts} starts; LOG_LEVEL=info"
    )
    rows: list[Row] = []
    exported: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        script = tmp_path / "summary.lua"
        script.write_text(WRK_LUA)
        template = snapshot(tmp_path)
        collector = None if args.no_tracing else Collector(tmp_path / "collector").start()
        try:
            for language in args.languages:
                project = render(template, tmp_path / language / "project", language=language)
                service, hello, floors = prepare(language, project)
                servers = [hello, *floors, service]
                if collector is not None:
                    servers.append(Server("service + tracing", service.cwd, service.command,
                                          {**service.env, "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
                                           "OTEL_SERVICE_NAME": f"bench-{language}"}))
                if args.ablations:
                    servers += [ablated(service, language, feature, edits)
                                for feature, edits in ablations(language).items()]
                # alternate the starts too: a burst of load elsewhere then hits every server alike
                starts: dict[str, list[float]] = {s.name: [] for s in servers}
                for _ in range(args.starts):
                    for server in servers:
                        starts[server.name].append(time_to_ready(server))
                ready = {name: statistics.median(times) for name, times in starts.items()}
                for route in ROUTES:
                    runs: dict[str, list[Run]] = {s.name: [] for s in servers}
                    for _ in range(args.rounds):  # alternate, so that every server sees the same load
                        for server in servers:
                            runs[server.name].append(throughput(server, route, args.duration, args.connections, script))
                    base = {key: statistics.median(getattr(r, key) for r in runs[hello.name])
                            for key in ("rps", "p99_ms", "cpu_us")}
                    for server in servers:
                        median = {key: statistics.median(getattr(r, key) for r in runs[server.name])
                                  for key in ("rps", "p99_ms", "idle_mb", "loaded_mb", "cpu_us")}
                        rows.append(Row(language, server.name, route, ready[server.name],
                                     ready[server.name] / ready[hello.name], median["rps"], median["rps"] / base["rps"],
                                     median["p99_ms"], median["p99_ms"] / base["p99_ms"],
                                     median["cpu_us"], base["cpu_us"] / median["cpu_us"],
                                     median["idle_mb"], median["loaded_mb"]))
                if collector is not None:  # counted line by line: the file holds every span of the run
                    with open(collector.output, errors="replace") as spans:
                        received = sum(line.count('"spanId"') for line in spans if f'"bench-{language}"' in line)
                    if not received:
                        raise SystemExit(f"{language}: the collector received no span from the traced service")
                    exported[language] = received
        finally:
            if collector is not None:
                collector.stop()
    # CPU x hello is the hello's CPU per request over the server's: the throughput ratio the
    # server reaches when CPU-bound, and far steadier than req/s on a shared machine.
    print("\n| language | server | route | ready s | x hello | req/s | x hello | p99 ms | x hello "
          "| CPU µs/req | x hello | RSS idle MB | RSS loaded MB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for language, name, route, ready_s, ready_x, rps, rps_x, p99, p99_x, cpu, cpu_x, idle, loaded in rows:
        print(f"| {language} | {name} | `{route}` | {ready_s:.3f} | {ready_x:.2f} | {rps:,.0f} | {rps_x:.2f} "
              f"| {p99:.1f} | {p99_x:.2f} | {cpu:.0f} | {cpu_x:.2f} | {idle:.0f} | {loaded:.0f} |".replace(",", " "))
    print("\ntargets: throughput x hello >= 0.90 on both routes; p99 x hello <= 1.50; time-to-ready x hello <= 1.20")
    summary(rows)
    for language, count in exported.items():
        print(f"{language}: the collector received {count:,} spans from the traced service".replace(",", " "))


def summary(rows: list[Row]) -> None:
    """Per language, the service against the targets and against the two floor rows (`/health` / `/`)."""
    print("\n| language | throughput x hello | CPU x hello | p99 x hello | time-to-ready x hello "
          "| CPU x hello, headers row | CPU x hello, direct row | service's CPU x direct row's |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    by = {(r.language, r.server, r.route): r for r in rows}
    for language in dict.fromkeys(r.language for r in rows):
        names = [r.server for r in rows if r.language == language]
        headers = next(n for n in names if n.endswith("+ contract headers"))
        direct = next(n for n in names if n.endswith("+ contract (direct)"))
        routes = {server: [by[(language, server, route)] for route in ROUTES] for server in ("service", headers, direct)}

        def pair(values: list[float]) -> str:
            return " / ".join(f"{value:.2f}" for value in values)

        service = routes["service"]
        print(f"| {language} | {pair([r.rps_x for r in service])} | {pair([r.cpu_x for r in service])} "
              f"| {pair([r.p99_x for r in service])} | {service[0].ready_x:.2f} "
              f"| {pair([r.cpu_x for r in routes[headers]])} | {pair([r.cpu_x for r in routes[direct]])} "
              f"| {pair([d.cpu_us / r.cpu_us for d, r in zip(routes[direct], service, strict=True)])} |")


if __name__ == "__main__":
    main()
