#!/usr/bin/env bash
# Managed by the template: `copier update` merges template changes into this file.
#
# Contract tests of the service's container image, as CI runs them (needs Docker, curl and jq):
#
#   make image && .github/scripts/container-test.sh IMAGE
#
# Runs IMAGE the way Kubernetes does (production settings, MANAGEMENT_PORT, read-only root
# filesystem, no capabilities) on the host network, then checks that
#   - the image's own HEALTHCHECK reports healthy;
#   - /health, /ready, /health/detailed and /metrics answer on the management port, and 404 on the
#     application port (deploy/scripts/smoke-test.sh), and keep
#     the contract: liveness {"status":"ok"}, the built version in /health/detailed and in the
#     image label, Prometheus text on /metrics, JSON log lines on stdout;
#   - on SIGTERM (docker stop) readiness answers 503 while liveness still answers 200, and the
#     process exits 0.
#
# Environment:
#   SERVICE_ENV       extra KEY=VALUE lines for the container: its dependencies (DATABASE_URL...)
#   EXPECTED_VERSION  the APP_VERSION the image was built with (default: the image's version label)
#   WRITABLE_PATHS    the paths the service may write to, space-separated (default: /tmp)
#   MANAGEMENT_PORT   the operational endpoints' port (default: 9090, or 9091 when the image's is 9090)
set -euo pipefail

image=${1:?usage: container-test.sh IMAGE}
here=$(cd "$(dirname "$0")" && pwd)
smoke_test=$here/../../deploy/scripts/smoke-test.sh
name=container-test-$$
workdir=$(mktemp -d)

grouped=false
step() {
  if [ -z "${GITHUB_ACTIONS:-}" ]; then echo "== $*"; return; fi
  if [ "$grouped" = true ]; then echo "::endgroup::"; fi
  echo "::group::$*"
  grouped=true
}
fail() { echo "::error::container-test: $*" >&2; exit 1; }
cleanup() {
  local status=$?
  if [ "$status" -ne 0 ]; then
    echo "--- container logs"
    docker logs "$name" 2>&1 || true
  fi
  docker rm --force "$name" > /dev/null 2>&1 || true
  rm -rf "$workdir"
  exit "$status"
}
trap cleanup EXIT

label=$(docker image inspect "$image" | jq -r '.[0].Config.Labels["org.opencontainers.image.version"] // empty')
version=${EXPECTED_VERSION:-$label}
[ -n "$version" ] || fail "the image has no org.opencontainers.image.version label"
[ "$label" = "$version" ] || fail "the image's version label is '$label', expected '$version'"
port=$(docker image inspect "$image" | jq -r '.[0].Config.ExposedPorts // {} | keys | first // empty | split("/") | first')
[ -n "$port" ] || fail "the image exposes no port (EXPOSE in the Dockerfile)"
base=http://127.0.0.1:$port
management_port=${MANAGEMENT_PORT:-9090}
if [ "$management_port" = "$port" ]; then management_port=9091; fi
management=http://127.0.0.1:$management_port

step "Start $image (version $version) on port $port"
tmpfs=()
for path in ${WRITABLE_PATHS:-/tmp}; do tmpfs+=(--tmpfs "$path"); done
printf '%s\n' "${SERVICE_ENV:-}" > "$workdir/service.env"
# The HEALTHCHECK command is the image's own; only its interval is shortened for the test.
docker run --detach --name "$name" --network host \
  --read-only "${tmpfs[@]}" --cap-drop ALL --security-opt no-new-privileges \
  --env APP_ENV=production --env LOG_LEVEL=info --env MANAGEMENT_PORT="$management_port" \
  --env SHUTDOWN_DELAY_SECONDS=3 --env SHUTDOWN_TIMEOUT_SECONDS=10 \
  --env-file "$workdir/service.env" \
  --health-interval 2s --health-start-period 60s \
  "$image" > /dev/null

step "Wait for the HEALTHCHECK to report healthy"
state=
for _ in $(seq 1 60); do
  state=$(docker inspect "$name" | jq -c '.[0].State | {Status, Health: .Health.Status}')
  case "$state" in
    *'"Health":"healthy"'*) break ;;
    *'"Status":"running"'*) sleep 2 ;;
    *) fail "the container stopped: $state" ;;
  esac
done
case "$state" in *'"Health":"healthy"'*) echo "healthy" ;; *) fail "not healthy after 120 s: $state" ;; esac

step "Smoke test (deploy/scripts/smoke-test.sh)"
"$smoke_test" "$base" "$management"

step "Endpoints keep the service contract"
curl -fsS "$management/health" | jq -e '.status == "ok"' > /dev/null || fail "/health does not answer {\"status\":\"ok\"}"
curl -fsS "$management/ready" | jq -e 'type == "object"' > /dev/null || fail "/ready does not answer 200 with a JSON object"
curl -fsS "$management/health/detailed" | jq -e --arg v "$version" 'tostring | contains($v)' > /dev/null \
  || fail "/health/detailed does not report version $version"
curl -fsS "$management/metrics" | grep -qE '^# (HELP|TYPE) ' || fail "/metrics is not Prometheus text"
docker logs "$name" 2> /dev/null | jq -R -e 'fromjson? | objects' > /dev/null \
  || fail "no JSON log line on stdout"
echo "ok"

step "Graceful stop: readiness 503 while draining, liveness 200, exit code 0"
docker stop --time 30 "$name" > /dev/null &
stopper=$!
drained=false
for _ in $(seq 1 50); do
  if [ "$(curl -s -o /dev/null -w '%{http_code}' "$management/ready" || true)" = 503 ]; then
    drained=true
    curl -fsS -o /dev/null "$management/health" || fail "/health stopped answering 200 while draining"
    break
  fi
  sleep 0.1
done
wait "$stopper"
code=$(docker inspect "$name" | jq '.[0].State.ExitCode')
[ "$drained" = true ] || fail "/ready did not answer 503 after SIGTERM"
[ "$code" = 0 ] || fail "the service exited with $code after SIGTERM"
echo "drained and exited 0"
if [ "$grouped" = true ]; then echo "::endgroup::"; fi
echo "container-test: $image keeps the service contract"
