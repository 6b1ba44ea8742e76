/**
 * Test doubles of Express's `Request` and `Response` for the unit tier: a request is the few
 * fields the handlers read; a response records what was sent (status, headers, body, or the
 * redirect) instead of writing to a socket.
 */
import type { Request, Response } from 'express';

export interface RequestDoubleOptions {
  headers?: Record<string, string>;
  body?: Record<string, unknown>;
  ip?: string;
  params?: Record<string, string>;
  query?: Record<string, unknown>;
  originalUrl?: string;
}

/** A request double: `get(name)` reads `headers` case-insensitively. */
export function requestDouble(options: RequestDoubleOptions = {}): Request {
  const headers = Object.fromEntries(
    Object.entries(options.headers ?? {}).map(([name, value]) => [name.toLowerCase(), value]),
  );
  return {
    ip: options.ip ?? '192.0.2.7',
    body: options.body,
    params: options.params ?? {},
    query: options.query ?? {},
    originalUrl: options.originalUrl ?? '/',
    headers,
    get: (name: string) => headers[name.toLowerCase()],
  } as unknown as Request;
}

/** What a response double was told. */
export interface SentResponse {
  status?: number;
  headers: Record<string, string>;
  body?: string;
  redirect?: { status: number; url: string };
}

/** A response double and the record of what was sent through it. */
export function responseDouble(): { res: Response; sent: SentResponse } {
  const sent: SentResponse = { headers: {} };
  const res = {
    headersSent: false,
    status(code: number) {
      sent.status = code;
      return res;
    },
    set(fields: Record<string, string>) {
      Object.assign(sent.headers, fields);
      return res;
    },
    send(body: string) {
      sent.body = body;
      res.headersSent = true;
      return res;
    },
    redirect(status: number, url: string) {
      sent.redirect = { status, url };
      res.headersSent = true;
    },
  };
  return { res: res as unknown as Response, sent };
}
