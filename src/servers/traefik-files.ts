/**
 * Traefik routing for MCP servers added at run time: one file per server in the file
 * provider's directory (`providers.file.directory`, which Traefik watches and merges with the
 * hand-written `dynamic_config.yaml`).
 *
 * Each file holds, for one server, what the hand-written file holds for the example servers:
 * the router (Host and path of the public URL) with the middleware chain CrowdSec bouncer
 * (when on) → rate limit → in-flight limit → the `mcp-auth` forwardAuth → security headers,
 * the service (the upstream URL), the server's own rate-limit middlewares, and a router for
 * the OAuth discovery paths on its host (answered by the auth service without forwardAuth,
 * as `mcp-well-known` does for the example host). Shared middlewares and the auth service are
 * referenced by name from the hand-written file (`managedServers.traefik`).
 *
 * A bad edit must never break routing, so a file is written only after its document passed
 * the built-in structural check (and SchemaStore's Traefik schema when `schemaFile` is set),
 * and atomically: written to a temporary file in the same directory, flushed, then renamed
 * over the old one. Traefik never reads half a file, and a refused edit changes nothing.
 *
 * Names: `mcpgw-<id>` for the router and service, `mcpgw-<id>-…` for its middlewares, files
 * `mcpgw-<id>.yaml`; the prefix keeps them apart from the hand-written names, and
 * {@link TraefikFiles.reconcile} only ever touches files with it.
 */
import { randomBytes } from 'node:crypto';
import { open, readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { z } from 'zod';
import type { GatewayConfig } from '../config/schema.js';
import type { Logger } from '../logging/logger.js';
import type { ManagedServer, ManagedServerSettings } from './managed-server.js';
import { SERVER_ID } from './managed-server.js';

export type TraefikSettings = GatewayConfig['managedServers']['traefik'];

const FILE_PREFIX = 'mcpgw-';
const FILE_SUFFIX = '.yaml';
const FILE_NAME = /^mcpgw-(s[0-9a-f]{10})\.yaml$/;

/** Thrown when a document fails validation; nothing was written. */
export class TraefikConfigRefused extends Error {
  constructor(readonly problems: string[]) {
    super(`the Traefik configuration was refused: ${problems.join('; ')}`);
  }
}

/** Validates a whole dynamic-configuration document (e.g. against SchemaStore's schema). */
export type DocumentValidator = (document: unknown) => string[];

// The subset of Traefik's dynamic configuration the generated files use, with Traefik's value
// rules (names, integers, durations, URLs). Strict: an unexpected key is a generator bug.
const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]*$/);
/** A rule built only from Host/Path/PathPrefix matchers with backtick-quoted safe values. */
const rule = z
  .string()
  .regex(
    /^Host\(`[a-z0-9.-]+`\)( && \(?(Path|PathPrefix)\(`[A-Za-z0-9._~!$&'()*+,;=:@%/-]+`\)( \|\| (Path|PathPrefix)\(`[A-Za-z0-9._~!$&'()*+,;=:@%/-]+`\))*\)?)?$/,
    'must be Host(`…`) with optional Path/PathPrefix matchers',
  );
const router = z.strictObject({
  rule,
  priority: z.number().int().min(1).optional(),
  entryPoints: z.array(name).min(1),
  middlewares: z.array(name),
  service: name,
  tls: z.strictObject({ certResolver: name }).optional(),
});
const headerName = z.string().regex(/^[A-Za-z][A-Za-z-]*$/);
/**
 * Per client address: the connection's peer. Without it Traefik's inFlightReq counts per Host
 * (one user's open streams would refuse everyone); `ipStrategy: {}` alone is refused by its
 * file provider, so `depth: 0` says "no X-Forwarded-For hop, the peer".
 */
