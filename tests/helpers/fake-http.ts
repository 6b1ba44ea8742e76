/**
 * HTTP plumbing shared by the identity-provider fakes (fake-github.ts, fake-google.ts): body
 * reading, form/JSON parameters, HTTP Basic client credentials, PKCE S256, answers.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** The token request's parameters: a form (what OAuth clients send) or a JSON object. */
export function parseParams(req: IncomingMessage, body: string): URLSearchParams {
  if (!(req.headers['content-type'] ?? '').includes('application/json')) {
    return new URLSearchParams(body);
  }
  const params = new URLSearchParams();
  try {
    const parsed: unknown = JSON.parse(body);
    if (typeof parsed === 'object' && parsed !== null) {
      for (const [name, value] of Object.entries(parsed)) {
        if (typeof value === 'string') params.set(name, value);
      }
    }
  } catch {
    // Malformed JSON: no parameters, so the request fails on its credentials.
  }
  return params;
}

/** Client credentials from `Authorization: Basic` (each part form-encoded, RFC 6749 §2.3.1). */
export function basicCredentials(
  header: string | undefined,
): { id: string; secret: string } | undefined {
  const match = /^basic\s+(\S+)$/i.exec(header ?? '');
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  try {
    return {
      id: decodeURIComponent(decoded.slice(0, colon).replaceAll('+', ' ')),
      secret: decodeURIComponent(decoded.slice(colon + 1).replaceAll('+', ' ')),
    };
  } catch {
    return undefined;
  }
}

export function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function s256(verifier: string): string {
  return createHash('sha256').update(verifier).digest('base64url');
}

export function randomToken(bytes: number): string {
  return randomBytes(bytes).toString('base64url');
}

export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
}

export function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(text);
}

/** A request listener running `handle`; a failure answers 500 (or drops a started answer). */
export function answerWith(
  handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
  name: string,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      sendText(res, 500, `${name} failed: ${(error as Error).message}`);
    });
  };
}

/** A request a fake received, as the tests inspect it. */
export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  authorization?: string;
  body?: string;
}

/** Reads a request's body and URL, and appends it to `requests`. */
export async function receive(
  req: IncomingMessage,
  base: string,
  requests: RecordedRequest[],
): Promise<{ body: string; requestUrl: URL; path: string }> {
  const body = await readBody(req);
  const requestUrl = new URL(req.url ?? '/', base);
  const path = requestUrl.pathname;
  requests.push({
    method: req.method ?? 'GET',
    path,
    query: requestUrl.searchParams,
    ...(req.headers.authorization !== undefined
      ? { authorization: req.headers.authorization }
      : {}),
    ...(body !== '' ? { body } : {}),
  });
  return { body, requestUrl, path };
}
