# shellcheck shell=bash
# Managed by the template: `copier update` merges template changes into this file.
# Shared functions of deploy/scripts/*.sh (sourced, never run). The strategy's own steps are in
# lib-<strategy>.sh. Conventions every script keeps:
#   - bash strict mode; any failure stops the script with a message and a non-zero exit code;
#   - --dry-run prints every kubectl command that would change the cluster, and the release
#     kustomization (the patches), without running them; reads still run when a cluster is
#     reachable, so the plan reflects the cluster's real state (an empty namespace otherwise);
#   - once traffic has moved, any failure (or Ctrl-C) puts traffic back on the last good version
#     before the script exits non-zero (ON_FAILURE, run by on_exit);
#   - the cluster is KUBECONFIG's current context, or KUBE_CONTEXT when set.

if ((BASH_VERSINFO[0] < 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] < 4))); then
  echo "deploy/scripts need bash 4.4 or newer (this is $BASH_VERSION; on macOS: brew install bash)" >&2
  exit 1
fi

SCRIPTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
K8S_DIR=$(cd "$SCRIPTS_DIR/../k8s" && pwd)
SCRIPT_NAME=$(basename "$0")
# shellcheck source=config.sh
. "$SCRIPTS_DIR/config.sh"

# Tunables, from the environment (the defaults suit a real cluster).
: "${ROLLOUT_TIMEOUT:=300s}"        # how long a Deployment may take to become ready
: "${MIGRATION_TIMEOUT:=600}"       # seconds the database migration Job may take
: "${REQUEST_TIMEOUT:=30s}"         # each kubectl API request
: "${POLL_SECONDS:=5}"              # between two looks at a Job or a route
: "${DEPLOY_ERROR_CHECK:=}"         # optional command run by every gate (see error_check)
: "${SMOKE_URL:=}"                  # optional base URL every smoke gate tests (see smoke_service)
: "${PREVIEW_SLOTS:=3}"             # preview namespaces the platform created (see preview-slots.sh)

DRY_RUN=false
DEPLOY_ENV=""
IMAGE_REF=""
NAMESPACE=""
REVISION=""
TO_COLOUR=""
PR_NUMBER=""
SUBJECT=()          # preview-slots.sh create-pool: --serviceaccount, --user or --group, as kubectl takes it
SCALE_DOWN_IDLE=false
OPTIONS=""          # the options the running script accepts, e.g. "--env --dry-run"
CLUSTER=false       # true once a cluster answered; false in a dry-run without one
KUBECTL=(kubectl)
WORK=""
ON_FAILURE=""       # function that puts traffic back once traffic has moved (see on_failure)
PATCHES=""          # release kustomization: patches set by set_image, release_selector...
REPLICAS=""         # release kustomization: replica counts set by set_replicas
RELEASE_CONFIGMAP="" # the hash-named ConfigMap of the last render
BACKGROUND_PIDS=()

# ------------------------------------------------------------------------------------------------
# Messages
# ------------------------------------------------------------------------------------------------
note() {
  if $DRY_RUN; then
    printf '%s (dry-run): %s\n' "$SCRIPT_NAME" "$*" >&2
  else
    printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2
  fi
}
warn() { printf '%s: warning: %s\n' "$SCRIPT_NAME" "$*" >&2; }
die() {
  printf '%s: error: %s\n' "$SCRIPT_NAME" "$*" >&2
  exit 1
}
# A command line as a shell would read it back (plain words unquoted, others single-quoted).
quote() {
  local out="" arg
  for arg in "$@"; do
    if [[ $arg =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
      out+=" $arg"
    else
      out+=" '${arg//\'/\'\\\'\'}'"
    fi
  done
  printf '%s' "${out# }"
}

# ------------------------------------------------------------------------------------------------
# Arguments
# ------------------------------------------------------------------------------------------------
parse_args() {
  local option value
  while (($#)); do
    option=${1%%=*}
    [[ $option == -h || $option == --help ]] && {
      usage
      exit 0
    }
    [[ " $OPTIONS " == *" $option "* ]] || {
      usage >&2
      die "unknown argument: $1"
    }
    # shellcheck disable=SC2034  # the values are read by the scripts and lib-<strategy>.sh
    case $option in
      --dry-run) DRY_RUN=true ;;
      --scale-down-idle) SCALE_DOWN_IDLE=true ;;
      *)
        if [[ $1 == *=* ]]; then
          value=${1#*=}
        else
          (($# >= 2)) || die "$option needs a value"
          value=$2
          shift
        fi
        case $option in
          --env) DEPLOY_ENV=$value ;;
          --image) IMAGE_REF=$value ;;
          --namespace) NAMESPACE=$value ;;
          --revision) REVISION=$value ;;
          --to) TO_COLOUR=$value ;;
          --pr) PR_NUMBER=$value ;;
          --slots) PREVIEW_SLOTS=$value ;;
          --serviceaccount | --user | --group) SUBJECT+=("$option=$value") ;;
        esac
        ;;
    esac
    shift
  done
}

