#!/usr/bin/env bash
# served-version.sh VERSION: the live Service of the kind e2e job answers the smoke test and
# reports VERSION in /health/detailed. Environment: NAMESPACE, SERVICE (the job sets both).
set -euo pipefail
expected=${1:?usage: served-version.sh VERSION}
port=$(kubectl -n "$NAMESPACE" get service "$SERVICE" -o jsonpath='{.spec.ports[0].port}')
kubectl -n "$NAMESPACE" port-forward "service/$SERVICE" 18080:"$port" > /dev/null &
forward=$!
trap 'kill "$forward" 2> /dev/null || true' EXIT
for _ in $(seq 1 30); do
  curl -fsS -o /dev/null http://127.0.0.1:18080/health 2> /dev/null && break
  sleep 1
done
build/demo/deploy/scripts/smoke-test.sh http://127.0.0.1:18080
# port-forward reaches one of the pods the Service selects: the live version's.
detailed=$(curl -fsS http://127.0.0.1:18080/health/detailed)
if ! jq -e --arg v "$expected" 'tostring | contains($v)' <<< "$detailed" > /dev/null; then
  echo "::error::expected version $expected, the Service answered: $detailed"
  exit 1
fi
echo "$SERVICE in $NAMESPACE serves $expected"
