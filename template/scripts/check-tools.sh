#!/bin/sh
# Managed by the template. `make setup` runs it first (through `make check-tools`): are the tools
# it needs on PATH, and new enough? The Makefile passes the table, the same one the README lists
# under "Prerequisites".
#
# Usage: scripts/check-tools.sh NAME MINIMUM VERSION-COMMAND HOW-TO-GET [NAME MINIMUM ...]
#   NAME            what the tool is called, for people (Node.js, Go, uv, Python)
#   MINIMUM         the oldest version that works, dotted (20.19, 1.27.0)
#   VERSION-COMMAND a shell command printing the version (its first word must be on PATH)
#   HOW-TO-GET      how to get or update it
# Silent when every tool is there; otherwise one line on stderr for the first missing or too-old
# tool, saying what is needed and how to get it, and exit status 1 (so make stops).
set -u

# at_least FOUND MINIMUM: true when the dotted version FOUND is MINIMUM or newer (1.27.0 >= 1.27).
at_least() {
  found=$1
  minimum=$2
  while [ -n "$minimum" ]; do
    f=${found%%.*}
    m=${minimum%%.*}
    [ "${f:-0}" -gt "$m" ] && return 0
    [ "${f:-0}" -lt "$m" ] && return 1
    case $found in *.*) found=${found#*.} ;; *) found= ;; esac
    case $minimum in *.*) minimum=${minimum#*.} ;; *) minimum= ;; esac
  done
  return 0
}

if [ $# -eq 0 ] || [ $(($# % 4)) -ne 0 ]; then
  echo "usage: $0 NAME MINIMUM VERSION-COMMAND HOW-TO-GET [...]" >&2
  exit 2
fi

while [ $# -ge 4 ]; do
  name=$1
  minimum=$2
  version_command=$3
  get=$4
  shift 4
  program=${version_command%% *}
  needed="make setup needs $name $minimum or newer"
  if ! command -v "$program" >/dev/null 2>&1; then
    echo "$needed, and $program is not on PATH: $get" >&2
    exit 1
  fi
  output=$(sh -c "$version_command" 2>&1)
  status=$?
  # the first dotted number: v20.19.1 (node), go1.27.3 (go), uv 0.13.9 (...), Python 3.14.1
  version=$(printf '%s\n' "$output" | grep -Eo '[0-9]+(\.[0-9]+)+' | head -n 1)
  if [ "$status" -ne 0 ] || [ -z "$version" ]; then
    echo "$needed, and '$version_command' told no version ($(printf '%s\n' "$output" | head -n 1)): $get" >&2
    exit 1
  fi
  if ! at_least "$version" "$minimum"; then
    echo "$needed, found $version ($program): $get" >&2
    exit 1
  fi
done
