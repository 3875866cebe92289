"""The template's facts: every value that differs between languages or strategies, in tables.

``FACTS`` holds one row per language (images, ports, commands, paths, environment variables...);
``STRATEGIES`` the paths and Deployments of each rollout strategy; ``COMMON_ENV``, ``SHUTDOWN`` and
``NETWORK`` the values every render shares. Blocks of text live in ``includes/`` as macros.
Nothing here runs anything: extensions/context.py puts these values into the render's context.
"""

from __future__ import annotations

from typing import Any

# --------------------------------------------------------------------------------------------
# The facts table. One entry per language; every entry has the same keys (a test checks it).
# Images are pinned to a release line that exists upstream; Dependabot's docker ecosystem keeps
# them current (see docs/decisions/0004-base-image-pinning.md).
# --------------------------------------------------------------------------------------------
FACTS: dict[str, dict[str, Any]] = {
    "node": {
        "display_name": "Node.js (TypeScript)",
        "default_port": 3000,
        "version_question": "node_version",
        "versions": ["26", "24", "22"],
        "build_image": "node:{version}-alpine",
        "runtime_image": "node:{version}-alpine",
        # numeric uid created in the runtime stage; the Kubernetes runAsUser must match it
        "uid": 10001,
        "dependency_files": ["package.json", "package-lock.json"],
        "source_dirs": ["src"],
        # The paths (files and folders) under template/ that only this language renders: the
        # other languages' renders leave them out (`_exclude`, excluded_paths below).
        "paths": [".c8rc.json", ".nvmrc", ".prettierignore", ".prettierrc.json", "eslint.config.js",
                  "package-lock.json", "package.json", "src", "test", "tsconfig.build.json",
                  "tsconfig.json"],
        # the team's own code: seeded once, never changed by `copier update` (_skip_if_exists)
        "seeded_dir": "src/app",
        # What `make setup` needs on the machine, checked first by scripts/check-tools.sh and listed
        # in the README: the oldest version that works ("{version}" is the chosen release, "{line}"
        # its major.minor), a command printing the installed one, and where to get it.
        # Node.js: package.json's engines (a test keeps them in step); npm: the one that Node ships.
        "tools": [
            {"name": "Node.js", "min": "20.19", "command": "node --version",
             "how": "https://nodejs.org/en/download, or `nvm install` (reads .nvmrc: Node.js {version})"},
            {"name": "npm", "min": "10.8", "command": "npm --version",
             "how": "it comes with Node.js: a newer Node.js, or `npm install --global npm`"},
        ],
        # Known vulnerabilities of what ships (CI's `audit` step; npm's advisory database)
        "audit_command": "npm audit --omit=dev --audit-level=high",
        # What of the arm64 image's build runs under emulation (QEMU) on an amd64 runner; "" for
        # none. The npm stages run on the build platform (pure JavaScript).
        "emulated_build": "the runtime stage's user set-up",
        "start_command": ["node", "dist/server.js"],
        "healthcheck_command": ["node", "dist/healthcheck.js"],
        "gitignore": ["node_modules/", "dist/", "coverage/", ".npm/", "*.tsbuildinfo"],
        # with COMMON_DOCKERIGNORE: the build copies package*.json, tsconfig*.json and src/ only
        "dockerignore": ["**/node_modules", "dist", "coverage", "*.tsbuildinfo", "test",
                         "**/*.test.ts", ".npm", "npm-debug.log*", ".eslintcache", ".c8rc.json",
                         ".nvmrc", ".prettierrc.json", ".prettierignore", "eslint.config.js"],
        "dependabot_ecosystem": "npm",
        "setup_action": "actions/setup-node",
        # what `make test` writes; CI uploads it as the coverage artifact
        "coverage_paths": ["coverage/"],
        "writable_paths": ["/tmp"],
        # Variables this language reads beyond COMMON_ENV (docs table and .env.example come from here).
        "env": [],
        # How scripts/readiness.py finds the variables the source reads (env-access idiom): files to
        # scan in source_dirs, test files to skip, and patterns whose first group is a variable
        # ("files": only in matching paths; "upper": the group is upper-cased).
        "env_scan": {
            "suffixes": [".ts", ".mts", ".cts", ".js", ".mjs", ".cjs"],
            "exclude": r"(^|/)(test|tests|__tests__)/|\.(test|spec)\.[cm]?[jt]s$",
            "patterns": [
                # process.env.NAME, process.env['NAME'], env.NAME (config read from an env object)
                {"regex": r"\benv\??\.([A-Z][A-Z0-9_]*)\b"},
                {"regex": r"\benv\??\.?\[\s*[\"'`]([A-Z][A-Z0-9_]*)[\"'`]\s*\]"},
                # the keys of VARIABLES, the table that validates process.env (src/config.ts)
                {"regex": r"^\s+([A-Z][A-Z0-9_]*)\s*:", "files": r"(^|/)config\.ts$"},
            ],
        },
        # Files of the service that keep the contract, named by docs/production-readiness.md.
        "contract_files": {
            "health": "src/routes/health.ts",
            "config": "src/config.ts",
            "logging": "src/plugins/request-log.ts",
            "metrics": "src/plugins/metrics.ts",
            "shutdown": "src/shutdown.ts",
            "security_headers": "src/plugins/security-headers.ts",
            "tracing": "src/otel.ts",
        },
        # Kubernetes (deploy/k8s): container resources, secrets by reference, database migrations
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}},
        "secret_env": [],
        "migration_secret_keys": {},
        "allowed_hosts_env": "",
        "has_database": False,
        "migrate_command": [],
    },
    "go": {
        "display_name": "Go",
        "default_port": 8080,
        "version_question": "go_version",
        "versions": ["1.27.3", "1.26.6"],
        "build_image": "golang:{version}",
        # distroless static nonroot: CA certificates, tzdata and a nonroot user (uid 65532); no
        # shell, no package manager (docs/decisions/0010-go-runtime-image-distroless.md)
        "runtime_image": "gcr.io/distroless/static-debian13:nonroot",
        "uid": 65532,
        "dependency_files": ["go.mod", "go.sum"],
        "source_dirs": ["cmd", "internal"],
        "paths": ["cmd", "go.mod", "go.sum", "internal"],
        "seeded_dir": "internal/app",
        # the go line of go.mod; `go env GOVERSION` in the repository reports the toolchain Go will
        # use: a Go 1.21 or newer fetches the go.mod release itself unless GOTOOLCHAIN=local
        "tools": [
            {"name": "Go", "min": "{line}.0", "command": "go env GOVERSION",
             "how": "https://go.dev/dl/ (Go {version}); a Go 1.21 or newer fetches it itself unless "
                    "GOTOOLCHAIN=local"},
        ],
        # govulncheck reports only vulnerabilities whose code the service can reach; pinned release
        "audit_command": "go run golang.org/x/vuln/cmd/govulncheck@v1.9.0 ./...",
        "emulated_build": "",  # cross-compiled on the build platform (GOOS/GOARCH)
        "start_command": ["/app/server"],
        "healthcheck_command": ["/app/server", "healthcheck"],
        "gitignore": ["/bin/", "/server", "coverage.out", "*.test"],
        # tests are not compiled into the binary: keeping them out spares a rebuild on a test edit
        "dockerignore": ["bin", "server", "coverage.out", "*.test", "**/*_test.go"],
        "dependabot_ecosystem": "gomod",
        "setup_action": "actions/setup-go",
        "coverage_paths": ["coverage.out"],
        "writable_paths": ["/tmp"],
        # unset APP_ENV means production (internal/config): the strict, safe default
        "env": [],
        "env_scan": {
            "suffixes": [".go"],
            "exclude": r"_test\.go$",
            # os.Getenv("NAME") / os.LookupEnv("NAME"), and the config parser's unexported helpers
            # taking the variable's name first: p.port("PORT"), p.seconds("SHUTDOWN_DELAY_SECONDS", ...)
            "patterns": [{"regex": r"(?:\bos\.(?:Getenv|LookupEnv)|\.[a-z]\w*|\b[a-z]\w*)\(\s*\"([A-Z][A-Z0-9_]*)\""}],
        },
        "contract_files": {
            "health": "internal/health/health.go",
            "config": "internal/config/config.go",
            "logging": "internal/middleware/middleware.go",
            "metrics": "internal/metrics/metrics.go",
            "shutdown": "internal/server/server.go",
            "security_headers": "internal/middleware/middleware.go",
            "tracing": "internal/tracing/tracing.go",
        },
        # Kubernetes (deploy/k8s): container resources, secrets by reference, database migrations
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}},
        "secret_env": [],
        "migration_secret_keys": {},
        "allowed_hosts_env": "",
        "has_database": False,
        "migrate_command": [],
    },
    "django": {
        "display_name": "Python (Django 5.2 LTS)",
        "default_port": 8000,
        "version_question": "python_version",
        # Django 5.2 LTS supports Python 3.10 to 3.14
        "versions": ["3.14", "3.13", "3.12"],
        "build_image": "python:{version}-slim",
        "runtime_image": "python:{version}-slim",
        # numeric uid with no passwd entry: the image creates no user
        "uid": 10001,
        "dependency_files": ["pyproject.toml", "uv.lock"],
        "source_dirs": ["config", "ops", "service", "manage.py", "gunicorn.conf.py"],
        "paths": ["config", "gunicorn.conf.py", "manage.py", "ops", "pyproject.toml", "service", "uv.lock"],
        "seeded_dir": "service",
        # uv: the release line of the image's uv (dockerfile_build() of includes/django/build.jinja), which wrote
        # uv.lock; Python: pyproject.toml's requires-python, as uv finds it for this project
        "tools": [
            {"name": "uv", "min": "0.13", "command": "uv --version",
             "how": "https://docs.astral.sh/uv/getting-started/installation/ (an older one: `uv self update`)"},
            {"name": "Python", "min": "3.11",
             "command": "uv python find >/dev/null && \"$(uv python find)\" --version",
             "how": "`uv python install {version}`, or https://www.python.org/downloads/"},
        ],
        # the runtime packages of uv.lock against the OSV database (the dev group does not ship)
        "audit_command": "uv audit --frozen --no-dev",
        # compiled wheels (psycopg, gevent...) are installed for the target platform
        "emulated_build": "the build stage's uv sync and collectstatic",
        "start_command": ["gunicorn", "--config", "gunicorn.conf.py", "config.wsgi:application"],
        # standard library only, no Django import: a few milliseconds per interval
        "healthcheck_command": ["python", "-m", "ops.healthcheck"],
        "gitignore": [".venv/", "__pycache__/", "*.py[cod]", "*.sqlite3", "*.sqlite3-journal",
                      "staticfiles/", "media/", ".pytest_cache/", ".mypy_cache/", ".ruff_cache/",
                      ".coverage", ".coverage.*", "coverage.xml", "htmlcov/"],
        # Docker matches these from the context root: "**/" reaches into every folder.
        "dockerignore": [".venv", "**/__pycache__", "**/*.py[cod]", "**/*.sqlite3",
                         "**/*.sqlite3-journal", "staticfiles", "media", "**/tests",
                         ".pytest_cache", ".mypy_cache", ".ruff_cache", ".coverage", ".coverage.*",
                         "coverage.xml", "htmlcov"],
        "dependabot_ecosystem": "uv",
        "setup_action": "astral-sh/setup-uv",
        "coverage_paths": ["coverage.xml", "htmlcov/"],
        "writable_paths": ["/tmp"],
        "env": [
            {"name": "DJANGO_SECRET_KEY", "default": "", "required": True,
             "meaning": "Django's signing key, at least 50 random characters from a Secret "
                        "(python -c \"import secrets; print(secrets.token_urlsafe(64))\"); "
                        "empty in development, where a fixed insecure key is used"},
            {"name": "DJANGO_ALLOWED_HOSTS", "default": "", "local": "localhost,127.0.0.1", "required": True,
             "meaning": "Comma-separated host names clients use (probes and scrapes by pod IP need no "
                        "entry); empty in development: localhost"},
            {"name": "DATABASE_URL", "default": "", "required": True,
             "meaning": "Database URL: empty in development (SQLite in db.sqlite3); PostgreSQL in staging "
                        "and production (postgres://USER:PASSWORD@HOST:5432/NAME, from a Secret)"},
            {"name": "WEB_CONCURRENCY", "default": "2", "required": False,
             "meaning": "gunicorn worker processes (gevent: each serves many connections at once); "
                        "size them to the container's CPU limit"},
            {"name": "GUNICORN_TIMEOUT", "default": "30", "required": False,
             "meaning": "Seconds before gunicorn replaces a silent worker"},
        ],
        "env_scan": {
            "suffixes": [".py"],
            "exclude": r"(^|/)(tests?/|test_[^/]*\.py$|[^/]*_tests?\.py$|conftest\.py$)",
            "patterns": [
                # os.environ["NAME"], os.environ.get("NAME"), os.getenv("NAME"); not a WSGI environ,
                # nor os.environ.setdefault (the code sets DJANGO_SETTINGS_MODULE for Django itself)
                {"regex": r"(?:\bos\.environ(?:\.get)?|\bos\.getenv|(?<![\w.])getenv)\s*[\[(]\s*[\"']([A-Z][A-Z0-9_]*)[\"']"},
                # the fields of the pydantic-settings class in config/env.py (name = field upper-cased)
                {"regex": r"^    ([a-z][a-z0-9_]*): [A-Za-z]", "files": r"^config/env\.py$", "upper": True},
            ],
        },
        "contract_files": {
            "health": "ops/views.py",
            "config": "config/env.py",
            "logging": "ops/logs.py",
            "metrics": "ops/metrics.py",
            "shutdown": "ops/lifecycle.py",
            "security_headers": "ops/middleware.py",
            "tracing": "ops/otel.py",
        },
        # Kubernetes (deploy/k8s): container resources, secrets by reference, database migrations.
        # gunicorn runs several worker processes: more memory than the single-process runtimes.
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
        # names of the variables read from the platform-created Secret <slug>-secrets (never values)
        "secret_env": ["DJANGO_SECRET_KEY", "DATABASE_URL"],
        # The migration Job gets DATABASE_URL from its own Secret key: a role that may change the
        # schema, while the service's role may only read and write rows (docs/deployment.md).
        "migration_secret_keys": {"DATABASE_URL": "MIGRATION_DATABASE_URL"},
        # the variable listing the Host headers the service answers (set per environment)
        "allowed_hosts_env": "DJANGO_ALLOWED_HOSTS",
        "has_database": True,
        # runs as a Job with the new image before traffic moves (deploy/scripts/deploy.sh)
        "migrate_command": ["python", "manage.py", "migrate", "--noinput"],
    },
}

