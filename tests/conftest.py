"""Fixtures: every language x strategy is rendered once per test session and shared."""

from __future__ import annotations

import fcntl
import importlib
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness import Instance, Recipe
from kube import Cluster, cluster_up
from helpers import MATRIX, Project, run


@pytest.fixture(scope="session")
def render(copie_session):
    """render(**answers) -> Project, cached for the session: equal answers share one render.

    Renders are shared between tests, so tests must not change them; use ``Project.clone_to``
    (or the ``private_render`` fixture) for anything that writes.
    """
    cache: dict[tuple, Project] = {}

    def _render(**answers) -> Project:
        key = tuple(sorted(answers.items()))
        if key not in cache:
            result = copie_session.copy(extra_answers=answers)
            if result.exception is not None:
                raise result.exception
            cache[key] = Project(Path(result.project_dir), {**result.answers, **answers})
        return cache[key]

    return _render


@pytest.fixture(scope="session", params=MATRIX, ids=[f"{lang}-{strategy}" for lang, strategy in MATRIX])
def project(request, render) -> Project:
    """Each of the nine language x strategy renders, with default answers otherwise."""
    language, strategy = request.param
    return render(language=language, deployment_strategy=strategy)


@pytest.fixture
def private_render(render, tmp_path):
    """private_render(**answers) -> a writable copy of a shared render, in this test's tmp_path."""

    def _private(**answers) -> Project:
        return render(**answers).clone_to(tmp_path / "project")

    return _private


# ------------------------------------------------------------------------------------------------
# Native builds of the default render of each language, once per session: the zero-downtime drills
# run them behind nginx, the deploy-path tests point the deploy scripts' SMOKE_URL at them.
# Where a language's own toolchain tests already install and build the default render in a session
# fixture, that build is reused (imported below, so that pytest sees the fixture here too) instead
# of installing the dependencies a second time; otherwise the render is built once, shared by the
# xdist workers through a file lock.
# ------------------------------------------------------------------------------------------------
# language -> (module, session fixture giving the default render installed, `make setup` done).
# Go builds its own (seconds, with a warm cache): go_service runs the whole lint and test gate.
SHARED_BUILDS = {
    "node": ("test_node_service", "node_service"),
    "django": ("test_django_service", "django_service"),
}
# the Go tests' session environment (local toolchain, one GOCACHE and GOMODCACHE for the
# session): reused when present
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


BUILD_ENV = {"GOTOOLCHAIN": "local", "UV_PYTHON_DOWNLOADS": "never"}


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




@pytest.fixture(scope="session")
def running_service(built_service, tmp_path_factory):
    """running_service(language) -> the base URL of the default render of LANGUAGE running natively
    (its production command), started once per session: the deploy scripts' SMOKE_URL."""
    instances: dict[str, Instance] = {}
    logs = tmp_path_factory.mktemp("running-service-logs")

    def _url(language: str) -> str:
        if language not in instances:
            built = built_service(language)
            instance = Instance(built.project.path, built.recipe, f"{language}-smoke", logs).start()
            instances[language] = instance
            instance.wait_ready()
        return f"http://127.0.0.1:{instances[language].port}"

    yield _url
    for instance in instances.values():
        instance.kill()


# ------------------------------------------------------------------------------------------------
# The real control plane (scripts/cluster.sh): built when missing, started once, reused; `make test`
# stops it after the run.
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def cluster() -> Cluster:
    return Cluster(*cluster_up())


def pytest_terminal_summary(terminalreporter):
    """Print the figures that tests recorded as `record_property("evidence", {...})` (the
    zero-downtime drills: requests served and failed), also under pytest-xdist."""
    rows = [value for reports in terminalreporter.stats.values() for report in reports
            if getattr(report, "when", None) == "call"
            for name, value in getattr(report, "user_properties", []) if name == "evidence"]
    if rows:
        terminalreporter.section("evidence")
        for row in sorted(rows, key=lambda r: r.get("drill", "")):
            terminalreporter.write_line("  ".join(f"{k}={v}" for k, v in row.items()))
