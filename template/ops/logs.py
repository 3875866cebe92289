"""JSON log lines on stdout, each with the id of the request being served (when there is one),
and the trace and span ids of the active span when tracing is on.

Every line has the fleet's one shape (docs/service-contract.md, "Request ids and logs"): `time`
in RFC 3339 UTC to the millisecond ("2026-01-02T15:04:05.678Z"), `level` one of the LOG_LEVEL
words (debug, info, warning, error; Python's CRITICAL is written "error"), and `msg`.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

# Set by ops.middleware.RequestIdMiddleware for the duration of a request.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

# Set by ops.otel when tracing is on: (trace_id, span_id) of the active sampled span, else None.
# None while tracing is off: no lookup at all.
trace_ids: Callable[[], tuple[str, str] | None] | None = None
# The WSGI environ key under which ops.otel leaves a request's (trace_id, span_id) for its access
# line, which gunicorn writes once the span has ended.
TRACE_IDS = "ops.trace_ids"
# The WSGI environ key under which ops.middleware.MetricsMiddleware leaves a request's route for
# its access line: the metrics label (the URL pattern, an operational endpoint's path, "unmatched").
ROUTE = "ops.route"
# The WSGI environ key under which ops.middleware.RequestIdMiddleware leaves a request's id for its
# access line (the X-Request-ID header's value, without searching the response's headers for it).
REQUEST_ID = "ops.request_id"

# The level word of each Python level name: the LOG_LEVEL words, whatever the record's level.
LEVEL_WORDS = {
    "DEBUG": "debug",
    "INFO": "info",
    "WARNING": "warning",
    "ERROR": "error",
    "CRITICAL": "error",
}


def level_word(record: logging.LogRecord) -> str:
    """The LOG_LEVEL word of a record's level; a level between two takes the word below it."""
    word = LEVEL_WORDS.get(record.levelname)
    if word is not None:
        return word
    level = record.levelno
    if level >= logging.ERROR:
        return "error"
    if level >= logging.WARNING:
        return "warning"
    return "info" if level >= logging.INFO else "debug"


class JsonFormatter(_JsonFormatter):
    """{"level": "info", "logger": ..., "msg": ..., "request_id": ..., "time": ...}."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("fmt", "%(levelname)s %(name)s %(message)s")
        renames = {"levelname": "level", "name": "logger", "message": "msg"}
        kwargs.setdefault("rename_fields", renames)
        kwargs.setdefault("timestamp", "time")
        super().__init__(*args, **kwargs)

    def add_fields(
        self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_record, record, message_dict)
        log_record["level"] = level_word(record)
        log_record["time"] = _iso_time(record.created)
        current = request_id.get()
        if current is not None:
            log_record.setdefault("request_id", current)
        if trace_ids is not None and (ids := trace_ids()) is not None:
            log_record.setdefault("trace_id", ids[0])
            log_record.setdefault("span_id", ids[1])


# The attribute of an access log record that holds its fields (ops.server.JsonLogger.access).
ACCESS_FIELDS = "access_fields"


class AccessFormatter(logging.Formatter):
    """gunicorn's request lines, in the same JSON shape as JsonFormatter, built directly.

    A request line has fixed fields, so it needs none of python-json-logger's general machinery
    (format parsing, renames, merging record extras, its encoder): under load that machinery was
    about 5% of the CPU of a request to the application route (py-spy; see docs/performance.md).
    Any other record on the access logger goes through JsonFormatter.
    """

    def __init__(self) -> None:
        super().__init__()
        self._general = JsonFormatter()

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] | None = getattr(record, ACCESS_FIELDS, None)
        if fields is None or record.exc_info or record.stack_info:
            return self._general.format(record)
        line = {
            "level": level_word(record),
            "logger": record.name,
            "msg": record.getMessage(),
            **fields,
            "time": _iso_time(record.created),
        }
        return _encode(line)


# One encoder for every line (json.dumps with any option builds a new one per call).
_encode = json.JSONEncoder(default=str).encode
# The date and time to the second, computed once per second: "2026-11-30T10:00:00".
_second: list[Any] = [None, ""]


def _iso_time(created: float) -> str:
    """RFC 3339 in UTC to the millisecond, "2026-11-30T10:00:00.123Z" (JavaScript's toISOString,
    and what the Go service writes): the text of datetime.fromtimestamp(created, UTC).isoformat(
    timespec="milliseconds"), with "Z" for "+00:00"."""
    second = int(created)
    micro = round((created - second) * 1_000_000)  # as datetime rounds to the microsecond
    if micro >= 1_000_000:
        second, micro = second + 1, micro - 1_000_000
    if _second[0] != second:
        stamp = datetime.datetime.fromtimestamp(second, datetime.UTC).isoformat()[:19]
        _second[:] = [second, stamp]
    return f"{_second[1]}.{micro // 1000:03d}Z"