# Files no image or repository of any language should carry (secrets, VCS, editors, CI, docs).
# Docker's matcher anchors a pattern without "**/" at the context root: secrets are kept out at
# every depth (the Dockerfiles copy whole source folders).
COMMON_DOCKERIGNORE = [".git", ".github", "**/.env", "**/.env.*", "!**/.env.example", "**/*.pem", "**/*.key",
                       "**/.npmrc", "*.md", "docs",
                       "deploy", "compose.yaml", "Makefile", ".editorconfig", ".vscode", ".idea",
                       "*.swp", ".DS_Store", ".copier-answers.yml", ".pre-commit-config.yaml", "team.mk",
                       "scripts/check-no-conflicts.sh", "scripts/check-tools.sh", "scripts/readiness.*", "*.rej",
                       "*.orig"]
COMMON_GITIGNORE = [".env", ".env.*", "!.env.example", ".DS_Store", ".idea/", ".vscode/", "*.swp",
                    "*.rej", "*.orig"]

# Shutdown, in one place: on pod deletion the kubelet runs the preStop sleep (endpoints and load
# balancers stop sending traffic meanwhile), then sends SIGTERM; the service flips /ready to 503,
# keeps serving SHUTDOWN_DELAY_SECONDS, then drains in-flight requests for up to
# SHUTDOWN_TIMEOUT_SECONDS. The pods' grace period covers all three plus a margin, so the kubelet
# never SIGKILLs a draining pod. The services' defaults (COMMON_ENV) and the manifests
# (includes/k8s/settings.jinja) read these numbers.
SHUTDOWN = {"prestop_sleep_seconds": 5, "shutdown_delay_seconds": 5, "shutdown_timeout_seconds": 20,
            "grace_margin_seconds": 10}
