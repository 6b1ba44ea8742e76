/**
 * Logging: winston, one JSON object per line on stdout, with the id of the request being
 * served on every line written while serving it.
 *
 * Secrets never reach the output. Two layers make sure of that:
 *  1. fields whose names say they hold a secret (token, code, secret, cookie, authorization,
 *     password, assertion, verifier…) are replaced by "[redacted]" at any depth;
 *  2. every string (and every field name) is scrubbed of things shaped like JWTs, bearer
 *     credentials and opaque tokens, codes and ids (whole base64url runs, see `isOpaque`),
 *     whatever field they are in (an error message, a URL).
 * `tests/logging/redaction.test.ts` and the end-to-end flow test check both.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import winston from 'winston';

export type Logger = winston.Logger;
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

interface RequestContext {
  requestId: string;
  /** The client's address, as the trusted proxies saw it (for security events). */
  clientIp?: string | undefined;
}

const requestContext = new AsyncLocalStorage<RequestContext>();

/** Runs `fn` with `requestId` (and `ip` in security events) attached to every log line written inside it. */
export function withRequestId<T>(requestId: string, fn: () => T, clientIp?: string): T {
  return requestContext.run({ requestId, clientIp }, fn);
}

export function currentRequestId(): string | undefined {
  return requestContext.getStore()?.requestId;
}

export function currentClientIp(): string | undefined {
  return requestContext.getStore()?.clientIp;
}

const SECRET_FIELD =
  /token|secret|password|passwd|cookie|authorization|assertion|verifier|csrf|^code$|^state$|^nonce$|jwk|private/i;

/** base64url (RFC 4648 §5): the alphabet of JWS/JWE segments and of every opaque id issued here. */
const B64 = 'A-Za-z0-9_-';

// JWS (3 segments) and JWE (5, the second empty with `dir`) compact serialisations,
// bearer/basic credentials, and query parameters that carry a credential.
const SECRET_PATTERNS: [RegExp, string][] = [
  [new RegExp(`eyJ[${B64}]{5,}(?:\\.[${B64}]*){2,4}`, 'g'), '[jwt]'],
  [/\b(Bearer|Basic|DPoP)\s+[A-Za-z0-9._~+/=-]+/gi, '$1 [redacted]'],
  [
    /([?&;](?:[a-z_]*token|id_token_hint|[a-z_]*secret|code|code_verifier|[a-z_]*assertion|device_code|user_code|state|nonce|password|csrf|_csrf|sid)=)[^&;\s"]*/gi,
    '$1[redacted]',
  ],
];

/**
 * A whole run of base64url characters. Bounded by look-arounds, not `\b`: `\b` needs a word
 * character on one side, and `-` is none, so a value beginning or ending with `-` lost its
 * edge, fell below the length and escaped whole (about 3% of random ids).
 */
const OPAQUE_RUN = new RegExp(`(?<![${B64}])[${B64}]{32,}(?![${B64}])`, 'g');

/**
 * Whether a base64url run is an opaque secret. 43 characters and more: 256 random bits or
 * more, the size of every token, code, session, grant and interaction id oidc-provider mints,
 * of PKCE verifiers, client secrets and the gateway's own login state; always. 32 to 42: the
 * 192-bit values (CSRF tokens, the account page's `state`) and upstream tokens such as
 * GitHub's `gho_…`, told from readable names by mixing upper and lower case (a random one
 * fails to only with probability ~1e-7); UUIDs (request ids), kebab-case, snake_case and
 * hex digests shorter than 43 stay readable.
 */
function isOpaque(run: string): boolean {
  return run.length >= 43 || (/[A-Z]/.test(run) && /[a-z]/.test(run));
}

export function scrubString(value: string): string {
  let result = value;
  for (const [pattern, replacement] of SECRET_PATTERNS)
    result = result.replace(pattern, replacement);
  return result.replace(OPAQUE_RUN, (run) => (isOpaque(run) ? '[opaque]' : run));
}

/** Returns a copy of `value` with secret-named fields and secret-shaped strings removed. */
export function redact(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return scrubString(value);
  if (value === null || typeof value !== 'object') return value;
  // Deeper than this is not read: returned as is, its strings would go out unscrubbed.
  if (depth > 8) return '[too deep]';
  if (value instanceof Error) {
    return { name: value.name, message: scrubString(value.message) };
  }
  if (Array.isArray(value)) return value.map((item) => redact(item, depth + 1));
  const result: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    // Keys too: a map keyed by session or grant id would otherwise carry it out.
    result[scrubString(key)] = SECRET_FIELD.test(key) ? '[redacted]' : redact(item, depth + 1);
  }
  return result;
}

const redactFormat = winston.format((info) => {
  const requestId = currentRequestId();
  const cleaned = redact({ ...info }) as winston.Logform.TransformableInfo;
  // winston keeps level/message under symbols too; copy the cleaned fields back in place.
  for (const key of Object.keys(info)) {
    if (!(key in cleaned)) delete (info as Record<string, unknown>)[key];
  }
  Object.assign(info, cleaned);
  if (requestId && info.requestId === undefined) info.requestId = requestId;
  return info;
});

export interface LoggerOptions {
  level: LogLevel;
  /** Also append every security event (and nothing else) to this file, for CrowdSec. */
  securityEventsFile?: string | undefined;
  /** Extra transports, e.g. a stream that tests capture. */
  transports?: winston.transport[];
  /** Write to stdout (default true). */
  console?: boolean;
}

const onlySecurityEvents = winston.format((info) => (info.security_event ? info : false));

export function createLogger(options: LoggerOptions): Logger {
  const transports: winston.transport[] = [...(options.transports ?? [])];
  if (options.console !== false) transports.push(new winston.transports.Console());
  if (options.securityEventsFile) {
    transports.push(
      new winston.transports.File({
        filename: options.securityEventsFile,
        level: 'warn',
        format: onlySecurityEvents(),
        // Appended to, never rotated here: several replicas may share the file (each line is
        // one small O_APPEND write), and a rotation by one would leave the others writing to
        // the renamed file. Rotate it outside (logrotate `copytruncate`; docs/deployment.md).
      }),
    );
  }
  return winston.createLogger({
    level: options.level,
    format: winston.format.combine(
      redactFormat(),
      winston.format.timestamp(),
      winston.format.json(),
    ),
    defaultMeta: { service: 'mcp-gateway' },
    transports,
  });
}