const perClientAddress = z.strictObject({
  ipStrategy: z.strictObject({ depth: z.literal(0) }),
});
const PER_CLIENT_ADDRESS = { ipStrategy: { depth: 0 as const } };
const middleware = z.union([
  z.strictObject({
    rateLimit: z.strictObject({
      average: z.number().int().min(1),
      period: z.string().regex(/^\d+(ms|s|m|h)$/),
      burst: z.number().int().min(1),
      sourceCriterion: perClientAddress,
    }),
  }),
  z.strictObject({
    inFlightReq: z.strictObject({
      amount: z.number().int().min(1),
      sourceCriterion: perClientAddress,
    }),
  }),
  z.strictObject({
    headers: z.strictObject({
      accessControlAllowOriginList: z.array(z.url({ protocol: /^https?$/ })).min(1),
      accessControlAllowMethods: z.array(z.enum(['GET', 'POST', 'DELETE', 'OPTIONS'])),
      accessControlAllowHeaders: z.array(headerName),
      accessControlExposeHeaders: z.array(headerName),
      accessControlMaxAge: z.number().int().min(0),
      addVaryHeader: z.literal(true),
    }),
  }),
]);

/**
 * CORS for browser MCP clients from the server's `allowedOrigins` (checklist TR-01, TR-03):
 * what they send (the MCP headers, a Bearer token) and what they must read (the session id,
 * the protocol version, the 401 challenge). No credentials: tokens, not cookies.
 */
const CORS_ALLOW_HEADERS = [
  'Authorization',
  'Content-Type',
  'Accept',
  'Last-Event-ID',
  'Mcp-Protocol-Version',
  'Mcp-Session-Id',
  'Mcp-Method',
  'Mcp-Name',
];
const CORS_EXPOSE_HEADERS = ['Mcp-Session-Id', 'Mcp-Protocol-Version', 'WWW-Authenticate'];
const service = z.strictObject({
  loadBalancer: z.strictObject({
    servers: z.array(z.strictObject({ url: z.url({ protocol: /^https?$/ }) })).length(1),
    passHostHeader: z.boolean(),
  }),
});
const documentSchema = z.strictObject({
  http: z.strictObject({
    routers: z.record(name, router),
    middlewares: z.record(name, middleware),
    services: z.record(name, service),
  }),
});

