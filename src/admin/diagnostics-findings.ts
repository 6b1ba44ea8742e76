/**
 * The vocabulary of the diagnostics (src/admin/diagnostics.ts): a step is a list of findings,
 * each ok / warning / failed with what was seen, what to change and the checklist ID or RFC
 * section it comes from; the step's verdict is its worst finding. Also the checks and hints
 * that several steps share (transport failures, redirects, JSON documents).
 */
import { header, type Exchange, type ProbeFailureKind } from './diagnostics-probe.js';

export type Verdict = 'ok' | 'warning' | 'failed';

export interface Finding {
  verdict: Verdict;
  /** What was seen. */
  message: string;
  /** What to change, when it is not ok. */
  hint?: string;
  /** The checklist ID or RFC section the check comes from. */
  reference?: string;
}

export type StepId = 'challenge' | 'resource-metadata' | 'authorization-server-metadata';

export interface DiagnosticStep {
  id: StepId;
  title: string;
  /** The worst of the findings. */
  verdict: Verdict;
  exchanges: Exchange[];
  findings: Finding[];
}

export interface DiagnosticsTarget {
  /** The resource's canonical URL (`resources[].url`). */
  resource: string;
  /** The authorization server's issuer (`issuer`). */
  issuer: string;
}

/** Sent as User-Agent and as the `initialize` request's client name. */
export const USER_AGENT = 'mcp-gateway-diagnostics';

const RANK: Record<Verdict, number> = { ok: 0, warning: 1, failed: 2 };

export function worst(verdicts: Verdict[]): Verdict {
  return verdicts.reduce<Verdict>((a, b) => (RANK[b] > RANK[a] ? b : a), 'ok');
}

export function step(
  id: StepId,
  title: string,
  exchanges: Exchange[],
  findings: Finding[],
): DiagnosticStep {
  return { id, title, verdict: worst(findings.map((f) => f.verdict)), exchanges, findings };
}

export const ok = (message: string, reference?: string): Finding => ({
  verdict: 'ok',
  message,
  ...(reference ? { reference } : {}),
});
export const warning = (message: string, hint: string, reference?: string): Finding => ({
  verdict: 'warning',
  message,
  hint,
  ...(reference ? { reference } : {}),
});
export const failed = (message: string, hint: string, reference?: string): Finding => ({
  verdict: 'failed',
  message,
  hint,
  ...(reference ? { reference } : {}),
});
/** What to do about a request that got no answer. */
export function transportHint(kind: ProbeFailureKind): string {
  switch (kind) {
    case 'refused':
      return 'Check that the proxy runs and that the URL’s host and port are the proxy’s public ones.';
    case 'dns':
      return 'The gateway cannot resolve this name. It must reach its public URLs the way clients do (split DNS or hairpin NAT may prevent that).';
    case 'tls':
      return 'If the certificate comes from a private CA, add the CA’s PEM file to tls.caFiles; otherwise fix the certificate (expired, wrong name, incomplete chain).';
    case 'timeout':
      return 'Nothing answered in time: a firewall dropping packets, or a proxy waiting on an upstream that does not answer.';
    case 'invalid-url':
      return 'Correct the URL.';
    case 'network':
      return 'The connection failed; see the message.';
  }
}

export const isRedirect = (status: number) => status >= 300 && status < 400;

export function redirectFinding(exchange: Exchange, what: string, reference: string): Finding {
  const location = header(exchange.response, 'location') ?? '(no Location header)';
  return failed(
    `${what} answered ${exchange.response!.status}, a redirect to ${location} (not followed).`,
    'Serve it at this URL directly: MCP clients POST to the exact resource URL, and the MCP SDK follows discovery redirects only within one origin. If the redirect is http → https or adds a slash, configure the resource with the final URL.',
    reference,
  );
}

export function jsonBody(exchange: Exchange): unknown {
  try {
    return JSON.parse(exchange.response?.body ?? '');
  } catch {
    return undefined;
  }
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function documentTypeFindings(exchange: Exchange, reference: string): Finding[] {
  const type = header(exchange.response, 'content-type') ?? '';
  const findings: Finding[] = [];
  if (!/^application\/json\b/i.test(type)) {
    findings.push(
      warning(
        `Content-Type is "${type}", not application/json.`,
        'Some clients refuse other types.',
        reference,
      ),
    );
  }
  if (exchange.response?.truncated) {
    findings.push(
      failed('The document is larger than the diagnostics read.', 'Metadata documents are small.'),
    );
  }
  return findings;
}
