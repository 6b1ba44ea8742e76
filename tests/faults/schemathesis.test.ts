/**
 * Issue #14: a generated fuzz run joins the hand-written corpus (malformed-corpus.test.ts).
 * schemathesis (PyPI, pinned in scripts/test-requirements.txt) generates requests from the
 * service's published OpenAPI description, docs/openapi.yaml, valid and invalid ones, and
 * sends them to the service running as a separate process. It must find:
 * - no 5xx and no crash (the process is alive and healthy afterwards, with no error logged);
 * - no answer the description does not document (status, content type, headers, body schema);
 * - no request accepted (2xx/3xx) that breaks the description: "no allow that a stricter
 *   reading would refuse" (schemathesis' `negative_data_rejection`).
 *
 * Two runs: the whole description without credentials, then `/verify` with a valid access
 * token for the resource (the public URL fixed to it), so that the checks after the token
 * (methods, Origin, MCP headers, session ids, JSON-RPC bodies, tool rules) are fuzzed too.
 *
 * Reproducible: schemathesis runs in its deterministic mode (no random seed, no example
 * database) with a bounded number of examples per operation. `SCHEMATHESIS_SEED=<n>` runs
 * with that seed instead (random exploration, to look for new failures; a failure it finds is
 * replayed by the same seed); `SCHEMATHESIS_EXAMPLES=<n>` changes the bound.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { describeWithBinary } from '../helpers/binaries.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { obtainTokens, registerClient } from '../helpers/oauth-flow.js';
import { faultConfig, RESOURCE, RESOURCE_HOST, RESOURCE_PATH } from './fault-service.js';

const SPEC = path.resolve('docs/openapi.yaml');
const EXAMPLES = Number(process.env.SCHEMATHESIS_EXAMPLES ?? 25);
const SEED = process.env.SCHEMATHESIS_SEED;

/**
 * What is checked. Left out: `positive_data_acceptance` (a well-formed token request with a
 * made-up code is rightly refused), `unsupported_method` (an undeclared method is `404` here,
 * never `405`: nothing is allowed by it either), `ignored_auth` and the object-level ones (the
 * pages answer a missing session with a sign-in redirect, by design).
 */
const CHECKS = [
  'not_a_server_error',
  'status_code_conformance',
  'content_type_conformance',
  'response_schema_conformance',
  'response_headers_conformance',
  'negative_data_rejection',
  'missing_required_header',
].join(',');

/**
 * Refusals that count as refusals for invalid input: schemathesis' defaults, plus 411 and 413
 * (a body without a length, or too large, is refused before it is read), and without 5xx.
 */
const CONFIG_BASE = `
[checks]
negative_data_rejection = { expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "411", "413", "415", "422", "428", "429"] }
`;

/** `/verify` as the trusted proxy asks it about the resource, with a valid token. */
const CONFIG_WITH_TOKEN = `${CONFIG_BASE}
[auth.openapi.bearerToken]
bearer = "\${MCPGW_FUZZ_TOKEN}"

[parameters]
"header.X-Forwarded-Proto" = "http"
"header.X-Forwarded-Host" = "${RESOURCE_HOST}"
"header.X-Forwarded-Uri" = "${RESOURCE_PATH}"
`;

interface RunResult {
  code: number | null;
  output: string;
}

