#!/bin/sh
# Builds the benchmark's Go programs (scripts/bench-go-tools.txt) with `go install` from the Go
# module proxy into the Go bin folder, each only when that folder lacks the pinned version.
# Prints what it does and how long each build took. Nothing is downloaded from anywhere else,
# and nothing is written into the repository.
#
#   GOTOOLCHAIN   passed through to go (e.g. go1.27.3 if a module needs a newer Go)
set -eu

if ! command -v go >/dev/null 2>&1; then
  echo "install-bench-tools: go is missing; install Go, then run: sh scripts/install-bench-tools.sh" >&2
  exit 1
fi
gobin="$(go env GOBIN)"
[ -n "$gobin" ] || gobin="$(go env GOPATH | cut -d: -f1)/bin"

status=0
grep -v '^#' "$(dirname "$0")/bench-go-tools.txt" | while read -r pkg; do
  [ -n "$pkg" ] || continue
  version="${pkg##*@}"
  name="${pkg%@*}" && name="${name##*/}"
  # A module path ending in a major version (…/v7) names the module's root command.
  case "$name" in v[0-9]*) name="${pkg%@*}" && name="${name%/*}" && name="${name##*/}" ;; esac
  if go version -m "$gobin/$name" 2>/dev/null | grep -q "^[[:space:]]mod[[:space:]].*[[:space:]]${version}[[:space:]]"; then
    echo "install-bench-tools: $gobin/$name is $version already"
    continue
  fi
  echo "install-bench-tools: building $pkg with: GOFLAGS=-mod=mod go install $pkg (into $gobin; $(go version))"
  start=$(date +%s)
  if GOFLAGS=-mod=mod go install "$pkg"; then
    echo "install-bench-tools: $gobin/$name built in $(($(date +%s) - start)) s"
  else
    echo "install-bench-tools: go install $pkg failed" >&2
    exit 1
  fi
done || status=$?
exit "$status"
