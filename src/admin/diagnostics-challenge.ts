/**
 * Diagnostics step 1, the challenge: `POST <resource>` with a JSON-RPC `initialize` and no
 * token, and a `GET` (the event stream) likewise, as an MCP client starts. Both must be 401,
 * the POST's with `WWW-Authenticate: Bearer resource_metadata="…", scope="…"` and no `error`
 * parameter (RS-03, RS-05, RS-07, RS-11; RFC 6750 §3.1). When it is not, the status and the
 * answer's body tell which part of the deployment answered instead (the MCP server itself,
 * the proxy, or `/verify` refusing the proxy's description of the URL).
 */
import type { FetchFunction } from '../net/outbound-fetch.js';
import { header, probe, type Exchange, type ProbeRequest } from './diagnostics-probe.js';
import {
  failed,
  isObject,
  isRedirect,
  jsonBody,
  ok,
  redirectFinding,
  step,
  transportHint,
  USER_AGENT,
  warning,
  type DiagnosticStep,
  type DiagnosticsTarget,
  type Finding,
} from './diagnostics-findings.js';
import { expectedMetadataUrl } from './diagnostics-urls.js';
import { parseWwwAuthenticate, type Challenge } from './www-authenticate.js';

/** The MCP protocol version the `initialize` request names. */
const PROTOCOL_VERSION = '2025-11-25';

/** Step 1: a tokenless POST and GET of the resource URL. */
export async function challengeStep(
  fetch: FetchFunction,
  target: DiagnosticsTarget,
): Promise<{ step: DiagnosticStep; challenge: Challenge | undefined }> {
  const initialize: ProbeRequest = {
    method: 'POST',
    url: target.resource,
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'user-agent': USER_AGENT,
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: {
        protocolVersion: PROTOCOL_VERSION,
        capabilities: {},
        clientInfo: { name: USER_AGENT, version: '1' },
      },
    }),
  };
  const stream: ProbeRequest = {
    method: 'GET',
    url: target.resource,
    headers: { accept: 'text/event-stream', 'user-agent': USER_AGENT },
  };
  const [post, get] = await Promise.all([probe(fetch, initialize), probe(fetch, stream)]);
  const title = 'Challenge: the MCP URL without a token';
  const findings = [statusFinding(post)];
  if (post.response?.status !== 401) {
    return { step: step('challenge', title, [post, get], findings), challenge: undefined };
  }
  const { findings: headerFindings, challenge } = challengeFindings(post, target);
  findings.push(...headerFindings, getFinding(get));
  return { step: step('challenge', title, [post, get], findings), challenge };
}

/** Whether the tokenless POST was answered with the 401 of the gateway, and if not, why. */
function statusFinding(post: Exchange): Finding {
  const response = post.response;
  if (!response) {
    return failed(
      `No answer: ${post.failure!.message}.`,
      transportHint(post.failure!.kind),
      'RS-07',
    );
  }
  const { status } = response;
  if (status === 401)
    return ok('401 Unauthorized, as a request without a token must get.', 'RS-07');
  if (isRedirect(status)) return redirectFinding(post, 'The MCP URL', 'RS-07');
  if (status >= 200 && status < 300) {
    return failed(
      `${status}: the request reached the MCP server without a token.`,
      'The route to this MCP server does not ask the gateway’s /verify: add the forwardAuth middleware (Caddy forward_auth, nginx auth_request) to it, and check that the resource URL is the public URL through the proxy, not the MCP server’s own address.',
      'RS-07',
    );
  }
  const body = jsonBody(post);
  const error = isObject(body) ? body.error : undefined;
  if (status === 404) {
    return failed(
      '404: nothing is routed at this URL.',
      'Add a route for this path on the proxy (with forwardAuth), or correct the resource URL to the MCP endpoint’s public URL.',
      'RS-07',
    );
  }
  if (status === 403 && error === 'access_denied') {
    return failed(
      '403 access_denied from /verify: it found no configured resource for the URL the proxy described.',
      'The proxy’s X-Forwarded-Proto, -Host and -Uri must describe the public URL: check the proxy passes the original host (not the upstream’s) and the scheme clients use.',
      'RS-04',
    );
  }
  if (status === 400 && error === 'invalid_request') {
    return failed(
      '400 invalid_request from /verify: it did not trust the proxy that asked.',
      'Add the proxy’s address to trustedProxies, and make sure it sends X-Forwarded-Proto, -Host, -Uri and -Method.',
      'docs/decision-point.md',
    );
  }
  if (status >= 500) {
    return failed(
      `${status}: the proxy or a server behind it failed.`,
      'A 502/504 from the proxy usually means it cannot reach the auth service (the forwardAuth address) or the MCP server.',
      'RS-07',
    );
  }
  return failed(
    `${status}: a request without a token must get 401.`,
    'See the answer below for who sent it (the proxy, the gateway or the MCP server).',
    'RS-07',
  );
}

