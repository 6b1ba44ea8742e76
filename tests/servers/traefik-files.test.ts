/**
 * The Traefik files written for servers added at run time, read the way Traefik reads them:
 * Traefik renders each file of its directory as a Go template before parsing the YAML, and one
 * file it cannot read freezes the whole directory (tests/e2e/traefik-stack.test.ts shows that
 * with the real Traefik). So a server's name must never put template syntax into its file,
 * limits count per client address, and every replica reports a file Traefik cannot read.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import { configSchema } from '../../src/config/schema.js';
import { managedServerSchema, type ManagedServer } from '../../src/servers/managed-server.js';
import { TraefikFiles, traefikReadProblem } from '../../src/servers/traefik-files.js';
import { captureLogger } from '../helpers/captured-logger.js';

const settings = configSchema.parse({
  issuer: 'https://auth.example.com',
  resources: [{ url: 'https://mcp.example.com/mcp', name: 'M' }],
}).managedServers.traefik;

const server = (name: string): ManagedServer => ({
  ...managedServerSchema.parse({
    name,
    url: 'https://mcp.example.com/notes/mcp',
    upstream: 'http://notes:3000',
    scopes: ['notes'],
    allowedOrigins: [],
    upstreamAuthorization: 'none',
    rateLimitAverage: 50,
    rateLimitBurst: 100,
    inFlight: 20,
    crowdsec: true,
  }),
  id: 's0123456789',
  createdAt: '2026-12-06T00:00:00.000Z',
  updatedAt: '2026-12-06T00:00:00.000Z',
  updatedBy: 'test',
});

describe('Traefik files of servers added at run time', () => {
  let dir: string;
  let files: TraefikFiles;
  const { logger, lines } = captureLogger();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcpgw-traefik-files-'));
    files = new TraefikFiles({ ...settings, directory: dir }, logger);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('never puts template syntax from a server name into its file', () => {
    const text = files.render('s0123456789', server('Notes {{ env "SECRET" }} }}{{'));
    expect(text).not.toMatch(/\{\{|\}\}/);
    expect(traefikReadProblem(text)).toBeUndefined();
  });

  it('limits every server per client address, not per host', () => {
    const document = parse(files.render('s0123456789', server('Notes'))) as {
      http: { middlewares: Record<string, Record<string, { sourceCriterion?: unknown }>> };
    };
    const limits = Object.values(document.http.middlewares).flatMap((middleware) =>
      Object.entries(middleware).filter(([kind]) => kind === 'rateLimit' || kind === 'inFlightReq'),
    );
    expect(limits).toHaveLength(2);
    for (const [, limit] of limits) {
      expect(limit.sourceCriterion).toEqual({ ipStrategy: { depth: 0 } });
    }
  });

  it.each([
    ['http: [unclosed\n', /not YAML/],
    ['http:\n  routers: {}\n# {{ broken\n', /template syntax/],
    ['rule: Host(`{{ .Name }}`)\n', /template syntax/],
  ])('reads %j as Traefik would: unreadable', (text, problem) => {
    expect(traefikReadProblem(text)).toMatch(problem);
  });

  it("reads the project's own template call as Traefik would: fine", () => {
    expect(traefikReadProblem('rule: Host(`{{ env "MCP_HOST" }}`)\n')).toBeUndefined();
  });

  it('reports a file of the directory Traefik cannot read, once, and rewrites a damaged one of its own', async () => {
    await files.reconcile([server('Notes')]);
    expect(files.unreadableFiles().size).toBe(0);
    await writeFile(join(dir, 'hand-written.yaml'), 'http: [unclosed\n');
    await writeFile(files.fileOf('s0123456789'), 'http: {');
    await files.reconcile([server('Notes')]);
    await files.reconcile([server('Notes')]);
    expect([...files.unreadableFiles().keys()]).toEqual(['hand-written.yaml']);
    const reports = lines.filter((line) => line.includes('traefik_file_unreadable'));
    expect(reports).toHaveLength(1);
    expect(reports[0]).toContain('hand-written.yaml');
    await rm(join(dir, 'hand-written.yaml'));
    await files.reconcile([server('Notes')]);
    expect(files.unreadableFiles().size).toBe(0);
  });
});
