/**
 * Which peers may speak for the client through X-Forwarded-* headers.
 *
 * Behind Traefik, the scheme, host and client address of a request are known only from the
 * X-Forwarded-* headers Traefik adds. From any other peer those headers are attacker input:
 * a spoofed `X-Forwarded-Proto: https` would mark cookies secure on plain http, a spoofed
 * `X-Forwarded-For` would hide the attacker's address from rate limits and logs. So they are
 * believed only from `trustedProxies` (CIDRs, or proxy-addr's names `loopback`,
 * `linklocal`, `uniquelocal`) and removed from every other request before anything reads them.
 */
import type { NextFunction, Request, Response } from 'express';
import proxyAddr from 'proxy-addr';

export type TrustFunction = (address: string, hop: number) => boolean;

export function compileTrustedProxies(trustedProxies: string[]): TrustFunction {
  return proxyAddr.compile(trustedProxies);
}

const FORWARDED_HEADERS = [
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-forwarded-uri',
  'x-forwarded-method',
  'x-real-ip',
];

export function stripUntrustedForwardedHeaders(trust: TrustFunction) {
  return (req: Request, _res: Response, next: NextFunction) => {
    const peer = req.socket.remoteAddress ?? '';
    if (!trust(peer, 0)) {
      for (const header of FORWARDED_HEADERS) delete req.headers[header];
    }
    next();
  };
}
