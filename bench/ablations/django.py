"""The Django service with one contract feature switched off, for the benchmark only (issue 15).

Each entry: (path in the rendered project, exact old text, new text); bench/service_bench.py applies
one feature's edits to a copy of the built render and rebuilds it. The product keeps every feature.
"""

ABLATIONS: dict[str, list[tuple[str, str, str]]] = {
    # gunicorn's access log: the one JSON line per request (ops.server.JsonLogger.access)
    "request_log": [
        ("gunicorn.conf.py", 'accesslog = "-"\n', "accesslog = None\n"),
    ],
    # http_requests_total and http_request_duration_seconds (mmap files per worker)
    "metrics": [
        ("config/settings.py", '    "ops.middleware.MetricsMiddleware",\n', ""),
    ],
    # the id kept from X-Request-ID or generated, echoed in the header, bound to log lines
    "request_id": [
        ("config/settings.py", '    "ops.middleware.RequestIdMiddleware",\n', ""),
    ],
    # CSP and CORP (ours), nosniff, Referrer-Policy, COOP, HSTS (SecurityMiddleware), X-Frame-Options
    "security_headers": [
        ("config/settings.py", '    "ops.middleware.SecurityHeadersMiddleware",\n', ""),
        ("config/settings.py", '    "django.middleware.security.SecurityMiddleware",\n', ""),
        ("config/settings.py", '    "django.middleware.clickjacking.XFrameOptionsMiddleware",\n', ""),
    ],
    # Django keeps no per-request readiness state (the phase is one shared byte, read by /ready
    # only): this stops /ready running the checks (the database's SELECT 1), which time-to-ready
    # waits for
    "readiness": [
        (
            "ops/views.py",
            '        return _json({"status": phase, "checks": []}, status=503)\n    results = run_checks()\n',
            '        return _json({"status": phase, "checks": []}, status=503)\n    results: list[CheckResult] = []\n',
        ),
    ],
    # Not a contract feature: the gevent worker's fair turns between keep-alive connections
    # (ops.server.take_turns, gunicorn's post_request hook). Without it the p99 under wrk is set
    # by one connection being served many times in a row; this row shows it in the same run.
    "fair_turns": [
        ("gunicorn.conf.py", "    server.take_turns()\n", "    return\n"),
    ],
}
