"""Fixtures of the template's own tests (managed: `copier update` keeps them current)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from config.env import BASE_DIR
from ops import lifecycle

# Every variable config/env.py reads: tests start from none of them set.
CONFIG_VARIABLES = [
    "PORT",
    "APP_ENV",
    "LOG_LEVEL",
    "APP_VERSION",
    "SHUTDOWN_DELAY_SECONDS",
    "SHUTDOWN_TIMEOUT_SECONDS",
    "DJANGO_SECRET_KEY",
    "DJANGO_ALLOWED_HOSTS",
    "DATABASE_URL",
    "WEB_CONCURRENCY",
    "GUNICORN_THREADS",
    "GUNICORN_TIMEOUT",
]
STRONG_KEY = "x9Yq2-LmP7vR4sT1wZ8nB3kD6fH0jQ5cE2gU9aV7yX4rN1mK8pL3sW6tZ0bC5dF"
PRODUCTION = {
    "APP_ENV": "production",
    "DJANGO_SECRET_KEY": STRONG_KEY,
    "DJANGO_ALLOWED_HOSTS": "service.example.com",
}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The process environment without any of the service's variables."""
    for name in CONFIG_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def draining() -> Iterator[None]:
    """As after SIGTERM in gunicorn: the shared draining flag is set."""
    lifecycle.start_draining()
    yield
    lifecycle.stop_draining()


def subprocess_env(tmp_path: Path, **variables: str) -> dict[str, str]:
    """A child's environment: ours without the service's variables, plus `variables`."""
    env = {k: v for k, v in os.environ.items() if k not in CONFIG_VARIABLES}
    env.update({"HOME": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"})
    env.pop("XDG_RUNTIME_DIR", None)
    env.update(variables)
    return env


def manage(tmp_path: Path, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=subprocess_env(tmp_path, **variables),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    started: float = field(default_factory=time.monotonic)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str, timeout: float = 10) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url(path), timeout=timeout) as response:
                return int(response.status), bytes(response.read())
        except urllib.error.HTTPError as exc:
            return int(exc.code), bytes(exc.read())

    def log_lines(self) -> list[str]:
        return self.log.read_text().splitlines()


@pytest.fixture
def start_gunicorn(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """start_gunicorn(app, **env) -> Server: gunicorn with the real gunicorn.conf.py."""
    servers: list[Server] = []

    def start(app: str = "config.wsgi:application", **variables: str) -> Server:
        port = free_port()
        log = tmp_path / f"gunicorn-{port}.log"
        env = subprocess_env(tmp_path, PORT=str(port), **variables)
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", app],
                cwd=BASE_DIR,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        server = Server(process, port, log)
        servers.append(server)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"gunicorn exited {process.returncode}:\n{log.read_text()}")
            try:
                if server.get("/health", timeout=1)[0] == 200:
                    return server
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"gunicorn did not answer /health within 30 s:\n{log.read_text()}")

    yield start
    for server in servers:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
