#!/usr/bin/env bash
# Managed by the template: `copier update` merges template changes into this file.
# Smoke test of a running instance: the service contract's endpoints answer as they should.
set -Eeuo pipefail

SCRIPT_NAME=$(basename "$0")
: "${SMOKE_ATTEMPTS:=10}"        # tries before giving up (the service may still be starting)
: "${SMOKE_DELAY_SECONDS:=3}"    # between two tries
: "${SMOKE_TIMEOUT_SECONDS:=5}"  # per request
: "${SMOKE_HOST:=}"              # optional Host header (a virtual host behind a shared address)

usage() {
  cat <<EOF
Usage: $SCRIPT_NAME BASE_URL

Checks BASE_URL/health (200, status ok), /ready (200), /health/detailed (200, a version) and
/metrics (200, Prometheus text), retrying up to SMOKE_ATTEMPTS times; exits non-zero on failure.
Environment: SMOKE_ATTEMPTS ($SMOKE_ATTEMPTS), SMOKE_DELAY_SECONDS ($SMOKE_DELAY_SECONDS),
SMOKE_TIMEOUT_SECONDS ($SMOKE_TIMEOUT_SECONDS), SMOKE_HOST (a Host header to send).
EOF
}

die() {
  printf '%s: error: %s\n' "$SCRIPT_NAME" "$*" >&2
  exit 1
}

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
  usage
  exit 0
fi
if [[ $# -ne 1 ]]; then
  usage >&2
  exit 2
fi
[[ $1 =~ ^https?://[^/]+ ]] || die "BASE_URL must be an http(s) URL, got '$1'"
BASE_URL=${1%/}
command -v curl >/dev/null 2>&1 || die "curl is required but not on PATH"
[[ $SMOKE_ATTEMPTS =~ ^[1-9][0-9]*$ ]] || die "SMOKE_ATTEMPTS must be a positive number"

BODY=$(mktemp "${TMPDIR:-/tmp}/smoke.XXXXXX")
ERRORS=$(mktemp "${TMPDIR:-/tmp}/smoke.XXXXXX")
trap 'rm -f "$BODY" "$ERRORS"' EXIT

# check PATH PATTERN: GET BASE_URL/PATH answers 200 with a body matching PATTERN (extended regex).
check() {
  local status
  local -a host=()
  [[ -z $SMOKE_HOST ]] || host=(--header "Host: $SMOKE_HOST")
  if ! status=$(curl --silent --show-error --max-time "$SMOKE_TIMEOUT_SECONDS" "${host[@]}" \
    --output "$BODY" --write-out '%{http_code}' "$BASE_URL$1" 2>"$ERRORS"); then
    printf 'GET %s: no answer (%s)\n' "$1" "$(tr '\n' ' ' <"$ERRORS")"
    return 1
  fi
  if [[ $status != 200 ]]; then
    printf 'GET %s: HTTP %s\n' "$1" "$status"
    return 1
  fi
  if ! grep -Eq -- "$2" "$BODY"; then
    printf 'GET %s: 200, but the body does not match /%s/\n' "$1" "$2"
    return 1
  fi
}

attempt=1
while :; do
  failures=$(
    check /health '"status" *: *"ok"' || true
    check /ready '.' || true
    check /health/detailed '"version"' || true
    check /metrics '^# (HELP|TYPE) ' || true
  )
  if [[ -z $failures ]]; then
    printf '%s: %s passed (/health, /ready, /health/detailed, /metrics)\n' "$SCRIPT_NAME" "$BASE_URL"
    exit 0
  fi
  if ((attempt >= SMOKE_ATTEMPTS)); then
    printf '%s\n' "$failures" >&2
    die "$BASE_URL failed its smoke test after $attempt attempt(s)"
  fi
  attempt=$((attempt + 1))
  sleep "$SMOKE_DELAY_SECONDS"
done
