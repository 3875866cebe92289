#!/usr/bin/env bash
# Managed by the template: `copier update` merges template changes into this file.
# Smoke test of a running instance: the service contract's endpoints answer as they should.
set -Eeuo pipefail

SCRIPT_NAME=$(basename "$0")
: "${SMOKE_ATTEMPTS:=10}"        # tries before giving up (the service may still be starting)
: "${SMOKE_DELAY_SECONDS:=3}"    # between two tries
: "${SMOKE_TIMEOUT_SECONDS:=5}"  # per request
: "${SMOKE_HOST:=}"              # optional Host header (a virtual host behind a shared address)
: "${SMOKE_PATH:=/}"              # --public: an application path that must answer below 500

usage() {
  cat <<EOF
Usage: $SCRIPT_NAME BASE_URL [MANAGEMENT_URL]
       $SCRIPT_NAME --public PUBLIC_URL

Checks MANAGEMENT_URL/health (200, status ok), /ready (200), /health/detailed (200, a version) and
/metrics (200, Prometheus text); with MANAGEMENT_URL given, also that BASE_URL/health answers 404
(the operational endpoints are not served on the application port). MANAGEMENT_URL defaults to
BASE_URL (a service without MANAGEMENT_PORT). With --public, PUBLIC_URL is the address users
reach (the Gateway): SMOKE_PATH ($SMOKE_PATH) must answer below 500 and the four operational
endpoints 404. Retries up to SMOKE_ATTEMPTS times; exits non-zero on failure.
Environment: SMOKE_ATTEMPTS ($SMOKE_ATTEMPTS), SMOKE_DELAY_SECONDS ($SMOKE_DELAY_SECONDS),
SMOKE_TIMEOUT_SECONDS ($SMOKE_TIMEOUT_SECONDS), SMOKE_HOST (a Host header to send), SMOKE_PATH.
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
PUBLIC=false
if [[ ${1:-} == --public ]]; then
  PUBLIC=true
  shift
  if [[ $# -ne 1 ]]; then
    usage >&2
    exit 2
  fi
fi
if [[ $# -lt 1 || $# -gt 2 ]]; then
  usage >&2
  exit 2
fi
[[ $1 =~ ^https?://[^/]+ ]] || die "BASE_URL must be an http(s) URL, got '$1'"
BASE_URL=${1%/}
MANAGEMENT_URL=${2:-$1}
[[ $MANAGEMENT_URL =~ ^https?://[^/]+ ]] || die "MANAGEMENT_URL must be an http(s) URL, got '$MANAGEMENT_URL'"
MANAGEMENT_URL=${MANAGEMENT_URL%/}
command -v curl >/dev/null 2>&1 || die "curl is required but not on PATH"
[[ $SMOKE_ATTEMPTS =~ ^[1-9][0-9]*$ ]] || die "SMOKE_ATTEMPTS must be a positive number"

BODY=$(mktemp "${TMPDIR:-/tmp}/smoke.XXXXXX")
ERRORS=$(mktemp "${TMPDIR:-/tmp}/smoke.XXXXXX")
trap 'rm -f "$BODY" "$ERRORS"' EXIT

# check PATH PATTERN [BASE [STATUS]]: GET BASE/PATH (BASE: MANAGEMENT_URL) answers STATUS (200, or
# any status below 500 for "below-500") with a body matching PATTERN (extended regex).
check() {
  local status base=${3:-$MANAGEMENT_URL} expected=${4:-200} where=$1
  # the path alone for the operational endpoints' address, the whole URL for the other one
  [[ $base == "$MANAGEMENT_URL" ]] || where=$base$1
  local -a host=()
  [[ -z $SMOKE_HOST ]] || host=(--header "Host: $SMOKE_HOST")
  if ! status=$(curl --silent --show-error --max-time "$SMOKE_TIMEOUT_SECONDS" "${host[@]}" \
    --output "$BODY" --write-out '%{http_code}' "$base$1" 2>"$ERRORS"); then
    printf 'GET %s: no answer (%s)\n' "$where" "$(tr '\n' ' ' <"$ERRORS")"
    return 1
  fi
  if [[ $expected == below-500 ]]; then
    ((status < 500)) && return 0
    printf 'GET %s: HTTP %s\n' "$where" "$status"
    return 1
  fi
  if [[ $status != "$expected" ]]; then
    printf 'GET %s: HTTP %s, expected %s\n' "$where" "$status" "$expected"
    return 1
  fi
  if ! grep -Eq -- "$2" "$BODY"; then
    printf 'GET %s: %s, but the body does not match /%s/\n' "$where" "$status" "$2"
    return 1
  fi
}

attempt=1
while :; do
  failures=$(
    if $PUBLIC; then
      check "$SMOKE_PATH" '' "$BASE_URL" below-500 || true
      for path in /health /ready /health/detailed /metrics; do
        check "$path" '"error" *: *"not_found"' "$BASE_URL" 404 || true
      done
      exit 0
    fi
    check /health '"status" *: *"ok"' || true
    check /ready '.' || true
    check /health/detailed '"version"' || true
    check /metrics '^# (HELP|TYPE) ' || true
    if [[ $MANAGEMENT_URL != "$BASE_URL" ]]; then
      check /health '"error" *: *"not_found"' "$BASE_URL" 404 || true
    fi
  )
  if [[ -z $failures ]]; then
    if $PUBLIC; then
      printf '%s: %s passed (%s answers; the operational endpoints are not public)\n' "$SCRIPT_NAME" "$BASE_URL" "$SMOKE_PATH"
    else
      printf '%s: %s passed (/health, /ready, /health/detailed, /metrics)\n' "$SCRIPT_NAME" "$MANAGEMENT_URL"
    fi
    exit 0
  fi
  if ((attempt >= SMOKE_ATTEMPTS)); then
    printf '%s\n' "$failures" >&2
    die "$BASE_URL failed its smoke test after $attempt attempt(s)"
  fi
  attempt=$((attempt + 1))
  sleep "$SMOKE_DELAY_SECONDS"
done
