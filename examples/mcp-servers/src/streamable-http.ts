/**
 * Example MCP server over Streamable HTTP (protocol 2025-03-26 and later), stateless, at `/mcp`:
 * the app of `streamable-http-app.ts`, served on `HOST`:`PORT` (default 3001).
 *
 * Behind the gateway (Traefik router `mcp-example`, resource `https://mcp.<domain>/mcp`) every
 * request has been authorized before it arrives; this server contains no auth code.
 */
import { createStreamableHttpApp } from './streamable-http-app.js';
import { serve } from './serve.js';

serve(createStreamableHttpApp(), 'example Streamable HTTP MCP server', 3001);