/** The Traefik document for one server. */
export function traefikDocument(
  id: string,
  server: ManagedServerSettings,
  settings: TraefikSettings,
): unknown {
  const url = new URL(server.url);
  const base = `${FILE_PREFIX}${id}`;
  const resourcePath = url.pathname === '/' ? '' : url.pathname;
  // The resource itself and everything under it (a legacy SSE server's /sse and /messages),
  // on path-segment boundaries as /verify matches them.
  const routeRule = resourcePath
    ? `Host(\`${url.hostname}\`) && (Path(\`${resourcePath}\`) || PathPrefix(\`${resourcePath}/\`))`
    : `Host(\`${url.hostname}\`)`;
  const tls =
    url.protocol === 'https:' && settings.certResolver
      ? { tls: { certResolver: settings.certResolver } }
      : {};
  // CORS before forwardAuth: Traefik's headers middleware answers a preflight itself (it
  // carries no token) and sets the CORS headers on every answer below it, the forwardAuth
  // refusals included, so a browser client can read the 401 challenge.
  const cors = server.allowedOrigins.length > 0;
  const middlewares = [
    ...(server.crowdsec ? [settings.crowdsecMiddleware] : []),
    `${base}-ratelimit`,
    `${base}-inflight`,
    ...(cors ? [`${base}-cors`] : []),
    settings.authMiddleware,
    settings.headersMiddleware,
  ];
  return {
    http: {
      routers: {
        [base]: {
          rule: routeRule,
          entryPoints: settings.entryPoints,
          middlewares,
          service: base,
          ...tls,
        },
        // Discovery without forwardAuth on this server's host (RS-01..RS-03): the client has
        // no token yet. Priority above the server's router, which may cover `/`.
        [`${base}-well-known`]: {
          rule: `Host(\`${url.hostname}\`) && (PathPrefix(\`/.well-known/oauth-protected-resource\`) || Path(\`/.well-known/oauth-authorization-server\`))`,
          priority: 1000,
          entryPoints: settings.entryPoints,
          middlewares: [
            ...(server.crowdsec ? [settings.crowdsecMiddleware] : []),
            `${base}-ratelimit`,
            settings.headersMiddleware,
          ],
          service: settings.authService,
          ...tls,
        },
      },
      middlewares: {
        [`${base}-ratelimit`]: {
          rateLimit: {
            average: server.rateLimitAverage,
            period: '1s',
            burst: server.rateLimitBurst,
            sourceCriterion: PER_CLIENT_ADDRESS,
          },
        },
        [`${base}-inflight`]: {
          inFlightReq: { amount: server.inFlight, sourceCriterion: PER_CLIENT_ADDRESS },
        },
        ...(cors
          ? {
              [`${base}-cors`]: {
                headers: {
                  accessControlAllowOriginList: server.allowedOrigins,
                  accessControlAllowMethods: ['GET', 'POST', 'DELETE', 'OPTIONS'],
                  accessControlAllowHeaders: CORS_ALLOW_HEADERS,
                  accessControlExposeHeaders: CORS_EXPOSE_HEADERS,
                  accessControlMaxAge: 600,
                  addVaryHeader: true,
                },
              },
            }
          : {}),
      },
      services: {
        [base]: {
          // The MCP server sees the public Host, as it would without the gateway.
          loadBalancer: { servers: [{ url: server.upstream }], passHostHeader: true },
        },
      },
    },
  };
}

export class TraefikFiles {
  constructor(
    private readonly settings: TraefikSettings & { directory: string },
    private readonly logger: Logger,
    /** Extra validation (SchemaStore's schema); the built-in check always runs first. */
    private readonly validateDocument?: DocumentValidator,
    /**
     * Validate only, never touch the directory: for the CLI on a machine where the directory
     * is not mounted (the running service writes the files when told of the change).
     */
    private readonly validateOnly = false,
  ) {}

  fileOf(id: string): string {
    if (!SERVER_ID.test(id)) throw new RangeError(`not a server id: ${id}`);
    return path.join(this.settings.directory, `${FILE_PREFIX}${id}${FILE_SUFFIX}`);
  }

  /**
   * The file's text for a server, or {@link TraefikConfigRefused} with what is wrong. Used
   * before anything is stored, so that a refused edit changes nothing anywhere.
   */
  render(id: string, server: ManagedServerSettings): string {
    // Said plainly rather than as the rule check's generic message: the generated Host rule
    // takes DNS names only (and ACME certificates are for names too).
    if (new URL(server.url).hostname.startsWith('[')) {
      throw new TraefikConfigRefused([
        'url: an IPv6 address cannot be routed by a generated Host rule; give the server a DNS name',
      ]);
    }
    const document = traefikDocument(id, server, this.settings);
    const checked = documentSchema.safeParse(document);
    const problems = checked.success
      ? (this.validateDocument?.(document) ?? [])
      : checked.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    if (problems.length > 0) throw new TraefikConfigRefused(problems);
    // Traefik renders every file of its directory as a Go template before reading it: a `{{`
    // in a server's name would make the whole directory unreadable to it.
    const label = server.name.replace(/[\r\n{}]/g, ' ');
    return (
      `# Written by MCP Gateway for the MCP server "${label}" (${id}).\n` +
      '# Edit it in the admin console or with `mcp-gateway servers`; changes here are overwritten.\n' +
      stringify(document, { lineWidth: 0 })
    );
  }

