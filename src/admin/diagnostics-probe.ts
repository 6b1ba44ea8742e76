/**
 * One HTTP request of the diagnostics page, made as an anonymous MCP client on the Internet
 * would make it, and recorded for display.
 *
 * Bounds, because the page runs these while an administrator waits:
 * - {@link PROBE_TIMEOUT_MS} for the whole exchange, body included (an `AbortSignal`; a
 *   server that streams forever, like an unauthenticated SSE endpoint, is cut off);
 * - at most {@link MAX_BODY_BYTES} of the body are read; the rest is discarded unread;
 * - redirects are never followed (`redirect: 'manual'`): a 3xx is itself a finding, since
 *   MCP clients POST to the exact URL and the SDK follows discovery redirects only within
 *   one origin;
 * - no credential of any kind: the request carries only the headers named here, the fetch
 *   has no cookie jar, and a URL with userinfo is refused before anything is sent.
 *
 * The fetch is the one for admin-configured destinations (`createTrustedFetch`: undici, the
 * system CAs plus `tls.caFiles`), since the URLs are derived from configured resources and
 * the issuer only (src/admin/diagnostics.ts decides which).
 */
import type { FetchFunction } from '../net/outbound-fetch.js';

export const PROBE_TIMEOUT_MS = 5_000;
export const MAX_BODY_BYTES = 64 * 1024;

/** Response headers worth showing; others (cookies included) are not kept. */
const SHOWN_HEADERS = [
  'content-type',
  'content-length',
  'www-authenticate',
  'location',
  'cache-control',
  'access-control-allow-origin',
  'x-auth-error-body',
  'server',
  'via',
];

export interface ProbeRequest {
  method: 'GET' | 'POST';
  url: string;
  headers: Record<string, string>;
  body?: string;
}

export interface ProbeResponse {
  status: number;
  /** The {@link SHOWN_HEADERS} present, in that order (lower-case names). */
  headers: [string, string][];
  /** The body as UTF-8 text, at most {@link MAX_BODY_BYTES} of it. */
  body: string;
  /** Whether the body was longer than what was read. */
  truncated: boolean;
  durationMs: number;
}

export type ProbeFailureKind = 'timeout' | 'refused' | 'dns' | 'tls' | 'invalid-url' | 'network';

export interface ProbeFailure {
  kind: ProbeFailureKind;
  message: string;
}

/** A request and what came back: a response, a transport failure, or both (body cut off). */
export interface Exchange {
  request: ProbeRequest;
  response?: ProbeResponse;
  failure?: ProbeFailure;
}

export function header(response: ProbeResponse | undefined, name: string): string | undefined {
  return response?.headers.find(([key]) => key === name)?.[1];
}

/** The code of a fetch failure (`fetch failed` wraps the socket's error, at times in an AggregateError). */
function errorCode(error: unknown): string | undefined {
  const cause = (error as { cause?: { code?: unknown; errors?: { code?: unknown }[] } }).cause;
  const code = cause?.code ?? cause?.errors?.[0]?.code;
  return typeof code === 'string' ? code : undefined;
}

function describeFailure(error: unknown, url: URL, timeoutMs: number): ProbeFailure {
  if ((error as Error).name === 'TimeoutError' || (error as Error).name === 'AbortError') {
    return { kind: 'timeout', message: `no complete answer within ${timeoutMs / 1000} s` };
  }
  const code = errorCode(error);
  const detail = ((error as { cause?: Error }).cause ?? (error as Error)).message;
  if (code === 'ECONNREFUSED') {
    return { kind: 'refused', message: `connection refused: nothing listens at ${url.host}` };
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return { kind: 'dns', message: `the host name ${url.hostname} does not resolve (${code})` };
  }
  if (code === 'UND_ERR_CONNECT_TIMEOUT') {
    return { kind: 'timeout', message: `could not connect to ${url.host} in time` };
  }
  if (code && /CERT|SSL|TLS|EPROTO|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)) {
    return { kind: 'tls', message: `TLS failed (${code}): ${detail}` };
  }
  return { kind: 'network', message: code ? `${detail} (${code})` : detail };
}

/**
 * Reads at most `limit` bytes of a body and cancels the rest. A read that fails (the deadline
 * passes on an endless stream) keeps what arrived before, with the error.
 */
async function readCapped(
  body: ReadableStream<Uint8Array> | null,
  limit: number,
): Promise<{ bytes: Uint8Array; truncated: boolean; error?: unknown }> {
  if (!body) return { bytes: new Uint8Array(), truncated: false };
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { bytes: Buffer.concat(chunks), truncated: false };
      const room = limit - size;
      chunks.push(value.subarray(0, room));
      size += Math.min(value.length, room);
      if (value.length > room) {
        await reader.cancel().catch(() => undefined);
        return { bytes: Buffer.concat(chunks), truncated: true };
      }
    }
  } catch (error) {
    return { bytes: Buffer.concat(chunks), truncated: true, error };
  }
}

/** Sends one request; never throws for network trouble (it is reported in the exchange). */
export async function probe(
  fetch: FetchFunction,
  request: ProbeRequest,
  timeoutMs = PROBE_TIMEOUT_MS,
): Promise<Exchange> {
  const url = URL.parse(request.url);
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
    return { request, failure: { kind: 'invalid-url', message: 'not an http(s) URL' } };
  }
  if (url.username || url.password) {
    return {
      request,
      failure: { kind: 'invalid-url', message: 'the URL holds credentials; not requested' },
    };
  }
  const started = performance.now();
  const signal = AbortSignal.timeout(timeoutMs);
  let response: Response;
  try {
    response = await fetch(url, {
      method: request.method,
      headers: request.headers,
      ...(request.body === undefined ? {} : { body: request.body }),
      redirect: 'manual',
      credentials: 'omit',
      signal,
    });
  } catch (error) {
    return { request, failure: describeFailure(error, url, timeoutMs) };
  }
  const headers = SHOWN_HEADERS.flatMap((name): [string, string][] => {
    const value = response.headers.get(name);
    return value === null ? [] : [[name, value]];
  });
  const { bytes, truncated, error } = await readCapped(response.body, MAX_BODY_BYTES);
  const received: ProbeResponse = {
    status: response.status,
    headers,
    body: new TextDecoder().decode(bytes),
    truncated,
    durationMs: Math.round(performance.now() - started),
  };
  // Status and headers arrived; the body may not have finished (an endless event stream).
  if (error !== undefined) {
    return { request, response: received, failure: describeFailure(error, url, timeoutMs) };
  }
  return { request, response: received };
}
