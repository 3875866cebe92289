"""Log lines and request metrics: the fast paths write what the general ones would."""

from __future__ import annotations

import datetime
import json
import logging
import random
import re
from typing import Any

import pytest
from prometheus_client import REGISTRY

from ops import metrics
from ops.logs import ACCESS_FIELDS, AccessFormatter, JsonFormatter, _iso_time

FIELDS: dict[str, Any] = {
    "request_id": "trace-42",
    "method": "GET",
    "path": "/",
    "status": 200,
    "duration_ms": 1.25,
    "bytes": 42,
    "protocol": "HTTP/1.1",
}


def record(extra: dict[str, Any], level: int = logging.INFO) -> logging.LogRecord:
    logger = logging.getLogger("gunicorn.access")
    return logger.makeRecord(logger.name, level, __file__, 0, "request", (), None, extra=extra)


def test_access_lines_are_what_the_general_formatter_writes() -> None:
    access = record({ACCESS_FIELDS: FIELDS})
    general = record(FIELDS)
    general.created = access.created
    assert AccessFormatter().format(access) == JsonFormatter().format(general)


def test_access_lines_keep_the_field_order_level_logger_msg_fields_time() -> None:
    line = json.loads(AccessFormatter().format(record({ACCESS_FIELDS: FIELDS})))
    assert list(line) == ["level", "logger", "msg", *FIELDS, "time"]


@pytest.mark.parametrize(
    ("level", "word"),
    [
        (logging.DEBUG, "debug"),
        (logging.INFO, "info"),
        (logging.WARNING, "warning"),
        (logging.ERROR, "error"),
        (logging.CRITICAL, "error"),
        (logging.INFO + 5, "info"),
        (logging.DEBUG - 5, "debug"),
    ],
)
def test_lines_have_the_contract_shape_time_level_word_msg(level: int, word: str) -> None:
    """The contract's keys (docs/service-contract.md): the LOG_LEVEL words, "msg", UTC time."""
    for formatter in (JsonFormatter(), AccessFormatter()):
        line = json.loads(formatter.format(record({ACCESS_FIELDS: FIELDS}, level)))
        assert line["level"] == word
        assert line["msg"] == "request"
        assert "message" not in line
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"]), line["time"]


def test_other_records_on_the_access_logger_use_the_general_formatter() -> None:
    plain = record({}, logging.WARNING)
    assert AccessFormatter().format(plain) == JsonFormatter().format(plain)


def test_iso_time_is_isoformat_in_utc_to_the_millisecond() -> None:
    instants = [0.0, 1_700_000_000.0, 1_700_000_000.000001, 1_700_000_000.9995]
    instants += [1_700_000_000.9999996]  # rounds to the next second
    instants += [random.uniform(1.6e9, 2.0e9) for _ in range(2000)]  # noqa: S311 - not crypto
    for instant in instants:
        moment = datetime.datetime.fromtimestamp(instant, datetime.UTC)
        expected = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        assert _iso_time(instant) == expected, instant


def test_observe_counts_each_request_with_bounded_labels() -> None:
    labels = {"method": "OTHER", "route": "/observe-test", "status_code": "418"}
    before = REGISTRY.get_sample_value("http_requests_total", labels) or 0.0
    metrics.observe("BREW", "/observe-test", 418, 0.002)
    metrics.observe("BREW", "/observe-test", 418, 0.002)  # the cached children this time
    assert REGISTRY.get_sample_value("http_requests_total", labels) == before + 2
    count = REGISTRY.get_sample_value("http_request_duration_seconds_count", labels)
    assert count == before + 2
