/**
 * Outbound HTTP for the auth service.
 *
 * Two kinds of destination:
 *  - admin-configured ones (upstream identity providers): trusted, may be on a private
 *    network, fetched with {@link createTrustedFetch};
 *  - attacker-chosen ones (Client ID Metadata Documents: the `client_id` is a URL any client
 *    can pick): fetched with {@link createGuardedFetch}, which refuses to connect to anything
 *    but public unicast addresses (SSRF, MCP Security Best Practices "SSRF"). The check runs
 *    on the addresses DNS actually returned, inside the connection's own lookup, so the
 *    address checked is the address connected to (no time-of-check/time-of-use gap from DNS
 *    rebinding). Hosts named in `allowHosts` are exempt, for documents hosted inside the
 *    company network (and for tests on loopback).
 *
 * Both trust the system CAs plus the PEM files in `tls.caFiles`.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { readFileSync } from 'node:fs';
import { isIP, type LookupFunction } from 'node:net';
import { Agent as HttpsAgent } from 'node:https';
import { rootCertificates } from 'node:tls';
import ipaddr from 'ipaddr.js';
import { Agent, fetch as undiciFetch } from 'undici';

export type FetchFunction = (url: string | URL, init?: RequestInit) => Promise<Response>;

/** Refused because the destination is not a public address. */
export class ForbiddenDestinationError extends Error {
  constructor(host: string, address: string) {
    super(`refusing to connect to ${host}: ${address} is not a public address`);
    this.name = 'ForbiddenDestinationError';
  }
}

/** Whether an address may be fetched from a user-supplied URL. */
export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  // `process` turns IPv4-mapped IPv6 (::ffff:10.0.0.1) into the IPv4 address it maps.
  return ipaddr.process(address).range() === 'unicast';
}

function caBundle(caFiles: string[]): string[] | undefined {
  if (caFiles.length === 0) return undefined;
  return [...rootCertificates, ...caFiles.map((file) => readFileSync(file, 'utf8'))];
}

const guardedLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
    if (error) return callback(error, '', 0);
    const forbidden = addresses.find((entry) => !isPublicAddress(entry.address));
    if (forbidden)
      return callback(new ForbiddenDestinationError(hostname, forbidden.address), '', 0);
    if (options.all)
      return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
    const first = addresses[0]!;
    return callback(null, first.address, first.family);
  });
};

function hostMatches(url: URL, hosts: Set<string>): boolean {
  return hosts.has(url.hostname.toLowerCase()) || hosts.has(url.host.toLowerCase());
}

function toFetch(dispatcher: Agent): FetchFunction {
  return (url, init) =>
    undiciFetch(url, { ...(init as object), dispatcher }) as unknown as Promise<Response>;
}

/**
 * A `node:https` agent trusting the same CAs, for libraries that make their own requests
 * (passport's node-oauth); `undefined` when no extra CA is configured.
 */
export function createHttpsAgent(caFiles: string[]): HttpsAgent | undefined {
  const ca = caBundle(caFiles);
  return ca ? new HttpsAgent({ ca, keepAlive: true }) : undefined;
}

/** Fetch for admin-configured destinations. */
export function createTrustedFetch(caFiles: string[]): FetchFunction {
  return toFetch(new Agent({ connect: { ca: caBundle(caFiles) } }));
}

/** Fetch for user-chosen destinations: public addresses only, except `allowHosts`. */
export function createGuardedFetch(options: {
  caFiles: string[];
  allowHosts: string[];
}): FetchFunction {
  const ca = caBundle(options.caFiles);
  const allowHosts = new Set(options.allowHosts.map((host) => host.toLowerCase()));
  const exempt = toFetch(new Agent({ connect: { ca } }));
  const guarded = toFetch(new Agent({ connect: { ca, lookup: guardedLookup } }));
  return async (input, init) => {
    const url = new URL(input);
    if (hostMatches(url, allowHosts)) return exempt(url, init);
    // An IP literal never goes through DNS lookup, so it is checked here.
    const literal = url.hostname.replace(/^\[(.*)\]$/, '$1');
    if (isIP(literal) && !isPublicAddress(literal)) {
      throw new ForbiddenDestinationError(url.hostname, literal);
    }
    return guarded(url, init);
  };
}
