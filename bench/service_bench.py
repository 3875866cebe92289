#!/usr/bin/env python3
"""Each rendered service against a bare hello-world of the same framework, measured in the same run.

Per language, natively (no Docker engine on the development machines):

* time-to-ready: from process start until GET /ready answers 200 (median of --starts runs);
* GET /health throughput and p99 latency under wrk (median of --rounds rounds, alternating the
  service and the hello-world so that both see the same machine load).

The hello-worlds answer /health and /ready with a constant JSON body and nothing else, on the
same framework and server settings: Go's net/http (ServeMux), Fastify (logger off), and Django
behind gunicorn with the rendered gunicorn.conf.py's worker class, workers, threads and
keep-alive. The rendered services run as in production (APP_ENV=production) at two log levels:
`info` (the default: one JSON line per request) and `warning` (request lines off).

Targets (issue 10): throughput at least 0.9x the hello-world's, time-to-ready at most 1.2x.

    .venv/bin/python bench/service_bench.py [--languages go node django] [--duration 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchlib import ROOT, env, machine, render, sh, snapshot

sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "reliability")]
from harness import free_port, status_or_none  # noqa: E402

WRK_LUA = """\
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_JSON {"requests":%d,"seconds":%.3f,"p99_ms":%.3f,"errors":%d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(99) / 1e3,
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""

GO_HELLO = """\
package main

import (
\t"net/http"
\t"os"
)

func main() {
\tok := func(w http.ResponseWriter, r *http.Request) {
\t\tw.Header().Set("Content-Type", "application/json")
\t\t_, _ = w.Write([]byte(`{"status":"ok"}`))
\t}
\tmux := http.NewServeMux()
\tmux.HandleFunc("GET /health", ok)
\tmux.HandleFunc("GET /ready", ok)
\t_ = http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), mux)
}
"""

NODE_HELLO = """\
import Fastify from "fastify";

const app = Fastify({ logger: false });
app.get("/health", async () => ({ status: "ok" }));
app.get("/ready", async () => ({ status: "ok" }));
await app.listen({ port: Number(process.env.PORT), host: "127.0.0.1" });
"""

DJANGO_HELLO = """\
from django.conf import settings

settings.configure(DEBUG=False, ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__, MIDDLEWARE=[],
                   SECRET_KEY="hello-world-benchmark-only-" + "x" * 40)

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402


def ok(request):
    return JsonResponse({"status": "ok"})


urlpatterns = [path("health", ok), path("ready", ok)]
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


def prepare(language: str, project: Path, levels: list[str]) -> tuple[list[Server], Server]:
    """Build the render (make setup build) and its hello-world; returns (service variants, hello)."""
    sh(["make", "setup", "build"], cwd=project)
    common = {
        "APP_ENV": "production",
        "APP_VERSION": "bench",
        "SHUTDOWN_DELAY_SECONDS": "0",
        "SHUTDOWN_TIMEOUT_SECONDS": "5",
    }
    if language == "go":
        hello_dir = project.parent / "hello-go"
        hello_dir.mkdir()
        (hello_dir / "main.go").write_text(GO_HELLO)
        sh(["go", "mod", "init", "hello"], cwd=hello_dir)
        sh(
            ["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", "hello", "."],
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
            "django+gunicorn hello",
            project,
            [".venv/bin/gunicorn", "--config", "hello.gunicorn.conf.py", "hello_django:application"],
            dict(common),
        )
    services = [
        Server(f"service LOG_LEVEL={level}", project, command, {**common, "LOG_LEVEL": level})
        for level in levels
    ]
    return services, hello


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


def time_to_ready(server: Server) -> float:
    port = free_port()
    began = time.perf_counter()
    proc = start(server, port)
    try:
        deadline = began + 120
        while time.perf_counter() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"{server.name} exited with {proc.returncode}")
            if status_or_none(port, "/ready", timeout=1) == 200:
                return time.perf_counter() - began
            time.sleep(0.005)
        raise SystemExit(f"{server.name} not ready within 120 s")
    finally:
        stop(proc)


def throughput(server: Server, seconds: int, connections: int, script: Path) -> tuple[float, float]:
    port = free_port()
    proc = start(server, port)
    try:
        deadline = time.perf_counter() + 120
        while status_or_none(port, "/ready", timeout=1) != 200:
            if proc.poll() is not None or time.perf_counter() > deadline:
                raise SystemExit(f"{server.name} did not get ready")
            time.sleep(0.02)
        # warm-up (JIT, caches, worker threads), then the measured run
        subprocess.run(
            ["wrk", "-t1", f"-c{connections}", "-d1s", "-s", str(script), f"http://127.0.0.1:{port}/health"],
            capture_output=True,
            check=True,
        )
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds}s",
                "-s",
                str(script),
                f"http://127.0.0.1:{port}/health",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        stop(proc)
    result = json.loads(re.search(r"^WRK_JSON (\{.*\})$", out, re.M).group(1))
    if result["errors"]:
        raise SystemExit(f"{server.name}: {result['errors']} failed requests under load")
    return result["requests"] / result["seconds"], result["p99_ms"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--languages", nargs="+", default=["go", "node", "django"])
    parser.add_argument("--duration", type=int, default=5, help="seconds of each measured wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(
        f"wrk: 1 thread, {args.connections} connections, {args.duration} s x {args.rounds} rounds; "
        f"time-to-ready: median of {args.starts} starts"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        script = tmp_path / "summary.lua"
        script.write_text(WRK_LUA)
        template = snapshot(tmp_path)
        for language in args.languages:
            project = render(template, tmp_path / language / "project", language=language)
            services, hello = prepare(language, project, ["info", "warning"])
            ready = {
                s.name: statistics.median(time_to_ready(s) for _ in range(args.starts))
                for s in [hello, *services]
            }
            runs: dict[str, list[tuple[float, float]]] = {s.name: [] for s in [hello, *services]}
            for _ in range(args.rounds):
                for server in [hello, *services]:
                    runs[server.name].append(throughput(server, args.duration, args.connections, script))
            base_rps = statistics.median(r for r, _ in runs[hello.name])
            for server in [hello, *services]:
                rps = statistics.median(r for r, _ in runs[server.name])
                p99 = statistics.median(p for _, p in runs[server.name])
                rows.append(
                    (
                        language,
                        server.name,
                        ready[server.name],
                        ready[server.name] / ready[hello.name],
                        rps,
                        rps / base_rps,
                        p99,
                    )
                )
    header = ("language", "server", "ready s", "x hello", "req/s", "x hello", "p99 ms")
    print("\n{:<8} {:<26}{:>9}{:>9}{:>10}{:>9}{:>9}".format(*header))
    for language, name, ready_s, ready_x, rps, rps_x, p99 in rows:
        print(f"{language:<8} {name:<26}{ready_s:>9.3f}{ready_x:>9.2f}{rps:>10.0f}{rps_x:>9.2f}{p99:>9.2f}")
    print("\ntargets: time-to-ready x hello <= 1.20; throughput x hello >= 0.90")


if __name__ == "__main__":
    main()
