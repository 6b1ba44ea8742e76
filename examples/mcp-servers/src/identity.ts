/**
 * What an MCP server behind the gateway knows about its caller: the identity headers the gateway
 * attached after it checked the request's access token (docs/decision-point.md, "Identity
 * headers"). The server does no authentication of its own: Traefik deletes any `X-Auth-*`
 * header a client sends and sets these from the gateway's answer, and the server is reachable
 * only through Traefik (it publishes no port).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';

export interface CallerIdentity {
  /** `oidc:<provider>:<sub>` (or `dev:<email>` with the gateway's development login). */
  userId: string;
  email: string;
  name: string;
  groups: string[];
  /** The OAuth client the user authorized (a registered client id or a CIMD URL). */
  clientId: string;
  scopes: string[];
  /**
   * Whether the gateway sent a backend token (`upstreamAuthorization: jwt` on this resource):
   * a short-lived JWT signed by the gateway, verifiable with `<issuer>/jwks`. Only its presence
   * is reported; the token itself is not echoed back to the client.
   */
  backendToken: 'present' | 'absent';
}

function header(headers: IncomingHttpHeaders, name: string): string {
  const value = headers[name];
  return Array.isArray(value) ? (value[0] ?? '') : (value ?? '');
}

/**
 * The gateway percent-encodes characters outside visible ASCII as UTF-8 (`Zoë` arrives as
 * `Zo%C3%AB`). A value that is not valid percent-encoding is returned as it came.
 */
function decoded(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** The caller, as the identity headers of one request describe it. */
export function identityFrom(headers: IncomingHttpHeaders): CallerIdentity {
  const list = (value: string, separator: string) =>
    value === '' ? [] : value.split(separator).map(decoded);
  return {
    userId: decoded(header(headers, 'x-auth-user-id')),
    email: decoded(header(headers, 'x-auth-user-email')),
    name: decoded(header(headers, 'x-auth-user-name')),
    groups: list(header(headers, 'x-auth-user-groups'), ','),
    clientId: decoded(header(headers, 'x-auth-client-id')),
    scopes: list(header(headers, 'x-auth-scopes'), ' '),
    backendToken: header(headers, 'authorization').startsWith('Bearer ') ? 'present' : 'absent',
  };
}

/** An MCP server with one tool, `whoami`: the identity of the user on whose behalf it is called. */
export function createExampleServer(name: string): McpServer {
  const server = new McpServer({ name, version: '1.0.0' });
  server.registerTool(
    'whoami',
    {
      title: 'Who am I?',
      description:
        'Returns the identity the MCP Gateway attached to this call: user, email, groups, ' +
        'OAuth client and granted scopes.',
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    // A tool without an inputSchema receives only the request context.
    async (extra) => {
      const identity = identityFrom((extra.requestInfo?.headers ?? {}) as IncomingHttpHeaders);
      return { content: [{ type: 'text', text: JSON.stringify(identity, null, 2) }] };
    },
  );
  return server;
}
