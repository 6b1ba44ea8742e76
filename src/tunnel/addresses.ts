/**
 * Tunnel addresses: one IPv4 /24 (configurable, default 10.77.0.0/24). The gateway end is .1;
 * sites get .2, .3, … in order, and an address is never handed out twice, not even after its
 * site was removed: a Traefik route left behind for a removed site must not reach the next
 * site that would otherwise inherit its address.
 */

export const DEFAULT_SUBNET = '10.77.0.0/24';

/** Host numbers a site can get: .2 to .254 (.0 network, .1 the gateway, .255 broadcast). */
export const FIRST_SITE_HOST = 2;
export const LAST_SITE_HOST = 254;

export interface Subnet {
  /** `a.b.c.0/24` as written back. */
  cidr: string;
  /** `a.b.c`: the first three octets. */
  prefix: string;
}

const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const SUBNET_24 = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.0/24$`);

/**
 * Parses `a.b.c.0/24`. Only private (RFC 1918) and shared (RFC 6598, 100.64.0.0/10) space is
 * accepted: the tunnel subnet is routed on the gateway host, and a public range would shadow
 * real addresses there.
 */
export function parseSubnet(text: string): Subnet {
  const match = SUBNET_24.exec(text);
  if (!match) throw new Error(`the tunnel subnet must be an IPv4 /24 such as ${DEFAULT_SUBNET}`);
  const [a, b] = [Number(match[1]), Number(match[2])];
  const isPrivate =
    a === 10 ||
    (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168) ||
    (a === 100 && b >= 64 && b <= 127);
  if (!isPrivate) {
    throw new Error(
      `the tunnel subnet ${text} is not private address space (10/8, 172.16/12, 192.168/16, 100.64/10)`,
    );
  }
  return { cidr: text, prefix: `${match[1]}.${match[2]}.${match[3]}` };
}

export function hubAddress(subnet: Subnet): string {
  return `${subnet.prefix}.1`;
}

export function siteAddress(subnet: Subnet, host: number): string {
  if (!Number.isInteger(host) || host < FIRST_SITE_HOST || host > LAST_SITE_HOST) {
    throw new Error(`no site address .${host} in ${subnet.cidr}`);
  }
  return `${subnet.prefix}.${host}`;
}
