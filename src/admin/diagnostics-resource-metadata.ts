/**
 * Diagnostics step 2, the protected resource metadata (RFC 9728): the `resource_metadata` URL
 * of the challenge, or without one the path-inserted well-known URL a 2025-11-25 client falls
 * back to (CL-01). Only a URL on the resource's or the issuer's origin is fetched. `resource`
 * must equal the resource URL exactly (§3.3, RS-04), `authorization_servers` must name the
 * issuer (RS-02), `bearer_methods_supported` should allow the header (RS-11), and
 * `scopes_supported` should not name `offline_access` (RS-06).
 */
import type { FetchFunction } from '../net/outbound-fetch.js';
import { probe } from './diagnostics-probe.js';
import {
  documentTypeFindings,
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
import type { Challenge } from './www-authenticate.js';

/** Step 2: the protected resource metadata (RFC 9728). */
export async function resourceMetadataStep(
  fetch: FetchFunction,
  target: DiagnosticsTarget,
  challenge: Challenge | undefined,
): Promise<DiagnosticStep> {
  const title = 'Protected resource metadata (RFC 9728)';
  const expected = expectedMetadataUrl(target.resource);
  const findings: Finding[] = [];
  const named = challenge?.params.get('resource_metadata');
  let url = expected;
  if (named !== undefined) {
    const parsed = URL.parse(named);
    const allowed = [new URL(target.resource).origin, new URL(target.issuer).origin];
    if (parsed && allowed.includes(parsed.origin)) {
      url = named;
    } else {
      findings.push(
        failed(
          `The challenge’s resource_metadata ${named} is ${parsed ? 'on another origin' : 'not a URL'}; it was not fetched, the resource’s well-known URL was instead.`,
          'The gateway’s challenge names a URL on the resource’s own origin: another component answered the 401.',
          'RS-03',
        ),
      );
    }
  } else {
    findings.push(
      ok(
        `${challenge ? 'No resource_metadata in the challenge' : 'No challenge to read it from'}: fetched the path-inserted well-known URL, as 2025-11-25 clients do.`,
        'CL-01',
      ),
    );
  }
  const exchange = await probe(fetch, {
    method: 'GET',
    url,
    headers: { accept: 'application/json', 'user-agent': USER_AGENT },
  });
  const status = exchange.response?.status;
  if (status === undefined) {
    findings.push(
      failed(`No answer: ${exchange.failure!.message}.`, transportHint(exchange.failure!.kind)),
    );
    return step('resource-metadata', title, [exchange], findings);
  }
  if (isRedirect(status)) {
    findings.push(redirectFinding(exchange, 'The metadata URL', 'RS-03'));
    return step('resource-metadata', title, [exchange], findings);
  }
  if (status !== 200) {
    findings.push(
      failed(
        `${status} instead of the metadata document.`,
        status === 401
          ? 'The well-known route goes through forwardAuth: route /.well-known/oauth-protected-resource/* to the auth service without it (a client reads it before it has a token).'
          : 'Route /.well-known/oauth-protected-resource/* on this host to the auth service without forwardAuth, and check that the resource URL is the public URL the proxy describes (the document is chosen by host and path).',
        'RS-01',
      ),
    );
    return step('resource-metadata', title, [exchange], findings);
  }
  findings.push(...documentTypeFindings(exchange, 'RS-01'));
  const document = jsonBody(exchange);
  if (!isObject(document)) {
    findings.push(
      failed('The body is not a JSON object.', 'Serve the RFC 9728 document.', 'RS-01'),
    );
    return step('resource-metadata', title, [exchange], findings);
  }
  findings.push(...resourceMetadataFindings(document, target));
  return step('resource-metadata', title, [exchange], findings);
}

/** The document's members against the resource and the issuer (RFC 9728 §2, §3.3). */
function resourceMetadataFindings(
  document: Record<string, unknown>,
  target: DiagnosticsTarget,
): Finding[] {
  const findings: Finding[] = [];
  const { resource, authorization_servers: servers } = document;
  findings.push(
    resource === target.resource
      ? ok(`resource is ${target.resource}, the resource URL.`, 'RS-04')
      : failed(
          `resource is ${JSON.stringify(resource)}, not ${target.resource}.`,
          'Clients refuse metadata for another resource (RFC 9728 §3.3): the proxy must describe the public URL (X-Forwarded-Host/Proto) exactly as configured.',
          'RS-04',
        ),
  );
  if (!Array.isArray(servers) || servers.length === 0) {
    findings.push(
      failed(
        'authorization_servers is missing or empty.',
        'It must name the gateway’s issuer.',
        'RS-02',
      ),
    );
  } else if (servers.includes(target.issuer)) {
    findings.push(ok(`authorization_servers names the issuer ${target.issuer}.`, 'RS-02'));
  } else {
    findings.push(
      failed(
        `authorization_servers is ${JSON.stringify(servers)}, without the issuer ${target.issuer}.`,
        'The document was not served by this gateway, or its issuer setting differs.',
        'RS-02',
      ),
    );
  }
  const methods = document.bearer_methods_supported;
  if (methods === undefined) {
    findings.push(
      warning(
        'bearer_methods_supported is absent.',
        'Name ["header"]: MCP clients send the token only in the Authorization header.',
        'RS-11',
      ),
    );
  } else if (Array.isArray(methods) && methods.includes('header')) {
    findings.push(ok('bearer_methods_supported includes "header".', 'RS-11'));
  } else {
    findings.push(
      failed(
        `bearer_methods_supported is ${JSON.stringify(methods)}, without "header".`,
        'MCP clients send the token only in the Authorization header.',
        'RS-11',
      ),
    );
  }
  const scopes = document.scopes_supported;
  if (Array.isArray(scopes) && scopes.includes('offline_access')) {
    findings.push(
      warning(
        'scopes_supported includes offline_access.',
        'List only the baseline scopes (MCP "Scope Minimization"; 2026-07-28 asks servers not to name offline_access).',
        'RS-06',
      ),
    );
  }
  return findings;
}
