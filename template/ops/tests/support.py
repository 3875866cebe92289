"""Helpers of the template's own tests (managed: `copier update` keeps them current)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from config.env import BASE_DIR, Settings

# Every variable config/env.py reads (and gunicorn's metrics folder): children start without them.
CONFIG_VARIABLES = [*(name.upper() for name in Settings.model_fields), "PROMETHEUS_MULTIPROC_DIR"]
# pragma: allowlist nextline secret: test data, a key no deployment uses
STRONG_KEY = "x9Yq2-LmP7vR4sT1wZ8nB3kD6fH0jQ5cE2gU9aV7yX4rN1mK8pL3sW6tZ0bC5dF"
PRODUCTION = {
    "APP_ENV": "production",
    "DJANGO_SECRET_KEY": STRONG_KEY,
    "DJANGO_ALLOWED_HOSTS": "service.example.com",
}


def subprocess_env(tmp_path: Path, **variables: str) -> dict[str, str]:
    """A child's environment: ours without the service's variables, development, plus
    `variables`."""
    env = {k: v for k, v in os.environ.items() if k not in CONFIG_VARIABLES}
    env.update(
        {
            # Unset means production; the tests that want production say so.
            "APP_ENV": "development",
            "HOME": str(tmp_path),
            "TMPDIR": str(tmp_path),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        }
    )
    env.pop("XDG_RUNTIME_DIR", None)
    env.update(variables)
    return env


def python(tmp_path: Path, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """This interpreter with `args`, in the project, with the environment of subprocess_env."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=BASE_DIR,
        env=subprocess_env(tmp_path, **variables),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def manage(tmp_path: Path, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    return python(tmp_path, "manage.py", *args, **variables)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    management_port: int | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def ops_port(self) -> int:
        """Where /health, /ready, /health/detailed and /metrics are served."""
        return self.management_port or self.port

    def url(self, path: str, port: int | None = None) -> str:
        return f"http://127.0.0.1:{port or self.port}{path}"

    def get(self, path: str, timeout: float = 10, port: int | None = None) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url(path, port), timeout=timeout) as response:
                return int(response.status), bytes(response.read())
        except urllib.error.HTTPError as exc:
            return int(exc.code), bytes(exc.read())

    def log_lines(self) -> list[str]:
        return self.log.read_text().splitlines()
