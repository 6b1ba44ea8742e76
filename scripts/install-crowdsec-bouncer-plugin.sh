#!/bin/sh
# Puts the source of the CrowdSec bouncer plugin that traefik/traefik.yml pins (module and
# version under experimental.plugins) into .cache/traefik-plugins/src/<module> (ignored by git),
# with its dependencies vendored: Traefik's Yaegi interpreter loads a local plugin from source
# and needs them there. tests/crowdsec/bouncer.test.ts runs it inside the real Traefik from that
# folder (or from CROWDSEC_BOUNCER_PLUGIN_SOURCE, a checkout of the same version).
#
# From the Go module proxy (`go mod download`, then `go mod vendor` in a writable copy). Never
# fails: when the proxy does not serve the module (or Go is missing) it says so, and the tests
# that need the plugin are skipped with that reason.
set -eu
cd "$(dirname "$0")/.."

module=$(sed -n 's/^ *moduleName: *\(github.com\/maxlerebourg\/[^ ]*\) *$/\1/p' traefik/traefik.yml)
version=$(sed -n "/moduleName: *$(echo "$module" | sed 's/\//\\\//g')/{n;s/^ *version: *\(v[^ ]*\) *$/\1/p;}" traefik/traefik.yml)
target=".cache/traefik-plugins/src/$module"
if [ -z "$module" ] || [ -z "$version" ]; then
  echo "install-crowdsec-bouncer-plugin: no pinned bouncer plugin found in traefik/traefik.yml"
  exit 0
fi
if [ -f "$target/.version" ] && [ "$(cat "$target/.version")" = "$version" ]; then
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "install-crowdsec-bouncer-plugin: go is missing; the CrowdSec bouncer plugin tests are skipped"
  exit 0
fi
if ! dir=$(go mod download -json "$module@$version" 2>/dev/null | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p') ||
  [ -z "$dir" ]; then
  echo "install-crowdsec-bouncer-plugin: the Go module proxy did not serve $module@$version;" \
    "the CrowdSec bouncer plugin tests are skipped"
  exit 0
fi
# A writable copy (the module cache is read-only); a module zip leaves vendor/ out, and Yaegi
# needs the dependencies there.
if ! (rm -rf "$target" && mkdir -p "$(dirname "$target")" && cp -R "$dir" "$target" &&
  chmod -R u+w "$target" && cd "$target" && GOFLAGS=-mod=mod go mod vendor); then
  echo "install-crowdsec-bouncer-plugin: could not copy and vendor $module@$version into $target;" \
    "the CrowdSec bouncer plugin tests are skipped"
  rm -rf "$target"
  exit 0
fi
echo "$version" >"$target/.version"
echo "install-crowdsec-bouncer-plugin: $module@$version in $target"
