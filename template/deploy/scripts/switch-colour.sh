#!/usr/bin/env bash
# Managed by the template: `copier update` merges template changes into this file.
# Blue-green: switch live traffic to the other colour, or scale the idle colour down.
set -Eeuo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<EOF
Usage: $SCRIPT_NAME --env staging|production [--to blue|green] [--dry-run]
       $SCRIPT_NAME --env staging|production --scale-down-idle [--dry-run]

Without --scale-down-idle: makes a colour (default: the idle one) live. It is scaled up first if
it rests at 0 pods, must be ready and pass the smoke test through service/${SLUG}-preview; then
service/${SLUG} selects it in one patch.
--scale-down-idle: scales the idle colour to 0 once a release has proven itself (a rollback then
has to start the old colour's pods again, which takes longer).
EOF
}

OPTIONS="--env --to --scale-down-idle --namespace --dry-run"
parse_args "$@"
resolve_target "staging production"
[[ -z $TO_COLOUR || $TO_COLOUR == blue || $TO_COLOUR == green ]] || die "--to must be blue or green, got '$TO_COLOUR'"
if $SCALE_DOWN_IDLE && [[ -n $TO_COLOUR ]]; then
  die "--to and --scale-down-idle do not go together"
fi
start
if $SCALE_DOWN_IDLE; then
  scale_down_idle
else
  switch_colour "$TO_COLOUR"
fi
