#!/bin/sh
# mcp-tunnel: one end of an MCP gateway site tunnel (WireGuard), for both ends (docs/tunnels.md).
#
#   mcp-tunnel hub        the gateway end: the interface from $TUNNEL_STATE/wg0.conf and hub.env
#                         (written by `mcp-gateway tunnel`), reloaded when wg0.conf changes
#   mcp-tunnel site       a site end: $TUNNEL_STATE/private.key + tunnel.conf (from add-site)
#   mcp-tunnel site-init [--rotate]
#                         makes the site's key pair in $TUNNEL_STATE/private.key (0600) if there
#                         is none (--rotate: a new one) and prints ONLY the public key
#   mcp-tunnel health     exit 0 when the interface is up with its address
#
# Kernel WireGuard when the host has it (Linux 5.6+), else wireguard-go (userspace, needs
# /dev/net/tun). hub and site run in the foreground until SIGTERM, then remove what they made.
#
# Environment: TUNNEL_STATE (default /etc/mcp-tunnel), WG_INTERFACE (site; default wg0; the hub
# reads TUNNEL_INTERFACE from hub.env), TUNNEL_SYNC_INTERVAL (hub reload check, seconds, default 2),
# TUNNEL_RUNTIME (hub: a writable directory kept across restarts, default /var/lib/mcp-tunnel;
# empty: none).
#
# Firewall (nftables table inet mcp_tunnel):
#   hub   nothing a site sends may open a connection: no site reaches the gateway host's own
#         services, the containers, or another site through it (input and forward from the
#         interface: established/related only); what goes into the tunnel leaves with the hub's
#         tunnel address (masquerade), the one source the sites accept
#   site  only the gateway's tunnel address may open connections here (whatever an MCP server
#         listens on, nothing else reaches it: not the site LAN, not the underlay); no forwarding
set -eu

STATE=${TUNNEL_STATE:-/etc/mcp-tunnel}
SYNC=${TUNNEL_SYNC_INTERVAL:-2}
RUNTIME=${TUNNEL_RUNTIME-/var/lib/mcp-tunnel}
TABLE=mcp_tunnel
IF=${WG_INTERFACE:-wg0}
wg_pid=''
sleep_pid=''
made_link=''
mode=${1:-}

log() { printf 'mcp-tunnel: %s\n' "$*" >&2; }
die() {
  log "$*"
  exit 1
}

# The value of KEY= in an env-style file (no shell evaluation of the file).
setting() { sed -n "s/^$2=//p" "$1" | head -n 1; }

# Values of `Key = value` lines of a WireGuard config, comma lists split, one per line.
conf_values() {
  sed -n "s/^[[:space:]]*$2[[:space:]]*=[[:space:]]*//p" "$1" | tr ',' '\n' | sed 's/[[:space:]]//g' | grep -v '^$' || true
}

# The config without wg-quick's own keys, for `wg setconf`.
strip_conf() {
  grep -viE '^[[:space:]]*(Address|DNS|MTU|Table|PreUp|PostUp|PreDown|PostDown|SaveConfig)[[:space:]]*=' "$1" || true
}

cleanup() {
  trap - EXIT INT TERM
  if [ "$mode" = hub ]; then save_endpoints || true; fi
  nft delete table inet "$TABLE" 2>/dev/null || true
  if [ -n "$sleep_pid" ]; then kill "$sleep_pid" 2>/dev/null || true; fi
  if [ -n "$made_link" ]; then ip link delete dev "$IF" 2>/dev/null || true; fi
  if [ -n "$wg_pid" ]; then
    kill "$wg_pid" 2>/dev/null || true
    wait "$wg_pid" 2>/dev/null || true
  fi
}

