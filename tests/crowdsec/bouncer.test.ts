/**
 * CrowdSec enforcing, live (bouncer-stack.ts): the real auth service behind the real Traefik,
 * the real CrowdSec (Debian's 1.4.6) tailing the service's security events and Traefik's access
 * log with the project's acquisition, parser, scenarios and profiles, and the CrowdSec bouncer
 * plugin running inside Traefik in the shipped `crowdsec` middleware, with the shipped settings
 * (stream mode, its interval, fail-closed) and only addresses changed.
 *
 * Each client is its own loopback address, which Traefik sees as the connection's peer: a token
 * scanner (security events → mcp-gateway/token-scanning), a scanner's user agent (Traefik's
 * access log → crowdsecurity/http-bad-user-agent) and a well-behaved client.
 *
 * Without the plugin's source (scripts/install-crowdsec-bouncer-plugin.sh; the Go module proxy
 * of this workplace does not serve it) the tests of Traefik's answers are skipped with the
 * reason, and the rest runs: the bans reach the decision stream the plugin pulls.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import { describeWithBinary } from '../helpers/binaries.js';
import { eventually } from '../helpers/poll.js';
import { TRAEFIK_DYNAMIC_FILE } from '../helpers/traefik.js';
import { bouncerPluginSource } from './bouncer-plugin.js';
import { startBouncerStack, type BouncerStack } from './bouncer-stack.js';
import { durationHours, type Decision } from './crowdsec.js';

/** The shipped plugin settings the timings below follow. */
const SHIPPED = (
  parse(readFileSync(TRAEFIK_DYNAMIC_FILE, 'utf8')) as {
    http: { middlewares: { crowdsec: { plugin: { bouncer: Record<string, unknown> } } } };
  }
).http.middlewares.crowdsec.plugin.bouncer;
const INTERVAL_MS = Number(SHIPPED.updateIntervalSeconds) * 1000;
/** Failed updates tolerated before every request is refused (the plugin's default is 0). */
const MAX_FAILURE = Number(SHIPPED.updateMaxFailure ?? 0);
/** An update's own time (connection refused is immediate) and the polls' granularity. */
const SLACK_MS = 5_000;

const CLIENT = { scanner: '127.0.0.50', badAgent: '127.0.0.60', good: '127.0.0.70' };
/** A user agent on the hub's list (Debian's /usr/share/crowdsec/data/bad_user_agents.regex.txt). */
const BAD_AGENT = 'Nikto/2.5.0';

const PLUGIN = bouncerPluginSource();
const pluginDir = 'dir' in PLUGIN ? PLUGIN.dir : undefined;
if (!pluginDir && 'missing' in PLUGIN) {
  console.warn(`Skipping the tests of the CrowdSec bouncer plugin in Traefik: ${PLUGIN.missing}`);
}
/** A test that needs the plugin inside Traefik. */
const itInTraefik = pluginDir ? it : it.skip;

const forged = (n: number) =>
  `eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.${n.toString(16).padStart(8, '0')}`;

