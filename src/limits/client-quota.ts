/**
 * Registration governance per address and per network: how many dynamically registered
 * clients one address (`limits.maxClientsPerIp`) and one network (`limits.maxClientsPerNetwork`)
 * may have that are still alive, and a reserve at the top of the registry
 * (`registration.dcr.maxClients`) kept for networks that have (almost) none. The registration
 * rate limit (`limits.register`) bounds how fast an address registers; this bounds what it can
 * keep, so that neither a patient script nor a few hundred addresses can fill the registry and
 * close registration for everyone.
 *
 * - Address: an IPv4 address, an IPv6 /64 (one host usually owns a whole /64).
 * - Network: an IPv4 /24, an IPv6 /48 (RIPE-690: the block one site or customer is given). A
 *   /64 is not a network: one free tunnel-broker /48 holds 65,536 of them.
 * - Reserve: once the registry holds {@link RESERVE_FROM} of `maxClients`, a network may hold
 *   at most {@link RESERVED_PER_NETWORK} live clients, so the last fifth stays open to networks
 *   that have not registered yet. With the defaults (10,000 clients, 100 per network), closing
 *   registration takes 80 networks to reach the reserve and about 670 more to use it up: some
 *   750 distinct /24s or /48s, where 200 addresses used to be enough.
 *
 * Each address and each network has a set in the store (`limits:dcr-by-ip:<key>`,
 * `limits:dcr-by-net:<key>`), so that every replica counts the same. A registration first
 * adds a placeholder (`pending:<ms>:<uuid>`) to both sets and only then reads their sizes: of
 * any number of concurrent registrations from one network (thousands of /64s of one /48, say)
 * at most the free slots pass, since each one's read counts every placeholder added before it
 * (some may be refused that would have fitted: under a race the quota fails closed). When
 * oidc-provider reports the registration (`registration_create.success`) the client id is
 * added; when the response is over, the placeholder is removed (after the id was added, so
 * the count never dips). A refused or failed registration keeps no slot. A set lives as long
 * as a DCR client does (`registration.dcr.clientTtl`, extended by every registration). While a
 * set is full, each attempt first drops the ids whose client record is gone (expired unused or
 * deleted through RFC 7592) and placeholders older than {@link PLACEHOLDER_MAX_AGE_MS} (a
 * replica that stopped mid-registration), so a slot frees as soon as a client does. Those
 * reads are bounded by the registration rate limit (at most the quota per attempt).
 *
 * The registry's size is the DCR index (`src/oauth/store-adapter.ts`), which counts expired
 * clients until they are pruned; the registry cap (`registrationCap`, endpoint-guards.ts)
 * prunes it at most once a minute per replica from {@link reserveFrom} on, so the reserve
 * starts on live clients, give or take a minute.
 *
 * A leniency, in the attacker's disfavour only by the registration rate limit: a set can
 * expire while a client it lists is still in use (a used client's life is extended, the set's
 * is not), which gives the address or network its slots back early.
 *
 * Over a quota: 429 `too_many_requests` with `Retry-After: 3600`. RFC 7591 §3.2.2 defines 400
 * errors for bad metadata only; this is a per-source limit, answered as every other limit in
 * `config.limits` is (429 with Retry-After), so that clients and operators see one kind of
 * refusal. The hour is a hint: a slot frees only when one of the source's clients expires or is
 * deleted. The refusal is logged as `registration_refused` (with `limit`), which CrowdSec's
 * registration-flood scenario counts.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { RequestHandler } from 'express';
import ipaddr from 'ipaddr.js';
import type { GatewayConfig } from '../config/schema.js';
import { onProviderEvent, type ProviderEventSource } from '../events/provider-events.js';
import type { SecurityEvents } from '../events/security-events.js';
import type { Logger } from '../logging/logger.js';
import {
  CLIENTS_BY_IP_PREFIX,
  CLIENTS_BY_NETWORK_PREFIX,
  DCR_CLIENT_INDEX,
  recordKey,
} from '../store/keys.js';
import type { Store } from '../store/store.js';
import { limitKeyForIp, sendTooManyRequests, StoreWarnings } from './rate-limits.js';

/** The share of `registration.dcr.maxClients` after which the reserve applies. */
export const RESERVE_FROM = 0.8;
/** Live clients a network may have while the registry is in its reserve. */
export const RESERVED_PER_NETWORK = 3;
const PLACEHOLDER = 'pending:';
/** A placeholder this old belongs to a registration that will never finish. */
const PLACEHOLDER_MAX_AGE_MS = 5 * 60_000;
const RETRY_AFTER_MS = 3600_000;

