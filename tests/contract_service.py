"""What the suites that run the built services share (tests/test_contract.py, tests/test_tracing.py).

`copies(...)` makes, per language, a private copy of the built default render (conftest's
`built_service`) with team-owned files written into it, as a team would write them: the contract
suite's checks file (CHECKS) and whatever a suite adds (the trace suite's parametric route), and
rebuilds it. `Service` runs one process of such a copy with its production command on free
loopback ports; `request` sends one request as the Gateway would.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

from harness import free_port, wait_for
from helpers import run, tool_env

OPS_PATHS = ["/health", "/ready", "/health/detailed", "/metrics"]

# The team-owned checks file of each language, as a team would write two dependency checks.
CHECKS = {
    "node": ("src/app/checks.ts", """\
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import type { RegisterChecks } from '../readiness.js';

const flags = process.env['CONTRACT_FLAGS'] ?? '/nonexistent';
const failWhenFlagged = (name: string) => () => {
  if (existsSync(join(flags, name))) throw new Error(`${name} is down`);
  return Promise.resolve();
};

export const registerChecks: RegisterChecks = (checks) => {
  checks.register('needed', failWhenFlagged('needed'));
  checks.register('optional', failWhenFlagged('optional'), { required: false });
};
"""),
    "go": ("internal/app/checks.go", """\
package app

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/{owner}/{slug}/internal/health"
)

func failWhenFlagged(name string) health.CheckFunc {
	return func(context.Context) error {
		if _, err := os.Stat(filepath.Join(os.Getenv("CONTRACT_FLAGS"), name)); err == nil {
			return errors.New(name + " is down")
		}
		return nil
	}
}

func (a *App) Checks(reg *health.Registry) {
	reg.Register("needed", time.Second, failWhenFlagged("needed"))
	reg.RegisterOptional("optional", time.Second, failWhenFlagged("optional"))
}
"""),
    "django": ("service/checks.py", """\
import dataclasses
import os
from pathlib import Path

from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable

from ops.checks import optional


@dataclasses.dataclass
class Flagged(HealthCheck):
    flag: str = ""

    @property
    def name(self) -> str:
        return self.flag

    def run(self) -> None:
        if (Path(os.environ["CONTRACT_FLAGS"]) / self.flag).exists():
            raise ServiceUnavailable(f"{self.flag} is down")