SHUTDOWN["termination_grace_seconds"] = sum(SHUTDOWN.values())

# Variables every language reads (the service contract). With each row's "env" they are the one
# source of .env.example and of the configuration table in docs/deployment.md. "default" is the
# value used when the variable is unset ("" = none: the service refuses to start without it in
# production); "local" (optional) is the value .env.example suggests for local work when it differs;
# "required" = must be set explicitly in production. A row's entry named like a common one
# overrides its fields.
COMMON_ENV: list[dict[str, Any]] = [
    {"name": "PORT", "default": "{port}", "required": False,
     "meaning": "TCP port of the application"},
    # Empty = unset: everything on PORT, which keeps local work simple. Kubernetes and compose set it.
    {"name": "MANAGEMENT_PORT", "default": "", "local": "", "required": False,
     "meaning": "TCP port of /health, /ready, /health/detailed and /metrics; PORT then answers them 404. "
                "Unset: PORT serves them too"},
    # Fail closed: a service started without APP_ENV runs with the strict production settings.
    {"name": "APP_ENV", "default": "production", "local": "development", "required": True,
     "meaning": "Environment name: development, staging or production (production turns on the strict checks)"},
    {"name": "LOG_LEVEL", "default": "info", "required": False,
     "meaning": "Least severe level logged: debug, info, warning or error"},
    {"name": "APP_VERSION", "default": "dev", "required": False,
     "meaning": "Version reported by /health/detailed and the logs; the image build sets it"},
    {"name": "SHUTDOWN_DELAY_SECONDS", "default": str(SHUTDOWN["shutdown_delay_seconds"]), "required": False,
     "meaning": "Seconds to keep serving after SIGTERM, with /ready already 503, so load balancers stop routing"},
    {"name": "SHUTDOWN_TIMEOUT_SECONDS", "default": str(SHUTDOWN["shutdown_timeout_seconds"]), "required": False,
     "meaning": "Seconds in-flight requests get to finish once the server stops accepting"},
    # Traces (docs/service-contract.md, "Traces"): the OpenTelemetry SDKs read these standard
    # variables themselves. Empty endpoint = tracing off, so local work and tests send nothing.
    {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "default": "", "required": False,
     "meaning": "OTLP/HTTP endpoint of the OpenTelemetry Collector (for example http://localhost:4318); "
                "empty: tracing off, no spans and nothing sent"},
    {"name": "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "default": "", "required": False,
     "meaning": "The full URL for traces alone (ending in /v1/traces); overrides OTEL_EXPORTER_OTLP_ENDPOINT for traces"},
    {"name": "OTEL_SDK_DISABLED", "default": "false", "required": False,
     "meaning": "true: tracing off whatever the endpoint"},
    {"name": "OTEL_TRACES_EXPORTER", "default": "otlp", "required": False,
     "meaning": "otlp, or none: tracing off whatever the endpoint"},
    # The standard's unit is milliseconds; the Python OTLP exporter reads seconds, so Django's
    # ops/otel.py converts (the Node and Go SDKs read them as the standard says).
    {"name": "OTEL_EXPORTER_OTLP_TIMEOUT", "default": "10000", "required": False,
     "meaning": "Milliseconds one export of spans may take, retries included"},
    {"name": "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "default": "", "required": False,
     "meaning": "Milliseconds for traces alone; overrides OTEL_EXPORTER_OTLP_TIMEOUT for traces"},
    {"name": "OTEL_SERVICE_NAME", "default": "{slug}", "required": False,
     "meaning": "service.name of the traces"},
    {"name": "OTEL_RESOURCE_ATTRIBUTES", "default": "", "required": False,
     "meaning": "More resource attributes of the traces, key=value,...; service.version and "
                "deployment.environment.name come from APP_VERSION and APP_ENV"},
]