  /** Writes a server's file atomically; unchanged content is not rewritten. */
  async write(id: string, text: string): Promise<boolean> {
    const file = this.fileOf(id);
    if (this.validateOnly) return false;
    if ((await readFile(file, 'utf8').catch(() => undefined)) === text) return false;
    const temporary = path.join(
      this.settings.directory,
      `.${FILE_PREFIX}${id}.${randomBytes(6).toString('hex')}.tmp`,
    );
    const handle = await open(temporary, 'wx', 0o644);
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await rename(temporary, file);
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
    return true;
  }

  async remove(id: string): Promise<void> {
    if (this.validateOnly) return;
    await rm(this.fileOf(id), { force: true });
  }

  /**
   * Files of the directory Traefik cannot read, with why. Traefik's file provider reads the
   * whole directory as one configuration: while one file fails to parse it keeps the last
   * configuration it read (no server added or removed since is live), and a Traefik started
   * with such a file routes nothing. The gateway never writes one; a hand-placed file can be.
   */
  unreadableFiles(): ReadonlyMap<string, string> {
    return this.unreadable;
  }

  private unreadable: ReadonlyMap<string, string> = new Map();

  /** Reads every configuration file of the directory as Traefik would; logs new problems. */
  private async checkDirectory(): Promise<void> {
    const found = new Map<string, string>();
    const entries = await readdir(this.settings.directory).catch(() => [] as string[]);
    for (const entry of entries.filter((name) => /^[^.].*\.ya?ml$/.test(name))) {
      const text = await readFile(path.join(this.settings.directory, entry), 'utf8').catch(
        () => undefined,
      );
      if (text === undefined) continue;
      const problem = traefikReadProblem(text);
      if (problem) found.set(entry, problem);
    }
    for (const [file, problem] of found) {
      if (this.unreadable.get(file) !== problem) {
        this.logger.error('a file in the Traefik directory cannot be read by Traefik', {
          event: 'traefik_file_unreadable',
          file,
          problem,
        });
      }
    }
    this.unreadable = found;
  }

  /**
   * Makes the directory hold exactly one file per server: writes missing or different ones
   * (so a damaged file of ours is rewritten at the next poll), deletes the prefixed files of
   * servers that no longer exist, and checks every file of the directory the way Traefik reads
   * it. A server whose document is refused (it was valid when saved, so only a changed
   * `managedServers.traefik` setting can cause this) keeps its old file and is logged.
   */
  async reconcile(servers: readonly ManagedServer[]): Promise<void> {
    if (this.validateOnly) return;
    const wanted = new Set(servers.map((server) => server.id));
    for (const server of servers) {
      try {
        await this.write(server.id, this.render(server.id, server));
      } catch (error) {
        this.logger.error('managed server: its Traefik file could not be written', {
          serverId: server.id,
          error: (error as Error).message,
        });
      }
    }
    const present = await readdir(this.settings.directory).catch(() => [] as string[]);
    for (const entry of present) {
      const id = FILE_NAME.exec(entry)?.[1];
      if (id && !wanted.has(id)) await this.remove(id);
    }
    await this.checkDirectory();
  }
}

/** The one template call the project's Traefik files use: `{{ env "NAME" }}`. */
const ENV_CALL = /\{\{\s*env\s+"[A-Za-z_][A-Za-z0-9_]*"\s*\}\}/g;

/**
 * Why Traefik's file provider could not read a YAML file, or `undefined`: it renders the file
 * as a Go template first (only the `env "NAME"` call is expected here), then parses the YAML.
 */
export function traefikReadProblem(text: string): string | undefined {
  const rendered = text.replace(ENV_CALL, 'x');
  const stray = /\{\{|\}\}/.exec(rendered);
  if (stray) {
    return `template syntax other than env "NAME", which Traefik renders: ${rendered.slice(stray.index, stray.index + 40)}`;
  }
  try {
    parseYaml(rendered);
    return undefined;
  } catch (error) {
    return `not YAML: ${(error as Error).message.split('\n')[0]}`;
  }
}