create_link() {
  case "$IF" in '' | *[!A-Za-z0-9_.-]*) die "not an interface name: $IF" ;; esac
  ip link show dev "$IF" >/dev/null 2>&1 && die "interface $IF exists already"
  trap cleanup EXIT
  trap 'exit 0' INT TERM
  if ip link add dev "$IF" type wireguard 2>/dev/null; then
    made_link=1
    log "$IF: kernel WireGuard"
    return
  fi
  command -v wireguard-go >/dev/null 2>&1 || die "no kernel WireGuard here and no wireguard-go"
  [ -c /dev/net/tun ] || die "no kernel WireGuard here and no /dev/net/tun for wireguard-go"
  WG_PROCESS_FOREGROUND=1 wireguard-go -f "$IF" &
  wg_pid=$!
  made_link=1
  i=0
  until wg show "$IF" public-key >/dev/null 2>&1; do
    kill -0 "$wg_pid" 2>/dev/null || die "wireguard-go exited"
    i=$((i + 1))
    [ "$i" -le 200 ] || die "wireguard-go did not create $IF"
    sleep 0.05
  done
  log "$IF: wireguard-go (userspace)"
}

alive() {
  if [ -n "$wg_pid" ]; then kill -0 "$wg_pid" 2>/dev/null; else ip link show dev "$IF" >/dev/null 2>&1; fi
}

hub() {
  conf=$STATE/wg0.conf
  env_file=$STATE/hub.env
  if [ ! -s "$conf" ] || [ ! -s "$env_file" ]; then
    die "no $conf / $env_file: run \`mcp-gateway tunnel add-site\` on the gateway first"
  fi
  IF=$(setting "$env_file" TUNNEL_INTERFACE)
  address=$(setting "$env_file" TUNNEL_ADDRESS)
  case "$address" in *[!0-9./]* | '') die "bad TUNNEL_ADDRESS in $env_file" ;; esac
  # In the host's namespace a killed container leaves kernel WireGuard's interface behind:
  # remove it when it carries this gateway's key, refuse to touch anyone else's.
  if ip link show dev "$IF" >/dev/null 2>&1; then
    ours=$(wg pubkey <"$STATE/hub.key" 2>/dev/null || true)
    if [ -z "$ours" ] || [ "$(wg show "$IF" public-key 2>/dev/null || true)" != "$ours" ]; then
      die "interface $IF exists and is not this gateway's: choose another --interface"
    fi
    log "removing the $IF a previous run left"
    ip link delete dev "$IF"
  fi
  create_link
  nft delete table inet "$TABLE" 2>/dev/null || true
  nft -f - <<EOF
table inet $TABLE {
  chain input {
    type filter hook input priority filter - 1; policy accept;
    iifname "$IF" ct state established,related accept
    iifname "$IF" counter drop
  }
  chain forward {
    type filter hook forward priority filter - 1; policy accept;
    iifname "$IF" ct state established,related accept
    iifname "$IF" counter drop
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "$IF" masquerade
  }
}
EOF
  wg setconf "$IF" "$conf"
  ip address add "$address" dev "$IF"
  ip link set dev "$IF" up
  restore_endpoints
  log "hub up: $IF $address, $(wg show "$IF" peers | grep -c . || true) site(s)"
  last=$(cksum <"$conf")
  while alive; do
    sleep "$SYNC" &
    sleep_pid=$!
    wait "$sleep_pid" || true
    now=$(cksum <"$conf" 2>/dev/null || echo missing)
    if [ "$now" != "$last" ] && [ "$now" != missing ]; then
      if wg syncconf "$IF" "$conf"; then
        log "reloaded $conf: $(wg show "$IF" peers | grep -c . || true) site(s)"
        last=$now
      fi
    fi
    save_endpoints
  done
  die "$IF went away"
}

# Where each site was last seen ($RUNTIME/endpoints, "KEY ADDRESS:PORT" lines), kept across
# restarts of the hub. Sites only dial out, and a site whose session the hub lost would not
# handshake again before its next rekey (up to 2 minutes); with its last endpoint the hub
# starts the handshake itself, through the NAT mapping the site's keepalives hold open.
save_endpoints() {
  [ -n "$RUNTIME" ] && [ -d "$RUNTIME" ] || return 0
  seen=$(wg show "$IF" endpoints 2>/dev/null | grep -v '(none)' || true)
  [ -n "$seen" ] || return 0
  [ "$seen" = "$(cat "$RUNTIME/endpoints" 2>/dev/null || true)" ] && return 0
  printf '%s\n' "$seen" >"$RUNTIME/endpoints.new" && mv "$RUNTIME/endpoints.new" "$RUNTIME/endpoints"
}

