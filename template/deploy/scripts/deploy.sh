#!/usr/bin/env bash
# Managed by the template: `copier update` merges template changes into this file.
# Deploy a release with the repository's strategy (deploy/scripts/lib-<strategy>.sh).
set -Eeuo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<EOF
Usage: $SCRIPT_NAME --env staging|production|preview --image IMAGE_REF [--namespace NS] [--dry-run]

Deploys IMAGE_REF (ideally by digest: ${IMAGE_REPOSITORY}@sha256:...) to the environment with the
$STRATEGY strategy: database migrations first where the service has a database, then the release,
gated by smoke tests; on any failure after traffic moved, traffic goes back to the last good version.
Deploying the release that already runs changes nothing.

  --env          staging, production (namespace ${SLUG}-<env>) or preview (needs --namespace)
  --image        the image reference to deploy
  --namespace    override the namespace; for preview: the one preview-slots.sh claim printed
  --dry-run      print the release kustomization and every kubectl command instead of running them

Environment: KUBECONFIG, KUBE_CONTEXT (optional), ROLLOUT_TIMEOUT (300s), DEPLOY_ERROR_CHECK
(a command every gate runs), and the smoke test's SMOKE_* settings; see docs/deployment.md.
EOF
}

OPTIONS="--env --image --namespace --dry-run"
parse_args "$@"
resolve_target "staging production preview"
validate_image
start
strategy_deploy
