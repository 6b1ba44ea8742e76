/**
 * The admin console's Activity page, feed view (`/admin/activity`): real `/verify` decisions
 * (allowed, refused) and security events of a running gateway appear with the right result,
 * newest first; the filters (resource, user by subject or email, client, result) work and are
 * validated; everything is escaped; no token or tool argument reaches the page or the store;
 * the feed keeps at most `activity.maxEntries` entries.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DECISIONS_KEY, SECURITY_EVENTS_KEY } from '../../src/store/keys.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { ask, feedRows, openPage } from '../helpers/admin-activity.js';
import { obtainTokens, registerClient } from '../helpers/oauth-flow.js';
import { eventually } from '../helpers/poll.js';
import { TestUserAgent } from '../helpers/user-agent.js';

const TOOLS = 'http://localhost:3999/mcp';
const OTHER = 'http://localhost:3998/other';
const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';

describe('admin Activity page: recent decisions and security events', () => {
  let gw: RunningGateway;
  let alice: TestUserAgent;
  let bob: { clientId: string; token: string };
  let aliceApp: { clientId: string; token: string };

  const open = (path: string) => openPage(gw.url, alice, path, ALICE);
  const rows = async (query = '') => feedRows((await open(`/admin/activity${query}`)).body);

  async function connect(user: string, resource: string) {
    const client = await registerClient(gw.url);
    const { token } = await obtainTokens(gw.url, { client, resource, user });
    expect(token.status).toBe(200);
    return { clientId: client.client_id, token: String(token.body.access_token) };
  }

  beforeAll(async () => {
    gw = await startGateway(() => ({
      admins: { emails: [ALICE] },
      resources: [
        {
          url: TOOLS,
          name: 'Tools',
          scopes: ['mcp:tools'],
          tools: { default: 'deny', rules: { echo: {} } },
        },
        { url: OTHER, name: 'Other', scopes: ['mcp:tools'] },
      ],
    }));
    alice = new TestUserAgent();
    bob = await connect(BOB, TOOLS);
    aliceApp = await connect(ALICE, OTHER);
  });
  afterAll(() => gw?.stop());

  it('lists an allowed and a refused decision and a security event, newest first', async () => {
    expect(await ask(gw.url, TOOLS, { token: bob.token, ip: '203.0.113.1' })).toBe(200);
    expect(await ask(gw.url, TOOLS, { token: 'not-a-token', ip: '203.0.113.2' })).toBe(401);

    const page = await open('/admin/activity');
    expect(page.status).toBe(200);
    expect(page.body).toContain('<strong aria-current="page">Decisions and security events');
    const listed = feedRows(page.body);
    const allowed = listed.findIndex((row) => row.ip === '203.0.113.1');
    const refused = listed.findIndex((row) => row.ip === '203.0.113.2' && row.data === 'refused');
    const event = listed.findIndex((row) => row.ip === '203.0.113.2' && row.data === 'security');
    expect(listed[allowed]).toMatchObject({
      result: 'allowed',
      what: '200',
      reason: 'allowed',
      resource: TOOLS,
      subject: `dev:${BOB}`,
      email: BOB,
      client: bob.clientId,
    });
    expect(listed[refused]).toMatchObject({
      result: 'refused',
      what: '401',
      resource: TOOLS,
      subject: '',
    });
    expect(listed[event]).toMatchObject({
      result: 'security event',
      what: 'invalid_token',
      resource: TOOLS,
    });
    expect(refused).toBeLessThan(allowed);
    expect(event).toBeLessThan(allowed);
    const times = listed.map((row) => Date.parse(row.time!.replace(' UTC', 'Z')));
    expect(times).toEqual([...times].sort((a, b) => b - a));
  });

  it('counts identical decisions made within about a second as one entry', async () => {
    const asks = Array.from({ length: 20 }, () =>
      ask(gw.url, TOOLS, { token: bob.token, ip: '203.0.113.20' }),
    );
    expect(await Promise.all(asks)).toEqual(Array(20).fill(200));
    const listed = (await rows()).filter((row) => row.ip === '203.0.113.20');
    // One entry, or two when the feed's one-second write fell among the 20 answers.
    expect(listed.length).toBeGreaterThanOrEqual(1);
    expect(listed.length).toBeLessThanOrEqual(2);
    expect(listed.reduce((sum, row) => sum + Number(row.count), 0)).toBe(20);
    expect(listed[0]).toMatchObject({ result: 'allowed', reason: 'allowed', client: bob.clientId });
  });

  it('shows a refused tool call by name only (escaped), never its arguments or the token', async () => {
    const tool = '<script>alert("x")</script>';
    const secret = 'ARGUMENT-SECRET-4711';
    const status = await ask(gw.url, TOOLS, {
      token: bob.token,
      ip: '203.0.113.3',
      body: {
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: tool, arguments: { password: secret } },
      },
    });
    expect(status).toBe(403);
    const page = await open('/admin/activity?result=refused');
    const row = feedRows(page.body).find((entry) => entry.ip === '203.0.113.3');
    expect(row).toMatchObject({ result: 'refused', reason: 'tool_denied', tool });
    expect(row!.rawTool).toBe('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
    expect(page.body).not.toMatch(/<script/i);
    const events = feedRows((await open('/admin/activity?result=security')).body);
    expect(events).toContainEqual(
      expect.objectContaining({ what: 'tool_denied', tool, subject: `dev:${BOB}` }),
    );
    const stored = JSON.stringify([
      await gw.gateway.store.readRecent(DECISIONS_KEY, 1000),
      await gw.gateway.store.readRecent(SECURITY_EVENTS_KEY, 1000),
    ]);
    for (const text of [page.body, stored]) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain(bob.token);
      expect(text).not.toContain('argumentsHash');
    }
  });

  it('filters by resource, user (subject or email), client and result', async () => {
    expect(await ask(gw.url, OTHER, { token: aliceApp.token, ip: '198.51.100.1' })).toBe(200);
    expect(await ask(gw.url, OTHER, { ip: '198.51.100.2' })).toBe(401);
    expect(await ask(gw.url, TOOLS, { token: bob.token, ip: '198.51.100.3' })).toBe(200);

    const all = await rows();
    const byResource = await rows(`?resource=${encodeURIComponent(OTHER)}`);
    expect(byResource.map((row) => row.ip)).toEqual(
      expect.arrayContaining(['198.51.100.1', '198.51.100.2']),
    );
    expect(new Set(byResource.map((row) => row.resource))).toEqual(new Set([OTHER]));
    expect(byResource.length).toBeLessThan(all.length);

    const bySubject = await rows(`?user=${encodeURIComponent(`dev:${ALICE}`)}`);
    const byEmail = await rows(`?user=${encodeURIComponent(ALICE.toUpperCase())}`);
    expect(bySubject.length).toBeGreaterThan(0);
    expect(byEmail).toEqual(bySubject);
    for (const row of bySubject)
      expect(row).toMatchObject({ subject: `dev:${ALICE}`, email: ALICE });

    const byClient = await rows(`?client=${encodeURIComponent(bob.clientId)}`);
    expect(byClient.map((row) => row.ip)).toContain('198.51.100.3');
    expect(new Set(byClient.map((row) => row.client))).toEqual(new Set([bob.clientId]));

    for (const [result, label] of [
      ['allowed', 'allowed'],
      ['refused', 'refused'],
      ['security', 'security event'],
    ]) {
      const listed = await rows(`?result=${result}`);
      expect(listed.length).toBeGreaterThan(0);
      expect(new Set(listed.map((row) => row.result))).toEqual(new Set([label]));
    }
    const selected = await open('/admin/activity?result=security');
    expect(selected.body).toMatch(/<option value="security" selected>/);

    const combined = await rows(
      `?resource=${encodeURIComponent(OTHER)}&result=refused&client=${encodeURIComponent(bob.clientId)}`,
    );
    expect(combined).toEqual([]);
    const narrowed = await rows(
      `?resource=${encodeURIComponent(TOOLS)}&result=allowed&user=${encodeURIComponent(BOB)}`,
    );
    expect(narrowed.map((row) => row.ip)).toContain('198.51.100.3');
    for (const row of narrowed) {
      expect(row).toMatchObject({ resource: TOOLS, result: 'allowed', email: BOB });
    }
  });

  it('refuses a malformed filter (400) and echoes a hostile one escaped', async () => {
    for (const query of [
      '?result=maybe',
      `?client=${'x'.repeat(2001)}`,
      '?user=a&user=b',
      '?resource=a&resource=b',
    ]) {
      const page = await open(`/admin/activity${query}`);
      expect([query.slice(0, 30), page.status]).toEqual([query.slice(0, 30), 400]);
      expect(page.body).toContain('Bad filter');
    }
    const hostile = await open(
      `/admin/activity?user=${encodeURIComponent('"><script>x')}&client=${encodeURIComponent('<b>')}`,
    );
    expect(hostile.status).toBe(200);
    expect(hostile.body).toContain('value="&quot;&gt;&lt;script&gt;x"');
    expect(hostile.body).toContain('value="&lt;b&gt;"');
    expect(hostile.body).not.toMatch(/<script/i);
    expect(feedRows(hostile.body)).toEqual([]);
    expect(hostile.body).toContain('No matching entry.');
  });

  it('keeps the audit records as the other view', async () => {
    const page = await open('/admin/activity?view=audit');
    expect(page.status).toBe(200);
    expect(page.body).toContain('<strong aria-current="page">Audit records');
    expect(page.body).toContain('<input type="hidden" name="view" value="audit" />');
    expect(page.body).toMatch(/<tr class="record">/);
    expect(feedRows(page.body)).toEqual([]);
  });
});

describe('admin Activity page: bounds and switch', () => {
  it('keeps only the newest activity.maxEntries decisions', async () => {
    const gw = await startGateway(() => ({
      admins: { emails: [ALICE] },
      activity: { maxEntries: 10 },
    }));
    try {
      for (let n = 1; n <= 25; n += 1) {
        expect(await ask(gw.url, TOOLS, { ip: `10.0.0.${n}` })).toBe(401);
      }
      const page = await openPage(gw.url, new TestUserAgent(), '/admin/activity', ALICE);
      const listed = feedRows(page.body);
      expect(listed.map((row) => row.ip)).toEqual(
        Array.from({ length: 10 }, (_, i) => `10.0.0.${25 - i}`),
      );
      expect(listed.every((row) => row.reason === 'no_token')).toBe(true);
      expect(page.body).toContain('keeps the last 10 decisions and the last 10');
      await expect(gw.gateway.store.readRecent(DECISIONS_KEY, 1000)).resolves.toHaveLength(10);
    } finally {
      await gw.stop();
    }
  });

  it('pages both views, 200 a page, keeping the filters; refuses a bad page (400)', async () => {
    const gw = await startGateway(() => ({ admins: { emails: [ALICE] } }));
    const agent = new TestUserAgent();
    const open = (query: string) => openPage(gw.url, agent, `/admin/activity${query}`, ALICE);
    const auditRows = (body: string) => body.match(/<tr class="record">/g)?.length ?? 0;
    try {
      // 205 refused decisions (a bad token: audited, unlike no token), each from its own
      // address so that none is counted into another and no address reaches its failure limit.
      for (let n = 0; n < 205; n += 1) {
        const ip = `10.2.${n >> 8}.${n & 255}`;
        expect(await ask(gw.url, TOOLS, { token: 'not-a-token', ip })).toBe(401);
      }
      const first = await open('?result=refused');
      expect(feedRows(first.body).map((row) => row.ip)).toEqual(
        Array.from({ length: 200 }, (_, i) => `10.2.${(204 - i) >> 8}.${(204 - i) & 255}`),
      );
      expect(first.body).toContain(
        '<a rel="next" href="/admin/activity?result=refused&amp;page=2"',
      );
      expect(first.body).not.toContain('rel="prev"');
      const second = await open('?result=refused&page=2');
      expect(feedRows(second.body).map((row) => row.ip)).toEqual([
        '10.2.0.4',
        '10.2.0.3',
        '10.2.0.2',
        '10.2.0.1',
        '10.2.0.0',
      ]);
      expect(second.body).toContain('<a rel="prev" href="/admin/activity?result=refused"');
      expect(second.body).not.toContain('rel="next"');
      expect(feedRows((await open('?result=refused&page=3')).body)).toEqual([]);

      // The audit view: its records are written in the background, so wait for the last.
      const audit = '?view=audit&kind=verify_denied';
      expect(
        await eventually(async () => auditRows((await open(`${audit}&page=2`)).body) === 5, 5000),
      ).toBe(true);
      const auditFirst = await open(audit);
      expect(auditRows(auditFirst.body)).toBe(200);
      expect(auditFirst.body).toContain(
        '<a rel="next" href="/admin/activity?view=audit&amp;kind=verify_denied&amp;page=2"',
      );

      for (const bad of [
        '?page=0',
        '?page=x',
        '?page=10001',
        '?page=1&page=2',
        `${audit}&page=-1`,
      ]) {
        expect([bad, (await open(bad)).status]).toEqual([bad, 400]);
      }
    } finally {
      await gw.stop();
    }
  });

  it('says so, and records nothing, with activity.enabled: false', async () => {
    const gw = await startGateway(() => ({
      admins: { emails: [ALICE] },
      activity: { enabled: false },
    }));
    try {
      expect(await ask(gw.url, TOOLS, { ip: '10.0.1.1' })).toBe(401);
      const page = await openPage(gw.url, new TestUserAgent(), '/admin/activity', ALICE);
      expect(page.status).toBe(200);
      expect(page.body).toContain('The activity feed is off (activity.enabled: false).');
      expect(feedRows(page.body)).toEqual([]);
      await expect(gw.gateway.store.readRecent(DECISIONS_KEY, 10)).resolves.toEqual([]);
    } finally {
      await gw.stop();
    }
  });
});