restore_endpoints() {
  [ -n "$RUNTIME" ] && [ -s "$RUNTIME/endpoints" ] || return 0
  peers=$(wg show "$IF" peers)
  restored=0
  while read -r key endpoint; do
    printf '%s\n' "$peers" | grep -qxF "$key" || continue
    # A keepalive starts the handshake at once; `wg syncconf` resets it at the next reload.
    wg set "$IF" peer "$key" endpoint "$endpoint" persistent-keepalive 25 2>/dev/null &&
      restored=$((restored + 1))
  done <"$RUNTIME/endpoints"
  log "contacting $restored site(s) at their last endpoints"
}

site() {
  key=$STATE/private.key
  conf=$STATE/tunnel.conf
  [ -s "$key" ] || die "no $key: run \`mcp-tunnel site-init\` first"
  [ -s "$conf" ] || die "no $conf: save there what \`mcp-gateway tunnel add-site\` printed"
  address=$(conf_values "$conf" Address | head -n 1)
  case "$address" in *[!0-9./]* | '') die "no IPv4 Address in $conf" ;; esac
  gateway=$(conf_values "$conf" AllowedIPs)
  [ -n "$gateway" ] || die "no AllowedIPs in $conf"
  create_link
  wg set "$IF" private-key "$key"
  ip address add "$address" dev "$IF"
  ip link set dev "$IF" up
  sources=''
  for net in $gateway; do
    case "$net" in *:*) continue ;; esac
    ip route replace "$net" dev "$IF"
    sources="${sources:+$sources, }$net"
  done
  # The firewall before the first packet: conntrack only follows the WireGuard flow (and lets
  # the gateway's answers in) if it saw the site's first packet go out.
  nft delete table inet "$TABLE" 2>/dev/null || true
  nft -f - <<EOF
table inet $TABLE {
  chain input {
    type filter hook input priority filter - 1; policy drop;
    iif "lo" accept
    ct state established,related accept
    meta l4proto ipv6-icmp accept
    iifname "$IF" ip saddr { $sources } accept
    counter
  }
  chain forward {
    type filter hook forward priority filter - 1; policy drop;
  }
}
EOF
  # The peer last, on an interface that is up with its key: its persistent keepalive then
  # starts the handshake at once instead of at the first retry 5 s later.
  strip_conf "$conf" | wg addconf "$IF" /dev/stdin
  log "site up: $IF $address, gateway $sources via $(conf_values "$conf" Endpoint)"
  while alive; do
    sleep 5 &
    sleep_pid=$!
    wait "$sleep_pid" || true
  done
  die "$IF went away"
}

site_init() {
  umask 077
  mkdir -p "$STATE"
  key=$STATE/private.key
  if [ ! -s "$key" ] || [ "${1:-}" = --rotate ]; then
    wg genkey >"$key.new"
    mv "$key.new" "$key"
    log "new site key in $key (it stays here; the running tunnel keeps its key until restarted)"
  fi
  wg pubkey <"$key"
  log "the line above is the site's PUBLIC key: give it to the gateway admin for"
  log "  mcp-gateway tunnel add-site NAME --public-key KEY   (or rotate-site after --rotate)"
}

health() {
  [ -s "$STATE/hub.env" ] && [ ! -s "$STATE/tunnel.conf" ] && IF=$(setting "$STATE/hub.env" TUNNEL_INTERFACE)
  wg show "$IF" public-key >/dev/null 2>&1 && ip -o -4 address show dev "$IF" | grep -q inet
}

case "${1:-}" in
  hub) hub ;;
  site) site ;;
  site-init) site_init "${2:-}" ;;
  health) health ;;
  *)
    echo "usage: mcp-tunnel hub|site|site-init [--rotate]|health" >&2
    exit 2
    ;;
esac
