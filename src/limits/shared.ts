/**
 * What the limits share: the key of an IP address, and the one-warning-a-minute rule for a
 * failing limit store.
 */
import ipaddr from 'ipaddr.js';
import type { Logger } from '../logging/logger.js';

/** At most one "store unreachable" warning per limit and minute. */
const STORE_WARNING_INTERVAL_MS = 60_000;

/**
 * The key an IP address is limited under: IPv4 addresses as they are (IPv4-mapped IPv6
 * addresses as their IPv4 address), IPv6 addresses by their /64 (`2001:db8:0:1::/64`): one
 * host usually owns a whole /64. Anything that is not an address is returned unchanged.
 */
export function limitKeyForIp(ip: string): string {
  const address = ip.split('%')[0]!;
  if (!ipaddr.isValid(address)) return ip.toLowerCase();
  const parsed = ipaddr.process(address);
  if (parsed.kind() === 'ipv4') return parsed.toString();
  const prefix = (parsed as ipaddr.IPv6).parts.slice(0, 4).map((part) => part.toString(16));
  return `${prefix.join(':')}::/64`;
}

/** Rate-limits store failures into one warning per limit and minute. */
export class StoreWarnings {
  readonly #logger: Logger;
  readonly #last = new Map<string, number>();

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  warn(limit: string, error: unknown): void {
    const now = Date.now();
    if (now - (this.#last.get(limit) ?? 0) < STORE_WARNING_INTERVAL_MS) return;
    this.#last.set(limit, now);
    this.#logger.warn('rate limit not applied: the limit store failed', {
      limit,
      error: error instanceof Error ? error.message : String(error),
    });
  }
}
