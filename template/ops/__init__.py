"""Operational plumbing shared by every service of the fleet: health, readiness, metrics, request
ids, JSON logs, traces and the gunicorn lifecycle. Managed by the template: `copier update` keeps
it current, so put the service's own code in the `service` app instead.

Nothing here may import Django at package import time: gunicorn's master process and the
container HEALTHCHECK (`python -m ops.healthcheck`) import parts of it without Django.

Importing ops makes django-health-check's package `health_check` lazy (below): its package
`__init__` imports every bundled check, and with the DNS check all of dnspython, about 100 ms of
every worker's start, whether or not a DNS check is listed.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any


def _lazy_health_check() -> None:
    """Register `health_check` without running its `__init__` until a name is read from it.

    Its submodules import as usual (`from health_check.base import HealthCheck` loads base.py
    only); the first name read from the package itself (`from health_check import Cache`) runs
    the real `__init__`, and `health_check.checks` (with dnspython) loads when a check from it is
    imported. Nothing changes for code that uses the bundled checks; a service without them
    never loads dnspython.
    """
    if "health_check" in sys.modules:
        return
    spec = importlib.util.find_spec("health_check")
    if spec is None or spec.loader is None:
        return  # not installed: nothing to defer
    package = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def load_on_first_use(name: str) -> Any:
        del package.__getattr__  # the real __init__ defines the names from now on
        loader.exec_module(package)
        return getattr(package, name)

    package.__getattr__ = load_on_first_use  # type: ignore[method-assign]
    sys.modules["health_check"] = package


_lazy_health_check()
