"""Readiness checks: the database (part of the fleet contract) plus the service's own.

Checks are django-health-check ``HealthCheck`` objects, so any of its bundled checks (cache,
storage, Redis, Celery, ...) can be listed in ``service/checks.py`` next to the team's own. They run
concurrently on a shared thread pool, each within its own timeout.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from health_check.base import HealthCheck
from health_check.checks import Database as _Database

# Shared by all requests of a worker: a hung check holds one thread until its own client timeout
# gives up, never the request (which stops waiting at the check's deadline).
_executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="readiness")


@dataclasses.dataclass
class Database(_Database):
    """SELECT 1 on a fresh connection. 2 s budget: PostgreSQL's connect_timeout is also 2 s."""

    timeout: datetime.timedelta = dataclasses.field(
        default=datetime.timedelta(seconds=2), repr=False
    )

    @property
    def name(self) -> str:
        return "database" if self.alias == "default" else f"database:{self.alias}"


@dataclasses.dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    latency_ms: float
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "name": self.name,
            "status": "ok" if self.ok else "error",
            "latency_ms": self.latency_ms,
        }
        if self.error is not None:
            result["error"] = self.error
        return result


def check_name(check: HealthCheck) -> str:
    """A check's ``name`` attribute, else its class name and labels ("cache(alias=default)")."""
    name = getattr(check, "name", None)
    if isinstance(name, str) and name:
        return name
    labels = dict(check.labels)
    base = str(labels.pop("check", type(check).__name__)).lower()
    if not labels:
        return base
    return f"{base}({','.join(f'{key}={value}' for key, value in labels.items())})"


def readiness_checks() -> list[HealthCheck]:
    from service.checks import READINESS_CHECKS  # noqa: PLC0415 - the team's list, read each time

    return [*(Database(alias=alias) for alias in settings.DATABASES), *READINESS_CHECKS]


def run_checks(checks: list[HealthCheck] | None = None) -> list[CheckResult]:
    """Run every check concurrently; never raises (a failing check is a result)."""
    checks = readiness_checks() if checks is None else checks

    async def gather() -> list[Any]:
        return list(await asyncio.gather(*(check.get_result(_executor) for check in checks)))

    return [
        CheckResult(
            name=check_name(result.check),
            ok=result.error is None,
            latency_ms=round(result.time_taken * 1000, 2),
            error=None if result.error is None else str(result.error),
        )
        for result in asyncio.run(gather())
    ]
