"""config.wsgi plus GET /__slow?seconds=N, a request that takes N seconds (shutdown tests only)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from config.wsgi import application as django_application


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/__slow":
        seconds = float(parse_qs(environ.get("QUERY_STRING", "")).get("seconds", ["1"])[0])
        time.sleep(seconds)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"done"]
    response: Iterable[bytes] = django_application(environ, start_response)
    return response