/** The registry size from which the reserve applies. */
export function reserveFrom(maxClients: number): number {
  return Math.ceil(maxClients * RESERVE_FROM);
}

/**
 * The network an address belongs to: its IPv4 /24 (IPv4-mapped IPv6 addresses as their IPv4
 * address) or its IPv6 /48. Anything that is not an address is returned unchanged.
 */
export function networkKeyForIp(ip: string): string {
  const address = ip.split('%')[0]!;
  if (!ipaddr.isValid(address)) return ip.toLowerCase();
  const parsed = ipaddr.process(address);
  if (parsed.kind() === 'ipv4') {
    return `${(parsed as ipaddr.IPv4).octets.slice(0, 3).join('.')}.0/24`;
  }
  const prefix = (parsed as ipaddr.IPv6).parts.slice(0, 3).map((part) => part.toString(16));
  return `${prefix.join(':')}::/48`;
}

export interface ClientQuotaDeps {
  config: Pick<GatewayConfig, 'limits' | 'registration'>;
  store: Store;
  logger: Logger;
  /** Where a refused registration is raised (`registration_refused`). */
  events: SecurityEvents;
}

/** One quota a registration is counted against. */
interface Quota {
  set: string;
  max: number;
  limit: 'maxClientsPerIp' | 'maxClientsPerNetwork' | 'reserve';
  description: string;
}

/** A registration let through: the sets holding its placeholder, and its client once made. */
interface Slot {
  sets: string[];
  placeholder: string;
  recorded?: Promise<void>;
}

export class ClientQuota {
  readonly #store: Store;
  readonly #events: SecurityEvents;
  readonly #warnings: StoreWarnings;
  readonly #maxPerIp: number;
  readonly #maxPerNetwork: number;
  readonly #reserveFrom: number;
  readonly #ttl: number;
  readonly #enabled: boolean;
  /** Registrations let through, by request. */
  readonly #pending = new WeakMap<IncomingMessage, Slot>();

  constructor(deps: ClientQuotaDeps) {
    this.#store = deps.store;
    this.#events = deps.events;
    this.#warnings = new StoreWarnings(deps.logger);
    this.#maxPerIp = deps.config.limits.maxClientsPerIp;
    this.#maxPerNetwork = deps.config.limits.maxClientsPerNetwork;
    this.#reserveFrom = reserveFrom(deps.config.registration.dcr.maxClients);
    this.#ttl = deps.config.registration.dcr.clientTtl;
    this.#enabled = deps.config.limits.enabled;
  }

