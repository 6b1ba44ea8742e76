/**
 * The MCP server behind Traefik in the benchmark's Traefik scenarios: reads the POSTed
 * JSON-RPC request and answers a small `tools/call` result as JSON, as a Streamable HTTP
 * server answers a request that needs no stream. Started by bench/run.ts as its own process:
 * `node --import tsx bench/backend.ts PORT`.
 */
import { createServer } from 'node:http';
import { portFromArgs, serveUntilSignalled } from './serve.js';

const port = portFromArgs('backend.ts');

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    let id: unknown = null;
    try {
      id = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id?: unknown }).id ?? null;
    } catch {
      // A GET (the readiness probe) has no body.
    }
    const body = JSON.stringify({
      jsonrpc: '2.0',
      id,
      result: { content: [{ type: 'text', text: 'hello' }], isError: false },
    });
    res.writeHead(200, {
      'Content-Type': 'application/json',
      'Content-Length': String(Buffer.byteLength(body)),
    });
    res.end(body);
  });
});
serveUntilSignalled(server, port);