# resolve_target "staging production [preview]": check --env (and --namespace), pick the overlay.
resolve_target() {
  local allowed=$1
  [[ -n $DEPLOY_ENV ]] || die "--env is required (${allowed// /, })"
  [[ " $allowed " == *" $DEPLOY_ENV "* ]] || die "--env must be one of: ${allowed// /, } (got '$DEPLOY_ENV')"
  if [[ $DEPLOY_ENV == preview ]]; then
    [[ -n $NAMESPACE ]] || die "--env preview needs --namespace ${SLUG}-preview-<slot> (preview-slots.sh claim names it)"
    is_preview_namespace "$NAMESPACE" || die "a preview namespace is ${SLUG}-preview-<slot 1 to 99>, got '$NAMESPACE'"
  fi
  : "${NAMESPACE:=${SLUG}-${DEPLOY_ENV}}"
  [[ $NAMESPACE =~ ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$ ]] || die "not a namespace name (DNS-1123 label): '$NAMESPACE'"
  OVERLAY="overlays/$DEPLOY_ENV"
  [[ -f $K8S_DIR/$OVERLAY/kustomization.yaml ]] || die "no kustomization in deploy/k8s/$OVERLAY"
}

# Previews run in a pool of namespaces the platform creates once (preview-slots.sh create-pool):
# <slug>-preview-1 to <slug>-preview-<PREVIEW_SLOTS>, at most 99 so that the name fits in 63
# characters. A pull request claims one (preview-slots.sh claim) and frees it on close
# (teardown-preview.sh), so the preview credential never needs rights outside the pool.
preview_namespace() { printf '%s-preview-%s' "$SLUG" "$1"; }
is_preview_namespace() { [[ $1 =~ ^${SLUG}-preview-[1-9][0-9]?$ ]]; }
PREVIEW_CLAIM="${SLUG}-preview-claim" # the ConfigMap that marks a slot as a pull request's

# check_slots: PREVIEW_SLOTS is a number from 1 to 99.
check_slots() {
  [[ $PREVIEW_SLOTS =~ ^[1-9][0-9]?$ ]] || die "PREVIEW_SLOTS (or --slots) must be 1 to 99, got '$PREVIEW_SLOTS'"
}

# slot_holder NAMESPACE: the pull request number that holds the slot, empty when it is free.
# Fails (with kubectl's message on stderr) when the slot cannot be read.
slot_holder() {
  kread configmap "$PREVIEW_CLAIM" --namespace "$1" --ignore-not-found -o 'jsonpath={.data.pr}'
}

