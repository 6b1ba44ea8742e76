import type { Response } from 'express';

/**
 * Sends a rendered page with the headers every page of the gateway carries: no framing
 * (clickjacking on consent and on the console's actions), no caching, no referrer (the
 * interaction and callback URLs carry state), no content sniffing, no script.
 */
export function sendPage(res: Response, status: number, body: string): void {
  res
    .status(status)
    .set({
      'Content-Type': 'text/html; charset=utf-8',
      'Cache-Control': 'no-store',
      'Content-Security-Policy':
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
      'X-Frame-Options': 'DENY',
      'Referrer-Policy': 'no-referrer',
      'X-Content-Type-Options': 'nosniff',
    })
    .send(body);
}