describeWithBinary(
  'schemathesis',
  'schemathesis against docs/openapi.yaml (service as a process)',
  () => {
    let gw: GatewayProcess;
    let dir: string;
    let accessToken: string;

    beforeAll(async () => {
      gw = await startGatewayProcess((issuer, port, dataDir) => faultConfig(issuer, port, dataDir));
      const client = await registerClient(gw.url);
      const { token } = await obtainTokens(gw.url, { client, resource: RESOURCE });
      expect(token.status).toBe(200);
      accessToken = String(token.body.access_token);
      // schemathesis keeps a cache in its working directory: a directory of the test's own.
      dir = await mkdtemp(path.join(tmpdir(), 'mcpgw-schemathesis-'));
    }, 60_000);
    afterAll(async () => {
      await gw?.stop();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    async function schemathesis(
      name: string,
      config: string,
      {
        examples,
        args = [],
        env = {},
      }: { examples: number; args?: string[]; env?: Record<string, string> },
    ): Promise<RunResult> {
      const configFile = path.join(dir, `${name}.toml`);
      await writeFile(configFile, config);
      const reproducibility = SEED ? ['--seed', SEED] : ['--generation-deterministic'];
      const child = spawn(
        'schemathesis',
        [
          '--config-file',
          configFile,
          'run',
          SPEC,
          '--url',
          gw.url,
          '--checks',
          CHECKS,
          '--max-examples',
          String(examples),
          ...reproducibility,
          '--max-redirects',
          '0',
          '--request-timeout',
          '10',
          '--workers',
          '2',
          '--no-color',
          ...args,
        ],
        {
          cwd: dir,
          env: { ...process.env, NO_COLOR: '1', COLUMNS: '120', ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let output = '';
      child.stdout.on('data', (chunk) => (output += String(chunk)));
      child.stderr.on('data', (chunk) => (output += String(chunk)));
      const code = await new Promise<number | null>((resolve, reject) => {
        child.once('error', reject);
        child.once('close', resolve);
      });
      return { code, output };
    }

    /** `/verify` decisions so far, from the service's own metrics: `allow`, `deny:<reason>`. */
    async function verifyDecisions(): Promise<Record<string, number>> {
      const text = await (await fetch(`${gw.url}/metrics`)).text();
      const counts: Record<string, number> = {};
      for (const match of text.matchAll(
        /^mcp_gateway_verify_decisions_total\{([^}]*)\} (\d+)$/gm,
      )) {
        const labels = Object.fromEntries(
          [...match[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((label) => [label[1], label[2]]),
        );
        const key = labels.result === 'allow' ? 'allow' : `deny:${labels.reason}`;
        counts[key] = (counts[key] ?? 0) + Number(match[2]);
      }
      return counts;
    }

    function diff(before: Record<string, number>, after: Record<string, number>) {
      return Object.fromEntries(
        Object.entries(after)
          .map(([key, value]) => [key, value - (before[key] ?? 0)] as const)
          .filter(([, value]) => value > 0),
      );
    }

    /**
     * One line on success (operations tested, test cases, warnings); the whole report on
     * failure. schemathesis' own summary ends on a pytest-style `=== N warnings in Ns ===`
     * line, which log readers that count tests take for a pytest run with nothing passed, so
     * its rules of `=` are never printed as they are.
     */
    function report(name: string, { code, output }: RunResult): void {
      if (code === 0) {
        const tested = /Tested:\s*(\d+)/.exec(output)?.[1] ?? '?';
        const cases = /(\d+) generated/.exec(output)?.[1] ?? '?';
        // The warnings' own wording ("Authentication failed: …") is kept out too; their details stay.
        const warnings = [...output.matchAll(/⚠️[^:\n]*:\s*([^\n]+)/g)].map((m) => m[1]!.trim());
        console.log(
          `schemathesis ${name}: ${tested} operations, ${cases} generated cases, none failing` +
            (warnings.length ? `; warnings: ${warnings.join('; ')}` : ''),
        );
        return;
      }
      console.log(
        `schemathesis ${name} (exit ${code}):\n${output.slice(-30_000).replace(/={3,}/g, '---')}`,
      );
    }

    it('the description is valid OpenAPI (the OpenAPI 3.1 meta-schema schemathesis ships)', async () => {
      const check = spawn(
        'python3',
        [
          '-c',
          'import sys, schemathesis; schemathesis.openapi.from_path(sys.argv[1]).validate()',
          SPEC,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let output = '';
      check.stdout.on('data', (chunk) => (output += String(chunk)));
      check.stderr.on('data', (chunk) => (output += String(chunk)));
      const code = await new Promise<number | null>((resolve) => check.once('close', resolve));
      expect({ code, output: output.trim().split('\n').slice(-8).join('\n') }).toEqual({
        code: 0,
        output: '',
      });
    });

    it('finds no 5xx, undocumented answer or accepted bad input, without credentials', async () => {
      const result = await schemathesis('anonymous', CONFIG_BASE, { examples: EXAMPLES });
      report('without credentials', result);
      expect(result.code).toBe(0);
      expect(result.output).toMatch(/\d+ generated, \d+ passed/);
    }, 240_000);

    it('finds none on /verify with a valid token for the resource', async () => {
      const before = await verifyDecisions();
      const result = await schemathesis('verify-with-token', CONFIG_WITH_TOKEN, {
        examples: EXAMPLES * 4,
        args: ['--include-path', '/verify'],
        env: { MCPGW_FUZZ_TOKEN: accessToken },
      });
      report('/verify with a token', result);
      expect(result.code).toBe(0);
      expect(result.output).toMatch(/\d+ generated, \d+ passed/);
      // The run reached the decisions after the token: requests were allowed, and refused
      // for what they carried, not only for the token.
      const after = await verifyDecisions();
      console.log(`/verify decisions during the token run: ${JSON.stringify(diff(before, after))}`);
      expect((after.allow ?? 0) - (before.allow ?? 0)).toBeGreaterThan(0);
      const refusedAfterToken = Object.entries(diff(before, after)).filter(
        ([reason]) =>
          !['allow', 'deny:no_token', 'deny:untrusted_proxy'].includes(reason) &&
          !reason.includes('token'),
      );
      expect(refusedAfterToken.length).toBeGreaterThan(0);
    }, 240_000);

    it('left the process alive and healthy, with no server error logged', async () => {
      expect(gw.child.exitCode).toBeNull();
      expect(gw.child.signalCode).toBeNull();
      expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
      const output = gw.output();
      expect(output).not.toMatch(/uncaught|unhandled|FATAL|heap out of memory/i);
      expect(output.split('\n').filter((line) => line.includes('"level":"error"'))).toEqual([]);
    });
  },
);