validate_image() {
  [[ -n $IMAGE_REF ]] || die "--image is required: an image reference, ideally by digest (${IMAGE_REPOSITORY}@sha256:...)"
  local reference='^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$'
  [[ $IMAGE_REF =~ $reference && ($IMAGE_REF == *@sha256:* || ${IMAGE_REF##*/} == *:*) ]] ||
    die "not an image reference with a tag or digest: '$IMAGE_REF' (expected ${IMAGE_REPOSITORY}@sha256:<64 hex> or ${IMAGE_REPOSITORY}:<tag>)"
  [[ $IMAGE_REF == *@sha256:* ]] || warn "$IMAGE_REF is not pinned by digest: a tag can move under a running release"
  [[ $IMAGE_REF == "$IMAGE_REPOSITORY"[:@]* ]] || warn "$IMAGE_REF is not from this service's repository $IMAGE_REPOSITORY"
}

# ------------------------------------------------------------------------------------------------
# Start, stop, failure
# ------------------------------------------------------------------------------------------------
require_tool() {
  command -v "$1" >/dev/null 2>&1 || die "$1 is required but not on PATH ($2)"
}

# start: work directory, exit trap, and the cluster connection (see connect).
start() {
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/${SCRIPT_NAME%.sh}.XXXXXX")
  trap on_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  connect
}

# on_failure FUNCTION: from now on a failure runs FUNCTION (it puts traffic back) before exiting;
# on_failure "" once the release is safe.
on_failure() {
  ON_FAILURE=$1
}

on_exit() {
  local status=$?
  local pid
  for pid in "${BACKGROUND_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  if ((status != 0)) && [[ -n $ON_FAILURE ]]; then
    local restore=$ON_FAILURE
    ON_FAILURE=""
    warn "failed after traffic moved: putting traffic back on the last good version ($restore)"
    if ("$restore"); then
      warn "traffic is back on the last good version"
    else
      warn "could not restore traffic automatically: run deploy/scripts/rollback.sh --env $DEPLOY_ENV"
    fi
  fi
  [[ -z $WORK ]] || rm -rf "$WORK"
  exit "$status"
}

# connect: kubectl on PATH, a context, a cluster that answers. A dry-run goes on without a cluster.
connect() {
  require_tool kubectl "https://kubernetes.io/docs/tasks/tools/"
  KUBECTL=(kubectl)
  [[ -z ${KUBE_CONTEXT:-} ]] || KUBECTL+=(--context "$KUBE_CONTEXT")
  KUBECTL+=(--namespace "$NAMESPACE")
  local problem=""
  if [[ -n ${KUBE_CONTEXT:-} ]]; then
    kubectl config get-contexts "$KUBE_CONTEXT" >/dev/null 2>&1 ||
      problem="context '$KUBE_CONTEXT' (KUBE_CONTEXT) is not in the kubeconfig (${KUBECONFIG:-~/.kube/config})"
  elif ! kubectl config current-context >/dev/null 2>&1; then
    problem="no kubectl context: point KUBECONFIG at the cluster's kubeconfig (and set KUBE_CONTEXT to pick a context)"
  fi
  if [[ -z $problem ]] && ! "${KUBECTL[@]}" get --raw /version --request-timeout="$REQUEST_TIMEOUT" >/dev/null 2>"$WORK/connect.err"; then
    problem="the cluster did not answer within $REQUEST_TIMEOUT: $(head -n 1 "$WORK/connect.err")"
  fi
  if [[ -z $problem ]]; then
    CLUSTER=true
  elif $DRY_RUN; then
    note "dry-run without a cluster ($problem): planning as for an empty namespace"
  else
    die "$problem"
  fi
}

# ------------------------------------------------------------------------------------------------
# kubectl
# ------------------------------------------------------------------------------------------------
# kube ARGS...: a command that changes the cluster; printed instead of run in a dry-run.
kube() {
  if $DRY_RUN; then
    printf '+ %s\n' "$(quote kubectl "${KUBECTL[@]:1}" "$@")"
    return 0
  fi
  note "+ $(quote kubectl "$@")"
  "${KUBECTL[@]}" --request-timeout="$REQUEST_TIMEOUT" "$@"
}

# kread ARGS...: `kubectl get ARGS`; runs in a dry-run too; prints nothing without a cluster.
kread() {
  $CLUSTER || return 0
  "${KUBECTL[@]}" get --request-timeout="$REQUEST_TIMEOUT" "$@"
}

# deployment_release NAME: "IMAGE|CONFIGMAP|REPLICAS" of a Deployment (empty when it doesn't exist):
#   release=$(deployment_release NAME); IFS='|' read -r image config replicas <<<"$release"
deployment_release() {
  kread deployment "$1" --ignore-not-found -o 'jsonpath={.spec.template.spec.containers[0].image}{"|"}{.spec.template.spec.containers[0].envFrom[0].configMapRef.name}{"|"}{.spec.replicas}'
}
deployment_image() { kread deployment "$1" --ignore-not-found -o 'jsonpath={.spec.template.spec.containers[0].image}'; }
deployment_replicas() { kread deployment "$1" --ignore-not-found -o 'jsonpath={.spec.replicas}'; }

# wait_rollout DEPLOYMENT: until all its pods run the current template and are ready.
wait_rollout() {
  if $DRY_RUN; then
    printf '+ %s\n' "$(quote kubectl "${KUBECTL[@]:1}" rollout status "deployment/$1" --timeout="$ROLLOUT_TIMEOUT")"
    return 0
  fi
  note "waiting for deployment/$1 (at most $ROLLOUT_TIMEOUT)"
  "${KUBECTL[@]}" rollout status "deployment/$1" --timeout="$ROLLOUT_TIMEOUT" >&2 ||
    die "deployment/$1 did not become ready within $ROLLOUT_TIMEOUT (see: kubectl --namespace $NAMESPACE describe deployment/$1)"
}

# ------------------------------------------------------------------------------------------------
# The release: deploy/k8s/overlays/<env> + the image + the cluster's runtime state
# ------------------------------------------------------------------------------------------------
# set_image KIND NAME CONTAINER IMAGE [CONFIGMAP]: the container's image (and ConfigMap, to keep a
# running release exactly as it is) in the release kustomization.
set_image() {
  local api=apps/v1
  [[ $1 != Job ]] || api=batch/v1
  PATCHES+="  - patch: |-
      apiVersion: $api
      kind: $1
      metadata:
        name: $2
      spec:
        template:
          spec:
            containers:
              - name: $3
                image: $4
"
  [[ -z ${5:-} ]] || PATCHES+="                envFrom:
                  - configMapRef:
                      name: $5
"
}

set_replicas() {
  REPLICAS+="  - name: $1
    count: $2
"
}

# keep_deployment NAME IMAGE CONFIGMAP REPLICAS: carry a running Deployment over unchanged.
keep_deployment() {
  [[ -z $2 ]] || set_image Deployment "$1" app "$2" "$3"
  [[ -z $4 ]] || set_replicas "$1" "$4"
}

# set_migration_image: the migration Job runs the image being deployed.
set_migration_image() {
  [[ $HAS_DATABASE != true ]] || set_image Job "${SLUG}-migrate" migrate "$IMAGE_REF"
}

# render: build $WORK/manifests.yaml from a copy of deploy/k8s (the repository is never written)
# and set RELEASE_CONFIGMAP.
render() {
  local root="$WORK/k8s"
  rm -rf "$root"
  cp -R "$K8S_DIR" "$root"
  mkdir -p "$root/release"
  {
    printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n'
    printf 'namespace: %s\n' "$NAMESPACE"
    printf 'resources:\n  - ../%s\n' "$OVERLAY"
    [[ -z $REPLICAS ]] || printf 'replicas:\n%s' "$REPLICAS"
    [[ -z $PATCHES ]] || printf 'patches:\n%s' "$PATCHES"
  } >"$root/release/kustomization.yaml"
  kubectl kustomize "$root/release" >"$WORK/manifests.yaml" 2>"$WORK/kustomize.err" ||
    die "kubectl kustomize deploy/k8s/$OVERLAY failed: $(cat "$WORK/kustomize.err")"
  # The ConfigMap this release brings (its name carries a hash of its content).
  # shellcheck disable=SC2034  # read by lib-<strategy>.sh
  RELEASE_CONFIGMAP=$(sed -n "s/^  name: \(${CONFIG_NAME}-[a-z0-9]*\)$/\1/p" "$WORK/manifests.yaml")
}

# Service selectors, one key at a time: release_selector SERVICE KEY VALUE in the release
# kustomization, patch_selector SERVICE KEY VALUE on the cluster at once (a switch). VALUE null
# removes the key.
release_selector() {
  PATCHES+="  - patch: |-
      apiVersion: v1
      kind: Service
      metadata:
        name: $1
      spec:
        selector:
          $2: $3
"
}

patch_selector() {
  local value=$3
  [[ $value == null ]] || value="\"$value\""
  kube patch service "$1" --type=merge --patch "{\"spec\":{\"selector\":{\"$2\":$value}}}"
}

# reset_release: forget the patches and replica counts set so far.
reset_release() {
  PATCHES=""
  REPLICAS=""
}

# apply_namespace NAME: create (or update) the namespace NAME, this service's, with the restricted
# Pod Security level.
apply_namespace() {
  cat >"$WORK/namespace.yaml" <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: $1
  labels:
    app.kubernetes.io/part-of: $SLUG
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/warn: restricted
EOF
  kube apply --filename "$WORK/namespace.yaml"
}

# prepare_namespace: create a staging or production namespace when it does not exist yet
# (restricted Pod Security; a preview's comes from the pool), and check that the Secret the pods
# reference exists. Without the right to read namespaces, the platform manages them.
prepare_namespace() {
  local exists=""
  if $CLUSTER && ! exists=$(kread namespace "$NAMESPACE" --ignore-not-found -o name 2>/dev/null); then
    exists=unknown
  fi
  if [[ -z $exists && $DEPLOY_ENV == preview ]] && $CLUSTER; then
    die "preview namespace $NAMESPACE does not exist: the platform creates the pool once" \
      "(deploy/scripts/preview-slots.sh create-pool; docs/deployment.md, \"Preview environments\")"
  fi
  if [[ -z $exists && -n ${SECRET_KEYS[*]} ]] && $CLUSTER; then
    die "namespace $NAMESPACE does not exist, and the pods need the Secret $SECRET_NAME in it: create both" \
      "first (keys ${SECRET_KEYS[*]}; values never live in this repository)"
  fi
  if [[ -z $exists && $DEPLOY_ENV != preview ]]; then
    note "namespace $NAMESPACE does not exist: creating it (restricted Pod Security)"
    apply_namespace "$NAMESPACE"
  fi
  if [[ -z ${SECRET_KEYS[*]} ]] || ! $CLUSTER; then
    return 0
  fi
  local found key
  local -a missing=()
  if ! found=$(kread secret "$SECRET_NAME" --ignore-not-found -o name 2>"$WORK/secret.err"); then
    warn "could not check Secret $SECRET_NAME: $(head -n 1 "$WORK/secret.err")"
  elif [[ -z $found ]]; then
    die "Secret $SECRET_NAME is missing in namespace $NAMESPACE: the platform creates it with the keys ${SECRET_KEYS[*]} (values never live in this repository)"
  else
    # each key by its own JSONPath: the answer only says whether it is there (never printed)
    for key in "${SECRET_KEYS[@]}"; do
      [[ -n $(kread secret "$SECRET_NAME" -o "jsonpath={.data.$key}" 2>/dev/null) ]] || missing+=("$key")
    done
    # a pod referencing a missing key never starts (CreateContainerConfigError): say so now
    [[ -z ${missing[*]} ]] || die "Secret $SECRET_NAME in namespace $NAMESPACE lacks the keys ${missing[*]}:" \
      "add them (the service and the migration Job read ${SECRET_KEYS[*]})"
  fi
}

# apply_manifests SELECTOR: kubectl apply the rendered release's objects that SELECTOR matches.
# A dry-run shows the release kustomization (the overlay and its patches) before the first one.
apply_manifests() {
  if $DRY_RUN && [[ -z ${RELEASE_SHOWN:-} ]]; then
    RELEASE_SHOWN=true
    printf '# release kustomization: deploy/k8s/%s with\n' "$OVERLAY"
    sed 's/^/#   /' "$WORK/k8s/release/kustomization.yaml"
  fi
  kube apply --filename "$WORK/manifests.yaml" --selector "$1"
}

# apply_release: everything but the migration Job (run_migrations applies that one).
apply_release() {
  apply_manifests 'app.kubernetes.io/component!=migration'
}

# run_migrations: where the service has a database, run the migration Job with the new image
# before any traffic moves; skipped when this image's migrations already completed.
run_migrations() {
  [[ $HAS_DATABASE == true ]] || return 0
  local job="${SLUG}-migrate" image conditions
  image=$(kread job "$job" --ignore-not-found -o 'jsonpath={.spec.template.spec.containers[0].image}')
  conditions=$(kread job "$job" --ignore-not-found -o 'jsonpath={.status.conditions[*].type}')
  if [[ $image == "$IMAGE_REF" && " $conditions " == *" Complete "* ]]; then
    note "database migrations of $IMAGE_REF already ran (job/$job complete)"
    return 0
  fi
  note "running database migrations with $IMAGE_REF before any traffic moves"
  # A Job's pod template is immutable: the previous run's Job goes first.
  [[ -z $image ]] || kube delete job "$job" --ignore-not-found --wait=true
  apply_manifests app.kubernetes.io/component=config
  apply_manifests app.kubernetes.io/component=migration
  wait_job "$job"
}

wait_job() {
  if $DRY_RUN; then
    printf '# then wait until job/%s completes (at most %ss)\n' "$1" "$MIGRATION_TIMEOUT"
    return 0
  fi
  local deadline=$((SECONDS + MIGRATION_TIMEOUT)) conditions
  while :; do
    conditions=$(kread job "$1" -o 'jsonpath={.status.conditions[*].type}')
    case " $conditions " in
      *" Complete "*)
        note "job/$1 complete"
        return 0
        ;;
      *" Failed "*)
        "${KUBECTL[@]}" logs "job/$1" --tail=50 >&2 || true
        die "database migration job/$1 failed (its last log lines are above); no traffic moved"
        ;;
    esac
    ((SECONDS < deadline)) || die "database migration job/$1 did not finish within ${MIGRATION_TIMEOUT}s; no traffic moved"
    sleep "$POLL_SECONDS"
  done
}

# A repository converted to another strategy by `copier update` (docs/updating.md) meets the old
# strategy's pods in the cluster. Each strategy's live Service selects on a key of its own (rolling:
# none; blue-green: colour; canary: track), which the other strategies' pods lack or set otherwise.
#   hold_selector SERVICE KEY: where SERVICE already serves without selecting on KEY, the release
#     keeps it without KEY (it serves every pod of the service, the old strategy's too) and
#     CONVERTING=true; applied as it is, it would select no ready pod until the new ones are ready;
#   finish_conversion SERVICE KEY VALUE DEPLOYMENT: once DEPLOYMENT is ready, SERVICE selects VALUE;
#     a failure before the release is safe goes back to every pod and scales DEPLOYMENT to 0;
#   drop_foreign_selectors SERVICE [KEY]: remove the other strategies' keys from SERVICE's selector.
#     `kubectl apply` removes only the keys it applied itself, not those a patch set (a switch).
CONVERTING=false
CONVERSION=()      # SERVICE KEY DEPLOYMENT of the conversion in progress (undo_conversion)
STRATEGY_KEYS=(colour track)
hold_selector() {
  [[ $DEPLOY_ENV != preview && -n $(kread service "$1" --ignore-not-found -o name) ]] || return 0
  [[ -z $(kread service "$1" -o "jsonpath={.spec.selector.$2}") ]] || return 0
  CONVERTING=true
  note "service/$1 serves without a $2 selector (another strategy's release): it serves every pod of the" \
    "service until the new ones are ready"
  release_selector "$1" "$2" null
}

finish_conversion() {
  $CONVERTING || return 0
  CONVERSION=("$1" "$2" "$4")
  on_failure undo_conversion
  patch_selector "$1" "$2" "$3"
}

undo_conversion() {
  patch_selector "${CONVERSION[0]}" "${CONVERSION[1]}" null && kube scale "deployment/${CONVERSION[2]}" --replicas=0
}

drop_foreign_selectors() {
  local service=$1 keep=${2:-} key
  for key in "${STRATEGY_KEYS[@]}"; do
    [[ $key != "$keep" ]] || continue
    [[ -n $(kread service "$service" --ignore-not-found -o "jsonpath={.spec.selector.$key}") ]] || continue
    note "service/$service still selects on $key (another strategy's key): removing it"
    patch_selector "$service" "$key" null
  done
}

# prune_leftovers: once a release serves, delete what another strategy of this template left in the
# namespace (after `copier update --data deployment_strategy=...`): the Deployments, Services and
# autoscalers of the fixed names the strategies use, where this release does not have them. Nothing
# else is touched: objects of other names (a team's own Service, a platform's NetworkPolicy) stay.
# The canary's HTTPRoute stays too: it may be the service's entry on the Gateway; a warning says so.
# A failure here is a warning: the release itself is live.
prune_leftovers() {
  local names=("$SLUG" "$SLUG-blue" "$SLUG-green" "$SLUG-stable" "$SLUG-canary")
  local candidates=() name wanted
  $CLUSTER || return 0
  for name in "${names[@]}"; do
    candidates+=("deployment.apps/$name" "horizontalpodautoscaler.autoscaling/$name")
  done
  candidates+=("service/$SLUG-preview" "service/$SLUG-canary")
  # the release's own objects, named as kubectl names them (resource.group/name)
  if ! wanted=$("${KUBECTL[@]}" create --dry-run=client --filename "$WORK/manifests.yaml" -o name 2>&1); then
    warn "could not list the release's objects, so nothing left by an earlier strategy is deleted: $wanted"
    return 0
  fi
  for name in "${candidates[@]}"; do
    [[ $'
'$wanted$'
' != *$'
'$name$'
'* ]] || continue
    [[ -n $(kread "$name" --ignore-not-found -o name 2>/dev/null) ]] || continue
    note "$name is not part of this release (left by an earlier strategy): deleting it"
    kube delete "$name" --ignore-not-found --wait=false || warn "could not delete $name: delete it by hand"
  done
  if [[ $STRATEGY != canary && -n $(kread httproute "$SLUG" --ignore-not-found -o name 2>/dev/null) ]]; then
    warn "httproute/$SLUG (from the canary strategy) still routes the Gateway's traffic to service/$SLUG:" \
      "delete it once your own route or ingress serves the service"
  fi
}

# ------------------------------------------------------------------------------------------------
# Gates
# ------------------------------------------------------------------------------------------------
# forwarded_port LOG REMOTE: the local port that `kubectl port-forward` (its LOG) forwards to REMOTE.
forwarded_port() {
  sed -n "s/^Forwarding from 127\.0\.0\.1:\([0-9][0-9]*\) -> $2\$/\1/p" "$1" | head -n 1
}

# smoke_service SERVICE: smoke-test.sh against the pods behind SERVICE, through a port-forward
# (works without any ingress, from the machine that runs the deploy). With SMOKE_URL set, every
# gate tests that base URL instead: the one seam for a test cluster whose pods serve nothing (the
# template's own tests run kwok). Not for real deploys: the gates would no longer test the new pods.
smoke_service() {
  local service=$1
  if [[ -n $SMOKE_URL ]]; then
    if $DRY_RUN; then
      printf '# then deploy/scripts/smoke-test.sh %s (SMOKE_URL, for service/%s)\n' "$SMOKE_URL" "$service"
      return 0
    fi
    note "smoke test of service/$service through SMOKE_URL=$SMOKE_URL"
    "$SCRIPTS_DIR/smoke-test.sh" "$SMOKE_URL" >&2
    return
  fi
  if $DRY_RUN; then
    printf '+ %s\n' "$(quote kubectl "${KUBECTL[@]:1}" port-forward "service/$service" ":$PORT" ":$MANAGEMENT_PORT")"
    printf '# then deploy/scripts/smoke-test.sh http://127.0.0.1:<forwarded port> http://127.0.0.1:<forwarded management port>\n'
    return 0
  fi
  # A fresh log per forward: re-reading the previous one would find the old, closed port before
  # the new forwarder has truncated it.
  # Both ports: the application's (which must not serve the operational endpoints) and the
  # management port (which serves them).
  local log local_port="" management_port="" pid status=0 _
  log=$(mktemp "$WORK/port-forward-$service.XXXXXX")
  "${KUBECTL[@]}" port-forward "service/$service" ":$PORT" ":$MANAGEMENT_PORT" --address 127.0.0.1 >"$log" 2>&1 &
  pid=$!
  BACKGROUND_PIDS+=("$pid")
  for _ in $(seq 1 100); do
    local_port=$(forwarded_port "$log" "$PORT")
    management_port=$(forwarded_port "$log" "$MANAGEMENT_PORT")
    if [[ -n $local_port && -n $management_port ]] || ! kill -0 "$pid" 2>/dev/null; then
      break
    fi
    sleep 0.2
  done
  if [[ -z $local_port || -z $management_port ]]; then
    kill "$pid" 2>/dev/null || true
    warn "could not port-forward to service/$service: $(tr '\n' ' ' <"$log")"
    return 1
  fi
  note "smoke test of service/$service through 127.0.0.1:$local_port (management 127.0.0.1:$management_port)"
  "$SCRIPTS_DIR/smoke-test.sh" "http://127.0.0.1:$local_port" "http://127.0.0.1:$management_port" >&2 || status=$?
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  return "$status"
}

# error_check SELECTOR SERVICE [WEIGHT]: no restarts of the new pods (SELECTOR: their colour or
# track label), then DEPLOY_ERROR_CHECK when set: a command of your own, for example a Prometheus
# error-rate query, run with DEPLOY_ENV, NAMESPACE, SERVICE, SELECTOR and WEIGHT in its environment;
# a non-zero exit fails the gate (docs/deployment.md has an example).
error_check() {
  local selector="app.kubernetes.io/name=${SLUG},app.kubernetes.io/component=server${1:+,$1}"
  if $DRY_RUN; then
    printf '# then check that no pod of %s restarted%s\n' "$selector" "${DEPLOY_ERROR_CHECK:+ and run DEPLOY_ERROR_CHECK}"
    return 0
  fi
  local restarts total=0 count
  restarts=$(kread pods --selector "$selector" -o 'jsonpath={.items[*].status.containerStatuses[*].restartCount}')
  for count in $restarts; do
    total=$((total + count))
  done
  if ((total > 0)); then
    warn "gate: the pods of $selector restarted $total time(s)"
    return 1
  fi
  [[ -n $DEPLOY_ERROR_CHECK ]] || return 0
  if ! DEPLOY_ENV=$DEPLOY_ENV NAMESPACE=$NAMESPACE SERVICE=$2 SELECTOR=$selector WEIGHT=${3:-} \
    bash -c "$DEPLOY_ERROR_CHECK" >&2; then
    warn "gate: DEPLOY_ERROR_CHECK failed"
    return 1
  fi
}

# gate SERVICE SELECTOR [WEIGHT]: smoke test, then error check.
gate() {
  smoke_service "$1" && error_check "$2" "$1" "${3:-}"
}

# ------------------------------------------------------------------------------------------------
# The strategy's own steps: strategy_deploy, strategy_rollback and their helpers.
# ------------------------------------------------------------------------------------------------
# shellcheck source=/dev/null
. "$SCRIPTS_DIR/lib-$STRATEGY.sh"
