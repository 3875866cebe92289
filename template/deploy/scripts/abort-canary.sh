#!/usr/bin/env bash
# Managed by the template: `copier update` merges template changes into this file.
# Canary: send all traffic back to stable and scale the canary to 0.
set -Eeuo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<EOF
Usage: $SCRIPT_NAME --env staging|production [--dry-run]

Sets the canary's weight in httproute/${SLUG} to 0 (stable 100) and scales deployment/${SLUG}-canary
to 0. Safe at any time, also when no canary is in progress.
EOF
}

OPTIONS="--env --namespace --dry-run"
parse_args "$@"
resolve_target "staging production"
start
abort_canary
