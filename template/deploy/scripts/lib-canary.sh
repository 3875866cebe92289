# shellcheck shell=bash
# Managed by the template: `copier update` merges template changes into this file.
# Canary (sourced by lib.sh): Deployments $SLUG-stable and $SLUG-canary behind services $SLUG and
# $SLUG-canary, and httproute/$SLUG splitting traffic between the two by weight. A release starts
# on the canary, walks through CANARY_STEPS (config.sh) with a gate after each step; then stable
# takes the canary's release and all traffic returns to stable. Any failure aborts: canary weight
# 0, canary scaled to 0.

: "${CANARY_INTERVAL_SECONDS:=60}"   # traffic soaks this long at each step before the gate
: "${ROUTE_TIMEOUT:=120}"            # seconds for the Gateway to accept the HTTPRoute
: "${REQUIRE_ROUTE_ACCEPTED:=true}"  # false: don't wait for the route's Accepted condition

STABLE="${SLUG}-stable"
CANARY="${SLUG}-canary"
STABLE_CHANGED=false

canary_weight() {
  kread httproute "$SLUG" --ignore-not-found -o 'jsonpath={.spec.rules[0].backendRefs[1].weight}'
}

# set_weight PERCENT: the canary's share of traffic, stable gets the rest; one JSON patch that
# first checks which backend is which.
set_weight() {
  local canary=$1 stable=$((100 - $1))
  kube patch httproute "$SLUG" --type=json --patch "[\
{\"op\":\"test\",\"path\":\"/spec/rules/0/backendRefs/0/name\",\"value\":\"$SLUG\"},\
{\"op\":\"test\",\"path\":\"/spec/rules/0/backendRefs/1/name\",\"value\":\"$CANARY\"},\
{\"op\":\"replace\",\"path\":\"/spec/rules/0/backendRefs/0/weight\",\"value\":$stable},\
{\"op\":\"replace\",\"path\":\"/spec/rules/0/backendRefs/1/weight\",\"value\":$canary}]"
}

# canary_replicas STABLE_PODS PERCENT: enough canary pods for its share of the load (at least one).
canary_replicas() {
  local pods=$((($1 * $2 + 99) / 100))
  echo $((pods > 0 ? pods : 1))
}

wait_route_accepted() {
  [[ $REQUIRE_ROUTE_ACCEPTED == true ]] || return 0
  if $DRY_RUN; then
    printf '# then wait until the Gateway accepts httproute/%s (at most %ss)\n' "$SLUG" "$ROUTE_TIMEOUT"
    return 0
  fi
  local deadline=$((SECONDS + ROUTE_TIMEOUT)) accepted
  while :; do
    accepted=$(kread httproute "$SLUG" -o 'jsonpath={.status.parents[*].conditions[?(@.type=="Accepted")].status}')
    [[ $accepted != *True* || $accepted == *False* ]] || return 0
    ((SECONDS < deadline)) || die "httproute/$SLUG was not accepted by its Gateway within ${ROUTE_TIMEOUT}s:" \
      "check parentRefs and hostnames in deploy/k8s/$OVERLAY/httproute-patch.yaml and that the Gateway admits routes from $NAMESPACE"
    sleep "$POLL_SECONDS"
  done
}

abort_canary() {
  local ok=true
  if $STABLE_CHANGED; then
    kube rollout undo "deployment/$STABLE" || ok=false
    wait_rollout "$STABLE" || ok=false
  fi
  set_weight 0 || ok=false
  kube scale "deployment/$CANARY" --replicas=0 || ok=false
  $ok && note "canary aborted: all traffic on stable, canary scaled to 0"
  $ok
}

# promote_canary: stable takes the canary's release (image and configuration), then all traffic
# returns to stable and the canary scales to 0.
promote_canary() {
  local release image config _
  release=$(deployment_release "$CANARY")
  IFS='|' read -r image config _ <<<"$release"
  if $DRY_RUN; then
    image=${image:-${IMAGE_REF:-<the canary image>}}
    config=${config:-<the canary ConfigMap>}
  fi
  [[ -n $image ]] || die "deployment/$CANARY does not exist in $NAMESPACE: nothing to promote"
  on_failure abort_canary
  STABLE_CHANGED=true
  kube patch deployment "$STABLE" --type=strategic --patch "{\"spec\":{\"template\":{\"spec\":{\"containers\":[\
{\"name\":\"app\",\"image\":\"$image\",\"envFrom\":[{\"configMapRef\":{\"name\":\"$config\"}}]}]}}}}"
  wait_rollout "$STABLE"
  set_weight 0
  kube scale "deployment/$CANARY" --replicas=0
  on_failure ""
  note "promoted: stable runs $image and takes all traffic"
}

