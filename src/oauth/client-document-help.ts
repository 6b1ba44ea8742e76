/**
 * What the error page says when an application's Client ID Metadata Document cannot be used.
 *
 * Such a client's `client_id` is the URL of a document the gateway fetches at the first
 * authorization request. When the fetch fails (the gateway has no route to the client's vendor,
 * a private address, an untrusted certificate) the gateway cannot know the client, so it may not
 * redirect back to it (AS-07): the person in the browser is the only one told, and the
 * application just waits for a callback that never comes. oidc-provider's own text,
 * `invalid_client: client_id metadata document fetch failed`, tells that person nothing they
 * can act on. This names the document's host, why it could not be fetched, what an
 * administrator can change, and what the person can do meanwhile: register the application
 * dynamically instead (with the flag that does it for the clients known to choose CIMD by
 * default).
 */
import { isIP } from 'node:net';
import { html, type SafeHtml } from '../web/html.js';

/** oidc-provider's descriptions of a refused metadata document (invalid_client). */
const FETCH_FAILED = 'client_id metadata document fetch failed';
const NOT_ALLOWED = /^client_id metadata document fetch not allowed$|^client is not allowed$/;

/** Applications that identify themselves with a document by default, and how they avoid it. */
const KNOWN_CLIENTS: { name: string; matches: (url: URL) => boolean; dynamic: string }[] = [
  {
    // Codex CLI 0.171: https://chatgpt.com/oauth/codex/client.json, or the per-server
    // /oauth/codex/<callback id>/client.json where the issuer does not bind responses with `iss`.
    name: 'Codex CLI',
    matches: (url) => url.hostname === 'chatgpt.com' && url.pathname.startsWith('/oauth/codex/'),
    dynamic: 'codex mcp login <server name> --oauth-client-registration dcr',
  },
];

export interface ClientDocumentProblem {
  /** The client id (the document's URL) as the authorization request gave it. */
  clientId: unknown;
  /** oidc-provider's `error_description`. */
  description: string | undefined;
  /** The error oidc-provider threw (its `cause` chain holds the network failure). */
  error: unknown;
  /** Whether the gateway accepts dynamic client registration (`registration.dcr.enabled`). */
  dynamicRegistration: boolean;
}

interface FailureCause {
  name?: string;
  code?: unknown;
  message?: string;
  cause?: unknown;
  errors?: unknown[];
  error_detail?: unknown;
}

/** The errors along `error`'s cause chain (and the first of an AggregateError's), outermost first. */
function causes(error: unknown): FailureCause[] {
  const chain: FailureCause[] = [];
  let current: unknown = error;
  while (current && typeof current === 'object' && chain.length < 6) {
    const cause = current as FailureCause;
    chain.push(cause);
    current = cause.cause ?? cause.errors?.[0];
  }
  return chain;
}

/** Why the document at `url` could not be fetched, and what an administrator can change. */
function fetchFailure(url: URL, error: unknown): { why: string; fix: SafeHtml } {
  const chain = causes(error);
  const host = url.host;
  const reach = html`The gateway must be able to reach <code>${host}</code> over HTTPS (outbound
    port ${url.port || '443'}, with DNS). A document served inside the company network also needs
    its host listed in <code>registration.cimd.allowHosts</code>.`;
  const status = /unexpected response status (\d+)/.exec(String(chain[0]?.error_detail ?? ''));
  if (status) {
    return {
      why: `${host} answered HTTP ${status[1]} instead of the document`,
      fix: html`The document must be served at that URL with status 200; a host that refuses
      requests from the gateway's address (403) must be reached another way.`,
    };
  }
  if (chain.some((cause) => cause.name === 'ForbiddenDestinationError')) {
    return {
      why: `${url.hostname} ${isIP(url.hostname.replace(/^\[(.*)\]$/, '$1')) ? 'is' : 'resolves to'} a private or local address, which the gateway fetches client documents from only when told to`,
      fix: html`If this host is trusted, list <code>${host}</code> in
        <code>registration.cimd.allowHosts</code> (and its CA in <code>tls.caFiles</code> if its
        certificate is from a private CA).`,
    };
  }
  if (chain.some((cause) => cause.name === 'TimeoutError' || cause.name === 'AbortError')) {
    return { why: `${host} did not answer in time`, fix: reach };
  }
  const code = chain.map((cause) => cause.code).find((value) => typeof value === 'string') as
    string | undefined;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return {
      why: `the gateway cannot resolve the host name ${url.hostname} (${code})`,
      fix: reach,
    };
  }
  if (code && /CERT|SSL|TLS|EPROTO|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)) {
    return {
      why: `the certificate of ${host} could not be verified (${code})`,
      fix: html`A certificate from a private CA needs that CA in <code>tls.caFiles</code>.`,
    };
  }
  if (code) return { why: `the gateway could not connect to ${host} (${code})`, fix: reach };
  if (chain.some((cause) => cause.name === 'SyntaxError')) {
    return {
      why: `what ${host} answered is not a JSON document`,
      fix: html`The URL must serve the client's metadata document as JSON.`,
    };
  }
  return { why: `the request to ${host} failed`, fix: reach };
}

/** What the person can do now: let the application register itself instead. */
function meanwhile(url: URL, dynamicRegistration: boolean): SafeHtml {
  if (!dynamicRegistration) {
    return html`<p>
      This gateway does not accept applications that register themselves, so only an administrator
      can fix this.
    </p>`;
  }
  const known = KNOWN_CLIENTS.find((client) => client.matches(url));
  return html`<p>
    <strong>Meanwhile</strong>, the application can register itself with the gateway instead
    (dynamic client registration), if it offers
    that${known ? html`. ${known.name}: <code>${known.dynamic}</code>` : ''}.
  </p>`;
}

/**
 * The explanation for a refused metadata document, or `undefined` when the error is about
 * something else (or the client id is not an https URL).
 */
export function clientDocumentHelp(problem: ClientDocumentProblem): SafeHtml | undefined {
  if (typeof problem.clientId !== 'string') return undefined;
  const url = URL.parse(problem.clientId);
  if (!url || url.protocol !== 'https:') return undefined;
  /** The first paragraph: the document, and what became of it. */
  const intro = (outcome: SafeHtml) =>
    html`<p>
      This application identifies itself with a client metadata document at
      <code>${url.href}</code>, ${outcome}.
    </p>`;
  if (problem.description === FETCH_FAILED) {
    const { why, fix } = fetchFailure(url, problem.error);
    return html`${intro(html`which the gateway could not fetch: ${why}`)}
      <p><strong>For an administrator:</strong> ${fix}</p>
      ${meanwhile(url, problem.dynamicRegistration)}`;
  }
  if (problem.description && NOT_ALLOWED.test(problem.description)) {
    return html`${intro(html`which this gateway does not accept`)}
      <p>
        <strong>For an administrator:</strong> clients on <code>${url.host}</code> are refused by
        <code>registration.cimd</code> (<code>denyHosts</code>, <code>onlyHosts</code>), await
        approval (<code>mcp-gateway clients approve-host ${url.hostname}</code>), or the document
        lacks a <code>client_name</code> or has a redirect URI that is neither https nor loopback;
        the gateway's log says which (<code>cimd_pending</code>, <code>cimd_refused</code>).
      </p>
      ${meanwhile(url, problem.dynamicRegistration)}`;
  }
  return undefined;
}