  /** For POST /register: refuses a source that has used up its address or network quota. */
  readonly middleware: RequestHandler = async (req, res, next) => {
    const ip = req.ip;
    if (!this.#enabled || !ip) return next();
    const slot: Slot = { sets: [], placeholder: `${PLACEHOLDER}${Date.now()}:${randomUUID()}` };
    let refused: Quota | undefined;
    try {
      const quotas = await this.#quotas(ip);
      slot.sets = quotas.map((quota) => quota.set);
      for (const set of slot.sets) await this.#store.addToSet(set, [slot.placeholder], this.#ttl);
      for (const quota of quotas) {
        if (!(await this.#fits(quota))) {
          refused = quota;
          break;
        }
      }
    } catch (error) {
      // The store failing here fails the registration itself anyway.
      this.#warnings.warn('clientQuota', error);
    }
    if (refused) {
      await this.#release(slot).catch((error: unknown) =>
        this.#warnings.warn('clientQuota', error),
      );
      this.#events.emit('registration_refused', {
        ip,
        reason: `${refused.limit === 'reserve' ? 'registry reserve' : 'client limit'} reached`,
        limit: refused.limit,
      });
      return sendTooManyRequests(res, RETRY_AFTER_MS, refused.description);
    }
    this.#pending.set(req, slot);
    res.once('close', () => {
      this.#release(slot).catch((error: unknown) => this.#warnings.warn('clientQuota', error));
    });
    return next();
  };

  /** Records each registration the middleware let through once oidc-provider has made it. */
  attach(provider: ProviderEventSource): void {
    if (!this.#enabled) return;
    onProviderEvent(provider, 'registration_create.success', (ctx, client) => {
      const slot = ctx.req ? this.#pending.get(ctx.req) : undefined;
      const clientId = client?.clientId;
      if (slot === undefined || !clientId) return;
      slot.recorded = (async () => {
        for (const set of slot.sets) await this.#store.addToSet(set, [clientId], this.#ttl);
      })().catch((error: unknown) => this.#warnings.warn('clientQuota', error));
    });
  }

  /** The number of clients the address has (expired and deleted ones included). */
  count(ip: string): Promise<number> {
    return this.#store.setSize(CLIENTS_BY_IP_PREFIX + limitKeyForIp(ip));
  }

  /** The number of clients the address's network has (expired and deleted ones included). */
  networkCount(ip: string): Promise<number> {
    return this.#store.setSize(CLIENTS_BY_NETWORK_PREFIX + networkKeyForIp(ip));
  }

  /** The quotas a registration from `ip` counts against, the reserve applied. */
  async #quotas(ip: string): Promise<Quota[]> {
    const inReserve = (await this.#store.setSize(DCR_CLIENT_INDEX)) >= this.#reserveFrom;
    const perNetwork = inReserve
      ? Math.min(this.#maxPerNetwork, RESERVED_PER_NETWORK)
      : this.#maxPerNetwork;
    return [
      {
        set: CLIENTS_BY_IP_PREFIX + limitKeyForIp(ip),
        max: this.#maxPerIp,
        limit: 'maxClientsPerIp',
        description: `this address has registered ${this.#maxPerIp} clients that are still in use; unused clients expire`,
      },
      {
        set: CLIENTS_BY_NETWORK_PREFIX + networkKeyForIp(ip),
        max: perNetwork,
        limit: inReserve && perNetwork < this.#maxPerNetwork ? 'reserve' : 'maxClientsPerNetwork',
        description: inReserve
          ? `the client registry is nearly full: a network may keep ${perNetwork} clients until it empties; unused clients expire`
          : `this network has registered ${perNetwork} clients that are still in use; unused clients expire`,
      },
    ];
  }

  /** Whether the set (this registration's placeholder in it) is within its quota. */
  async #fits(quota: Quota): Promise<boolean> {
    if ((await this.#store.setSize(quota.set)) <= quota.max) return true;
    return (await this.#prune(quota.set)) <= quota.max;
  }

  /** Takes the placeholder out, once the client (if one was made) is in. */
  async #release(slot: Slot): Promise<void> {
    await slot.recorded;
    for (const set of slot.sets) await this.#store.removeFromSet(set, [slot.placeholder]);
  }

  /** Drops the ids whose client is gone and stale placeholders; returns how many remain. */
  async #prune(setKey: string): Promise<number> {
    const members = await this.#store.setMembers(setKey);
    const gone: string[] = [];
    const now = Date.now();
    for (const id of members) {
      if (id.startsWith(PLACEHOLDER)) {
        const since = Number(id.slice(PLACEHOLDER.length).split(':')[0]);
        if (!(now - since < PLACEHOLDER_MAX_AGE_MS)) gone.push(id);
      } else if (!(await this.#store.get(recordKey('Client', id)))) {
        gone.push(id);
      }
    }
    if (gone.length) await this.#store.removeFromSet(setKey, gone);
    return members.length - gone.length;
  }
}
