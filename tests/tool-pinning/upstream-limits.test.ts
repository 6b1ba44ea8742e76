/**
 * A server listed for tool pinning cannot exhaust the gateway: one answer over 8 MiB, or more
 * than 5 000 definitions, fails the listing (src/tool-pinning/upstream-lister.ts). A real SDK
 * server with too many tools, and a raw HTTP server answering initialize with a huge body.
 */
import { createServer, type Server } from 'node:http';
import { afterAll, describe, expect, it } from '@jest/globals';
import {
  listDefinitions,
  MAX_DEFINITIONS,
  type ListingTarget,
} from '../../src/tool-pinning/upstream-lister.js';
import { startToolsServer, type ToolsServer } from '../helpers/tools-server.js';

const target = (upstream: string): ListingTarget => ({
  upstream,
  authorization: async () => undefined,
  timeoutMs: 20_000,
});

describe('limits of a listing', () => {
  let many: ToolsServer | undefined;
  let huge: Server | undefined;
  afterAll(async () => {
    await many?.stop();
    await new Promise((resolve) => (huge ? huge.close(resolve) : resolve(undefined)));
  });

  it('refuses more than 5 000 definitions', async () => {
    const tools: Record<string, string> = {};
    for (let i = 0; i <= MAX_DEFINITIONS; i += 1) tools[`tool_${i}`] = 'A tool.';
    many = await startToolsServer(tools);
    await expect(listDefinitions(target(many.endpoint))).rejects.toThrow(
      `more than ${MAX_DEFINITIONS} definitions`,
    );
  }, 60_000);

  it('refuses an answer over 8 MiB', async () => {
    huge = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' });
      // A JSON-RPC answer whose result never ends within the limit.
      res.write('{"jsonrpc":"2.0","id":0,"result":{"padding":"');
      const chunk = 'x'.repeat(1024 * 1024);
      for (let i = 0; i < 10; i += 1) res.write(chunk);
      res.end('"}}');
    });
    await new Promise<void>((resolve) => huge!.listen(0, '127.0.0.1', resolve));
    const port = (huge.address() as { port: number }).port;
    await expect(listDefinitions(target(`http://127.0.0.1:${port}/mcp`))).rejects.toThrow(
      /over 8388608 bytes/,
    );
  });
});
