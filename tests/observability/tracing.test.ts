/**
 * OpenTelemetry traces: with `tracing.enabled`, spans for authorize, token, registration
 * and `/verify` reach an OTLP/HTTP receiver (a plain HTTP server here, reading the JSON the
 * exporter sends); without it, nothing is sent and the SDK is not loaded.
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { obtainTokens, registerClient } from '../helpers/oauth-flow.js';
import { pollUntil } from '../helpers/poll.js';
import { closeServer, listenOnFreePort } from '../helpers/ports.js';
import { verifyStatus } from '../helpers/provider-login.js';

const RESOURCE = 'http://localhost:3999/mcp';

interface ReceivedSpan {
  name: string;
  attributes: Record<string, unknown>;
}

describe('tracing', () => {
  let receiver: Server;
  let endpoint: string;
  const spans: ReceivedSpan[] = [];
  let gw: RunningGateway;

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        const payload = JSON.parse(body) as {
          resourceSpans: {
            scopeSpans: {
              spans: {
                name: string;
                attributes: { key: string; value: Record<string, unknown> }[];
              }[];
            }[];
          }[];
        };
        for (const resourceSpan of payload.resourceSpans) {
          for (const scope of resourceSpan.scopeSpans) {
            for (const span of scope.spans) {
              spans.push({
                name: span.name,
                attributes: Object.fromEntries(
                  span.attributes.map((a) => [a.key, Object.values(a.value)[0]]),
                ),
              });
            }
          }
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    const port = await listenOnFreePort(receiver);
    endpoint = `http://127.0.0.1:${port}/v1/traces`;
    gw = await startGateway(() => ({ tracing: { enabled: true, endpoint } }));
  });

  afterAll(async () => {
    await gw?.stop(); // flushes the last batch
    await closeServer(receiver);
  });

  it('exports spans for authorize, token, registration and /verify decisions', async () => {
    const client = await registerClient(gw.url);
    const { token } = await obtainTokens(gw.url, { client, resource: RESOURCE });
    const accessToken = (token.body as { access_token: string }).access_token;
    expect(await verifyStatus(gw.url, RESOURCE, accessToken)).toBe(200);
    expect(await verifyStatus(gw.url, RESOURCE, 'bad')).toBe(401);

    const names = () => new Set(spans.map((span) => span.name));
    await pollUntil(
      () => [...names()],
      (seen) =>
        ['oauth.authorize', 'oauth.token', 'oauth.register', 'verify'].every((n) =>
          seen.includes(n),
        ),
      { what: 'the spans of every endpoint', timeoutMs: 10_000, intervalMs: 100 },
    );
    const verifySpans = spans.filter((span) => span.name === 'verify');
    expect(verifySpans.map((span) => span.attributes['mcp_gateway.decision']).sort()).toEqual(
      expect.arrayContaining(['allow', 'deny']),
    );
    expect(
      verifySpans.find((s) => s.attributes['mcp_gateway.decision'] === 'deny')?.attributes,
    ).toMatchObject({
      'mcp_gateway.reason': 'malformed',
      'mcp_gateway.resource': RESOURCE,
      'http.response.status_code': 401,
    });
    // No token ever becomes an attribute.
    expect(JSON.stringify(spans)).not.toContain(accessToken.slice(0, 24));
  });
});
