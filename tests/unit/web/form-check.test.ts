/**
 * The shared form check (src/web/form-check.ts) that the login steps, `/account` and `/admin`
 * run on every form post: the browser's headers must not name another site, and the post
 * must carry the page's CSRF token. Refusals raise `csrf_failed` and send the surface's page.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type {
  SecurityEventDetails,
  SecurityEventKind,
  SecurityEvents,
} from '../../../src/events/security-events.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import { CsrfTokens } from '../../../src/web/csrf.js';
import {
  createConsoleFormCheck,
  createFormCheck,
  sameOriginForm,
  type FormCheck,
  type FormRefusal,
} from '../../../src/web/form-check.js';
import { requestDouble, responseDouble } from './express-test-doubles.js';

const ISSUER = 'https://auth.example.com';
const KEY = 'account:session-1';

let store: MemoryStore;
let csrf: CsrfTokens;
let token: string;
let emitted: [SecurityEventKind, SecurityEventDetails][];
let refusals: FormRefusal[];
const events: SecurityEvents = { emit: (kind, details) => emitted.push([kind, details]) };

function check(issuerOrigin: string | undefined): FormCheck {
  return createFormCheck({
    issuerOrigin,
    csrf,
    events,
    reasons: issuerOrigin
      ? { cross_origin: 'form posted from another origin', csrf: 'form without its token' }
      : undefined,
    refuse: (res, refusal) => {
      refusals.push(refusal);
      res.status(403).send(`refused: ${refusal}`);
    },
  });
}

/** Posts a form through the check with the given headers and body. */
async function post(
  headers: Record<string, string>,
  body: Record<string, unknown> = { csrf: token },
  issuerOrigin: string | null = ISSUER,
) {
  const { res, sent } = responseDouble();
  const allowed = await check(issuerOrigin ?? undefined)(requestDouble({ headers, body }), res, {
    tokenKey: KEY,
    details: { subject: 'dev:alice@example.com' },
  });
  return { allowed, sent };
}

beforeEach(async () => {
  store = new MemoryStore({ maxEntries: 100 });
  csrf = new CsrfTokens(store, 600);
  token = await csrf.issue(KEY);
  emitted = [];
  refusals = [];
});
afterEach(async () => {
  await store.close();
});

describe('same-origin rule', () => {
  it('lets through a post whose headers name this site', async () => {
    const allowed: Record<string, string>[] = [
      { origin: ISSUER },
      { origin: ISSUER, 'sec-fetch-site': 'same-origin' },
      // Referrer-Policy: no-referrer makes browsers send `Origin: null` for their own forms.
      { origin: 'null', 'sec-fetch-site': 'same-origin' },
      { 'sec-fetch-site': 'same-origin' },
    ];
    for (const headers of allowed) {
      const { allowed: passed, sent } = await post(headers);
      expect({ headers, passed }).toEqual({ headers, passed: true });
      expect(sent.status).toBeUndefined();
    }
    expect(emitted).toEqual([]);
  });

  it('refuses a post from another origin with a csrf_failed event naming the headers', async () => {
    const { allowed, sent } = await post({
      origin: 'https://evil.example',
      'sec-fetch-site': 'cross-site',
    });
    expect(allowed).toBe(false);
    expect(sent).toMatchObject({ status: 403, body: 'refused: cross_origin' });
    expect(emitted).toEqual([
      [
        'csrf_failed',
        {
          ip: '192.0.2.7',
          subject: 'dev:alice@example.com',
          reason: 'form posted from another origin',
          origin: 'https://evil.example',
          fetchSite: 'cross-site',
        },
      ],
    ]);
  });

  it('refuses other origins and sites whatever the other header says', () => {
    const refused: Record<string, string>[] = [
      { origin: 'https://evil.example' },
      { origin: 'null' },
      { origin: 'https://auth.example.com:8443' },
      { 'sec-fetch-site': 'same-site' },
      { 'sec-fetch-site': 'cross-site', origin: ISSUER },
      { 'sec-fetch-site': 'none' },
    ];
    for (const headers of refused) {
      const req = requestDouble({ headers });
      expect({ headers, allowed: sameOriginForm(req, ISSUER) }).toEqual({
        headers,
        allowed: false,
      });
    }
  });

  it('leaves a post without Origin and Sec-Fetch-Site to the token, Referer or not', async () => {
    expect((await post({})).allowed).toBe(true);
    expect((await post({ referer: 'https://evil.example/page' })).allowed).toBe(true);
    expect((await post({ referer: 'https://evil.example/page' }, { csrf: 'forged' })).allowed).toBe(
      false,
    );
    expect(refusals).toEqual(['csrf']);
  });
});

