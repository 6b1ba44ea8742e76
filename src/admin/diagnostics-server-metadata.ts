/**
 * Diagnostics step 3, the authorization server's metadata, read from the configured issuer as
 * clients read it (AS-02, CL-02): RFC 8414 §3.1 first, then OpenID Connect discovery. `issuer`
 * must equal the configured issuer exactly (RFC 8414 §3.3), the authorization and token
 * endpoints and `response_types_supported` ∋ `code` must be there (AS-11),
 * `code_challenge_methods_supported` must include `S256` (AS-03), and clients need a way to
 * register: DCR or CIMD (AS-05, AS-06, CL-03).
 */
import type { FetchFunction } from '../net/outbound-fetch.js';
import { header, probe, type Exchange } from './diagnostics-probe.js';
import {
  documentTypeFindings,
  failed,
  isObject,
  jsonBody,
  ok,
  step,
  transportHint,
  USER_AGENT,
  warning,
  type DiagnosticStep,
  type DiagnosticsTarget,
  type Finding,
} from './diagnostics-findings.js';
import { authorizationServerMetadataUrls } from './diagnostics-urls.js';

/** Step 3: the authorization server's metadata, from the configured issuer. */
export async function authorizationServerStep(
  fetch: FetchFunction,
  target: DiagnosticsTarget,
): Promise<DiagnosticStep> {
  const title = 'Authorization server metadata (RFC 8414)';
  const [rfc8414, ...oidc] = authorizationServerMetadataUrls(target.issuer);
  const get = (url: string) =>
    probe(fetch, {
      method: 'GET',
      url,
      headers: { accept: 'application/json', 'user-agent': USER_AGENT },
    });
  const first = await get(rfc8414!);
  const exchanges = [first];
  const findings: Finding[] = [];
  let found = servedDocument(first);
  if (found) {
    findings.push(ok(`Served at ${rfc8414}.`, 'AS-02'));
  } else {
    // The fallbacks are on the same origin: worth trying only if that origin answered.
    for (const url of first.response ? oidc : []) {
      const exchange = await get(url);
      exchanges.push(exchange);
      found = servedDocument(exchange);
      if (found) break;
    }
    findings.push(
      found
        ? warning(
            `Not served at ${rfc8414} (${describe(first)}); OpenID Connect discovery at ${found.request.url} works.`,
            'MCP 2025-06-18 clients read only RFC 8414 metadata: route /.well-known/oauth-authorization-server to the auth service.',
            'AS-02',
          )
        : failed(
            `No metadata document: ${exchanges.map((e) => `${e.request.url} ${describe(e)}`).join('; ')}.`,
            first.failure
              ? transportHint(first.failure.kind)
              : 'The issuer must be the auth service’s public URL, with /.well-known/oauth-authorization-server routed to it.',
            'AS-02',
          ),
    );
  }
  if (!found) return step('authorization-server-metadata', title, exchanges, findings);
  findings.push(...documentTypeFindings(found, 'AS-02'));
  const document = jsonBody(found);
  if (isObject(document)) {
    findings.push(...authorizationServerFindings(document, target));
  } else {
    findings.push(
      failed('The body is not a JSON object.', 'Serve the RFC 8414 document.', 'AS-02'),
    );
  }
  return step('authorization-server-metadata', title, exchanges, findings);
}

/** The exchange when it delivered a document (200, not a redirect). */
function servedDocument(exchange: Exchange): Exchange | undefined {
  return exchange.response?.status === 200 && !exchange.failure ? exchange : undefined;
}

/** An exchange in a few words: its status (and redirect target), or why it failed. */
function describe(exchange: Exchange): string {
  if (exchange.response) {
    const location = header(exchange.response, 'location');
    return `${exchange.response.status}${location ? ` → ${location}` : ''}`;
  }
  return exchange.failure!.message;
}

/** The document's members against the configured issuer and what MCP clients need. */
function authorizationServerFindings(
  document: Record<string, unknown>,
  target: DiagnosticsTarget,
): Finding[] {
  const findings: Finding[] = [];
  findings.push(
    document.issuer === target.issuer
      ? ok(`issuer is ${target.issuer}, exactly.`, 'AS-11')
      : failed(
          `issuer is ${JSON.stringify(document.issuer)}, not ${target.issuer}.`,
          'Clients refuse metadata whose issuer differs from the URL they built it from (RFC 8414 §3.3): set issuer to the auth service’s public URL exactly.',
          'AS-11',
        ),
  );
  const missing = ['authorization_endpoint', 'token_endpoint'].filter(
    (name) => typeof document[name] !== 'string' || !URL.canParse(document[name]),
  );
  findings.push(
    missing.length === 0
      ? ok('authorization_endpoint and token_endpoint are present.', 'AS-11')
      : failed(`Missing or not a URL: ${missing.join(', ')}.`, 'Clients need both.', 'AS-11'),
  );
  const responseTypes = document.response_types_supported;
  if (!Array.isArray(responseTypes) || !responseTypes.includes('code')) {
    findings.push(
      failed(
        'response_types_supported does not include "code".',
        'MCP clients use the authorization code flow.',
        'AS-11',
      ),
    );
  }
  const pkce = document.code_challenge_methods_supported;
  findings.push(
    Array.isArray(pkce) && pkce.includes('S256')
      ? ok('code_challenge_methods_supported includes S256.', 'AS-03')
      : failed(
          pkce === undefined
            ? 'code_challenge_methods_supported is absent.'
            : `code_challenge_methods_supported is ${JSON.stringify(pkce)}, without S256.`,
          'MCP clients must refuse an authorization server that does not advertise PKCE S256.',
          'AS-03',
        ),
  );
  const registration = [
    typeof document.registration_endpoint === 'string' ? 'Dynamic Client Registration' : '',
    document.client_id_metadata_document_supported === true ? 'Client ID Metadata Documents' : '',
  ].filter(Boolean);
  findings.push(
    registration.length
      ? ok(`Clients can register: ${registration.join(' and ')}.`, 'CL-03')
      : warning(
          'Neither registration_endpoint nor client_id_metadata_document_supported: only pre-registered clients can connect.',
          'Enable registration.dcr or registration.cimd unless every client is configured in clients:.',
          'CL-03',
        ),
  );
  return findings;
}