describeWithBinary('crowdsec', 'CrowdSec enforcing through Traefik', () => {
  describeWithBinary('traefik', 'live CrowdSec, the bouncer plugin in the real Traefik', () => {
    let stack: BouncerStack;
    /** Whoever calls {@link reached} counts what got through to the MCP server or AppSec. */
    const reached = (server: 'backend' | 'appsec', address: string) =>
      server === 'backend'
        ? stack.backend.requests.filter((r) => r.headers['x-forwarded-for'] === address).length
        : stack.appsec.requests.filter((r) => r.headers['x-crowdsec-appsec-ip'] === address).length;
    const context = () =>
      `CrowdSec:\n${stack.crowdsec.output()}\nTraefik:\n${stack.traefik.output()}\n` +
      `security events:\n${readFileSync(stack.eventsFile, 'utf8')}`;

    beforeAll(async () => {
      stack = await startBouncerStack(pluginDir);
    }, 120_000);

    afterAll(async () => {
      await stack?.stop();
    });

    it('bans the token scanner and the bad user agent from the live logs, not the good client', async () => {
      // The scanner tries 20 tokens while the good client works; once the plugin has the ban
      // the scanner's answer turns from 401 (the auth service) to 403 (Traefik).
      for (let attempt = 0; attempt < 20; attempt += 1) {
        const [scan, good] = await Promise.all([
          stack.mcpCall(CLIENT.scanner, forged(attempt)),
          stack.mcpCall(CLIENT.good, stack.token),
        ]);
        expect([401, 403]).toContain(scan.status);
        expect(good.status).toBe(200);
      }
      for (let attempt = 0; attempt < 3; attempt += 1) {
        const answer = await stack.authCall(CLIENT.badAgent, { 'user-agent': BAD_AGENT });
        expect([200, 403]).toContain(answer.status);
      }

      let decisions: Decision[] = [];
      const banned = await eventually(
        async () => {
          decisions = (await stack.crowdsec.stream(true)).new;
          const values = decisions.map((decision) => decision.value);
          return values.includes(CLIENT.scanner) && values.includes(CLIENT.badAgent);
        },
        20_000,
        200,
      );
      if (!banned) throw new Error(`bans missing: ${JSON.stringify(decisions)}\n${context()}`);
      const expected = {
        [CLIENT.scanner]: 'mcp-gateway/token-scanning',
        [CLIENT.badAgent]: 'crowdsecurity/http-bad-user-agent',
      };
      for (const [address, scenario] of Object.entries(expected)) {
        const forAddress = decisions.filter((decision) => decision.value === address);
        expect(forAddress).toHaveLength(1);
        expect(forAddress[0]).toMatchObject({ scenario, scope: 'Ip', type: 'ban' });
        // crowdsec/profiles.yaml: 4h for both.
        expect(durationHours(forAddress[0]!.duration)).toBeGreaterThan(3.9);
      }
      expect(decisions.map((decision) => decision.value).sort()).toEqual(
        [CLIENT.scanner, CLIENT.badAgent].sort(),
      );
    }, 60_000);

    itInTraefik(
      'refuses both banned addresses on the MCP host and the auth host, serving the good client meanwhile',
      async () => {
        // The ban reaches Traefik at the plugin's next pull, within the shipped interval.
        const refused = await eventually(
          async () => (await stack.mcpCall(CLIENT.scanner, stack.token)).status === 403,
          INTERVAL_MS + SLACK_MS,
          250,
        );
        if (!refused) throw new Error(`the scanner is still let through\n${context()}`);
        const before = {
          backend: reached('backend', CLIENT.scanner) + reached('backend', CLIENT.badAgent),
          appsec: reached('appsec', CLIENT.scanner) + reached('appsec', CLIENT.badAgent),
          good: reached('appsec', CLIENT.good),
        };
        // At the same time: the banned addresses, even with a valid token, and the good client.
        const answers = await Promise.all([
          stack.mcpCall(CLIENT.scanner, stack.token),
          stack.authCall(CLIENT.scanner),
          stack.mcpCall(CLIENT.badAgent, stack.token),
          stack.authCall(CLIENT.badAgent),
          stack.mcpCall(CLIENT.good, stack.token),
          stack.authCall(CLIENT.good),
        ]);
        expect(answers.map((answer) => answer.status)).toEqual([403, 403, 403, 403, 200, 200]);
        expect(JSON.parse(answers[4]!.body)).toEqual({ backend: 'mcp' });
        expect(JSON.parse(answers[5]!.body)).toHaveProperty('issuer');
        // A ban is decided before AppSec is asked, and nothing reaches the MCP server.
        expect(reached('backend', CLIENT.scanner) + reached('backend', CLIENT.badAgent)).toBe(
          before.backend,
        );
        expect(reached('appsec', CLIENT.scanner) + reached('appsec', CLIENT.badAgent)).toBe(
          before.appsec,
        );
        // The good client's requests were each checked by AppSec, with the plugin's key.
        expect(reached('appsec', CLIENT.good)).toBe(before.good + 2);
        const asked = stack.appsec.requests.at(-1)!;
        expect(asked.headers['x-crowdsec-appsec-api-key']).toBe(
          readFileSync(stack.crowdsec.bouncerKeyFile, 'utf8').trim(),
        );
      },
      INTERVAL_MS + SLACK_MS + 30_000,
    );

    it('`cscli decisions delete --ip` takes the ban out of the decision stream', async () => {
      await stack.crowdsec.stream(false); // the observer's cursor: now
      await stack.crowdsec.cscli('decisions', 'delete', '--ip', CLIENT.scanner);
      const deleted: string[] = [];
      const gone = await eventually(
        async () => {
          deleted.push(...(await stack.crowdsec.stream(false)).deleted.map((d) => d.value));
          return deleted.includes(CLIENT.scanner);
        },
        10_000,
        200,
      );
      expect(gone).toBe(true);
      const active = (await stack.crowdsec.stream(true)).new.map((decision) => decision.value);
      expect(active).toEqual([CLIENT.badAgent]);
    }, 30_000);

    itInTraefik(
      'serves the address again within the stream interval once its decision is deleted',
      async () => {
        const served = await eventually(
          async () => (await stack.mcpCall(CLIENT.scanner, stack.token)).status === 200,
          INTERVAL_MS + SLACK_MS,
          250,
        );
        if (!served) throw new Error(`the deleted ban still holds\n${context()}`);
        expect((await stack.authCall(CLIENT.scanner)).status).toBe(200);
        expect((await stack.mcpCall(CLIENT.badAgent, stack.token)).status).toBe(403);
      },
      INTERVAL_MS + SLACK_MS + 30_000,
    );

    itInTraefik(
      'the Local API unreachable: every request refused after the failed updates tolerated, until it is back',
      async () => {
        await stack.crowdsec.stop();
        // Fail closed: after updateMaxFailure + 1 failed pulls, every address gets 403.
        const closed = await eventually(
          async () => (await stack.mcpCall(CLIENT.good, stack.token)).status === 403,
          (MAX_FAILURE + 1) * INTERVAL_MS + SLACK_MS,
          250,
        );
        if (!closed) throw new Error(`still served with the Local API down\n${context()}`);
        const before = reached('backend', CLIENT.good);
        expect((await stack.authCall(CLIENT.good)).status).toBe(403);
        expect((await stack.mcpCall(CLIENT.scanner, stack.token)).status).toBe(403);
        expect((await stack.mcpCall(CLIENT.good, stack.token)).status).toBe(403);
        expect(reached('backend', CLIENT.good)).toBe(before);

        // Back: the next pull (a full one) reopens, and the remaining ban still holds.
        await stack.crowdsec.start();
        const reopened = await eventually(
          async () => (await stack.mcpCall(CLIENT.good, stack.token)).status === 200,
          INTERVAL_MS + SLACK_MS,
          250,
        );
        if (!reopened) throw new Error(`still refused with the Local API back\n${context()}`);
        expect((await stack.authCall(CLIENT.good)).status).toBe(200);
        expect((await stack.mcpCall(CLIENT.badAgent, stack.token)).status).toBe(403);
      },
      (MAX_FAILURE + 2) * INTERVAL_MS + 2 * SLACK_MS + 60_000,
    );

    itInTraefik(
      'AppSec unreachable: every request refused (fail closed)',
      async () => {
        expect((await stack.mcpCall(CLIENT.good, stack.token)).status).toBe(200);
        const before = reached('backend', CLIENT.good);
        await stack.appsec.stop();
        expect((await stack.mcpCall(CLIENT.good, stack.token)).status).toBe(403);
        expect((await stack.authCall(CLIENT.good)).status).toBe(403);
        expect(reached('backend', CLIENT.good)).toBe(before);
      },
      30_000,
    );
  });
});
