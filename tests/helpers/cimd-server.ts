/**
 * A published Client ID Metadata Document over https (certificate from a test CA): a public
 * client whose id is the document's URL, redirecting to the loopback redirect URI.
 */
import { createServer } from 'node:https';
import { LOOPBACK_REDIRECT } from './oauth-flow.js';
import { listenOnFreePort } from './ports.js';
import type { TestCa } from './test-ca.js';

export interface CimdServer {
  /** `localhost:<port>`: what `registration.cimd.allowHosts` lists. */
  host: string;
  /** The client id: the document's URL. */
  clientId: string;
  stop(): Promise<void>;
}

/**
 * Serves the document for `clientName` at `https://localhost:<free port>/agent.json`; a real
 * client's own callback goes in `redirectUris`.
 */
export async function startCimdServer(
  ca: TestCa,
  clientName: string,
  redirectUris: string[] = [LOOPBACK_REDIRECT],
): Promise<CimdServer> {
  // The document names its own URL, known once the server listens.
  let clientId = '';
  const server = createServer({ cert: ca.cert, key: ca.key }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        client_id: clientId,
        client_name: clientName,
        redirect_uris: redirectUris,
        token_endpoint_auth_method: 'none',
      }),
    );
  });
  const host = `localhost:${await listenOnFreePort(server)}`;
  clientId = `https://${host}/agent.json`;
  return {
    host,
    clientId,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
