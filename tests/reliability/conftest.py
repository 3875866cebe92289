"""Fixtures of the zero-downtime drills: one native build of each language per test session.

Where a language's own toolchain tests already install and build the default render in a session
fixture, the drills reuse that build (imported below, so that pytest sees the fixture here too)
instead of installing the dependencies a second time; otherwise they build their own copy.
"""

from __future__ import annotations

import fcntl
import importlib
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import Recipe
from helpers import Project, run

# language -> (module, session fixture giving the default render installed, `make setup` done).
# Go builds its own (seconds, with a warm cache): go_service runs the whole lint and test gate.
SHARED_BUILDS = {
    "node": ("test_node_service", "node_service"),
    "django": ("test_django_service", "django_service"),
}
# the Go tests' session environment (offline, one GOCACHE for the session): reused when present
SHARED_ENV = {"go": ("test_go_service", "go_env")}
# what `make build` leaves behind, per language: built when missing
BUILT_ARTIFACT = {"go": "bin/server", "node": "dist/server.js", "django": "staticfiles"}
for _module, _fixture in [*SHARED_BUILDS.values(), *SHARED_ENV.values()]:
    try:
        globals()[_fixture] = getattr(importlib.import_module(_module), _fixture)
    except (ImportError, AttributeError):
        pass

# How the image's command (FACTS[language]["start_command"]) runs natively, from the built render.
RECIPES = {
    "go": Recipe(["bin/server"]),  # the image's /app/server
    "node": Recipe(["node", "dist/server.js"]),
    # the image puts the project's venv first on PATH; natively it is .venv/bin
    "django": Recipe([".venv/bin/gunicorn", "--config", "gunicorn.conf.py", "config.wsgi:application"]),
}


@dataclass
class Built:
    project: Project
    recipe: Recipe


BUILD_ENV = {"GOTOOLCHAIN": "local", "GOPROXY": "off", "UV_PYTHON_DOWNLOADS": "never"}


def own_build(render, shared: Path, language: str, **env: str) -> Project:
    """The default render, `make setup build`, shared by the xdist workers through a file lock."""
    project = render(language=language)
    dest = shared / f"reliability-{language}"
    with open(shared / f"reliability-{language}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = dest / ".built-by-tests"
        if not marker.exists():
            shutil.rmtree(dest, ignore_errors=True)
            project.clone_to(dest)
            run(["make", "setup", "build"], cwd=dest, timeout=900, **{**BUILD_ENV, **env})
            marker.write_text("make setup build passed\n")
    return Project(dest, project.answers)


@pytest.fixture(scope="session")
def built_service(request, render, tmp_path_factory, worker_id):
    """built_service(language) -> Built: the default render, installed and built, once."""
    base = tmp_path_factory.getbasetemp()
    shared = base if worker_id == "master" else base.parent
    cache: dict[str, Built] = {}

    def _built(language: str) -> Built:
        if language not in cache:
            fixture = SHARED_BUILDS.get(language, ("", ""))[1]
            if fixture and fixture in globals():
                project = request.getfixturevalue(fixture)
                if not (project.path / BUILT_ARTIFACT[language]).exists():
                    run(["make", "build"], cwd=project.path, timeout=900, **BUILD_ENV)
            else:
                env_fixture = SHARED_ENV.get(language, ("", ""))[1]
                env = request.getfixturevalue(env_fixture) if env_fixture in globals() else {}
                project = own_build(render, shared, language, **env)
            recipe = RECIPES[language]
            if language == "django":
                recipe = Recipe(
                    recipe.command,
                    {
                        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
                        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
                        "DATABASE_URL": f"sqlite:///{tmp_path_factory.mktemp('django-db') / 'db.sqlite3'}",
                    },
                )
            cache[language] = Built(project, recipe)
        return cache[language]

    return _built


@pytest.fixture
def workdir(tmp_path) -> Path:
    """Logs of the instances, the nginx prefix, the wrk script: kept in tmp_path for post-mortems."""
    (tmp_path / "logs").mkdir()
    return tmp_path
