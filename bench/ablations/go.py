"""The Go service with one contract feature switched off, for the benchmark only (issue 15).

Each entry: (path in the rendered project, exact old text, new text); bench/service_bench.py applies
one feature's edits to a copy of the built render and rebuilds it (`make build`). The product keeps
every feature.
"""

ABLATIONS: dict[str, list[tuple[str, str, str]]] = {
    # the one JSON line per request (middleware.Observe; /health is at debug, so off at info anyway)
    "request_log": [
        ("internal/middleware/middleware.go", "if !logger.Enabled(ctx, level) {",
         "if true || !logger.Enabled(ctx, level) {"),
    ],
    # http_requests_total and http_request_duration_seconds, recorded by middleware.Observe
    "metrics": [
        ("internal/middleware/middleware.go", "rec.Observe(r.Method, route, status, elapsed)", "_ = rec"),
    ],
    # the id kept from X-Request-ID or generated, echoed in the header, put in the request context
    "request_id": [
        ("internal/server/server.go", "\t\tmiddleware.RequestID,\n", ""),
    ],
    # the six security headers on every answer (middleware.Secure)
    "security_headers": [
        ("internal/server/server.go", "\t\tmiddleware.Secure,\n", ""),
    ],
    # the per-request lifecycle bookkeeping: the draining check that closes keep-alive connections
    # after SIGTERM (checks run only on /ready and /health/detailed, which the bench does not load)
    "readiness": [
        ("internal/server/server.go", "\t\ts.closeWhenDraining,\n", ""),
    ],
}
