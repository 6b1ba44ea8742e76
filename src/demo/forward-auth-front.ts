/**
 * The demo front of the embedded default: a loopback-only reverse proxy that puts the demo MCP
 * server behind `/verify` exactly the way the shipped Traefik configuration does
 * (traefik/dynamic_config.yaml: forwardAuth with `forwardBody`, `authResponseHeaders`), so that
 * `npm start` alone gives a protected MCP server real clients can use. It is not a production
 * proxy and no configuration file can turn it on: it runs only with the embedded default.
 *
 * For every request to the MCP endpoint it:
 *  1. reads the body (at most `verify.maxBodySize`, as Traefik's `maxBodySize`);
 *  2. asks `/verify` with a GET carrying the client's headers, the body, and the
 *     `X-Forwarded-Proto/-Host/-Uri/-Method/-For` it sets itself (never the client's);
 *  3. on 2xx, replaces the identity headers (and `Authorization`) with the answer's and proxies
 *     the request, body included, to the demo server (http-proxy-3, which streams SSE answers
 *     through unbuffered);
 *  4. otherwise gives the client `/verify`'s status, headers and body unchanged.
 * The OAuth discovery paths go to the auth service without the check (a client has no token
 * yet); a CORS preflight is answered here, as the shipped Caddy and nginx snippets do.
 */
import {
  createServer,
  request,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { Readable } from 'node:stream';
import { createProxyServer } from 'http-proxy-3';
import { IDENTITY_RESPONSE_HEADERS } from '../forward-auth/identity-headers.js';
import { BodyTooLarge, readBody } from '../http/read-body.js';

export interface DemoFrontOptions {
  /** Where the front listens (loopback only). */
  port: number;
  /** The origin MCP clients use, e.g. `http://localhost:3001` (the resource URL's origin). */
  publicOrigin: string;
  /** The auth service, `http://127.0.0.1:PORT` (its `/verify` and discovery). */
  gatewayUrl: string;
  /** The demo MCP server, `http://127.0.0.1:PORT`. */
  upstreamUrl: string;
  /** Largest request body forwarded to `/verify` (the gateway's `verify.maxBodySize`). */
  maxBodySize: number;
}

const DISCOVERY = /^\/\.well-known\/(oauth-protected-resource(\/.*)?|oauth-authorization-server)$/;
/** Not passed on (RFC 9110 §7.6.1), nor the forwarding description clients could forge. */
const NOT_COPIED = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'host',
  'content-length',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-port',
  'x-forwarded-uri',
  'x-forwarded-method',
  'x-real-ip',
]);

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

export class DemoFront {
  private readonly proxy = createProxyServer({ xfwd: false });
  private readonly publicHost: string;
  private server: Server | undefined;

  constructor(private readonly options: DemoFrontOptions) {
    this.publicHost = new URL(options.publicOrigin).host;
    this.proxy.on('error', (_error, _req, res) => {
      if (res && 'writeHead' in res && !res.headersSent) {
        json(res, 502, { error: 'bad_gateway', error_description: 'the demo MCP server is down' });
      }
    });
  }

  /** The forwarding description the front itself writes (never the client's). */
  private forwarded(req: IncomingMessage): Record<string, string> {
    return {
      'x-forwarded-proto': 'http',
      'x-forwarded-host': this.publicHost,
      'x-forwarded-uri': req.url ?? '/',
      'x-forwarded-method': req.method ?? 'GET',
      'x-forwarded-for': req.socket.remoteAddress ?? '',
    };
  }

  /** The client's headers without hop-by-hop and forwarding ones. */
  private static copied(headers: IncomingHttpHeaders): Record<string, string | string[]> {
    const out: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(headers)) {
      if (value !== undefined && !NOT_COPIED.has(name)) out[name] = value;
    }
    return out;
  }

  /** `/verify`'s answer to the request, asked as Traefik's forwardAuth with `forwardBody`. */
  private ask(req: IncomingMessage, body: Buffer): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const ask = request(
        `${this.options.gatewayUrl}/verify`,
        {
          method: 'GET',
          headers: {
            ...DemoFront.copied(req.headers),
            ...this.forwarded(req),
            ...(body.length > 0 ? { 'content-length': String(body.length) } : {}),
          },
        },
        (answer) => {
          const chunks: Buffer[] = [];
          answer.on('data', (chunk: Buffer) => chunks.push(chunk));
          answer.once('end', () =>
            resolve({
              status: answer.statusCode ?? 502,
              headers: answer.headers,
              body: Buffer.concat(chunks),
            }),
          );
          answer.once('error', reject);
        },
      );
      ask.once('error', reject);
      ask.end(body);
    });
  }

  private readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (DISCOVERY.test(path)) {
      req.headers = { ...DemoFront.copied(req.headers), ...this.forwarded(req) };
      this.proxy.web(req, res, { target: this.options.gatewayUrl });
      return;
    }
    if (req.method === 'OPTIONS') {
      res.writeHead(204).end();
      return;
    }
    readBody(req, this.options.maxBodySize)
      .then(async (body) => {
        const answer = await this.ask(req, body);
        if (answer.status < 200 || answer.status > 299) {
          const headers = { ...answer.headers };
          for (const name of ['connection', 'keep-alive', 'transfer-encoding'])
            delete headers[name];
          res.writeHead(answer.status, { ...headers, 'content-length': answer.body.length });
          res.end(answer.body);
          return;
        }
        // The identity headers: the client's removed, the decision's set (Traefik's
        // authResponseHeaders), so no client can name its own user or keep its token.
        for (const name of IDENTITY_RESPONSE_HEADERS) {
          const key = name.toLowerCase();
          delete req.headers[key];
          const value = answer.headers[key];
          if (typeof value === 'string' && value !== '') req.headers[key] = value;
        }
        req.headers = { ...req.headers, ...this.forwarded(req) };
        this.proxy.web(req, res, {
          target: this.options.upstreamUrl,
          buffer: Readable.from(body.length > 0 ? [body] : []),
        });
      })
      .catch((error: unknown) => {
        if (res.headersSent) return res.destroy();
        if (error instanceof BodyTooLarge) {
          return json(res, 413, {
            jsonrpc: '2.0',
            id: null,
            error: { code: -32600, message: 'Request body too large' },
          });
        }
        // The auth service could not be asked: fail closed.
        json(res, 502, {
          error: 'bad_gateway',
          error_description: 'the auth service did not answer',
        });
      });
  };

  /** Listens on loopback; rejects when the port is taken. */
  async listen(): Promise<void> {
    const server = createServer(this.handle);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, '127.0.0.1', resolve);
    });
    this.server = server;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    this.proxy.close();
  }
}
