"""JSON log lines on stdout, each with the id of the request being served (when there is one)."""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

# Set by ops.middleware.RequestIdMiddleware for the duration of a request.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


class JsonFormatter(_JsonFormatter):
    """{"time": ..., "level": "info", "logger": ..., "message": ..., "request_id": ...}."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("fmt", "%(levelname)s %(name)s %(message)s")
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", "time")
        super().__init__(*args, **kwargs)

    def add_fields(
        self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_record, record, message_dict)
        log_record["level"] = record.levelname.lower()
        current = request_id.get()
        if current is not None:
            log_record.setdefault("request_id", current)
