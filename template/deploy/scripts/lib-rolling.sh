# shellcheck shell=bash
# Managed by the template: `copier update` merges template changes into this file.
# Rolling update (sourced by lib.sh): one Deployment; Kubernetes replaces its pods a few at a time,
# new ones ready before old ones stop (maxUnavailable 0). Traffic moves as soon as new pods are
# ready, so a failed rollout or gate is undone with `kubectl rollout undo`.

strategy_deploy() {
  local name=$SLUG release image config replicas
  release=$(deployment_release "$name")
  IFS='|' read -r image config replicas <<<"$release"
  set_image Deployment "$name" app "$IMAGE_REF"
  # Keep the replica count the autoscaler (or an operator) chose.
  [[ -z $replicas ]] || set_replicas "$name" "$replicas"
  set_migration_image
  render
  prepare_namespace
  if [[ $image == "$IMAGE_REF" && $config == "$RELEASE_CONFIGMAP" ]]; then
    note "deployment/$name already runs $IMAGE_REF with this configuration: reconciling the other objects only"
    apply_release
    drop_foreign_selectors "$SLUG"
    return 0
  fi
  run_migrations
  # From here new pods take traffic as they become ready: a failure undoes the rollout.
  [[ -z $image || $DEPLOY_ENV == preview ]] || on_failure undo_rollout
  apply_release
  drop_foreign_selectors "$SLUG"
  wait_rollout "$name"
  gate "$SLUG" "" || die "the gate after the rollout of $IMAGE_REF failed"
  on_failure ""
  prune_leftovers
  note "deployed $IMAGE_REF to $NAMESPACE"
}

undo_rollout() {
  kube rollout undo "deployment/$SLUG" && wait_rollout "$SLUG"
}

strategy_rollback() {
  [[ -n $(deployment_image "$SLUG") ]] || $DRY_RUN || die "deployment/$SLUG does not exist in $NAMESPACE: nothing to roll back"
  kube rollout undo "deployment/$SLUG" ${REVISION:+"--to-revision=$REVISION"}
  wait_rollout "$SLUG"
  note "deployment/$SLUG rolled back to ${REVISION:+revision $REVISION}${REVISION:-its previous revision}"
}
