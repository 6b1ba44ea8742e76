/**
 * Diagnostics for one protected MCP server: runs the discovery chain an MCP client runs before
 * it has a token, over real HTTP against the public URL (through the proxy, as from outside),
 * and says for each step what was seen and whether a client would get past it.
 *
 * 1. **Challenge**: `POST <resource>` with a JSON-RPC `initialize` and no token, and a `GET`
 *    (the SSE stream) likewise. Both must be 401 with
 *    `WWW-Authenticate: Bearer resource_metadata="…", scope="…"` and no `error` parameter
 *    (RS-03, RS-05, RS-07, RS-11; RFC 6750 §3.1).
 * 2. **Protected resource metadata** (RFC 9728): the `resource_metadata` URL of the challenge,
 *    which should be the path-inserted well-known URL of the resource (§3.1; the URL a
 *    2025-11-25 client tries without one, CL-01). `resource` must equal the resource URL
 *    exactly (§3.3, RS-04), `authorization_servers` must list the issuer (RS-02), and
 *    `bearer_methods_supported` should allow the header (RS-11).
 * 3. **Authorization server metadata** (RFC 8414 §3.1 path insertion, then OpenID Connect
 *    discovery as 2025-11-25 clients fall back to, AS-02 / CL-02): `issuer` equal to the
 *    configured issuer exactly (RFC 8414 §3.3), the authorization and token endpoints and
 *    `response_types_supported` ∋ `code` (AS-11), `code_challenge_methods_supported` ∋ `S256`
 *    (AS-03), and a registration method: DCR or CIMD (AS-05, AS-06, CL-03).
 *
 * Step 3 starts from the configured issuer, not from the metadata's `authorization_servers`,
 * so it runs alongside steps 1–2 (step 2 checks that the metadata names that issuer): the page
 * waits for at most two request deadlines. Requests go only to the resource's origin and the
 * issuer's origin; a `resource_metadata` URL elsewhere is reported, not fetched. Each request
 * is bounded and carries no credential (src/admin/diagnostics-probe.ts).
 *
 * Each step is its own module (diagnostics-challenge.ts, diagnostics-resource-metadata.ts,
 * diagnostics-server-metadata.ts); the page is diagnostics-routes.ts and diagnostics-view.ts.
 */
import type { FetchFunction } from '../net/outbound-fetch.js';
import { challengeStep } from './diagnostics-challenge.js';
import {
  worst,
  type DiagnosticStep,
  type DiagnosticsTarget,
  type Verdict,
} from './diagnostics-findings.js';
import { resourceMetadataStep } from './diagnostics-resource-metadata.js';
import { authorizationServerStep } from './diagnostics-server-metadata.js';

export type {
  DiagnosticStep,
  DiagnosticsTarget,
  Finding,
  StepId,
  Verdict,
} from './diagnostics-findings.js';

export interface DiagnosticsReport {
  resource: string;
  issuer: string;
  verdict: Verdict;
  steps: DiagnosticStep[];
}

/** Runs the three steps against the public URLs of one resource and its issuer. */
export async function diagnoseResource(
  target: DiagnosticsTarget,
  fetch: FetchFunction,
): Promise<DiagnosticsReport> {
  const chain = async (): Promise<[DiagnosticStep, DiagnosticStep]> => {
    const first = await challengeStep(fetch, target);
    return [first.step, await resourceMetadataStep(fetch, target, first.challenge)];
  };
  const [[challenge, metadata], server] = await Promise.all([
    chain(),
    authorizationServerStep(fetch, target),
  ]);
  const steps = [challenge, metadata, server];
  return { ...target, verdict: worst(steps.map((s) => s.verdict)), steps };
}
