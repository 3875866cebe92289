"""The Node service with one contract feature switched off, for the benchmark only (issue 15).

Each entry: (path in the rendered project, exact old text, new text); bench/service_bench.py applies
one feature's edits to a copy of the built render and rebuilds it. The product keeps every feature.
"""

ABLATIONS: dict[str, list[tuple[str, str, str]]] = {
    # the per-request line (the hook that formats and writes it)
    "request_log": [
        (
            "src/plugins/request-log.ts",
            "  app.addHook('onResponse', (request, reply, next) => {\n    const route",
            "  if (false as boolean) app.addHook('onResponse', (request, reply, next) => {\n    const route",
        ),
    ],
    # the per-request count and histogram, and the process metrics set up at start
    "metrics": [
        (
            "src/plugins/metrics.ts",
            "  app.addHook('onResponse', (request, reply, next) => {\n    metrics.observe(",
            "  if (false as boolean) app.addHook('onResponse', (request, reply, next) => {\n    metrics.observe(",
        ),
        ("src/plugins/metrics.ts", "    collectDefaultMetrics({ register: this.registry });\n", ""),
    ],
    # the id taken from X-Request-ID or generated, and echoed in the response header
    "request_id": [
        ("src/app.ts", "    genReqId: requestId,\n", ""),
        ("src/plugins/request-log.ts", "    void reply.header('x-request-id', request.id);\n", ""),
    ],
    "security_headers": [
        ("src/app.ts", "  void app.register(securityHeaders);\n", ""),
    ],
    # Node keeps no per-request readiness state; this moves markReady out of the onReady hook
    "readiness": [
        (
            "src/app.ts",
            "  app.addHook('onReady', async () => {\n    shared.lifecycle.markReady();\n  });\n",
            "  shared.lifecycle.markReady();\n",
        ),
    ],
}
