/**
 * Logging: winston, one JSON object per line on stdout, with the id of the request being
 * served on every line written while serving it.
 *
 * Secrets never reach the output. Two layers make sure of that:
 *  1. fields whose names say they hold a secret (token, code, secret, cookie, authorization,
 *     password, assertion, verifier…) are replaced by "[redacted]" at any depth;
 *  2. every string is scrubbed of things shaped like JWTs, bearer credentials and the opaque
 *     tokens oidc-provider issues, whatever field they are in (an error message, a URL).
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
  /token|secret|password|passwd|cookie|authorization|assertion|verifier|^code$|^state$|^nonce$|jwk|private/i;

// JWS/JWE compact serialisations, bearer/basic credentials, and oidc-provider's opaque
// tokens and codes (43-char base64url), and query parameters that carry them.
const SECRET_PATTERNS: [RegExp, string][] = [
  [/eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}(?:\.[A-Za-z0-9_-]*){1,3}/g, '[jwt]'],
  [/\b(Bearer|Basic|DPoP)\s+[A-Za-z0-9._~+/=-]+/gi, '$1 [redacted]'],
  [
    /([?&](?:code|access_token|refresh_token|id_token|token|client_secret|code_verifier|state|nonce)=)[^&\s"]*/gi,
    '$1[redacted]',
  ],
  [/\b[A-Za-z0-9_-]{43,}\b/g, '[opaque]'],
];

export function scrubString(value: string): string {
  let result = value;
  for (const [pattern, replacement] of SECRET_PATTERNS)
    result = result.replace(pattern, replacement);
  return result;
}

/** Returns a copy of `value` with secret-named fields and secret-shaped strings removed. */
export function redact(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return scrubString(value);
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) {
    return { name: value.name, message: scrubString(value.message) };
  }
  if (Array.isArray(value)) return value.map((item) => redact(item, depth + 1));
  const result: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    result[key] = SECRET_FIELD.test(key) ? '[redacted]' : redact(item, depth + 1);
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
