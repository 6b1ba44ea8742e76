/**
 * docs/deployment.md's statements about log files, held to compose.yaml and the code:
 *
 * - container logs: json-file with the `max-size` and `max-file` the document names, on every
 *   service (compose.yaml's `x-defaults`);
 * - the security events file is never rotated by the service (no size or file limit in its
 *   winston transport), and a file moved aside keeps receiving the events, which is why the
 *   document says to rotate it with logrotate `copytruncate` (that the running service keeps
 *   writing into a truncated file is shown by tests/deploy/compose-native.test.ts, as is
 *   Traefik reopening its access log on USR1);
 * - the stack writes no audit file (deploy/gateway.yaml sets no `audit.file`).
 */
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import winston from 'winston';
import { loggedSecurityEvents } from '../../src/events/security-events.js';
import { createLogger } from '../../src/logging/logger.js';
import { parseYaml } from '../helpers/compose-model.js';
import { eventually } from '../helpers/poll.js';
import { record, type Json } from '../helpers/config-files.js';

const deployment = readFileSync('docs/deployment.md', 'utf8');
const compose = parseYaml(readFileSync('compose.yaml', 'utf8'));
const scratch = mkdtempSync(path.join(os.tmpdir(), 'mcp-gateway-log-rotation-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('container logs (compose.yaml x-defaults)', () => {
  const logging = record(record(compose['x-defaults']).logging);

  it('rotate on every service with the json-file options docs/deployment.md names', () => {
    for (const [name, service] of Object.entries(record(compose.services))) {
      expect([name, record(service).logging]).toEqual([name, logging]);
    }
    const options = record(logging.options);
    expect(logging.driver).toBe('json-file');
    const stated = (option: string) =>
      new RegExp(`\`${option}: ([^\`]+)\``).exec(deployment)?.[1]?.replace(/'/g, '');
    expect(stated('max-size')).toBe(options['max-size']);
    expect(stated('max-file')).toBe(options['max-file']);
  });
});

describe('the security events file', () => {
  const file = path.join(scratch, 'security-events.log');
  const logger = createLogger({ level: 'info', securityEventsFile: file, console: false });
  afterAll(() => {
    logger.close();
  });
  const lines = (at: string) => (existsSync(at) ? readFileSync(at, 'utf8') : '');

  it('is never rotated by the service: no size or file limit', () => {
    const transport = logger.transports.find((t) => t instanceof winston.transports.File) as
      (winston.transport & { maxsize: number | null; maxFiles: number | null }) | undefined;
    expect(transport).toBeDefined();
    expect(transport?.maxsize).toBeNull();
    expect(transport?.maxFiles).toBeNull();
  });

  it('keeps receiving events after being moved aside (hence copytruncate, not create)', async () => {
    const events = loggedSecurityEvents(logger);
    events.emit('login_failed', { reason: 'before the move' });
    expect(await eventually(async () => lines(file).includes('before the move'), 5_000)).toBe(true);
    renameSync(file, `${file}.1`);
    events.emit('login_failed', { reason: 'after the move' });
    expect(await eventually(async () => lines(`${file}.1`).includes('after the move'), 5_000)).toBe(
      true,
    );
    expect(existsSync(file)).toBe(false);
  });
});

describe('the audit file', () => {
  it('is not written by the stack: deploy/gateway.yaml sets no audit.file', () => {
    const gateway = parse(readFileSync('deploy/gateway.yaml', 'utf8')) as Json;
    expect(record(gateway.audit).file).toBeUndefined();
    expect(deployment).toMatch(/writes no audit file/);
  });
});