# Each strategy: `paths`, the template paths only it renders (the manifests' base and the scripts
# of its choreography; the other strategies' renders leave them out); its Deployments, as suffixes
# of the slug: `serving`, those that carry all traffic after a plain `kubectl apply -k` (their
# replica count is set per environment), and `autoscaled`, those a production HPA scales (both
# colours for blue-green: an HPA does nothing while its Deployment is scaled to 0, which is how
# the idle colour rests).
STRATEGIES: dict[str, dict[str, list[str]]] = {
    "rolling": {"paths": ["deploy/k8s/base/rolling", "deploy/scripts/lib-rolling.sh"],
                "serving": [""], "autoscaled": [""]},
    "blue-green": {"paths": ["deploy/k8s/base/blue-green", "deploy/scripts/lib-blue-green.sh",
                             "deploy/scripts/switch-colour.sh"],
                   "serving": ["-blue"], "autoscaled": ["-blue", "-green"]},
    "canary": {"paths": ["deploy/k8s/base/canary", "deploy/k8s/overlays/production/httproute-patch.yaml",
                         "deploy/k8s/overlays/staging/httproute-patch.yaml", "deploy/scripts/abort-canary.sh",
                         "deploy/scripts/lib-canary.sh", "deploy/scripts/promote-canary.sh"],
               "serving": ["-stable"], "autoscaled": ["-stable"]},
}
# Rendered only for a language with a database (facts `has_database`), and only with previews.
DATABASE_PATHS = ["deploy/k8s/base/migration-job.yaml"]
PREVIEW_PATHS = [".github/workflows/preview.yml"]


