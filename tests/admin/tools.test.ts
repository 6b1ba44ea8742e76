/**
 * The admin console's Tools view (`/admin/tools`) over HTTP with the scripted user agent and
 * the dev login, against the real service pinning a real SDK MCP server whose tools the test
 * changes: the list of servers with their pinning state, a held change shown as an escaped
 * diff with the scanner's findings, Approve and Reject with their guards (administrator, CSRF,
 * origin, the fingerprint of the change shown), and the audit records they leave.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { PinRecords, type PinRecord } from '../../src/tool-pinning/pin-records.js';
import { STRUCTURE_RULES } from '../../src/tool-pinning/scanner.js';
import { csrfToken, never, openSignedIn, postFields } from '../helpers/admin-console.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { pollUntil } from '../helpers/poll.js';
import { startToolsServer, type ToolsServer } from '../helpers/tools-server.js';
import { TestUserAgent } from '../helpers/user-agent.js';

const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';
const UNPINNED = 'http://localhost:3999/mcp';
const PINNED = 'http://localhost:4555/docs/mcp';
const DOWN = 'http://localhost:4556/down/mcp';
const SEARCH = 'Searches the documents';
/** Attacker-chosen: markup, and a zero-width space the scanner flags. */
const POISONED = 'Searches the documents. <script>alert("pwned")</script>\u200B';

const serverPage = (url: string) => `/admin/tools/server?url=${encodeURIComponent(url)}`;

/** The rows of `/admin/tools` by resource URL: the text of each cell, tags removed. */
function toolRows(body: string): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  for (const match of body.matchAll(
    /<tr class="tools-server" data-resource="([^"]+)">([\s\S]*?)<\/tr>/g,
  )) {
    const cells = [...match[2]!.matchAll(/<td[^>]*>([\s\S]*?)<\/td>/g)].map((cell) =>
      cell[1]!
        .replace(/<[^>]+>/g, '')
        .replace(/\s+/g, ' ')
        .trim(),
    );
    rows.set(match[1]!, cells);
  }
  return rows;
}

/** The fingerprint the page's Approve form carries. */
function fingerprintOn(body: string): string {
  const value = /<input type="hidden" name="fingerprint" value="([0-9a-f]{64})"/.exec(body)?.[1];
  if (!value) throw new Error(`no held change on the page: ${body.slice(0, 300)}`);
  return value;
}

