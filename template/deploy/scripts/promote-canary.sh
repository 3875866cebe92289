#!/usr/bin/env bash
# Managed by the template: `copier update` merges template changes into this file.
# Canary: promote the canary's release to stable now, skipping the remaining steps.
set -Eeuo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<EOF
Usage: $SCRIPT_NAME --env staging|production [--dry-run]

Moves deployment/${SLUG}-stable to the canary's image and configuration, waits for it, returns all
traffic to stable (canary weight 0) and scales the canary to 0. On failure it aborts: canary
weight 0, stable rolled back.
EOF
}

OPTIONS="--env --namespace --dry-run"
parse_args "$@"
resolve_target "staging production"
start
promote_canary