# deploy_stable_directly: the first release of a namespace (or any preview) goes straight to stable.
deploy_stable_directly() {
  local replicas
  replicas=$(deployment_replicas "$STABLE")
  set_image Deployment "$STABLE" app "$IMAGE_REF"
  [[ -z $replicas ]] || set_replicas "$STABLE" "$replicas"
  set_image Deployment "$CANARY" app "$IMAGE_REF"
  set_migration_image
  # a converted repository's old pods serve until stable is ready (lib.sh)
  hold_selector "$SLUG" track
  render
  prepare_namespace
  run_migrations
  apply_release
  drop_foreign_selectors "$SLUG" track
  wait_rollout "$STABLE"
  finish_conversion "$SLUG" track stable "$STABLE"
  gate "$SLUG" "track=stable" || die "the gate after deploying $IMAGE_REF to stable failed"
  on_failure ""
  [[ $DEPLOY_ENV == preview ]] || wait_route_accepted
  prune_leftovers
  note "deployed $IMAGE_REF to $NAMESPACE (stable)"
}

strategy_deploy() {
  local release stable_image stable_config stable_replicas canary_image canary_config canary_pods weight step pods
  release=$(deployment_release "$STABLE")
  IFS='|' read -r stable_image stable_config stable_replicas <<<"$release"
  if [[ $DEPLOY_ENV == preview || -z $stable_image ]]; then
    [[ $DEPLOY_ENV == preview ]] || note "no stable release in $NAMESPACE yet: the first release goes straight to stable"
    deploy_stable_directly
    return
  fi
  if [[ -z $(kread service "$SLUG" --ignore-not-found -o 'jsonpath={.spec.selector.track}') ]]; then
    # a conversion from another strategy that did not finish (its gate failed): finish it first
    note "service/$SLUG does not select the stable track yet: the release goes straight to stable"
    deploy_stable_directly
    return
  fi
  release=$(deployment_release "$CANARY")
  IFS='|' read -r canary_image canary_config canary_pods <<<"$release"
  weight=$(canary_weight)
  local leftover=false
  if ((${weight:-0} > 0 || ${canary_pods:-0} > 0)); then
    warn "a canary is in progress or left over (weight ${weight:-0}%, ${canary_pods:-0} pods): aborting it first"
    abort_canary
    leftover=true
  fi
  keep_deployment "$STABLE" "$stable_image" "$stable_config" "$stable_replicas"
  set_image Deployment "$CANARY" app "$IMAGE_REF"
  set_replicas "$CANARY" 0
  set_migration_image
  render
  if ! $leftover && [[ $stable_image == "$IMAGE_REF" && $stable_config == "$RELEASE_CONFIGMAP" ]]; then
    note "$IMAGE_REF is already the stable release in $NAMESPACE: reconciling the other objects only"
    reset_release
    keep_deployment "$STABLE" "$stable_image" "$stable_config" "$stable_replicas"
    keep_deployment "$CANARY" "$canary_image" "$canary_config" 0
    render
    apply_release
    return 0
  fi
  note "stable: $stable_image; canary: $IMAGE_REF through ${CANARY_STEPS[*]} percent"
  prepare_namespace
  run_migrations
  # From here on any failure aborts the canary (weight 0, scaled to 0).
  on_failure abort_canary
  apply_release
  wait_route_accepted
  for step in "${CANARY_STEPS[@]}"; do
    pods=$(canary_replicas "${stable_replicas:-1}" "$step")
    kube scale "deployment/$CANARY" --replicas="$pods"
    wait_rollout "$CANARY"
    if [[ $step == "${CANARY_STEPS[0]}" ]]; then
      smoke_service "$CANARY" || die "the canary failed its smoke test before taking any traffic"
    fi
    note "canary: $step% of traffic on $pods pod(s)"
    set_weight "$step"
    if $DRY_RUN; then
      printf '# then let traffic soak for %ss\n' "$CANARY_INTERVAL_SECONDS"
    else
      sleep "$CANARY_INTERVAL_SECONDS"
    fi
    gate "$CANARY" "track=canary" "$step" || die "the canary's gate failed at $step% of traffic"
  done
  promote_canary
  prune_leftovers
}

strategy_rollback() {
  local weight canary_pods
  weight=$(canary_weight)
  canary_pods=$(deployment_replicas "$CANARY")
  if ((${weight:-0} > 0 || ${canary_pods:-0} > 0)); then
    [[ -z $REVISION ]] || die "a canary is in progress: rollback aborts it (no --revision)"
    abort_canary
    return
  fi
  [[ -n $(deployment_image "$STABLE") ]] || $DRY_RUN || die "deployment/$STABLE does not exist in $NAMESPACE: nothing to roll back"
  kube rollout undo "deployment/$STABLE" ${REVISION:+"--to-revision=$REVISION"}
  wait_rollout "$STABLE"
  note "deployment/$STABLE rolled back to ${REVISION:+revision $REVISION}${REVISION:-its previous revision}"
}
