/**
 * A protected MCP server (the OAuth resource server the gateway issues tokens for), for
 * end-to-end tests: a real `@modelcontextprotocol/sdk` server over Streamable HTTP, stateless
 * (a new `McpServer` and transport per request, as the SDK's stateless example does), served
 * by express on a free loopback port at `/mcp`.
 *
 * Why real: MCP clients discover the authorization server from this server's answers (a 401
 * with `WWW-Authenticate: Bearer resource_metadata=…`, then the RFC 9728 Protected Resource
 * Metadata), so the tests need the exact headers and documents a spec-following server sends,
 * and an MCP handshake that only succeeds with a token the gateway really issued.
 *
 * Token check (in-test, until the gateway's own decision endpoint protects it): a Bearer
 * token is accepted when it is an RFC 9068 JWT access token (`typ: at+jwt`, RS256) signed by
 * a key from `<issuer>/jwks`, with `iss` = issuer and `aud` = this server's URL. Anything else
 * gets 401: with `error="invalid_token"` when a Bearer token was presented, without an error
 * code when none was (RFC 6750 section 3.1; another scheme counts as no token).
 *
 * Tools: `whoami` (JSON of the token's `sub`, `email`, `client_id`, `scope`) and `echo`
 * (`{ text }` back).
 */
import { createServer, type Server } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import { createRemoteJWKSet, customFetch, jwtVerify, type JWTPayload } from 'jose';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { Agent, fetch as undiciFetch } from 'undici';
import { z } from 'zod';
import { getFreePort, listenOn } from './ports.js';

export interface StartProtectedMcpServerOptions {
  /** The authorization server whose tokens are accepted, e.g. the gateway's issuer. */
  issuer: string;
  /** Advertised in the PRM (`scopes_supported`) and in the 401 challenge (`scope`). */
  scopes: string[];
  /**
   * PEM CA to trust when fetching `<issuer>/jwks` over https (e.g. `TestCa.ca`); default the
   * system CAs.
   */
  ca?: string;
}

export interface ProtectedMcpServer {
  /** `http://127.0.0.1:PORT/mcp`. */
  url: string;
  /** The RFC 8707 resource indicator / RFC 9728 `resource`: the same as `url`. */
  resource: string;
  /** `http://127.0.0.1:PORT/.well-known/oauth-protected-resource/mcp`. */
  prmUrl: string;
  /** Every `Authorization` header value presented to `/mcp`, in arrival order. */
  seenAuthorizations: string[];
  /** Closes the server and its open connections. Safe to call more than once. */
  stop(): Promise<void>;
}

const LISTEN_ATTEMPTS = 3;

/** RFC 9068 claims this server reads; `email` is the gateway's addition. */
interface AccessTokenClaims extends JWTPayload {
  email?: string;
  client_id?: string;
  scope?: string;
}

function quoted(value: string): string {
  return `"${value.replace(/[\\"]/g, '\\$&')}"`;
}

function createMcpServer(token: AccessTokenClaims): McpServer {
  const server = new McpServer({ name: 'test-mcp-server', version: '1.0.0' });
  server.registerTool(
    'whoami',
    { description: 'Who the access token says the caller is' },
    async () => ({
      content: [
        {
          type: 'text',
          text: JSON.stringify({
            sub: token.sub,
            email: token.email,
            client_id: token.client_id,
            scope: token.scope,
          }),
        },
      ],
    }),
  );
  server.registerTool(
    'echo',
    { description: 'Returns the text it was given', inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: 'text', text }] }),
  );
  return server;
}

/** Starts the MCP server; resolves once it listens. */
export async function startProtectedMcpServer(
  options: StartProtectedMcpServerOptions,
): Promise<ProtectedMcpServer> {
  for (let attempt = 1; ; attempt += 1) {
    const port = await getFreePort();
    try {
      return await launch(options, port);
    } catch (error) {
      const portTaken = (error as NodeJS.ErrnoException).code === 'EADDRINUSE';
      if (!portTaken || attempt >= LISTEN_ATTEMPTS) throw error;
    }
  }
}

async function launch(
  options: StartProtectedMcpServerOptions,
  port: number,
): Promise<ProtectedMcpServer> {
  const issuer = options.issuer.replace(/\/$/, '');
  const origin = `http://127.0.0.1:${port}`;
  const url = `${origin}/mcp`;
  const prmUrl = `${origin}/.well-known/oauth-protected-resource/mcp`;
  const seenAuthorizations: string[] = [];

  const dispatcher =
    options.ca !== undefined ? new Agent({ connect: { ca: options.ca } }) : undefined;
  const jwks = createRemoteJWKSet(new URL(`${issuer}/jwks`), {
    ...(dispatcher !== undefined && {
      [customFetch]: (input: string, init: RequestInit) =>
        undiciFetch(input, {
          ...(init as object),
          dispatcher,
        }) as unknown as Promise<globalThis.Response>,
    }),
  });

  const challenge = (invalidToken: boolean): string => {
    const params = [
      `resource_metadata=${quoted(prmUrl)}`,
      `scope=${quoted(options.scopes.join(' '))}`,
    ];
    if (invalidToken) params.push('error="invalid_token"');
    return `Bearer ${params.join(', ')}`;
  };

  const app = express();
  app.disable('x-powered-by');

  app.get('/.well-known/oauth-protected-resource/mcp', (_req, res) => {
    res.json({
      resource: url,
      authorization_servers: [issuer],
      scopes_supported: options.scopes,
      bearer_methods_supported: ['header'],
      resource_name: 'Test MCP server',
    });
  });

  const requireToken = async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const authorization = req.headers.authorization;
    if (authorization !== undefined) seenAuthorizations.push(authorization);
    const match = /^Bearer +([^ ]+) *$/i.exec(authorization ?? '');
    const token = match?.[1];
    if (token === undefined) {
      res.status(401).set('WWW-Authenticate', challenge(false)).json({ error: 'unauthorized' });
      return;
    }
    try {
      const { payload } = await jwtVerify<AccessTokenClaims>(token, jwks, {
        issuer,
        audience: url,
        typ: 'at+jwt',
        algorithms: ['RS256'],
      });
      res.locals.token = payload;
    } catch (error) {
      res
        .status(401)
        .set('WWW-Authenticate', challenge(true))
        .json({ error: 'invalid_token', error_description: (error as Error).message });
      return;
    }
    next();
  };

  const methodNotAllowed = (_req: Request, res: Response): void => {
    res
      .status(405)
      .set('Allow', 'POST')
      .json({
        jsonrpc: '2.0',
        error: { code: -32000, message: 'Method not allowed.' },
        id: null,
      });
  };

  app.use('/mcp', requireToken);
  app.post('/mcp', express.json(), async (req, res) => {
    const server = createMcpServer(res.locals.token as AccessTokenClaims);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    try {
      await server.connect(transport);
      await transport.handleRequest(req, res, req.body);
    } catch (error) {
      if (!res.headersSent) {
        res.status(500).json({
          jsonrpc: '2.0',
          error: { code: -32603, message: `Internal server error: ${(error as Error).message}` },
          id: null,
        });
      }
    }
  });
  app.get('/mcp', methodNotAllowed);
  app.delete('/mcp', methodNotAllowed);

  const httpServer: Server = createServer(app);
  await listenOn(httpServer, port);

  let stopped: Promise<void> | undefined;
  return {
    url,
    resource: url,
    prmUrl,
    seenAuthorizations,
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        httpServer.close(() => resolve());
        httpServer.closeAllConnections();
      }).then(() => dispatcher?.close());
      return stopped;
    },
  };
}
