/**
 * The one check every form post of the gateway's pages passes before it does anything: the
 * browser's own headers say the form was on this site (`sameOriginForm`, where the surface
 * asks for it), and the post carries the page's CSRF token. A refusal raises `csrf_failed`
 * and sends the surface's 403 page; the post goes no further.
 */
import type { Response } from 'express';
import type { SecurityEventDetails, SecurityEvents } from '../events/security-events.js';
import type { CsrfTokens } from './csrf.js';

/**
 * Whether a form post came from the gateway's own page, by the browser's own headers.
 * `Sec-Fetch-Site` (set by the browser, never by a page) must be `same-origin` when sent; an
 * `Origin` must be the issuer's. The one exception is `Origin: null` together with
 * `Sec-Fetch-Site: same-origin`: the pages are sent with `Referrer-Policy: no-referrer`, under
 * which browsers send `Origin: null` even for a same-origin form (Fetch standard, "serializing
 * a request origin"). Without either header (an older browser, or not a browser) the post is
 * left to the CSRF token; `Referer` is not read (the pages ask browsers not to send it).
 */
export function sameOriginForm(req: FormRequest, issuerOrigin: string): boolean {
  const origin = req.get('origin');
  const fetchSite = req.get('sec-fetch-site');
  return fetchSite === undefined
    ? origin === undefined || origin === issuerOrigin
    : fetchSite === 'same-origin' &&
        (origin === undefined || origin === issuerOrigin || origin === 'null');
}

/** What the check reads of a request (Express's `Request` has it). */
export interface FormRequest {
  ip?: string | undefined;
  body?: unknown;
  get(name: string): string | undefined;
}

/** Why a post was refused: its headers name another site, or its token is not the page's. */
export type FormRefusal = 'cross_origin' | 'csrf';

/** One kind of page whose forms are checked alike (the login steps, `/account`, `/admin`). */
export interface FormSurface {
  /** The issuer's origin, when posts must be same-origin by their headers; else token only. */
  issuerOrigin?: string | undefined;
  csrf: Pick<CsrfTokens, 'verify'>;
  events: SecurityEvents;
  /** The `reason` of the `csrf_failed` event for each refusal; none: the event has none. */
  reasons?: Record<FormRefusal, string> | undefined;
  /** Sends the surface's 403 page for the refusal. */
  refuse(res: Response, refusal: FormRefusal): void;
}

/** The post being checked: whose CSRF token it must carry, and what its events name. */
export interface FormPost {
  /** The key the page's token was issued under (`CsrfTokens.issue`). */
  tokenKey: string;
  /** Besides `ip` and `reason`: the subject, the interaction. */
  details: SecurityEventDetails;
}

/** Checks a form post: `true` lets it through; `false` once the refusal is sent. */
export type FormCheck = (req: FormRequest, res: Response, post: FormPost) => Promise<boolean>;

export function createFormCheck(surface: FormSurface): FormCheck {
  const { issuerOrigin, csrf, events, reasons } = surface;
  const refused = (
    req: FormRequest,
    res: Response,
    post: FormPost,
    refusal: FormRefusal,
    headers: SecurityEventDetails = {},
  ) => {
    events.emit('csrf_failed', {
      ip: req.ip,
      ...post.details,
      ...(reasons ? { reason: reasons[refusal] } : {}),
      ...headers,
    });
    surface.refuse(res, refusal);
    return false;
  };
  return async (req, res, post) => {
    if (issuerOrigin !== undefined && !sameOriginForm(req, issuerOrigin)) {
      return refused(req, res, post, 'cross_origin', {
        origin: req.get('origin'),
        fetchSite: req.get('sec-fetch-site'),
      });
    }
    const body = req.body as Record<string, unknown> | undefined;
    if (!(await csrf.verify(post.tokenKey, body?.csrf))) {
      return refused(req, res, post, 'csrf');
    }
    return true;
  };
}

/** A signed-in console page (`/admin`, `/account`): what its form check needs to know. */
export interface ConsoleFormSurface {
  /** The gateway's issuer; its origin is the only one a console form may be posted from. */
  issuer: string;
  csrf: Pick<CsrfTokens, 'verify'>;
  events: SecurityEvents;
  /** Names the console in the `csrf_failed` reasons. */
  area: 'admin' | 'account';
  /** Where the form should have been, for the refusal page ("the admin console"). */
  pageName: string;
  /** The console's key for a session's CSRF token (src/store/keys.ts). */
  tokenKey(sessionUid: string): string;
  /** Sends the console's problem page. */
  refuse(res: Response, status: number, title: string, description: string): void;
}

/** The signed-in session a console form is posted in. */
export interface ConsoleSession {
  uid: string;
  accountId: string;
}

/**
 * The form check of a signed-in console page: same-origin by the browser's headers, then the
 * session's CSRF token; a refusal is a 403 "Request refused" page and a `csrf_failed` event
 * naming the session's account.
 */
export function createConsoleFormCheck(
  surface: ConsoleFormSurface,
): (req: FormRequest, res: Response, session: ConsoleSession) => Promise<boolean> {
  const { area, pageName } = surface;
  const check = createFormCheck({
    issuerOrigin: new URL(surface.issuer).origin,
    csrf: surface.csrf,
    events: surface.events,
    reasons: {
      cross_origin: `${area} form posted from another origin`,
      csrf: `${area} form without a valid CSRF token`,
    },
    refuse: (res, refusal) =>
      surface.refuse(
        res,
        403,
        'Request refused',
        refusal === 'cross_origin'
          ? 'The form was not sent from this site.'
          : `The form was not sent from ${pageName}. Open the page again and retry.`,
      ),
  });
  return (req, res, session) =>
    check(req, res, {
      tokenKey: surface.tokenKey(session.uid),
      details: { subject: session.accountId },
    });
}
