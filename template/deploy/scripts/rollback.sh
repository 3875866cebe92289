#!/usr/bin/env bash
# Managed by the template: `copier update` merges template changes into this file.
# Put an environment back on its previous release, the way the repository's strategy allows.
set -Eeuo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<EOF
Usage: $SCRIPT_NAME --env staging|production [--revision REV] [--dry-run]

Rolls the environment back ($STRATEGY strategy):
  rolling      kubectl rollout undo (to revision REV when given)
  blue-green   switch live traffic back to the other colour (scaled up first if it rests at 0)
  canary       abort a canary in progress (weight 0, canary scaled to 0); otherwise
               kubectl rollout undo of the stable Deployment (to revision REV when given)
Database migrations are not undone: they are backward compatible (expand, deploy, contract).

  --env        staging or production
  --revision   a revision from: kubectl rollout history deployment/<name> (rolling and canary)
  --dry-run    print every kubectl command instead of running it
EOF
}

OPTIONS="--env --revision --namespace --dry-run"
parse_args "$@"
[[ -z $REVISION || $REVISION =~ ^[1-9][0-9]*$ ]] || die "--revision must be a revision number, got '$REVISION'"
resolve_target "staging production"
start
strategy_rollback
