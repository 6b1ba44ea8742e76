/**
 * Example MCP server over the legacy HTTP+SSE transport (protocol 2024-11-05), for clients that
 * have not moved to Streamable HTTP: the app of `legacy-sse-app.ts` under `BASE_PATH` (default
 * `/servers/legacy`, the public path: the Traefik router `mcp-legacy-sse` does not strip it),
 * served on `HOST`:`PORT` (default 3002).
 *
 * Behind the gateway (resource `https://mcp.<domain>/servers/legacy`) both the stream and every
 * POST are authorized before they arrive; this server contains no auth code.
 */
import { createLegacySseApp } from './legacy-sse-app.js';
import { serve } from './serve.js';

const { app } = createLegacySseApp({ basePath: process.env.BASE_PATH || '/servers/legacy' });
serve(app, 'example legacy HTTP+SSE MCP server', 3002);
