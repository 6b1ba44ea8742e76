/**
 * The Express surface's one error path (src/app/error-handler.ts and src/http/errors.ts): what
 * each kind of error is answered with. Pure: a recording response stands in for Express's.
 */
import { describe, expect, it } from '@jest/globals';
import type { Request, Response } from 'express';
import { errorHandler } from '../../../src/app/error-handler.js';
import type { SecurityEventKind, SecurityEvents } from '../../../src/events/security-events.js';
import {
  InvalidClientMetadata,
  LengthRequired,
  NotFound,
  TemporarilyUnavailable,
  TooManyRequests,
} from '../../../src/http/errors.js';
import type { Logger } from '../../../src/logging/logger.js';
import { InteractionMismatch } from '../../../src/login/steps/interaction.js';

interface Answer {
  status?: number;
  headers: Record<string, string>;
  json?: unknown;
  body?: string;
}

function recordingResponse(): { res: Response; answer: Answer } {
  const answer: Answer = { headers: {} };
  const res = {
    headersSent: false,
    status(code: number) {
      answer.status = code;
      return res;
    },
    set(headers: Record<string, string> | string, value?: string) {
      if (typeof headers === 'string') answer.headers[headers] = value!;
      else Object.assign(answer.headers, headers);
      return res;
    },
    json(value: unknown) {
      answer.json = value;
      return res;
    },
    send(value: string) {
      answer.body = value;
      return res;
    },
  };
  return { res: res as unknown as Response, answer };
}

function handle(error: unknown, path = '/register') {
  const emitted: SecurityEventKind[] = [];
  const logged: string[] = [];
  const events: SecurityEvents = { emit: (kind) => emitted.push(kind) };
  const logger = { error: (message: string) => logged.push(message) } as unknown as Logger;
  const { res, answer } = recordingResponse();
  let passedOn: unknown;
  errorHandler(logger, events)(error, { path, ip: '192.0.2.1' } as Request, res, (next) => {
    passedOn = next;
  });
  return { answer, emitted, logged, passedOn };
}

describe('the Express error path', () => {
  it.each([
    [
      new LengthRequired('a registration request must carry its Content-Length'),
      411,
      'invalid_request',
      {},
    ],
    [new InvalidClientMetadata('too big'), 400, 'invalid_client_metadata', {}],
    [new NotFound('no protected resource at this URL'), 404, 'not_found', {}],
    [
      new TemporarilyUnavailable('client registration is closed', 60),
      503,
      'temporarily_unavailable',
      { 'Retry-After': '60' },
    ],
    [new TooManyRequests('slow down', 1_200), 429, 'too_many_requests', { 'Retry-After': '2' }],
    [new TooManyRequests('slow down', 5), 429, 'too_many_requests', { 'Retry-After': '1' }],
  ])(
    'answers a typed error %p as JSON with its status and headers',
    (error, status, code, headers) => {
      const { answer } = handle(error);
      expect(answer.status).toBe(status);
      expect(answer.headers).toEqual({ ...headers, 'Cache-Control': 'no-store' });
      expect(answer.json).toEqual({ error: code, error_description: error.description });
    },
  );

  it('answers a client error on an API route as JSON "malformed request" with its status', () => {
    const { answer } = handle(
      Object.assign(new Error('request entity too large'), { status: 413 }),
    );
    expect(answer.status).toBe(413);
    expect(answer.json).toEqual({
      error: 'invalid_request',
      error_description: 'malformed request',
    });
  });

  it('answers a client error on a browser route with a page', () => {
    const { answer } = handle(
      Object.assign(new Error('bad body'), { status: 400 }),
      '/interaction/x',
    );
    expect(answer.status).toBe(400);
    expect(answer.headers['Content-Type']).toBe('text/html; charset=utf-8');
    expect(answer.body).toContain('bad body');
  });

  it('answers a foreign sign-in with the sign-in expired page and a security event', () => {
    const { answer, emitted } = handle(new InteractionMismatch(), '/interaction/x');
    expect(answer.status).toBe(400);
    expect(answer.body).toContain('Sign-in expired');
    expect(emitted).toEqual(['oauth_error']);
  });

  it('logs anything else and answers 500 with a page', () => {
    const { answer, logged } = handle(new Error('boom'));
    expect(answer.status).toBe(500);
    expect(answer.body).toContain('Something went wrong');
    expect(logged).toEqual(['request failed']);
  });
});
