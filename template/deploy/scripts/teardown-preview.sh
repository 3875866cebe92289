#!/usr/bin/env bash
# Managed by the template: `copier update` merges template changes into this file.
# Delete a pull request's preview and free its namespace for the next one.
set -Eeuo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<EOF
Usage: $SCRIPT_NAME --pr NUMBER [--slots N] [--dry-run]

Finds the preview namespace pull request NUMBER holds (${SLUG}-preview-<slot>, see
preview-slots.sh), deletes what the preview overlay deployed there (every object labelled
app.kubernetes.io/instance=${SLUG}-preview, of the kinds the overlay renders), then the claim, so
the next pull request can use the namespace. The namespace itself, and what the platform put in it
(the Secret, its RoleBinding), stay. A pull request that holds no namespace has nothing to delete.
EOF
}

OPTIONS="--pr --slots --dry-run"
parse_args "$@"
[[ $PR_NUMBER =~ ^[1-9][0-9]{0,9}$ ]] || die "--pr needs the pull request number, got '$PR_NUMBER'"
check_slots
start

for ((slot = 1; slot <= PREVIEW_SLOTS; slot++)); do
  candidate=$(preview_namespace "$slot")
  [[ $(slot_holder "$candidate" 2>/dev/null) != "$PR_NUMBER" ]] || NAMESPACE=$candidate
done
if [[ -z $NAMESPACE ]]; then
  note "pull request $PR_NUMBER holds no preview namespace: nothing to delete"
  exit 0
fi
KUBECTL+=(--namespace "$NAMESPACE")

# The kinds the preview overlay renders, as kubectl names them (deployment.apps, service, ...):
# the objects of earlier releases carry other names (hashed ConfigMaps), so they go by label.
OVERLAY=overlays/preview
render
kinds=$("${KUBECTL[@]}" create --dry-run=client --filename "$WORK/manifests.yaml" -o name | cut -d/ -f1 | sort -u | paste -sd, -)
[[ -n $kinds ]] || die "the preview overlay renders no objects: nothing known to delete in $NAMESPACE"
kube delete "$kinds" --selector "app.kubernetes.io/instance=${SLUG}-preview" --ignore-not-found --wait=true
kube delete configmap "$PREVIEW_CLAIM" --ignore-not-found
note "preview of pull request $PR_NUMBER deleted; $NAMESPACE is free"
