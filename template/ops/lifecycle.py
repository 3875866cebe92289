"""Process lifecycle state shared by the gunicorn master and its workers, without Django.

The phase (starting, ready, draining) lives in an anonymous shared memory page created when this
module is first imported. gunicorn.conf.py imports it in the master, so every worker forked
afterwards shares the page: when the master receives SIGTERM it sets the phase to draining and
every worker's /ready answers 503 at once, while they all keep serving. Outside gunicorn (tests,
management commands) the page is simply private to the process.

The service is ready as soon as it listens. A service that must warm up first calls
``mark_starting()`` in gunicorn.conf.py's ``on_starting`` hook and ``mark_ready()`` when done:
/ready answers 503 "starting" meanwhile.
"""

from __future__ import annotations

import mmap
import time
from typing import Literal

Phase = Literal["starting", "ready", "draining"]

_PHASES: tuple[Phase, ...] = ("ready", "starting", "draining")  # byte value -> phase
_flag = mmap.mmap(-1, 1)
_started = time.monotonic()


def phase() -> Phase:
    return _PHASES[_flag[0]]


def mark_starting() -> None:
    _flag[0] = _PHASES.index("starting")


def mark_ready() -> None:
    """Ready to serve (never leaves draining: a draining process stays draining)."""
    if not is_draining():
        _flag[0] = _PHASES.index("ready")


def start_draining() -> None:
    _flag[0] = _PHASES.index("draining")


def stop_draining() -> None:
    """Only for tests: a real process never stops draining."""
    _flag[0] = _PHASES.index("ready")


def is_draining() -> bool:
    return phase() == "draining"


def uptime_seconds() -> float:
    """Seconds since the server (the gunicorn master, when there is one) started."""
    return time.monotonic() - _started
