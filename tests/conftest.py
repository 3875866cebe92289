"""Fixtures: every language x strategy is rendered once per test session and shared."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import MATRIX, Project


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
