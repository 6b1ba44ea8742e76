/**
 * The OAuth-style errors the Express side of the gateway answers with, as values. A guard in
 * front of oidc-provider passes one on (`next(error)`) and the surface's one error handler
 * (src/app/error-handler.ts) answers it with {@link sendOAuthError}; the per-IP and per-client
 * limits answer theirs the same way. So the JSON error body (`error`, `error_description`,
 * RFC 6749 §5.2) and its `Cache-Control: no-store` are built here only.
 */
import type { Response } from 'express';

/** An error answered as `status` with `{ error, error_description }` and `headers`. */
export class OAuthHttpError extends Error {
  constructor(
    readonly status: number,
    /** The OAuth error code (`invalid_request`, …). */
    readonly code: string,
    readonly description: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(description);
    this.name = new.target.name;
  }
}

/** A request the endpoint cannot read; `status` 400 unless the cause says otherwise. */
export class InvalidRequest extends OAuthHttpError {
  constructor(description: string, status = 400) {
    super(status, 'invalid_request', description);
  }
}

/** 411: a body whose length the endpoint must know before reading it. */
export class LengthRequired extends OAuthHttpError {
  constructor(description: string) {
    super(411, 'invalid_request', description);
  }
}

/** 400 RFC 7591 `invalid_client_metadata`. */
export class InvalidClientMetadata extends OAuthHttpError {
  constructor(description: string) {
    super(400, 'invalid_client_metadata', description);
  }
}

/** 404 `not_found`: nothing is published at this URL. */
export class NotFound extends OAuthHttpError {
  constructor(description: string) {
    super(404, 'not_found', description);
  }
}

/** 503 `temporarily_unavailable`, with `Retry-After` in seconds. */
export class TemporarilyUnavailable extends OAuthHttpError {
  constructor(description: string, retryAfterSeconds: number) {
    super(503, 'temporarily_unavailable', description, {
      'Retry-After': String(retryAfterSeconds),
    });
  }
}

/** 429 `too_many_requests`, with `Retry-After` in whole seconds (at least 1). */
export class TooManyRequests extends OAuthHttpError {
  constructor(description: string, msBeforeNext: number) {
    const retryAfter = Math.max(1, Math.ceil(msBeforeNext / 1000));
    super(429, 'too_many_requests', description, { 'Retry-After': String(retryAfter) });
  }
}

/** Answers `error`: its status, its headers, `Cache-Control: no-store` and the JSON body. */
export function sendOAuthError(res: Response, error: OAuthHttpError): void {
  res
    .status(error.status)
    .set({ ...error.headers, 'Cache-Control': 'no-store' })
    .json({ error: error.code, error_description: error.description });
}
