import ipaddr from 'ipaddr.js';

/**
 * Whether a URL hostname names the local machine: `localhost` (and `*.localhost`, RFC 6761
 * §6.3), 127.0.0.0/8 or ::1. Accepts the bracketed IPv6 form that `URL.hostname` returns.
 */
export function isLoopbackHostname(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  return isLoopbackAddress(host);
}

/** Whether an IP address literal is a loopback address (IPv4-mapped IPv6 included). */
export function isLoopbackAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  const parsed = ipaddr.process(address);
  return parsed.range() === 'loopback';
}
