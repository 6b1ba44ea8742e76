/**
 * An MCP server added at run time (the admin console, `mcp-gateway servers add`): what an
 * administrator gives, validated by one schema wherever it comes from, and what the rest of
 * the gateway sees of it.
 *
 * The protected-resource part (`url`, `name`, `scopes`, `allowedOrigins`, `tools`,
 * `upstreamAuthorization`) has exactly the rules of the configuration file's `resources`
 * (it is the same schema), so a server is judged the same wherever it is defined. The rest
 * is routing, which only the Traefik file uses: the upstream URL the proxy forwards to, the
 * rate limits and whether the CrowdSec bouncer runs in front.
 *
 * Per-server login rules (`resources[].access`) are not offered here: they decide who may
 * log in and are part of the configuration file's access policy.
 */
import { z } from 'zod';
import { insecure, resourceSchema, type ResourceConfig } from '../config/schema.js';

/** Ids the catalog gives: `s` + 10 lower-case hex digits (Traefik and file names use them). */
export const SERVER_ID = /^s[0-9a-f]{10}$/;

const upstreamUrl = z
  .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
  .refine((value) => {
    const url = new URL(value);
    return url.username === '' && url.password === '' && url.search === '' && url.hash === '';
  }, 'must not carry credentials, a query or a fragment')
  // Traefik's rule and URL parsers must see exactly this URL: no quote, backtick or space.
  .refine((value) => !/[`"'\s\\]/.test(value), 'must not contain quotes, backticks or spaces');

export const managedServerSchema = resourceSchema
  .omit({ access: true })
  .extend({
    /** Where the proxy forwards allowed requests (the MCP server on the internal network). */
    upstream: upstreamUrl,
    /** Traefik `rateLimit` per client address: average requests per second, and burst. */
    rateLimitAverage: z.number().int().min(1).max(100_000),
    rateLimitBurst: z.number().int().min(1).max(100_000),
    /** Traefik `inFlightReq`: concurrent requests per client address (SSE streams count). */
    inFlight: z.number().int().min(1).max(100_000),
    /** Whether the CrowdSec bouncer runs in front of this server. */
    crowdsec: z.boolean(),
  })
  .superRefine((server, ctx) => {
    if (insecure(server.url)) {
      ctx.addIssue({
        code: 'custom',
        path: ['url'],
        message: 'must use https (http only on loopback)',
      });
    }
    if (server.rateLimitBurst < server.rateLimitAverage) {
      ctx.addIssue({
        code: 'custom',
        path: ['rateLimitBurst'],
        message: 'must be at least the average',
      });
    }
  });

/** What an administrator gives (defaults not yet applied). */
export type ManagedServerInput = z.input<typeof managedServerSchema>;
export type ManagedServerSettings = z.output<typeof managedServerSchema>;

/** A server as the catalog keeps it. */
export interface ManagedServer extends ManagedServerSettings {
  id: string;
  /** ISO times and who made the change (`admin:<account>` or `cli`). */
  createdAt: string;
  updatedAt: string;
  updatedBy: string;
}

/** The protected-resource view of a managed server (for `/verify`, metadata, tokens). */
export function asResource(server: ManagedServer): ResourceConfig {
  return {
    url: server.url,
    name: server.name,
    scopes: server.scopes,
    allowedOrigins: server.allowedOrigins,
    ...(server.tools ? { tools: server.tools } : {}),
    upstreamAuthorization: server.upstreamAuthorization,
    upstream: server.upstream,
    toolDefinitions: server.toolDefinitions,
  };
}

/** Zod issues as `field: problem` lines, the way `config check` reports them. */
export function describeIssues(error: z.ZodError): string[] {
  return error.issues.map(
    (issue) => `${issue.path.length ? issue.path.join('.') : '(server)'}: ${issue.message}`,
  );
}
