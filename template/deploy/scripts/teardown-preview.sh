#!/usr/bin/env bash
# Managed by the template: `copier update` merges template changes into this file.
# Delete a pull request's preview namespace (and everything in it).
set -Eeuo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<EOF
Usage: $SCRIPT_NAME --namespace ${SLUG}-pr-<number> [--dry-run]

Deletes the preview namespace deploy.sh --env preview created. Refuses any other namespace: the
name must be ${SLUG}-pr-<number> and the namespace labelled app.kubernetes.io/part-of=${SLUG}.
Deleting a namespace that is already gone succeeds.
EOF
}

OPTIONS="--namespace --dry-run"
parse_args "$@"
[[ -n $NAMESPACE ]] || die "--namespace is required (${SLUG}-pr-<number>)"
is_preview_namespace "$NAMESPACE" || die "refusing to delete '$NAMESPACE': not a preview namespace (${SLUG}-pr-<number>)"
start
exists=$(kread namespace "$NAMESPACE" --ignore-not-found -o name)
owner=$(kread namespace "$NAMESPACE" --ignore-not-found -o 'jsonpath={.metadata.labels.app\.kubernetes\.io/part-of}')
if $CLUSTER && [[ -z $exists ]]; then
  note "namespace $NAMESPACE does not exist: nothing to delete"
  exit 0
fi
if [[ -n $exists && $owner != "$SLUG" ]]; then
  die "refusing to delete namespace $NAMESPACE: it is not labelled app.kubernetes.io/part-of=$SLUG"
fi
kube delete namespace "$NAMESPACE" --ignore-not-found --wait=true
note "preview namespace $NAMESPACE deleted"
