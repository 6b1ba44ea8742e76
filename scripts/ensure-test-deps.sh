#!/bin/sh
# Makes sure the system programs the test suite runs for real are installed: redis-server,
# caddy, nginx, chromium, crowdsec, openssl, WireGuard (wg, wireguard-go), tcpdump, ip and
# nft (see ../shared/TOOLING.md). On a Debian machine
# where we are root and they are missing, installs them from Debian's packages; anywhere else
# prints what is missing and how to install it, and the tests that need them are skipped
# (they fail under CI=true).
set -eu

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
