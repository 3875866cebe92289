"""Process lifecycle state shared by the gunicorn master and its workers, without Django.

The draining flag lives in an anonymous shared memory page created when this module is first
imported. gunicorn.conf.py imports it in the master, so every worker forked afterwards shares the
page: when the master receives SIGTERM it sets the flag and every worker's /ready answers 503 at
once, while they all keep serving. Outside gunicorn (tests, management commands) the page is
simply private to the process.
"""

from __future__ import annotations

import mmap
import time

_flag = mmap.mmap(-1, 1)
_started = time.monotonic()


def start_draining() -> None:
    _flag[0] = 1


def stop_draining() -> None:
    """Only for tests: a real process never stops draining."""
    _flag[0] = 0


def is_draining() -> bool:
    return _flag[0] == 1


def uptime_seconds() -> float:
    """Seconds since the server (the gunicorn master, when there is one) started."""
    return time.monotonic() - _started
