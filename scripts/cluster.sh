#!/usr/bin/env bash
# A real Kubernetes control plane on loopback for the deploy-path tests (tests/test_deploy_scripts.py):
# kube-apiserver, kube-controller-manager, kube-scheduler and etcd built from their Go modules at
# the release pinned in tests/cluster/go.mod, wired by kwok's own kwokctl (binary runtime), with
# kwok simulating the nodes and the pod lifecycle (pods become Running and Ready, a Job's pods
# succeed) and the Gateway API standard-channel CRDs installed. Nothing is downloaded but Go modules.
#
#   scripts/cluster.sh up      build what is missing, start (or reuse) the cluster; prints exactly
#                              one line on stdout: KUBECONFIG=<path>
#   scripts/cluster.sh down    stop every process `up` started and remove the cluster's state
#   scripts/cluster.sh build   only build the binaries (cached; a no-op when they exist)
#   scripts/cluster.sh bin     print the folder of the built binaries (kubectl is there)
#
# Cache: ${DP_CLUSTER_CACHE:-~/.cache/deployment-patterns/cluster}, one binary folder per content
# hash of tests/cluster (a version bump builds anew); Go's own build and module caches are kept too.
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODULE="$ROOT/tests/cluster"
CACHE=${DP_CLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/deployment-patterns/cluster}
NAME=${DP_CLUSTER_NAME:-deployment-patterns}
NODES=${DP_CLUSTER_NODES:-3}
# kwokctl keeps each cluster's state (pids, logs, certificates, kubeconfig) under its workdir.
export KWOK_WORKDIR="$CACHE/kwok"
STATE="$KWOK_WORKDIR/clusters/$NAME"
KUBECONFIG_PATH="$STATE/kubeconfig.yaml"

# shellcheck source=scripts/go-tools.sh
source "$ROOT/scripts/go-tools.sh"

# The binary folder is keyed by the build module's content: a new pin builds into a new folder.
# (Not by this script: an edit here must not relink under a running suite; BUILD_FLAGS_VERSION below
# is part of the key, so a change of the build flags bumps it.)
BUILD_FLAGS_VERSION=1
bin_dir() {
  local key
  key=$(cat "$MODULE/go.mod" "$MODULE/go.sum" "$MODULE"/cmd/*/*.go <(echo "$BUILD_FLAGS_VERSION") |
    sha256sum | cut -c1-16)
  printf '%s/bin-%s' "$CACHE" "$key"
}

module_version() {
  local version
  version=$(awk -v m="$1" '$1 == m && $2 ~ /^v/ {print $2; exit}' "$MODULE/go.mod")
  [[ -n $version ]] || die "tests/cluster/go.mod does not require $1"
  printf '%s' "$version"
}

BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok kwokctl)

build() {
  local bin
  bin=$(bin_dir)
  local missing=()
  for b in "${BINARIES[@]}"; do
    [[ -x $bin/$b ]] || missing+=("$b")
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    printf '%s' "$bin"
    return 0
  fi
  find_go 'the control plane'
  local kube kwok major minor log started
  kube=$(module_version k8s.io/kubernetes)
  kwok=$(module_version sigs.k8s.io/kwok)
  major=${kube#v}
  major=${major%%.*}
  minor=${kube#v*.}
  minor=${minor%%.*}
  # Release builds stamp their version; kwokctl reads it (`--version`) to pick each component's flags.
  local ldflags="-s -w"
  ldflags+=" -X k8s.io/component-base/version.gitVersion=$kube"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=$major -X k8s.io/component-base/version.gitMinor=$minor"
  ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
  ldflags+=" -X sigs.k8s.io/kwok/pkg/consts.Version=${kwok#v} -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${kube#v}"
  log="$CACHE/build.log"
  say "building ${missing[*]} (Kubernetes $kube, kwok $kwok) into $bin; the first build takes several minutes (log: $log)"
  started=$SECONDS
  if ! (cd "$MODULE" && GOFLAGS=-mod=readonly CGO_ENABLED=0 "$GO" build -trimpath -ldflags "$ldflags" -o "$bin.tmp/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl ./cmd/etcd \
    sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl) >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "building the control plane failed with $("$GO" version) (whole log: $log)"
  fi
  rm -rf "$bin"
  mv "$bin.tmp" "$bin"
  # Builds of earlier pins go (a running cluster keeps its own links to the files it started with).
  find "$CACHE" -maxdepth 1 -name 'bin-*' ! -name "${bin##*/}" ! -name '*.tmp' -exec rm -rf {} +
  say "built in $((SECONDS - started)) s: $(du -sh "$bin" | cut -f1) of binaries"
  printf '%s' "$bin"
}

kube() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

# Up: the API server answers, and a previous `up` finished (CRDs and nodes in place).
running() {
  [[ -f $STATE/set-up && -f $KUBECONFIG_PATH ]] && kube get --raw /readyz --request-timeout=5s >/dev/null 2>&1
}

