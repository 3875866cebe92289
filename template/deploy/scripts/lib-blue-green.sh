# shellcheck shell=bash
# Managed by the template: `copier update` merges template changes into this file.
# Blue-green (sourced by lib.sh): Deployments $SLUG-blue and $SLUG-green; service/$SLUG (live)
# selects the active colour, service/$SLUG-preview the idle one. A release goes to the idle colour,
# is smoke-tested through the preview Service, then the live selector switches in one patch. The old
# colour keeps running for an instant rollback until `switch-colour.sh --scale-down-idle`.

RESTORE_COLOUR=""

other_colour() {
  if [[ $1 == blue ]]; then echo green; else echo blue; fi
}

live_colour() {
  kread service "$SLUG" --ignore-not-found -o 'jsonpath={.spec.selector.colour}'
}

# switch_live COLOUR: service/$SLUG selects COLOUR, service/$SLUG-preview the other one.
switch_live() {
  local to=$1 from
  from=$(other_colour "$1")
  patch_selector "$SLUG" colour "$to"
  patch_selector "$SLUG-preview" colour "$from"
}

restore_live_colour() {
  switch_live "$RESTORE_COLOUR"
}

# deploy_in_place COLOUR: the first release of a namespace (or any preview): COLOUR goes live directly.
# A converted repository's old pods serve until COLOUR is ready (hold_selector in lib.sh).
deploy_in_place() {
  local colour=$1 idle replicas
  idle=$(other_colour "$colour")
  hold_selector "$SLUG" colour
  replicas=$(deployment_replicas "$SLUG-$colour")
  set_image Deployment "$SLUG-$colour" app "$IMAGE_REF"
  [[ -z $replicas ]] || set_replicas "$SLUG-$colour" "$replicas"
  set_image Deployment "$SLUG-$idle" app "$IMAGE_REF"
  set_replicas "$SLUG-$idle" 0
  $CONVERTING || release_selector "$SLUG" colour "$colour"
  release_selector "$SLUG-preview" colour "$idle"
  set_migration_image
  render
  prepare_namespace
  run_migrations
  apply_release
  drop_foreign_selectors "$SLUG" colour
  wait_rollout "$SLUG-$colour"
  finish_conversion "$SLUG" colour "$colour" "$SLUG-$colour"
  gate "$SLUG" "colour=$colour" || die "the gate after deploying $IMAGE_REF to $colour failed"
  on_failure ""
  prune_leftovers
  note "deployed $IMAGE_REF to $NAMESPACE: $colour is live"
}

strategy_deploy() {
  if [[ $DEPLOY_ENV == preview ]]; then
    deploy_in_place blue
    return
  fi
  local live idle release live_image live_config live_replicas idle_image idle_config idle_replicas
  live=$(live_colour)
  if [[ -z $live ]]; then
    note "no live colour in $NAMESPACE yet: the first release goes live on blue"
    deploy_in_place blue
    return
  fi
  idle=$(other_colour "$live")
  release=$(deployment_release "$SLUG-$live")
  IFS='|' read -r live_image live_config live_replicas <<<"$release"
  keep_deployment "$SLUG-$live" "$live_image" "$live_config" "$live_replicas"
  # The idle colour gets as many pods as the live one: it must carry all traffic after the switch.
  set_image Deployment "$SLUG-$idle" app "$IMAGE_REF"
  set_replicas "$SLUG-$idle" "${live_replicas:-1}"
  # The Services keep selecting what they select now until the switch.
  release_selector "$SLUG" colour "$live"
  release_selector "$SLUG-preview" colour "$idle"
  set_migration_image
  render
  if [[ $live_image == "$IMAGE_REF" && $live_config == "$RELEASE_CONFIGMAP" ]]; then
    note "$IMAGE_REF is already live on $live in $NAMESPACE: reconciling the other objects only"
    reset_release
    keep_deployment "$SLUG-$live" "$live_image" "$live_config" "$live_replicas"
    release=$(deployment_release "$SLUG-$idle")
    IFS='|' read -r idle_image idle_config idle_replicas <<<"$release"
    keep_deployment "$SLUG-$idle" "$idle_image" "$idle_config" "$idle_replicas"
    release_selector "$SLUG" colour "$live"
    release_selector "$SLUG-preview" colour "$idle"
    render
    apply_release
    return 0
  fi
  note "live: $live ($live_image); deploying $IMAGE_REF to the idle colour $idle"
  prepare_namespace
  run_migrations
  apply_release
  wait_rollout "$SLUG-$idle"
  smoke_service "$SLUG-preview" ||
    die "$idle failed its smoke test through service/$SLUG-preview: live traffic stays on $live ($idle keeps running for inspection)"
  RESTORE_COLOUR=$live
  on_failure restore_live_colour
  switch_live "$idle"
  gate "$SLUG" "colour=$idle" || die "the gate after switching to $idle failed"
  on_failure ""
  prune_leftovers
  note "live: $idle ($IMAGE_REF). $live keeps running for an instant rollback (deploy/scripts/rollback.sh);" \
    "scale it down once the release has proven itself: deploy/scripts/switch-colour.sh --env $DEPLOY_ENV --scale-down-idle"
}

# switch_colour [COLOUR]: make COLOUR (default: the idle one) live, scaling it up first if it rests at 0.
switch_colour() {
  local live to release image config replicas
  live=$(live_colour)
  if [[ -z $live ]]; then
    $DRY_RUN || die "service/$SLUG not found in $NAMESPACE: nothing to switch"
    live=blue
  fi
  to=${1:-$(other_colour "$live")}
  [[ $to == blue || $to == green ]] || die "--to must be blue or green, got '$to'"
  if [[ $to == "$live" ]]; then
    note "$to is already live in $NAMESPACE"
    return 0
  fi
  release=$(deployment_release "$SLUG-$to")
  IFS='|' read -r image config replicas <<<"$release"
  [[ -n $image ]] || $DRY_RUN || die "deployment/$SLUG-$to does not exist in $NAMESPACE: no release to switch to"
  if [[ ${replicas:-0} == 0 ]]; then
    replicas=$(deployment_replicas "$SLUG-$live")
    note "$to rests at 0 pods: scaling it to ${replicas:-1} first"
    kube scale "deployment/$SLUG-$to" --replicas="${replicas:-1}"
  fi
  wait_rollout "$SLUG-$to"
  smoke_service "$SLUG-preview" || die "$to failed its smoke test through service/$SLUG-preview: live traffic stays on $live"
  RESTORE_COLOUR=$live
  on_failure restore_live_colour
  switch_live "$to"
  on_failure ""
  note "live: $to (${image:-its release}, ${config:-its configuration}); $live keeps running"
}

scale_down_idle() {
  local live
  live=$(live_colour)
  [[ -n $live ]] || $DRY_RUN || die "service/$SLUG not found in $NAMESPACE: no live colour"
  kube scale "deployment/$SLUG-$(other_colour "${live:-blue}")" --replicas=0
}

strategy_rollback() {
  [[ -z $REVISION ]] || die "--revision does not apply to blue-green: rollback switches live traffic back to the other colour"
  switch_colour ""
}
