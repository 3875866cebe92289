"""Readiness checks: the database (part of the fleet contract) plus the service's own.

Checks are django-health-check ``HealthCheck`` objects, so any of its bundled checks (cache,
storage, Redis, Celery, ...) can be listed in ``service/checks.py`` next to the team's own. Each is
required unless wrapped in ``optional()``: a failing required check makes /ready answer 503, a
failing optional one only turns /health/detailed "degraded". They run concurrently, each within
its own timeout (the check's ``timeout``; 1 s when the check class sets none).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import inspect
import logging
import sys
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from django.conf import settings
from django.db import Error, connections
from django.utils.connection import ConnectionDoesNotExist
from health_check.base import HealthCheck
from health_check.exceptions import HealthCheckException, ServiceUnavailable

logger = logging.getLogger("ops.checks")

# The contract's default budget of a check whose class sets no timeout of its own.
DEFAULT_TIMEOUT = datetime.timedelta(seconds=1)

Check = TypeVar("Check", bound=HealthCheck)


@dataclasses.dataclass
class Database(HealthCheck):
    """SELECT 1 on a fresh connection. 2 s budget: PostgreSQL's connect_timeout is also 2 s.

    The same query and errors as django-health-check's `health_check.checks.Database`, which is
    not imported: that module also imports dnspython for its DNS check (see ops/__init__.py).
    """

    alias: str = "default"
    timeout: datetime.timedelta = dataclasses.field(
        default=datetime.timedelta(seconds=2), repr=False
    )

    @property
    def name(self) -> str:
        return "database" if self.alias == "default" else f"database:{self.alias}"

    def run(self) -> None:
        try:
            connection = connections[self.alias]
        except ConnectionDoesNotExist as exc:
            raise ServiceUnavailable("Database alias does not exist") from exc
        query = "SELECT 1 FROM DUAL" if connection.vendor == "oracle" else "SELECT 1"
        try:
            with connection.temporary_connection() as cursor:
                cursor.execute(query)
                result = cursor.fetchone()
        except Error as exc:
            # The driver's first clause ("connection refused"), never the DSN or the query.
            raise ServiceUnavailable(str(exc).rsplit(":")[0]) from exc
        if result != (1,):
            raise ServiceUnavailable("Health Check query did not return the expected result.")


def optional(check: Check) -> Check:
    """Mark a check optional: its failure degrades /health/detailed but keeps /ready 200."""
    check.required = False
    return check


def is_required(check: HealthCheck) -> bool:
    return bool(getattr(check, "required", True))


def timeout_of(check: HealthCheck) -> float:
    """The check's own timeout in seconds, else DEFAULT_TIMEOUT (django-health-check's is 5 s)."""
    timeout = check.timeout
    if timeout is HealthCheck.timeout:
        timeout = DEFAULT_TIMEOUT
    return float(timeout.total_seconds())


@dataclasses.dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    required: bool
    latency_ms: float
    error: str | None = None

    def as_dict(self, with_error: bool) -> dict[str, Any]:
        """The contract's check object; `error` only when asked (/health/detailed) and failed."""
        result: dict[str, Any] = {
            "name": self.name,
            "status": "ok" if self.ok else "fail",
            "required": self.required,
            "latency_ms": self.latency_ms,
        }
        if with_error and not self.ok:
            result["error"] = self.error or "failed"
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


# Shared by all requests of a worker: a hung check holds one of these until its own client
# timeout gives up, never the request (which stops waiting at the check's deadline).
_executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="readiness")
_native: Executor | None = None


def _gevent_patched() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey is not None and monkey.is_module_patched("threading"))


def _executor_for(check: HealthCheck) -> Executor:
    """Where a check runs. Under gunicorn's gevent workers the pool above runs greenlets, which
    suits blocking checks (sockets and psycopg yield to the hub); a coroutine check gets an event
    loop of its own in a native thread, because asyncio allows one running loop per OS thread."""
    global _native  # noqa: PLW0603 - created on first use, in the worker process
    if not (inspect.iscoroutinefunction(check.run) and _gevent_patched()):
        return _executor
    if _native is None:
        from gevent.threadpool import ThreadPoolExecutor as NativeThreads  # noqa: PLC0415

        _native = NativeThreads(max_workers=4)
    return _native


def _run(check: HealthCheck) -> tuple[float, str | None]:
    """Run one check: its duration in seconds and its error text (None when it passed)."""
    began = time.monotonic()
    error: str | None = None
    try:
        run: Callable[[], Any] = check.run
        if inspect.iscoroutinefunction(run):
            asyncio.run(run())
        else:
            run()
    except HealthCheckException as exc:
        # The check's own words ("connection refused"), without the "Unavailable: " prefix.
        error = str(getattr(exc, "message", "") or exc) or type(exc).__name__
    except Exception:
        # Unexpected errors can carry hosts or credentials: logged with the traceback, not shown.
        logger.exception("Readiness check %s raised", check_name(check))
        error = "unexpected error (see the service's log)"
    return time.monotonic() - began, error


def _result(
    check: HealthCheck, future: Future[tuple[float, str | None]], started: float
) -> CheckResult:
    timeout = timeout_of(check)
    try:
        elapsed, error = future.result(timeout=max(0.0, started + timeout - time.monotonic()))
    except FutureTimeout:
        elapsed = max(time.monotonic() - started, timeout)
    if elapsed >= timeout:  # no answer in time (a late answer does not count either)
        error = f"no answer within {timeout * 1000:g}ms"
    if error is not None:
        logger.warning("Readiness check %s failed: %s", check_name(check), error)
    return CheckResult(
        name=check_name(check),
        ok=error is None,
        required=is_required(check),
        latency_ms=round(elapsed * 1000, 2),
        error=error,
    )


def run_checks(checks: list[HealthCheck] | None = None) -> list[CheckResult]:
    """Run every check concurrently, each within its timeout; never raises."""
    checks = readiness_checks() if checks is None else checks
    started = time.monotonic()
    futures = [_executor_for(check).submit(_run, check) for check in checks]
    return [_result(check, future, started) for check, future in zip(checks, futures, strict=True)]
