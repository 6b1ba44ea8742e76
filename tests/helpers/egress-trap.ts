/**
 * An HTTP proxy that forwards nothing: a real client given it as `HTTPS_PROXY`/`HTTP_PROXY`
 * (with loopback in `NO_PROXY`) can reach only the test's own servers, whatever network the
 * machine has, and every attempt to go elsewhere is recorded (`CONNECT host:port`, or the
 * absolute URL of a plain-http request) and refused with 403.
 */
import { createServer, type Server } from 'node:http';
import { closeServer, listenOn, onFreePort } from './ports.js';

export interface EgressTrap {
  /** `http://127.0.0.1:PORT`, for the proxy variables. */
  url: string;
  /** Every destination a client tried, in order (`chatgpt.com:443`, `http://…`). */
  attempts: string[];
  /** The proxy variables, both spellings, loopback exempt. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

export async function startEgressTrap(): Promise<EgressTrap> {
  const attempts: string[] = [];
  const server: Server = createServer((req, res) => {
    attempts.push(String(req.url));
    res.writeHead(403).end();
  });
  server.on('connect', (req, socket) => {
    attempts.push(String(req.url));
    socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n');
  });
  const port = await onFreePort(async (candidate) => {
    await listenOn(server, candidate);
    return candidate;
  });
  const url = `http://127.0.0.1:${port}`;
  const noProxy = '127.0.0.1,localhost,::1';
  return {
    url,
    attempts,
    env: {
      HTTPS_PROXY: url,
      HTTP_PROXY: url,
      ALL_PROXY: url,
      https_proxy: url,
      http_proxy: url,
      all_proxy: url,
      NO_PROXY: noProxy,
      no_proxy: noProxy,
    },
    stop: () => closeServer(server),
  };
}
