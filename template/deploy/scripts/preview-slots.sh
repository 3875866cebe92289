#!/usr/bin/env bash
# Managed by the template: `copier update` merges template changes into this file.
# The pool of preview namespaces: created once by the platform, claimed by pull requests.
set -Eeuo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<EOF
Usage: $SCRIPT_NAME create-pool --serviceaccount NS:NAME|--user NAME|--group NAME [--slots N] [--dry-run]
       $SCRIPT_NAME claim --pr NUMBER [--slots N] [--dry-run]
       $SCRIPT_NAME list [--slots N]

Previews run in a fixed pool of namespaces, ${SLUG}-preview-1 to ${SLUG}-preview-N (N from --slots
or PREVIEW_SLOTS, default 3, at most 99), so that the credential the preview workflow holds is
bound to those namespaces only: it can neither create nor delete namespaces, nor touch staging or
production.

  create-pool  (the platform, once, with cluster-admin rights) creates the N namespaces (restricted
               Pod Security) and binds the ClusterRole 'edit' in each to the preview credential's
               identity. Running it again changes nothing; with a larger --slots it adds more.
  claim        prints the namespace pull request NUMBER holds, claiming a free one if it has
               none: a ConfigMap ${PREVIEW_CLAIM} in the namespace, created atomically, so two pull
               requests never get the same one. Fails, naming the holders, when all are taken.
  list         one line per slot: its namespace and the pull request that holds it (or 'free').

teardown-preview.sh --pr NUMBER deletes the preview and frees its namespace.
EOF
}

COMMAND=${1:-}
if [[ $COMMAND == -h || $COMMAND == --help ]]; then
  usage
  exit 0
fi
(($# == 0)) || shift
case $COMMAND in
  create-pool) OPTIONS="--serviceaccount --user --group --slots --dry-run" ;;
  claim) OPTIONS="--pr --slots --dry-run" ;;
  list) OPTIONS="--slots" ;;
  *)
    usage >&2
    die "unknown command '$COMMAND': create-pool, claim or list"
    ;;
esac
parse_args "$@"
check_slots

create_pool() {
  set -- "${SUBJECT[@]}"
  (($# == 1)) ||
    die "create-pool needs one of --serviceaccount NS:NAME, --user NAME or --group NAME: the preview credential's identity"
  local slot namespace
  for ((slot = 1; slot <= PREVIEW_SLOTS; slot++)); do
    namespace=$(preview_namespace "$slot")
    apply_namespace "$namespace"
    # 'edit' bound in one namespace: the workloads, Services, ConfigMaps, Secrets and Jobs of that
    # namespace only; no RBAC, no other namespace, no Namespace object.
    kubectl create rolebinding "${SLUG}-preview-deployer" --namespace "$namespace" --clusterrole=edit \
      "${SUBJECT[@]}" --dry-run=client -o yaml >"$WORK/rolebinding.yaml"
    kube apply --namespace "$namespace" --filename "$WORK/rolebinding.yaml"
  done
  note "$PREVIEW_SLOTS preview namespaces ready: $(preview_namespace 1) to $(preview_namespace "$PREVIEW_SLOTS")"
  if [[ -n ${SECRET_KEYS[*]} ]]; then
    note "each needs the Secret $SECRET_NAME (keys ${SECRET_KEYS[*]}; a preview database, never production's)"
  fi
}

# claim: the slot this pull request already holds (a new push), else the first free one.
claim() {
  [[ $PR_NUMBER =~ ^[1-9][0-9]{0,9}$ ]] || die "--pr needs the pull request number, got '$PR_NUMBER'"
  local slot namespace holder
  local -a free=() held=() unusable=()
  for ((slot = 1; slot <= PREVIEW_SLOTS; slot++)); do
    namespace=$(preview_namespace "$slot")
    if ! holder=$(slot_holder "$namespace" 2>"$WORK/read.err"); then
      unusable+=("$namespace ($(head -n 1 "$WORK/read.err"))")
    elif [[ $holder == "$PR_NUMBER" ]]; then
      note "pull request $PR_NUMBER holds $namespace"
      printf '%s\n' "$namespace"
      return 0
    elif [[ -n $holder ]]; then
      held+=("$namespace by #$holder")
    else
      free+=("$namespace")
    fi
  done
  for namespace in "${free[@]}"; do
    # create, not apply: it fails when another pull request claimed the slot in the meantime;
    # stdout carries the namespace only (the workflow reads it)
    if kube create configmap "$PREVIEW_CLAIM" --namespace "$namespace" --from-literal="pr=$PR_NUMBER" \
      --from-literal="claimed-at=$(date -u +%Y-%m-%dT%H:%M:%SZ)" 2>"$WORK/claim.err" >/dev/null; then
      note "pull request $PR_NUMBER claimed $namespace"
      printf '%s\n' "$namespace"
      return 0
    fi
    grep -q AlreadyExists "$WORK/claim.err" || unusable+=("$namespace ($(tail -n 1 "$WORK/claim.err"))")
  done
  local problem="no free preview namespace for pull request $PR_NUMBER"
  [[ -z ${held[*]} ]] || problem+="; held: $(printf '%s, ' "${held[@]}")"
  [[ -z ${unusable[*]} ]] || problem+="; not usable: $(printf '%s, ' "${unusable[@]}")"
  die "${problem%, }. Closing a pull request frees its namespace (teardown-preview.sh); the platform" \
    "adds more with preview-slots.sh create-pool --slots N (then set the PREVIEW_SLOTS variable)"
}

list() {
  local slot namespace holder
  for ((slot = 1; slot <= PREVIEW_SLOTS; slot++)); do
    namespace=$(preview_namespace "$slot")
    if ! holder=$(slot_holder "$namespace" 2>&1); then
      holder="not usable: $holder"
    elif [[ -z $holder ]]; then
      holder=free
    else
      holder="#$holder"
    fi
    printf '%s\t%s\n' "$namespace" "$holder"
  done
}

start
case $COMMAND in
  create-pool) create_pool ;;
  claim) claim ;;
  list) list ;;
esac
