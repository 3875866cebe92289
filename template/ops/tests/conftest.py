"""Fixtures of the template's own tests (managed: `copier update` keeps them current)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from config.env import BASE_DIR
from ops import lifecycle
from ops.tests.support import CONFIG_VARIABLES, Server, free_port, subprocess_env


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
        management = variables.get("MANAGEMENT_PORT")
        server = Server(process, port, log, int(management) if management else None)
        servers.append(server)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"gunicorn exited {process.returncode}:\n{log.read_text()}")
            try:
                if server.get("/health", timeout=1, port=server.ops_port)[0] == 200:
                    return server
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"gunicorn did not answer /health within 30 s:\n{log.read_text()}")

    yield start
    for server in servers:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
