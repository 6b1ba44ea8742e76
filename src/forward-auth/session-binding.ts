/**
 * Binds each MCP session to the user and client that first used it (checklist RS-12).
 *
 * MCP security best practices, "Session Hijacking": servers "MUST NOT use sessions for
 * authentication" and "SHOULD bind session IDs to user-specific information". The MCP servers
 * behind the gateway contain no auth code, so they cannot; the gateway does it for them. The
 * first request that presents a session id (`Mcp-Session-Id`, or a legacy SSE server's
 * `/messages?sessionId=`) with a valid token binds it to that token's subject and client; a
 * later request presenting the same id for the same resource with another subject or client
 * is refused as if the session did not exist (404, as the Streamable HTTP transport answers
 * for an unknown session), so a stolen or guessed session id gives another user's token
 * nothing, and does not tell that the session exists.
 *
 * Bindings live in the store (every replica sees the same first claim: `setIfAbsent` is
 * atomic) for `verify.sessionBinding.ttl`, and each replica keeps the ones it has seen in a
 * bounded cache for as long: a binding never changes while it lives, so a cached one is never
 * stale, and a session costs one store round trip per replica, not one per request. The session id itself
 * is not a store key: a SHA-256 of resource and id is.
 */
import { hash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { sessionBindingKey, sessionQuotaKey } from '../store/keys.js';
import type { Store } from '../store/store.js';

export interface SessionBindingOptions {
  store: Store;
  /** Seconds a binding is kept in the store after it is made. */
  ttlSeconds: number;
  /** Bindings remembered per replica. */
  cacheSize: number;
  /**
   * New sessions one owner (subject and client) may bind per resource within `ttlSeconds`.
   * Bindings are never evicted to make room, so this is what bounds one token's share.
   */
  maxPerOwner: number;
}

/** Who may use a session: the subject and the client of the token that first used it. */
export interface SessionOwner {
  subject: string;
  clientId: string;
}

/**
 * `owner`: the session is this owner's (bound now, or before); `other`: someone else's;
 * `quota`: a new session this owner may not bind now (`maxPerOwner`).
 */
export type ClaimOutcome = 'owner' | 'other' | 'quota';

/** One text per owner, unambiguous whatever the subject holds (an upstream `sub` is free text). */
const ownerText = (subject: unknown, clientId: unknown) => JSON.stringify([subject, clientId]);

export class SessionBindings {
  readonly #store: Store;
  readonly #ttlSeconds: number;
  readonly #maxPerOwner: number;
  /** `resource\nsession id` → owner text (the id is hashed only for the store). */
  readonly #known: LRUCache<string, string>;

  constructor(options: SessionBindingOptions) {
    this.#store = options.store;
    this.#ttlSeconds = options.ttlSeconds;
    this.#maxPerOwner = options.maxPerOwner;
    // A cache only: a binding it forgets is read from the store again, never lost. Not kept
    // past the store's lifetime, so that every replica forgets a binding alike.
    this.#known = new LRUCache({
      max: Math.max(1, options.cacheSize),
      ttl: options.ttlSeconds * 1000,
    });
  }

  /**
   * Whether `owner` may use session `sessionId` of `resource`, binding it on first use.
   * Synchronous when this replica knows the binding; rejects when the store cannot be read or
   * is full (the store never evicts a binding: StoreFullError).
   */
  claim(
    resource: string,
    sessionId: string,
    owner: SessionOwner,
  ): ClaimOutcome | Promise<ClaimOutcome> {
    // A resource URL holds no newline, so this names one (resource, session) pair.
    const session = `${resource}\n${sessionId}`;
    const wanted = ownerText(owner.subject, owner.clientId);
    const known = this.#known.get(session);
    if (known !== undefined) return known === wanted ? 'owner' : 'other';
    return this.#bind(resource, session, owner, wanted);
  }

  async #bind(
    resource: string,
    session: string,
    owner: SessionOwner,
    wanted: string,
  ): Promise<ClaimOutcome> {
    const key = sessionBindingKey(hash('sha256', session, 'base64url'));
    const stored = await this.#store.get(key);
    if (stored !== undefined) return this.#remember(session, stored, wanted);
    // A new session: counted against its owner before it is bound, so that one token cannot
    // fill the store with bindings (they are never evicted: they deny access to others).
    const quotaKey = sessionQuotaKey(hash('sha256', `${resource}\n${wanted}`, 'base64url'));
    if ((await this.#store.increment(quotaKey, this.#ttlSeconds)) > this.#maxPerOwner) {
      return 'quota';
    }
    const { subject, clientId } = owner;
    if (await this.#store.setIfAbsent(key, { subject, clientId }, this.#ttlSeconds)) {
      this.#known.set(session, wanted);
      return 'owner';
    }
    // Another request bound it between the two calls; if that binding already expired, claim
    // it once more (a race here only decides who binds first).
    const winner = await this.#store.get(key);
    if (winner !== undefined) return this.#remember(session, winner, wanted);
    const claimed = await this.#store.setIfAbsent(key, { subject, clientId }, this.#ttlSeconds);
    if (claimed) this.#known.set(session, wanted);
    return claimed ? 'owner' : 'other';
  }

  #remember(session: string, stored: Record<string, unknown>, wanted: string): ClaimOutcome {
    const bound = ownerText(stored.subject, stored.clientId);
    this.#known.set(session, bound);
    return bound === wanted ? 'owner' : 'other';
  }
}
