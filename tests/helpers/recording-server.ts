/**
 * An MCP backend stand-in that only records: every request that reaches it (method, raw path,
 * headers, body) is kept, and it answers 200 with its own name. Tests behind a proxy use it to
 * tell which backend a request was routed to and with which identity; an MCP server made with
 * the SDK would answer many of these probes with 4xx, hiding that they reached it at all.
 *
 * `rawRequest` sends a request with its path exactly as written (fetch would resolve `..`,
 * turn `\` into `/` and re-encode), the way an attacker writes it.
 */
import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import { closeServer, listenOn, onFreePort } from './ports.js';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface RecordingServer {
  name: string;
  /** `http://127.0.0.1:PORT`. */
  url: string;
  requests: RecordedRequest[];
  stop(): Promise<void>;
}

export async function startRecordingServer(name: string): Promise<RecordingServer> {
  const requests: RecordedRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      requests.push({
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ backend: name }));
    });
  });
  const port = await onFreePort(async (candidate) => {
    await listenOn(server, candidate);
    return candidate;
  });
  return { name, url: `http://127.0.0.1:${port}`, requests, stop: () => closeServer(server) };
}

export interface RawAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One request with `path` sent byte for byte (no URL parsing on the way). */
export function rawRequest(
  port: number,
  options: {
    method?: string;
    path: string;
    host?: string;
    headers?: Record<string, string>;
    body?: string;
    /** The client's own address (any 127.x.y.z: each is another client to the proxy). */
    localAddress?: string;
  },
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: options.method ?? 'GET',
        path: options.path,
        agent: false,
        ...(options.localAddress ? { localAddress: options.localAddress } : {}),
        headers: {
          host: options.host ?? `127.0.0.1:${port}`,
          ...(options.body === undefined
            ? {}
            : {
                'content-type': 'application/json',
                'content-length': Buffer.byteLength(options.body),
              }),
          ...options.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}