/** The `WWW-Authenticate` header of the 401 (RS-03, RS-05, RFC 6750 §3.1). */
function challengeFindings(
  post: Exchange,
  target: DiagnosticsTarget,
): { findings: Finding[]; challenge: Challenge | undefined } {
  const value = header(post.response, 'www-authenticate');
  if (value === undefined) {
    return {
      findings: [
        failed(
          'The 401 has no WWW-Authenticate header.',
          'The proxy must relay the auth service’s answer with its headers (Traefik and Caddy do; check middleware that strips headers).',
          'RS-03',
        ),
      ],
      challenge: undefined,
    };
  }
  const parsed = parseWwwAuthenticate(value);
  if (!parsed.ok) {
    return {
      findings: [
        failed(
          `WWW-Authenticate cannot be parsed: ${parsed.error} (at character ${parsed.position + 1}).`,
          'Clients cannot read a malformed challenge (RFC 9110 §11.6.1).',
          'RS-03',
        ),
      ],
      challenge: undefined,
    };
  }
  const bearers = parsed.challenges.filter((c) => c.scheme === 'bearer');
  const challenge = bearers[0];
  if (!challenge) {
    return {
      findings: [
        failed(
          `WWW-Authenticate has no Bearer challenge (schemes: ${parsed.challenges.map((c) => c.scheme).join(', ')}).`,
          'Something other than the gateway answered the 401.',
          'RS-03',
        ),
      ],
      challenge: undefined,
    };
  }
  const findings: Finding[] = [];
  if (bearers.length > 1) {
    findings.push(
      warning(
        `${bearers.length} Bearer challenges; clients read the first.`,
        'Only one component should answer with a challenge.',
        'RS-03',
      ),
    );
  }
  const metadata = challenge.params.get('resource_metadata');
  const expected = expectedMetadataUrl(target.resource);
  if (metadata === undefined) {
    findings.push(
      failed(
        'The Bearer challenge has no resource_metadata parameter.',
        'MCP 2025-06-18 clients find the protected resource metadata only through it.',
        'RS-03',
      ),
    );
  } else if (metadata === expected) {
    findings.push(ok(`resource_metadata is the resource’s well-known URL ${metadata}.`, 'RS-03'));
  } else {
    findings.push(
      warning(
        `resource_metadata is ${metadata}, not the resource’s path-inserted well-known URL ${expected}.`,
        'The gateway names the path-inserted URL (RFC 9728 §3.1): another component answered the 401, or the resource URL differs from the public URL the proxy describes.',
        'RS-03',
      ),
    );
  }
  const scope = challenge.params.get('scope');
  findings.push(
    scope
      ? ok(`scope="${scope}": the scopes a client asks for.`, 'RS-05')
      : warning(
          'The Bearer challenge has no scope parameter.',
          'Clients then ask for every scope of scopes_supported.',
          'RS-05',
        ),
  );
  const error = challenge.params.get('error');
  if (error !== undefined) {
    findings.push(
      warning(
        `The challenge carries error="${error}" although the request had no token.`,
        'RFC 6750 §3.1: without credentials the challenge should have no error code.',
        'RS-05',
      ),
    );
  }
  return { findings, challenge };
}

/** The GET (SSE stream) must be challenged too: forwardAuth on every method (RS-11). */
function getFinding(get: Exchange): Finding {
  const status = get.response?.status;
  if (status === 401) return ok('GET (the event stream) is challenged too.', 'RS-11');
  if (status === undefined) {
    return warning(
      `GET got no answer: ${get.failure!.message}.`,
      transportHint(get.failure!.kind),
      'RS-11',
    );
  }
  if ((status >= 200 && status < 300) || status === 405) {
    return failed(
      `GET answered ${status} without a token: it reached the MCP server.`,
      'The forwardAuth middleware must apply to every method of the route (GET and DELETE too), not only to POST.',
      'RS-11',
    );
  }
  return warning(
    `GET answered ${status}, not 401.`,
    'Every method of the MCP URL should go through forwardAuth.',
    'RS-11',
  );
}