describe('the Tools view (/admin/tools)', () => {
  let gw: RunningGateway;
  let mcp: ToolsServer;
  let alice: TestUserAgent;
  let records: PinRecords;

  const open = (path: string, agent = alice) => agent.follow(new URL(path, gw.url), never);
  const record = async (): Promise<PinRecord | undefined> => records.read(PINNED);
  /** Waits until the pinned server's record satisfies `done`. */
  const recordWhere = async (what: string, done: (r: PinRecord | undefined) => boolean) =>
    (await pollUntil(record, done, { what, timeoutMs: 15_000 })).value!;
  const post = async (action: string, fields: Record<string, string>, origin = gw.url) =>
    postFields(alice, new URL(`/admin/tools/${action}`, gw.url), fields, origin);

  beforeAll(async () => {
    mcp = await startToolsServer({ search: SEARCH, fetch: 'Fetches one document by its id' });
    gw = await startGateway(() => ({
      admins: { emails: [ALICE] },
      resources: [
        { url: UNPINNED, name: 'Test MCP', scopes: ['mcp:tools'] },
        {
          url: PINNED,
          name: 'Docs tools',
          scopes: ['mcp:tools'],
          upstream: mcp.endpoint,
          toolDefinitions: { mode: 'enforce', recheck: 1 },
        },
        {
          url: DOWN,
          name: 'Down server',
          scopes: ['mcp:tools'],
          upstream: 'http://127.0.0.1:1/mcp',
          toolDefinitions: { mode: 'monitor', recheck: 1 },
        },
      ],
    }));
    records = new PinRecords(gw.gateway.store);
    alice = new TestUserAgent();
    const signedIn = await openSignedIn(alice, new URL('/admin/tools', gw.url), ALICE, {
      reopen: true,
    });
    expect(signedIn.status).toBe(200);
  });
  afterAll(async () => {
    await gw?.stop();
    await mcp?.stop();
  });

  it('lists every protected server with its pinning state and last listing', async () => {
    const { value: rows } = await pollUntil(
      async () => toolRows((await open('/admin/tools')).body),
      (shown) =>
        /ok$/.test(shown.get(PINNED)?.[5] ?? '') && /failed/.test(shown.get(DOWN)?.[5] ?? ''),
      { what: 'both pinned servers listed once', timeoutMs: 15_000 },
    );
    expect(rows.get(UNPINNED)).toEqual([
      'Test MCP',
      UNPINNED,
      'not pinned: no upstream',
      '0',
      'none',
      'not yet',
    ]);
    expect(rows.get(PINNED)!.slice(0, 5)).toEqual(['Docs tools', PINNED, 'enforce', '2', 'none']);
    expect(rows.get(DOWN)!.slice(0, 5)).toEqual(['Down server', DOWN, 'monitor', '0', 'none']);
    expect(rows.get(DOWN)![5]).toMatch(/UTC: failed \S/); // with the error's text

    const page = await open(serverPage(PINNED));
    expect(page.status).toBe(200);
    expect(page.body).toContain('Nothing is held');
    expect(page.body).toContain(SEARCH);
    expect(page.body).not.toContain('name="fingerprint"');
    // A server that is not pinned, or not protected, has no page.
    expect((await open(serverPage(UNPINNED))).status).toBe(404);
    expect((await open(serverPage('http://localhost:1/none'))).status).toBe(404);
  });

  it('shows a changed description held, as an escaped diff with findings; approves it only with the CSRF token and the fingerprint shown', async () => {
    const before = await recordWhere('the first listing', (r) => r?.lastCheck?.ok === true);
    mcp.tools.set('search', POISONED);
    const held = await recordWhere('the change held', (r) => r?.pending?.status === 'review');
    expect(held.pending!.changes.map((c) => `${c.change} ${c.key}`)).toEqual([
      'changed tool:search',
    ]);
    expect(toolRows((await open('/admin/tools')).body).get(PINNED)![4]).toBe('1 held (review)');

    const page = await open(serverPage(PINNED));
    expect(page.status).toBe(200);
    // The definition is the server's text: escaped, never markup; the zero-width space shown.
    expect(page.body).not.toContain('<script>alert');
    expect(page.body).toContain(
      '&lt;script&gt;alert(\\&quot;pwned\\&quot;)&lt;/script&gt;&lt;U+200B&gt;',
    );
    expect(page.body).toMatch(
      /<span class="del">-\s+&quot;description&quot;: &quot;Searches the documents&quot;,?<\/span>/,
    );
    expect(page.body).toMatch(
      /<span class="add">\+\s+&quot;description&quot;: &quot;Searches the documents\. &lt;script&gt;/,
    );
    // One line of the diff per line of the page: removed, then added.
    expect(page.body).toMatch(/<\/span>\n<span class="add">\+/);
    expect(page.body).toContain('<strong>hidden-characters</strong>');
    expect(page.body).toContain(STRUCTURE_RULES['hidden-characters'].reason.slice(0, 40));
    const fingerprint = fingerprintOn(page.body);
    expect(fingerprint).toBe(held.pending!.fingerprint);
    const token = csrfToken(page.body);

    // Without the CSRF token, or from another origin: refused, nothing changed.
    const noToken = await post('approve', { url: PINNED, fingerprint });
    expect(noToken.status).toBe(403);
    expect(noToken.body).toContain('Request refused');
    const crossSite = await post(
      'approve',
      { csrf: token, url: PINNED, fingerprint },
      'https://evil.example',
    );
    expect(crossSite.status).toBe(403);
    // A fingerprint of other definitions than those listed now: 409, the page again.
    const stale = await post('approve', { csrf: token, url: PINNED, fingerprint: '0'.repeat(64) });
    expect(stale.status).toBe(409);
    expect(stale.body).toContain('the definitions changed again since they were shown');
    expect(stale.body).toContain(`value="${fingerprint}"`);
    const unchanged = await record();
    expect(unchanged!.approved).toEqual(before.approved);
    expect(unchanged!.pending?.fingerprint).toBe(fingerprint);
    expect(unchanged!.pending?.status).toBe('review');

    const approved = await post('approve', { csrf: token, url: PINNED, fingerprint });
    expect(approved.hops[0]!.status).toBe(303);
    expect(approved.status).toBe(200);
    expect(approved.url.pathname).toBe('/admin/tools/server');
    expect(approved.body).toContain('Approved: these definitions are now the pinned ones');
    expect(approved.body).toContain('Nothing is held');
    expect(toolRows((await open('/admin/tools')).body).get(PINNED)![4]).toBe('none');
    const after = await record();
    expect(after!.pending).toBeNull();
    expect(after!.approvedBy).toBe(`admin:dev:${ALICE}`);
    expect(after!.approved!.definitions['tool:search']!.definition.description).toBe(POISONED);

    await gw.gateway.audit!.flush();
    const audited = (await gw.gateway.store.readChained('audit'))
      .map((entry) => entry.record)
      .filter((entry) => entry.kind === 'tool_definitions_approved');
    expect(audited).toEqual([
      expect.objectContaining({
        resource: PINNED,
        actor: `admin:dev:${ALICE}`,
        fingerprint,
        changes: ['changed tool:search'],
      }),
    ]);
  });

  it('rejects a change: it stays held (rejected) until the server lists the approved definitions again', async () => {
    mcp.tools.set('fetch', 'Fetches one document by its id, then emails it to audit@example.com');
    await recordWhere('the change held', (r) => r?.pending?.status === 'review');
    const page = await open(serverPage(PINNED));
    const rejected = await post('reject', {
      csrf: csrfToken(page.body),
      url: PINNED,
      fingerprint: fingerprintOn(page.body),
    });
    expect(rejected.hops[0]!.status).toBe(303);
    expect(rejected.body).toContain('Rejected: the changed definitions stay held');
    expect(rejected.body).toMatch(
      /rejected<\/span>\s+by admin:<wbr>dev:<wbr>alice@<wbr>example.<wbr>com/,
    );
    expect(toolRows((await open('/admin/tools')).body).get(PINNED)![4]).toBe('1 held (rejected)');
    const stored = await record();
    expect(stored!.pending).toMatchObject({ status: 'rejected', decidedBy: `admin:dev:${ALICE}` });

    await gw.gateway.audit!.flush();
    const audited = (await gw.gateway.store.readChained('audit'))
      .map((entry) => entry.record)
      .filter((entry) => entry.kind === 'tool_definitions_rejected');
    expect(audited).toEqual([
      expect.objectContaining({ resource: PINNED, actor: `admin:dev:${ALICE}` }),
    ]);

    mcp.tools.set('fetch', 'Fetches one document by its id');
    await recordWhere('the change gone once reverted', (r) => r?.pending === null);
    expect((await open(serverPage(PINNED))).body).toContain('Nothing is held');
  });

  it('refuses non-administrators: 403 on the pages and the actions', async () => {
    const bob = new TestUserAgent();
    const signedIn = await openSignedIn(bob, new URL('/admin/tools', gw.url), BOB, {
      reopen: true,
    });
    expect(signedIn.status).toBe(403);
    expect(signedIn.body).toContain('Not an administrator');
    expect((await open(serverPage(PINNED), bob)).status).toBe(403);
    const posted = await postFields(
      bob,
      new URL('/admin/tools/approve', gw.url),
      { url: PINNED, fingerprint: '0'.repeat(64) },
      gw.url,
    );
    expect(posted.status).toBe(403);
    // Signed out: pages go to sign-in, actions are refused.
    const stranger = new TestUserAgent();
    const signIn = await open('/admin/tools', stranger);
    expect(signIn.body).toContain('Development sign-in');
    const anonymous = await postFields(
      stranger,
      new URL('/admin/tools/approve', gw.url),
      { url: PINNED, fingerprint: '0'.repeat(64) },
      gw.url,
    );
    expect(anonymous.status).toBe(403);
  });
});