gateway_crds() {
  local dir
  # No command the build compiles imports gateway-api, so on a fresh machine the module is not in
  # the cache yet (and `go list -m` then reports no directory): download it first.
  dir=$(cd "$MODULE" && GOFLAGS=-mod=readonly "$GO" mod download sigs.k8s.io/gateway-api &&
    GOFLAGS=-mod=readonly "$GO" list -m -f '{{.Dir}}' sigs.k8s.io/gateway-api) ||
    die "could not download the sigs.k8s.io/gateway-api module (go mod download in tests/cluster)"
  [[ -d $dir/config/crd/standard ]] || die "no standard-channel CRDs in $dir/config/crd/standard"
  printf '%s/config/crd/standard' "$dir"
}

# One command at a time (the xdist workers may all call `up`): an exclusive lock on fd 9. The daemons
# kwokctl starts must not inherit it (9>&- on each kwokctl call), or they would hold it for the
# cluster's life.
lock() {
  mkdir -p "$CACHE"
  exec 9>"$CACHE/lock"
  flock 9
}

up() {
  lock
  BIN=$(build)
  if running; then
    say "reusing the running cluster $NAME"
    printf 'KUBECONFIG=%s\n' "$KUBECONFIG_PATH"
    return 0
  fi
  local started=$SECONDS crds
  find_go 'the control plane'
  crds=$(gateway_crds)
  # A cluster left from a crashed run (state without a live API server) goes first.
  [[ ! -d $STATE ]] || "$BIN/kwokctl" delete cluster --name "$NAME" >/dev/null 2>&1 9>&- || true
  rm -rf "$STATE"
  say "starting $NAME: $("$BIN/kube-apiserver" --version) on 127.0.0.1, $NODES kwok nodes"
  # --kube-admission: the API server's admission chain (Pod Security among it), as on a real cluster.
  # --kubeconfig: the cluster's own file only; the user's ~/.kube/config is left alone.
  # kwokctl has no flag for kubectl's binary (it would download one for `kwokctl kubectl`).
  if ! KWOK_KUBECTL_BINARY="$BIN/kubectl" "$BIN/kwokctl" create cluster --name "$NAME" --runtime binary \
    --kube-apiserver-binary "$BIN/kube-apiserver" \
    --kube-controller-manager-binary "$BIN/kube-controller-manager" \
    --kube-scheduler-binary "$BIN/kube-scheduler" \
    --etcd-binary "$BIN/etcd" \
    --kwok-controller-binary "$BIN/kwok" \
    --kube-authorization --kube-admission \
    --kubeconfig "$CACHE/kubeconfig-unused.yaml" \
    --wait 120s --quiet-pull >"$CACHE/up.log" 2>&1 9>&-; then
    tail -n 30 "$CACHE/up.log" >&2
    die "kwokctl could not start the cluster (log: $CACHE/up.log; component logs: $STATE/logs)"
  fi
  "$BIN/kwokctl" scale node --name "$NAME" --replicas "$NODES" >>"$CACHE/up.log" 2>&1 9>&- ||
    die "kwokctl could not create the nodes (log: $CACHE/up.log)"
  kube apply --server-side --filename "$crds" >>"$CACHE/up.log" 2>&1 ||
    die "the Gateway API CRDs were refused (log: $CACHE/up.log)"
  kube wait --for condition=Established --timeout=60s crd --all >>"$CACHE/up.log" 2>&1 ||
    die "the Gateway API CRDs did not become established (log: $CACHE/up.log)"
  kube wait --for condition=Ready --timeout=60s node --all >>"$CACHE/up.log" 2>&1 ||
    die "the kwok nodes did not become ready (log: $CACHE/up.log)"
  touch "$STATE/set-up"
  say "cluster $NAME up in $((SECONDS - started)) s"
  printf 'KUBECONFIG=%s\n' "$KUBECONFIG_PATH"
}

down() {
  local kwokctl
  lock
  if [[ -d $STATE ]]; then
    # the cluster's own copy of kwokctl's binaries may be of an older build: any kwokctl stops it
    kwokctl=$(find "$CACHE" -maxdepth 2 -path "$CACHE/bin-*/kwokctl" ! -path '*.tmp/*' -print -quit)
    [[ -n $kwokctl ]] || die "no kwokctl under $CACHE to stop the cluster with: run scripts/cluster.sh build"
    "$kwokctl" delete cluster --name "$NAME" >&2 9>&- || die "kwokctl could not delete the cluster $NAME"
  fi
  rm -rf "$STATE" "$CACHE/kubeconfig-unused.yaml"
  say "cluster $NAME is down"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  build | bin)
    lock
    if [[ $1 == bin ]]; then build; else build >/dev/null; fi
    ;;
  *)
    echo "usage: scripts/cluster.sh up|down|build|bin" >&2
    exit 2
    ;;
esac
