/**
 * Express middleware in front of oidc-provider's endpoints, for the few rules it has no
 * option for (each endpoint's whole chain is declared in endpoints.ts). A refusal is passed on
 * as a typed error (src/http/errors.ts) to the surface's one error handler.
 */
import cors from 'cors';
import type { NextFunction, Request, Response } from 'express';
import type { SecurityEvents } from '../events/security-events.js';
import { InvalidClientMetadata, LengthRequired, TemporarilyUnavailable } from '../http/errors.js';
import { DCR_CLIENT_INDEX, recordKey } from '../store/keys.js';
import type { Store } from '../store/store.js';
import type { ResourceRegistry } from '../resources/registry.js';

/**
 * An authorization request without `scope` asks for the scopes of its resource(s). The MCP
 * SDK sends what the 401 challenge or the protected resource metadata says, which may be
 * nothing; the conformance suite sends only `resource`.
 */
export function defaultAuthorizeScope(resources: ResourceRegistry) {
  return (req: Request, _res: Response, next: NextFunction) => {
    const url = new URL(req.originalUrl, 'http://placeholder');
    if (url.searchParams.has('scope')) return next();
    const indicators = url.searchParams.getAll('resource');
    const named = indicators.length ? indicators : [resources.soleResource() ?? ''];
    const scopes = new Set(named.flatMap((indicator) => resources.find(indicator)?.scopes ?? []));
    if (scopes.size === 0) return next();
    url.searchParams.set('scope', [...scopes].join(' '));
    req.url = `${url.pathname}${url.search}`;
    return next();
  };
}

/**
 * Browsers may register clients from any origin: registration uses no cookies, and the
 * answer never carries `Access-Control-Allow-Credentials`, so reflecting the origin lets a
 * browser-based MCP client (e.g. MCP Inspector) read its own registration and nothing else.
 */
export const registrationCors = cors({
  origin: true,
  credentials: false,
  methods: ['GET', 'POST'],
  allowedHeaders: ['Content-Type', 'Authorization', 'MCP-Protocol-Version'],
  maxAge: 600,
});

/**
 * Bounds the registration request body (the client metadata document) before oidc-provider
 * reads it: oidc-provider's own limit is 56 KiB for any body and cannot be changed. Node
 * delivers exactly Content-Length bytes, so a request whose Content-Length is within the bound
 * has a body within it; a request without one (chunked) is refused with 411 Length Required,
 * as every client sends a small JSON document with its length. Over the bound: RFC 7591
 * `invalid_client_metadata`.
 */
export function registrationBodyLimit(maxBytes: number) {
  return (req: Request, _res: Response, next: NextFunction) => {
    const header = req.headers['content-length'];
    const length = Number(header);
    if (header === undefined || !/^\d+$/.test(header)) {
      return next(new LengthRequired('a registration request must carry its Content-Length'));
    }
    if (length > maxBytes) {
      return next(
        new InvalidClientMetadata(
          `the client metadata document is ${length} bytes; at most ${maxBytes} are accepted`,
        ),
      );
    }
    next();
  };
}

const PRUNE_INTERVAL_MS = 60_000;

/**
 * Caps the number of dynamically registered clients, so that registration floods cannot
 * grow the store without bound. Expired clients are pruned from the count at most once a
 * minute (a prune reads every member, which must not happen per request under attack), once
 * the count reaches `pruneFrom` (default: the cap): the client quota's reserve
 * (src/limits/client-quota.ts) starts below the cap, and must not start on expired clients.
 */
export function registrationCap(
  store: Store,
  maxClients: number,
  events: SecurityEvents,
  { pruneFrom = maxClients }: { pruneFrom?: number } = {},
) {
  let lastPrune = 0;
  return async (req: Request, _res: Response, next: NextFunction) => {
    let count = await store.setSize(DCR_CLIENT_INDEX);
    if (count >= pruneFrom && Date.now() - lastPrune > PRUNE_INTERVAL_MS) {
      lastPrune = Date.now();
      const members = await store.setMembers(DCR_CLIENT_INDEX);
      const gone: string[] = [];
      for (const id of members) {
        if (!(await store.get(recordKey('Client', id)))) gone.push(id);
      }
      if (gone.length) await store.removeFromSet(DCR_CLIENT_INDEX, gone);
      count -= gone.length;
    }
    if (count >= maxClients) {
      events.emit('registration_refused', { ip: req.ip, reason: 'client limit reached' });
      return next(
        new TemporarilyUnavailable(
          'client registration is closed: the client limit is reached',
          60,
        ),
      );
    }
    next();
  };
}
