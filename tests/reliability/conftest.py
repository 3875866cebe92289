"""Fixtures of the zero-downtime drills. The native builds they run (`built_service`) are shared
with the deploy-path tests and live in tests/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def workdir(tmp_path) -> Path:
    """Logs of the instances, the nginx prefix, the wrk script: kept in tmp_path for post-mortems."""
    (tmp_path / "logs").mkdir()
    return tmp_path
