/**
 * Registration governance per IP (`limits.maxClientsPerIp`): how many dynamically registered
 * clients one address may have that are still alive. The registration rate limit
 * (`limits.register`) bounds how fast an address registers; this bounds what it can keep, so
 * that a patient script cannot fill the registry (`registration.dcr.maxClients`) alone.
 *
 * Each address (an IPv6 host by its /64, as in `rate-limits.ts`) has a set in the store,
 * `limits:dcr-by-ip:<key>`, of the ids of the clients it registered. An id is added when
 * oidc-provider reports the registration (`registration_create.success`; the middleware marks
 * the request so the listener knows the address), never before, so a refused registration
 * takes no slot. The set lives as long as a DCR client does (`registration.dcr.clientTtl`,
 * extended by every registration from the address). While the set is full, each attempt first
 * drops the ids whose client record is gone (expired unused or deleted through RFC 7592), so a
 * slot frees as soon as a client does. Registration is rate-limited before this check, which
 * bounds those reads (at most `maxClientsPerIp` per attempt).
 *
 * Leniencies, all in the attacker's disfavour only by the registration rate limit: concurrent
 * registrations at the last free slot may all pass (the count is read, then added to); a set
 * can expire while a client it lists is still in use (a used client's life is extended, the
 * set's is not), which gives the address its slots back early.
 *
 * Over the quota: 429 `too_many_requests` with `Retry-After: 3600`. RFC 7591 §3.2.2 defines
 * 400 errors for bad metadata only; this is a per-address limit, answered as every other limit
 * in `config.limits` is (429 with Retry-After), so that clients and operators see one kind of
 * refusal. The hour is a hint: a slot frees only when one of the address's clients expires or
 * is deleted. The refusal is logged as `registration_refused`, which CrowdSec's
 * registration-flood scenario counts.
 */
import type { IncomingMessage } from 'node:http';
import type { RequestHandler } from 'express';
import type { GatewayConfig } from '../config/schema.js';
import type { Logger } from '../logging/logger.js';
import { securityEvent } from '../logging/security-events.js';
import type { Store } from '../store/store.js';
import {
  limitKeyForIp,
  sendTooManyRequests,
  StoreWarnings,
  type ProviderEvents,
} from './rate-limits.js';

export const CLIENTS_BY_IP_PREFIX = 'limits:dcr-by-ip:';
/** The store key of a client record (as `src/oauth/store-adapter.ts` writes it). */
const clientRecordKey = (clientId: string) => `oidc:Client:${clientId}`;
const RETRY_AFTER_MS = 3600_000;

export interface ClientQuotaDeps {
  config: Pick<GatewayConfig, 'limits' | 'registration'>;
  store: Store;
  logger: Logger;
}

export class ClientQuota {
  readonly #store: Store;
  readonly #logger: Logger;
  readonly #warnings: StoreWarnings;
  readonly #max: number;
  readonly #ttl: number;
  readonly #enabled: boolean;
  /** Registrations let through, by request, with the key of the address they came from. */
  readonly #pending = new WeakMap<IncomingMessage, string>();

  constructor(deps: ClientQuotaDeps) {
    this.#store = deps.store;
    this.#logger = deps.logger;
    this.#warnings = new StoreWarnings(deps.logger);
    this.#max = deps.config.limits.maxClientsPerIp;
    this.#ttl = deps.config.registration.dcr.clientTtl;
    this.#enabled = deps.config.limits.enabled;
  }

  /** For POST /register: refuses an address that has `maxClientsPerIp` live clients. */
  readonly middleware: RequestHandler = async (req, res, next) => {
    const ip = req.ip;
    if (!this.#enabled || !ip) return next();
    const key = limitKeyForIp(ip);
    try {
      const count = await this.#store.setSize(CLIENTS_BY_IP_PREFIX + key);
      if (count >= this.#max && (await this.#prune(key)) >= this.#max) {
        securityEvent(this.#logger, 'registration_refused', {
          ip,
          reason: 'per-address client limit reached',
          limit: 'maxClientsPerIp',
        });
        return sendTooManyRequests(
          res,
          RETRY_AFTER_MS,
          `this address has registered ${this.#max} clients that are still in use; unused clients expire`,
        );
      }
    } catch (error) {
      // The store failing here fails the registration itself anyway.
      this.#warnings.warn('maxClientsPerIp', error);
    }
    this.#pending.set(req, key);
    return next();
  };

  /** Records each registration the middleware let through once oidc-provider has made it. */
  attach(provider: ProviderEvents): void {
    if (!this.#enabled) return;
    provider.on(
      'registration_create.success',
      (ctx: { req?: IncomingMessage }, client: { clientId?: string }) => {
        const key = ctx.req ? this.#pending.get(ctx.req) : undefined;
        if (key === undefined || !client?.clientId) return;
        this.#record(key, client.clientId).catch((error: unknown) =>
          this.#warnings.warn('maxClientsPerIp', error),
        );
      },
    );
  }

  /** The number of clients the address has (expired and deleted ones included). */
  count(ip: string): Promise<number> {
    return this.#store.setSize(CLIENTS_BY_IP_PREFIX + limitKeyForIp(ip));
  }

  #record(key: string, clientId: string): Promise<void> {
    return this.#store.addToSet(CLIENTS_BY_IP_PREFIX + key, [clientId], this.#ttl);
  }

  /** Drops the ids whose client is gone; returns how many remain. */
  async #prune(key: string): Promise<number> {
    const setKey = CLIENTS_BY_IP_PREFIX + key;
    const members = await this.#store.setMembers(setKey);
    const gone: string[] = [];
    for (const id of members) {
      if (!(await this.#store.get(clientRecordKey(id)))) gone.push(id);
    }
    if (gone.length) await this.#store.removeFromSet(setKey, gone);
    return members.length - gone.length;
  }
}
