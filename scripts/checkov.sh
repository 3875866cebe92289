#!/usr/bin/env bash
# Run checkov from its own virtual environment, creating it first when needed (idempotent).
#   scripts/checkov.sh --version
#   scripts/checkov.sh -d DIR --skip-download --framework dockerfile kubernetes github_actions
# checkov pins ~100 dependencies (boto3, aiohttp, ...) that would clash with the test tools' pins,
# so it lives in .cache/checkov-venv, installed from the fully pinned requirements-checkov.txt.
# A lock makes parallel callers (pytest-xdist workers) wait for one install instead of racing.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.cache/checkov-venv"
stamp="$venv/.installed-$(sha256sum "$root/requirements-checkov.txt" | cut -c1-16)"

if [ ! -e "$stamp" ]; then
  mkdir -p "$root/.cache"
  exec 9>"$root/.cache/checkov-venv.lock"
  flock 9
  if [ ! -e "$stamp" ]; then
    uv="$root/.venv/bin/uv"
    [ -x "$uv" ] || uv="$(command -v uv)"
    rm -rf "$venv"
    UV_PYTHON_DOWNLOADS=never "$uv" venv --quiet --python "${PYTHON:-python3}" "$venv"
    "$uv" pip install --quiet --python "$venv/bin/python" -r "$root/requirements-checkov.txt"
    touch "$stamp"
  fi
  exec 9>&-
fi
exec "$venv/bin/checkov" "$@"
