"""A real OpenTelemetry Collector for the trace tests: OTLP/HTTP in, the file exporter's JSON out.

`collector_binary()` builds the collector with scripts/otelcol.sh when it is missing (cached under
~/.cache) and returns its path. `Collector(workdir).start()` runs it with an OTLP/HTTP receiver on a
free loopback port and the batch processor feeding the file exporter (OTLP JSON, one export request
per line, flushed every 100 ms) into a file under workdir; `spans()` reads every span received so
far back, with its resource's attributes; `wait_for_spans(predicate)` waits until some match.
The collector's own telemetry (metrics on :8888 by default) is switched off: several collectors run
side by side, and nothing here binds beyond loopback.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from helpers import ROOT

LOOPBACK = "127.0.0.1"
# OTLP's enums, as the collector's JSON encoding writes them (numbers).
SPAN_KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
STATUS_CODES = {0: "UNSET", 1: "OK", 2: "ERROR"}

CONFIG = """\
receivers:
  otlp:
    protocols:
      http:
        endpoint: {loopback}:{port}
processors:
  batch:
    timeout: 50ms
exporters:
  file:
    path: {output}
    format: json
    flush_interval: 100ms
service:
  telemetry:
    logs:
      level: info
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [file]
"""


def collector_binary() -> Path:
    """scripts/otelcol.sh bin: the collector's path, built first when missing (locked, cached)."""
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "otelcol.sh"), "bin"], text=True, capture_output=True,
                          timeout=3600, check=False)
    path = Path(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else None
    assert proc.returncode == 0 and path and path.is_file(), (
        f"scripts/otelcol.sh bin failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return path


def _value(value: dict[str, Any]) -> Any:
    """One OTLP JSON AnyValue as a Python value (int64s arrive as strings in proto3 JSON)."""
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        return int(value["intValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "arrayValue" in value:
        return [_value(v) for v in value["arrayValue"].get("values", [])]
    if "kvlistValue" in value:
        return _attributes(value["kvlistValue"].get("values", []))
    if "bytesValue" in value:
        return value["bytesValue"]
    return None


def _attributes(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    return {pair["key"]: _value(pair.get("value", {})) for pair in pairs}


@dataclass
class Span:
    trace_id: str  # 32 lowercase hex digits
    span_id: str  # 16
    parent_span_id: str  # "" for a root span
    name: str
    kind: str  # SERVER, CLIENT, INTERNAL...
    attributes: dict[str, Any]
    status: str  # UNSET, OK or ERROR
    resource: dict[str, Any]
    scope: str
    raw: dict[str, Any] = field(repr=False, default_factory=dict)


def parse_spans(line: str) -> list[Span]:
    """The spans of one line of the file exporter's JSON output (one ExportTraceServiceRequest)."""
    spans = []
    for resource_spans in json.loads(line).get("resourceSpans", []):
        resource = _attributes(resource_spans.get("resource", {}).get("attributes", []))
        for scope_spans in resource_spans.get("scopeSpans", []):
            scope = scope_spans.get("scope", {}).get("name", "")
            for span in scope_spans.get("spans", []):
                spans.append(Span(
                    trace_id=span.get("traceId", "").lower(),
                    span_id=span.get("spanId", "").lower(),
                    parent_span_id=span.get("parentSpanId", "").lower(),
                    name=span.get("name", ""),
                    kind=SPAN_KINDS.get(span.get("kind", 0), str(span.get("kind"))),
                    attributes=_attributes(span.get("attributes", [])),
                    status=STATUS_CODES.get(span.get("status", {}).get("code", 0), "?"),
                    resource=resource,
                    scope=scope,
                    raw=span,
                ))
    return spans


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


class Collector:
    """One collector process on a free loopback port, writing what it receives under workdir."""

    def __init__(self, workdir: Path, binary: Path | None = None, port: int | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.binary = binary or collector_binary()
        self.port = port or free_port()
        self.output = self.workdir / f"spans-{self.port}.jsonl"
        self.config = self.workdir / f"collector-{self.port}.yaml"
        self.log = self.workdir / f"collector-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        """The value of OTEL_EXPORTER_OTLP_ENDPOINT (the SDKs add /v1/traces)."""
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 30) -> Collector:
        self.config.write_text(CONFIG.format(loopback=LOOPBACK, port=self.port, output=self.output))
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([str(self.binary), "--config", f"file:{self.config}"], cwd=self.workdir,
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the collector exited {self.proc.returncode}:\n{self.output_log()}")
            # ready once the receiver listens and the pipelines are up (the log says so)
            if "Everything is ready" in self.output_log():
                try:
                    socket.create_connection((LOOPBACK, self.port), timeout=1).close()
                    return self
                except OSError:
                    pass
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"the collector did not start within {timeout} s:\n{self.output_log()}")

    def output_log(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def spans(self) -> list[Span]:
        """Every span written so far (a line still being written is left for the next read)."""
        if not self.output.exists():
            return []
        spans = []
        for line in self.output.read_text(errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                spans.extend(parse_spans(line))
            except ValueError:
                continue
        return spans

    def wait_for_spans(self, predicate: Callable[[Span], bool], timeout: float = 15, count: int = 1,
                       what: str = "spans") -> list[Span]:
        """At least `count` received spans matching predicate, waiting up to timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            found = [span for span in self.spans() if predicate(span)]
            if len(found) >= count:
                return found
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what} in the collector; it has "
                                     f"{[(s.name, s.trace_id) for s in self.spans()]}\n{self.output_log()[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
