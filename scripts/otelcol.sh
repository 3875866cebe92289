#!/usr/bin/env bash
# The OpenTelemetry Collector that the trace tests (tests/test_tracing.py) export to: built from its
# Go modules with the OpenTelemetry Collector Builder (ocb, go.opentelemetry.io/collector/cmd/builder),
# from the manifest below. Nothing is downloaded but Go modules.
#
#   scripts/otelcol.sh build   build the collector when it is missing (cached; a no-op when it exists)
#   scripts/otelcol.sh bin     print the path of the collector binary, building it first when missing
#
# The manifest is a trimmed one: the OTLP receiver, the batch processor and the file exporter, at one
# collector release. The core distribution's manifest (opentelemetry-collector-releases,
# distributions/otelcol) does not build here: at every release the module proxy serves the file
# exporter at, some module its Kafka receiver and exporter or its host-metrics receiver needs is not
# served (pkg/kafka/configkafka, pkg/kafka/topic, internal/gopsutilenv, pkg/winperfcounters and
# scraper/scrapertest at v0.161.0). The tests need nothing else, and the build is a fraction of the
# core distribution's: from empty Go caches, 130 s on 2 cores (193 s while other builds ran beside
# it), of which about 20 s install ocb itself; a 27 MB binary.
#
# Cache: ${DP_OTELCOL_CACHE:-~/.cache/deployment-patterns/otelcol}, one folder per collector release
# and manifest hash (a version bump builds anew; older builds are removed); Go's own build and module
# caches are kept too.
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${DP_OTELCOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/deployment-patterns/otelcol}

# One release for every collector module: core v0.161.0 goes with the stable modules at v1.67.0 and
# with contrib v0.161.0 (the newest file exporter the module proxy serves whole).
VERSION=0.161.0
STABLE=1.67.0
MANIFEST="dist:
  module: deployment-patterns/otelcol
  name: otelcol
  description: OpenTelemetry Collector for the deployment-patterns trace tests
  version: $VERSION
  output_path: @OUTPUT@
  build_tags: grpcnotrace
receivers:
  - gomod: go.opentelemetry.io/collector/receiver/otlpreceiver v$VERSION
processors:
  - gomod: go.opentelemetry.io/collector/processor/batchprocessor v$VERSION
exporters:
  - gomod: github.com/open-telemetry/opentelemetry-collector-contrib/exporter/fileexporter v$VERSION
providers:
  - gomod: go.opentelemetry.io/collector/confmap/provider/envprovider v$STABLE
  - gomod: go.opentelemetry.io/collector/confmap/provider/fileprovider v$STABLE
  - gomod: go.opentelemetry.io/collector/confmap/provider/yamlprovider v$STABLE
"

# shellcheck source=scripts/go-tools.sh
source "$ROOT/scripts/go-tools.sh"

# The binary's folder is keyed by the release and the manifest: a new pin builds into a new folder.
bin_dir() {
  printf '%s/otelcol-v%s-%s' "$CACHE" "$VERSION" "$(printf '%s' "$MANIFEST" | sha256sum | cut -c1-12)"
}

build() {
  local bin work log started go_dir
  bin=$(bin_dir)
  if [[ -x $bin/otelcol ]]; then
    printf '%s/otelcol' "$bin"
    return 0
  fi
  find_go 'the collector'
  work="$CACHE/work"
  log="$CACHE/build.log"
  say "building the OpenTelemetry Collector v$VERSION (otlp receiver, batch processor, file exporter) into $bin; the first build takes a few minutes (log: $log)"
  started=$SECONDS
  rm -rf "$work" "$bin.tmp"
  mkdir -p "$work" "$bin.tmp"
  printf '%s' "${MANIFEST//@OUTPUT@/$work/src}" >"$work/manifest.yaml"
  # ocb runs `go` from PATH: the one found above goes first; its temporary folders go with $work.
  go_dir=$(dirname "$GO")
  mkdir -p "$work/tmp"
  if ! (export PATH="$go_dir:$PATH" GOBIN="$work/bin" TMPDIR="$work/tmp" &&
    "$GO" install "go.opentelemetry.io/collector/cmd/builder@v$VERSION" &&
    "$work/bin/builder" --config "$work/manifest.yaml") >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "building the collector failed with $("$GO" version) (whole log: $log)"
  fi
  mv "$work/src/otelcol" "$bin.tmp/otelcol"
  rm -rf "$bin" "$work"
  mv "$bin.tmp" "$bin"
  # Builds of earlier pins and failed attempts go (a running collector keeps the file it started
  # with; the lock keeps other builds out).
  find "$CACHE" -maxdepth 1 -name 'otelcol-v*' ! -name "${bin##*/}" -exec rm -rf {} +
  say "built in $((SECONDS - started)) s: $(du -sh "$bin/otelcol" | cut -f1), $("$bin/otelcol" --version)"
  printf '%s/otelcol' "$bin"
}

# One build at a time (the xdist workers may all ask): an exclusive lock on fd 9.
lock() {
  mkdir -p "$CACHE"
  exec 9>"$CACHE/lock"
  flock 9
}

case ${1:-} in
  build)
    lock
    build >/dev/null
    ;;
  bin)
    lock
    build
    echo
    ;;
  *)
    echo "usage: scripts/otelcol.sh build|bin" >&2
    exit 2
    ;;
esac
