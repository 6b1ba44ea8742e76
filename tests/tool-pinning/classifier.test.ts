/**
 * The external classifier hook (src/tool-pinning/classifier.ts) against a real HTTP service
 * on loopback: what it flags is held with its reason, it is asked once per definition, and a
 * classifier that fails is decided by `failPolicy` (flag: held; pass: the scanner alone).
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { resourceSchema } from '../../src/config/schema.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { ExternalClassifier } from '../../src/tool-pinning/classifier.js';
import { ToolPinning } from '../../src/tool-pinning/pinning.js';
import type { Lists } from '../../src/tool-pinning/upstream-lister.js';
import { captureLogger } from '../helpers/captured-logger.js';

const URL_A = 'https://mcp.example.com/a';
const resource = resourceSchema.parse({
  url: URL_A,
  name: 'A',
  upstream: 'http://10.0.0.9/mcp',
  toolDefinitions: { mode: 'enforce' },
});
const lists: Lists = {
  tool: [
    { name: 'search', description: 'Searches.', inputSchema: { type: 'object' } },
    { name: 'weather', description: 'Gives the weather.', inputSchema: { type: 'object' } },
  ],
  prompt: [],
  resourceTemplate: [],
};

describe('the external classifier', () => {
  let server: Server;
  let url: string;
  const asked: string[] = [];
  let failing = false;

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => (body += String(chunk)));
      req.on('end', () => {
        const { name } = JSON.parse(body) as { name: string };
        asked.push(name);
        if (failing) {
          res.writeHead(500).end();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify(
            name === 'weather' ? { flagged: true, reason: 'sends data out' } : { flagged: false },
          ),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/classify`;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  function pinning(failPolicy: 'flag' | 'pass') {
    const { logger } = captureLogger('error');
    const classifier = new ExternalClassifier({ url, timeoutMs: 2000, failPolicy }, logger);
    return new ToolPinning({
      store: new MemoryStore({ maxEntries: 100 }),
      resources: () => [resource],
      list: async () => structuredClone(lists),
      events: { emit: () => undefined },
      logger,
      classify: (target, definition) => classifier.findings(target, definition),
    });
  }

  it('holds what it flags, with its reason, asking once per definition', async () => {
    failing = false;
    asked.length = 0;
    const pins = pinning('flag');
    const record = await pins.checkNow(URL_A);
    expect(Object.keys(record!.approved!.definitions)).toEqual(['tool:search']);
    expect(record!.pending!.findings['tool:weather']).toEqual([
      { rule: 'classifier', where: 'definition', excerpt: 'sends data out' },
    ]);
    expect([...pins.held(resource)!.tools]).toEqual(['weather']);
    await pins.checkNow(URL_A);
    // search is approved as it is; weather's answer is remembered.
    expect(asked.sort()).toEqual(['search', 'weather']);
  });

  it('a failing classifier holds every new definition with failPolicy flag, none with pass', async () => {
    failing = true;
    const flagging = await pinning('flag').checkNow(URL_A);
    expect(Object.keys(flagging!.approved!.definitions)).toEqual([]);
    expect(flagging!.pending!.findings['tool:search']![0]!.excerpt).toBe(
      'classifier unavailable: status 500',
    );
    const passing = await pinning('pass').checkNow(URL_A);
    expect(Object.keys(passing!.approved!.definitions).sort()).toEqual([
      'tool:search',
      'tool:weather',
    ]);
    expect(passing!.pending).toBeNull();
  });
});