READINESS_CHECKS = [Flagged(flag="needed"), optional(Flagged(flag="optional"))]
"""),
}
# What a native build leaves that the copy shares with the built render instead of rebuilding.
SHARED_DIRS = {"node": ["node_modules"], "go": [], "django": [".venv", "staticfiles"]}
BUILD = {"node": ["npm", "run", "build"], "go": ["make", "build"], "django": None}


# ------------------------------------------------------------------------------------------------
# A running service
# ------------------------------------------------------------------------------------------------
class Response:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def json(self) -> dict:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<{self.status} {self.body[:300]!r}>"


def request(port: int, path: str, method: str = "GET", headers: dict[str, str] | None = None,
            body: bytes | None = None, timeout: float = 10) -> Response:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        # The Gateway ends TLS and says so, as in production (Django redirects plain HTTP there).
        conn.request(method, path, body=body,
                     headers={"Host": "127.0.0.1", "X-Forwarded-Proto": "https", **(headers or {})})
        response = conn.getresponse()
        return Response(response.status, response.headers, response.read())
    finally:
        conn.close()


class Service:
    """One process of a language's built copy, on free loopback ports."""

    def __init__(self, copy: Copy, name: str, management: bool = False, **env: str | None):
        self.copy = copy
        self.port = free_port()
        self.management_port = free_port() if management else None
        self.log = copy.logs / f"{name}-{self.port}.log"
        base = {
            "PORT": str(self.port),
            "APP_ENV": "production",
            "LOG_LEVEL": "info",
            "APP_VERSION": "1.2.3-contract",
            "SHUTDOWN_DELAY_SECONDS": "1",
            "SHUTDOWN_TIMEOUT_SECONDS": "5",
            "CONTRACT_FLAGS": str(copy.flags),
            **copy.recipe.env,
        }
        if self.management_port:
            base["MANAGEMENT_PORT"] = str(self.management_port)
        base.update(env)
        self.env = {key: value for key, value in base.items() if value is not None}
        self.proc: subprocess.Popen | None = None

    @property
    def ops_port(self) -> int:
        return self.management_port or self.port

    def start(self, wait: bool = True) -> Service:
        environment = tool_env(**self.env)
        # unset unless the test sets them: a developer's shell may export these (OTEL_*: a
        # collector of their own would receive the suite's spans)
        inherited = ["APP_ENV", "MANAGEMENT_PORT", *(name for name in environment if name.startswith("OTEL_"))]
        for name in inherited:
            if name not in self.env:
                environment.pop(name, None)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.copy.recipe.command, cwd=self.copy.path, env=environment,
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        if wait:
            def ready() -> bool:
                if self.proc.poll() is not None:
                    raise AssertionError(f"{self.copy.language} exited {self.proc.returncode}:\n{self.output()}")
                try:
                    return request(self.ops_port, "/ready", timeout=1).status == 200
                except OSError:
                    return False

            wait_for(ready, 120, f"{self.copy.language} to be ready", interval=0.1)
        return self

    def get(self, path: str, **kwargs) -> Response:
        port = self.ops_port if path.split("?")[0] in OPS_PATHS else self.port
        return request(port, path, **kwargs)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_lines(self) -> list[dict]:
        lines = []
        for line in self.output().splitlines():
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                lines.append(value)
        return lines

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


class Copy:
    """A private copy of the built default render whose checks file registers the test's checks."""

    def __init__(self, language: str, path: Path, recipe, logs: Path, slug: str = ""):
        self.language, self.path, self.recipe, self.logs, self.slug = language, path, recipe, logs, slug
        self.flags = path.parent / f"{language}-flags"
        self.flags.mkdir(exist_ok=True)

    def flag(self, *names: str) -> None:
        """Make exactly the named checks fail."""
        for existing in self.flags.iterdir():
            existing.unlink()
        for name in names:
            (self.flags / name).touch()


def copies(built_service, request, tmp_path_factory, name: str,
           files: Mapping[str, Mapping[str, str]] | None = None) -> Callable[[str], Copy]:
    """copy(language) -> Copy: the built default render of LANGUAGE, copied once per session, with the
    contract's checks file and `files[language]` ({relative path: text}) written into it, rebuilt.
    In each text, {owner} and {slug} become the render's GitHub owner and project slug."""
    made: dict[str, Copy] = {}

    def _copy(language: str) -> Copy:
        if language not in made:
            built = built_service(language)
            source = built.project.path
            dest = tmp_path_factory.mktemp(f"{name}-{language}") / "svc"
            shared = SHARED_DIRS[language]
            shutil.copytree(source, dest, symlinks=True,
                            ignore=shutil.ignore_patterns(*shared, "dist", "bin", ".git"))
            for shared_dir in shared:
                (dest / shared_dir).symlink_to(source / shared_dir)
            answers = built.project.answers
            for relative, text in [CHECKS[language], *(files or {}).get(language, {}).items()]:
                text = text.replace("{owner}", answers.get("github_owner", "")).replace("{slug}", answers["project_slug"])
                (dest / relative).write_text(text)
            if BUILD[language]:
                env = {}
                if language == "go":
                    env = request.getfixturevalue("go_env")
                run(BUILD[language], cwd=dest, timeout=600, **env)
            made[language] = Copy(language, dest, built.recipe, tmp_path_factory.mktemp(f"{name}-{language}-logs"),
                                  answers["project_slug"])
        return made[language]

    return _copy