# Who the service's pods talk to (deploy/k8s/base/networkpolicy.yaml, docs/kubernetes.md): by
# namespace, through the label Kubernetes sets on every namespace. A platform whose Gateway,
# Prometheus or DNS run elsewhere changes these once, in its fork, for the whole fleet.
NETWORK = {
    # the Gateway (or ingress controller) pods that forward user traffic to the application port
    "gateway_namespace": "gateway-system",
    # Prometheus, which scrapes the management port
    "monitoring_namespace": "monitoring",
    # cluster DNS: the pods labelled k8s-app=kube-dns (CoreDNS keeps that label) in kube-system
    "dns_namespace": "kube-system",
    "dns_pod_label": {"k8s-app": "kube-dns"},
    # the database of a service that has one: its port, at any address (managed databases live
    # outside the cluster)
    "database_port": 5432,
    # the OpenTelemetry Collector that receives the traces over OTLP/HTTP: its Service (the
    # OpenTelemetry Operator names a collector `otel` this way) in the telemetry namespace; the
    # NetworkPolicy lets the pods reach that namespace on the OTLP port
    "telemetry_namespace": "observability",
    "collector_service": "otel-collector",
    "otlp_port": 4318,
}
NETWORK["otlp_endpoint"] = (f"http://{NETWORK['collector_service']}.{NETWORK['telemetry_namespace']}.svc:"
                            f"{NETWORK['otlp_port']}")


# The port of the operational endpoints in Kubernetes and compose (docs/service-contract.md): one
# every service of a fleet shares, unless the service's own port is that one.
MANAGEMENT_PORT = 9090
