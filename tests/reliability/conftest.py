"""Fixtures of the zero-downtime drills: one native build of each language per test session."""

from __future__ import annotations

import fcntl
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import Recipe
from helpers import Project, run

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


@pytest.fixture(scope="session")
def built_service(render, tmp_path_factory, worker_id):
    """built_service(language) -> Built: the default render, `make setup build` once per session.

    Shared by both pytest-xdist workers through a file lock in the session's base temp folder.
    """
    base = tmp_path_factory.getbasetemp()
    shared = base if worker_id == "master" else base.parent
    cache: dict[str, Built] = {}

    def _built(language: str) -> Built:
        if language not in cache:
            project = render(language=language)
            dest = shared / f"reliability-{language}"
            with open(shared / f"reliability-{language}.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                marker = dest / ".built-by-tests"
                if not marker.exists():
                    shutil.rmtree(dest, ignore_errors=True)
                    project.clone_to(dest)
                    run(["make", "setup", "build"], cwd=dest, timeout=900, GOTOOLCHAIN="local",
                        GOPROXY="off", UV_PYTHON_DOWNLOADS="never")
                    marker.write_text("make setup build passed\n")
            recipe = RECIPES[language]
            if language == "django":
                recipe = Recipe(recipe.command, {
                    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
                    "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
                    "DATABASE_URL": f"sqlite:///{tmp_path_factory.mktemp('django-db') / 'db.sqlite3'}",
                })
            cache[language] = Built(Project(dest, project.answers), recipe)
        return cache[language]

    return _built


@pytest.fixture
def workdir(tmp_path) -> Path:
    """Logs of the instances, the nginx prefix, the wrk script: kept in tmp_path for post-mortems."""
    (tmp_path / "logs").mkdir()
    return tmp_path