describe('CSRF token', () => {
  it('refuses a missing, wrong or empty token with its own reason', async () => {
    for (const body of [{}, { csrf: 'not-the-token' }, { csrf: '' }, { csrf: [token] }]) {
      const { allowed, sent } = await post({ origin: ISSUER }, body);
      expect({ body, allowed, status: sent.status }).toEqual({ body, allowed: false, status: 403 });
    }
    expect(refusals).toEqual(['csrf', 'csrf', 'csrf', 'csrf']);
    expect(emitted[0]).toEqual([
      'csrf_failed',
      { ip: '192.0.2.7', subject: 'dev:alice@example.com', reason: 'form without its token' },
    ]);
  });

  it('refuses a token once it is discarded (a replayed post)', async () => {
    expect((await post({ origin: ISSUER })).allowed).toBe(true);
    await csrf.discard(KEY);
    expect((await post({ origin: ISSUER })).allowed).toBe(false);
    expect(refusals).toEqual(['csrf']);
  });

  it('refuses the token of another form', async () => {
    const other = await csrf.issue('account:session-2');
    expect(other).not.toBe(token);
    expect((await post({ origin: ISSUER }, { csrf: other })).allowed).toBe(false);
  });
});

describe('token-only surface (the login steps)', () => {
  it('does not read the headers and raises the event without a reason', async () => {
    expect((await post({ origin: 'https://evil.example' }, { csrf: token }, null)).allowed).toBe(
      true,
    );
    const { allowed } = await post({ origin: ISSUER }, { csrf: 'forged' }, null);
    expect(allowed).toBe(false);
    expect(emitted).toEqual([
      ['csrf_failed', { ip: '192.0.2.7', subject: 'dev:alice@example.com' }],
    ]);
  });
});

describe('console surface (/admin, /account)', () => {
  it('refuses with the console page, 403, and reasons naming the area and the account', async () => {
    const pages: [number, string, string][] = [];
    const consoleCheck = createConsoleFormCheck({
      issuer: `${ISSUER}/`,
      csrf,
      events,
      area: 'account',
      pageName: 'your connected apps page',
      tokenKey: (uid) => `account:${uid}`,
      refuse: (_res, status, title, description) => pages.push([status, title, description]),
    });
    const session = { uid: 'session-1', accountId: 'dev:alice@example.com' };
    const send = (headers: Record<string, string>, body: Record<string, unknown>) =>
      consoleCheck(requestDouble({ headers, body }), responseDouble().res, session);

    expect(await send({ origin: ISSUER }, { csrf: token })).toBe(true);
    expect(await send({ origin: 'https://evil.example' }, { csrf: token })).toBe(false);
    expect(await send({ origin: ISSUER }, { csrf: 'forged' })).toBe(false);
    expect(pages).toEqual([
      [403, 'Request refused', 'The form was not sent from this site.'],
      [
        403,
        'Request refused',
        'The form was not sent from your connected apps page. Open the page again and retry.',
      ],
    ]);
    expect(emitted.map(([kind, details]) => [kind, details.reason, details.subject])).toEqual([
      ['csrf_failed', 'account form posted from another origin', 'dev:alice@example.com'],
      ['csrf_failed', 'account form without a valid CSRF token', 'dev:alice@example.com'],
    ]);
  });
});
