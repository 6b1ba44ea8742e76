/**
 * The page a person sees when the gateway cannot use an application's Client ID Metadata
 * Document (src/oauth/client-document-help.ts): the document's URL, why it could not be
 * fetched, what an administrator can change, and what to do meanwhile. Each failure is made for
 * real: a host that does not resolve, a private address, a certificate from an untrusted CA, a
 * 404, a body that is not JSON, a host the configuration refuses.
 */
import { createServer, type Server } from 'node:https';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { authorizeUrl, LOOPBACK_REDIRECT, pkcePair } from '../helpers/oauth-flow.js';
import { listenOnFreePort } from '../helpers/ports.js';
import { createTestCa, type TestCa } from '../helpers/test-ca.js';
import { TestUserAgent } from '../helpers/user-agent.js';

const RESOURCE = 'http://localhost:3999/mcp';

/** The error page's text: tags removed, whitespace collapsed. */
async function pageFor(gw: RunningGateway, clientId: string) {
  const page = await new TestUserAgent().follow(
    authorizeUrl(gw.url, { clientId, resource: RESOURCE, codeChallenge: pkcePair().challenge }),
    (url) => url.href.startsWith(LOOPBACK_REDIRECT),
  );
  const main = /<main>([\s\S]*)<\/main>/.exec(page.body)?.[1] ?? '';
  const text = main
    .replace(/<[^>]+>/g, '')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ')
    .trim();
  return { status: page.status, text };
}

describe('the page for a client metadata document the gateway cannot use', () => {
  let ca: TestCa;
  let documents: Server;
  let host: string;
  /** Accepts connections and never answers: a destination whose packets are dropped. */
  let silent: ReturnType<typeof createTcpServer>;
  const held: Socket[] = [];
  let silentHost: string;
  let gw: RunningGateway;

  beforeAll(async () => {
    ca = await createTestCa();
    documents = createServer({ cert: ca.cert, key: ca.key }, (req, res) => {
      if (req.url === '/broken.json') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"client_id": ');
        return;
      }
      res.writeHead(404).end();
    });
    host = `localhost:${await listenOnFreePort(documents)}`;
    silent = createTcpServer((socket) => void held.push(socket));
    silentHost = `localhost:${await listenOnFreePort(silent)}`;
    gw = await startGateway(() => ({
      tls: { caFiles: [ca.caFile] },
      // chatgpt.com refused by configuration: no test here depends on reaching it or not.
      registration: {
        cimd: {
          allowHosts: [host, silentHost],
          denyHosts: ['denied.example.com', 'chatgpt.com'],
        },
      },
    }));
  });

  afterAll(async () => {
    await gw?.stop();
    await new Promise((resolve) => documents?.close(resolve));
    for (const socket of held) socket.destroy();
    await new Promise((resolve) => silent?.close(resolve));
    await ca?.cleanup();
  });

  it('names the document, the failure, the fix and the DCR alternative when the host does not resolve', async () => {
    // `.invalid` never resolves (RFC 6761): what a gateway without DNS to chatgpt.com sees.
    const { status, text } = await pageFor(gw, 'https://codex.invalid/oauth/codex/client.json');
    expect(status).toBe(400);
    expect(text).toContain(
      'invalid_client: client_id metadata document fetch failed This application identifies itself with a client metadata document at https://codex.invalid/oauth/codex/client.json, which the gateway could not fetch: the gateway cannot resolve the host name codex.invalid',
    );
    expect(text).toContain(
      'For an administrator: The gateway must be able to reach codex.invalid over HTTPS (outbound port 443, with DNS). A document served inside the company network also needs its host listed in registration.cimd.allowHosts.',
    );
    expect(text).toContain(
      'Meanwhile, the application can register itself with the gateway instead (dynamic client registration), if it offers that.',
    );
    // The Codex flag is offered for Codex's own documents only.
    expect(text).not.toContain('Codex CLI');
  });

  it("offers the Codex CLI its flag for Codex's own document host", async () => {
    const { text } = await pageFor(gw, 'https://chatgpt.com/oauth/codex/client.json');
    expect(text).toContain(
      'Codex CLI: codex mcp login <server name> --oauth-client-registration dcr.',
    );
  });

  it('tells an administrator about allowHosts for a private address', async () => {
    const { text } = await pageFor(gw, 'https://127.0.0.1:9/client.json');
    expect(text).toContain(
      'which the gateway could not fetch: 127.0.0.1 is a private or local address, which the gateway fetches client documents from only when told to.',
    );
    expect(text).toContain(
      'For an administrator: If this host is trusted, list 127.0.0.1:9 in registration.cimd.allowHosts',
    );
  });

  it('says when the host does not answer (oidc-provider waits 2.5 s)', async () => {
    const { text } = await pageFor(gw, `https://${silentHost}/client.json`);
    expect(text).toContain(
      `which the gateway could not fetch: ${silentHost} did not answer in time.`,
    );
    expect(text).toContain(`The gateway must be able to reach ${silentHost} over HTTPS`);
  });

  it('names the status a document host answered', async () => {
    const { text } = await pageFor(gw, `https://${host}/missing.json`);
    expect(text).toContain(`which the gateway could not fetch: ${host} answered HTTP 404`);
  });

  it('says when what came back is not a JSON document', async () => {
    const { text } = await pageFor(gw, `https://${host}/broken.json`);
    expect(text).toContain(
      `which the gateway could not fetch: what ${host} answered is not a JSON document.`,
    );
  });

  it('points at tls.caFiles when the certificate cannot be verified', async () => {
    const untrusting = await startGateway(() => ({
      registration: { cimd: { allowHosts: [host] } },
    }));
    try {
      const { text } = await pageFor(untrusting, `https://${host}/missing.json`);
      expect(text).toMatch(new RegExp(`the certificate of ${host} could not be verified \\(\\w+`));
      expect(text).toContain('A certificate from a private CA needs that CA in tls.caFiles.');
    } finally {
      await untrusting.stop();
    }
  });

  it('names the settings that refuse a host', async () => {
    const { text } = await pageFor(gw, 'https://denied.example.com/client.json');
    expect(text).toContain(
      'client metadata document at https://denied.example.com/client.json, which this gateway does not accept.',
    );
    expect(text).toContain('refused by registration.cimd (denyHosts, onlyHosts), await approval');
    expect(text).toContain('mcp-gateway clients approve-host denied.example.com');
  });

  it('does not suggest dynamic registration where the gateway refuses it', async () => {
    const noDcr = await startGateway(() => ({
      registration: { dcr: { enabled: false }, cimd: { denyHosts: ['chatgpt.com'] } },
    }));
    try {
      const { text } = await pageFor(noDcr, 'https://chatgpt.com/oauth/codex/client.json');
      expect(text).toContain('only an administrator can fix this');
      expect(text).not.toContain('--oauth-client-registration dcr');
    } finally {
      await noDcr.stop();
    }
  });

  it('leaves other authorization errors as they were', async () => {
    const { text } = await pageFor(gw, 'no-such-client');
    expect(text).toContain('invalid_client');
    expect(text).not.toContain('client metadata document at');
  });
});
