/**
 * The CrowdSec files in crowdsec/ agree with each other and with what the deployment expects,
 * without running CrowdSec (tests/crowdsec/scenarios.test.ts runs the real one): every
 * scenario documents its thresholds, the collection lists exactly the local parser and
 * scenarios, the profiles name scenarios that exist, and the acquisition reads Traefik's
 * access log, the auth service's security event log and runs the AppSec component (1.6 only,
 * hence not loadable by the 1.4.6 of the scenario test).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { parse, parseAllDocuments } from 'yaml';

const DIR = path.resolve('crowdsec');

const load = (file: string) => parse(readFileSync(path.join(DIR, file), 'utf8'));
const loadAll = (file: string) =>
  parseAllDocuments(readFileSync(path.join(DIR, file), 'utf8')).map(
    (document) => document.toJSON() as Record<string, unknown>,
  );

const scenarioFiles = readdirSync(path.join(DIR, 'scenarios')).filter((file) =>
  file.endsWith('.yaml'),
);
const scenarios = scenarioFiles.map(
  (file) => load(path.join('scenarios', file)) as Record<string, unknown>,
);
const parser = load('parsers/s01-parse/mcp-gateway-security-events.yaml') as Record<
  string,
  unknown
>;

describe('CrowdSec configuration', () => {
  it('has the scenarios the gateway needs, each with documented thresholds', () => {
    expect(scenarios.map((scenario) => scenario.name).sort()).toEqual(
      [
        'mcp-gateway/authorization-failures',
        'mcp-gateway/denied-tool-calls',
        'mcp-gateway/header-body-mismatch',
        'mcp-gateway/refresh-token-reuse',
        'mcp-gateway/registration-flood',
        'mcp-gateway/request-smuggling',
        'mcp-gateway/token-scanning',
        'mcp-gateway/untrusted-proxy',
      ].sort(),
    );
    for (const [index, scenario] of scenarios.entries()) {
      const text = readFileSync(path.join(DIR, 'scenarios', scenarioFiles[index]!), 'utf8');
      expect(text.startsWith('#')).toBe(true);
      expect(String(scenario.filter)).toContain(
        "evt.Meta.log_type == 'mcp_gateway_security_event'",
      );
      expect(scenario.blackhole).toMatch(/^\d+[smh]$/);
      expect(scenario.groupby).toBeDefined();
      expect(typeof (scenario.labels as Record<string, unknown>).remediation).toBe('boolean');
      if (scenario.type === 'leaky') {
        expect(scenario.capacity).toEqual(expect.any(Number));
        expect(scenario.leakspeed).toMatch(/^\d+[smh]$/);
      } else {
        expect(scenario.type).toBe('trigger');
        expect(scenario.capacity).toBeUndefined();
      }
    }
  });

  it('fires at once on refresh token reuse and header/body mismatch', () => {
    const byName = new Map(scenarios.map((scenario) => [scenario.name, scenario]));
    expect(byName.get('mcp-gateway/refresh-token-reuse')?.type).toBe('trigger');
    expect(byName.get('mcp-gateway/header-body-mismatch')?.type).toBe('trigger');
    expect(byName.get('mcp-gateway/denied-tool-calls')?.groupby).toContain('evt.Meta.client_id');
  });

  it('lists exactly the local parser and scenarios in the collection', () => {
    const collection = load('collections/mcp-gateway.yaml') as Record<string, string[]>;
    expect(collection.parsers).toEqual([parser.name]);
    expect([...collection.scenarios!].sort()).toEqual(
      scenarios.map((scenario) => String(scenario.name)).sort(),
    );
  });

  it('parses with expressions CrowdSec 1.4.6 knows (JsonExtract, no UnmarshalJSON)', () => {
    expect(JSON.stringify(parser)).not.toMatch(/UnmarshalJSON/);
    expect(JSON.stringify(parser)).toMatch(/JsonExtract\(evt\.Parsed\.message, 'ip'\)/);
    const statics = parser.statics as { meta?: string; target?: string }[];
    const metas = statics.map((item) => item.meta).filter(Boolean);
    for (const meta of ['source_ip', 'log_type', 'security_event', 'client_id', 'resource']) {
      expect(metas).toContain(meta);
    }
    expect(statics.some((item) => item.target === 'evt.StrTime')).toBe(true);
  });

  it('gives the immediate scenarios 24h and everything else 4h, naming real scenarios', () => {
    const profiles = loadAll('profiles.yaml') as {
      name: string;
      filters: string[];
      decisions: { type: string; duration: string }[];
    }[];
    const [immediate, byDefault] = profiles;
    expect(immediate!.decisions).toEqual([{ type: 'ban', duration: '24h' }]);
    expect(byDefault!.decisions).toEqual([{ type: 'ban', duration: '4h' }]);
    const named = [...immediate!.filters.join(' ').matchAll(/"(mcp-gateway\/[a-z-]+)"/g)].map(
      (match) => match[1],
    );
    expect(named.sort()).toEqual([
      'mcp-gateway/header-body-mismatch',
      'mcp-gateway/refresh-token-reuse',
      'mcp-gateway/request-smuggling',
    ]);
    for (const name of named) {
      expect(scenarios.some((scenario) => scenario.name === name)).toBe(true);
    }
  });

  it('reads Traefik’s access log and the security events, and runs AppSec', () => {
    const sources = loadAll('acquis.yaml');
    const traefikStatic = parse(readFileSync(path.resolve('traefik', 'traefik.yml'), 'utf8')) as {
      accessLog: { filePath: string; format: string };
    };
    expect(traefikStatic.accessLog.format).toBe('json');
    expect(sources).toContainEqual({
      filenames: [traefikStatic.accessLog.filePath],
      labels: { type: 'traefik' },
    });
    expect(sources).toContainEqual({
      filenames: ['/var/log/mcp-gateway/security-events.log'],
      labels: { type: 'mcp-gateway' },
    });
    expect(sources).toContainEqual(
      expect.objectContaining({
        source: 'appsec',
        listen_addr: '0.0.0.0:7422',
        appsec_config: 'crowdsecurity/appsec-default',
      }),
    );
  });
});
