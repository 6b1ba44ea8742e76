/**
 * `mcp-gateway tools …`: the pinned tool definitions of the protected MCP servers, from a
 * terminal (docs/tool-pinning.md). It works on the store of a running service (Redis; the
 * embedded default's memory store lives inside the service process: use the admin console
 * there), through the same records as the admin console, so an approval is audited with its
 * actor and announced to every replica alike.
 *
 *   tools list                   every pinned server: mode, definitions approved, held, last
 *                                listing; tab-separated, one line each, with a header
 *   tools diff URL               the change waiting for review: each definition added,
 *                                changed or removed, as a unified diff of its JSON, and the
 *                                scanner's findings
 *   tools approve URL [FP]       approve it (FP: the fingerprint `diff` printed, so that a
 *                                change made since is not approved unseen)
 *   tools reject URL [FP]        reject it: its definitions stay refused until the server
 *                                lists the approved ones again
 */
import { userInfo } from 'node:os';
import { createAuditLog, createStore } from '../app/services.js';
import type { GatewayConfig, ResourceConfig } from '../config/schema.js';
import { createLogger } from '../logging/logger.js';
import { tryCanonicalResourceUrl } from '../resources/resource-url.js';
import { createServerCatalog } from '../servers/setup.js';
import { asResource } from '../servers/managed-server.js';
import { pinned, ToolPinning } from '../tool-pinning/pinning.js';
import { describePending } from '../tool-pinning/review.js';
import { ListingFailed } from '../tool-pinning/upstream-lister.js';
import { EXIT, type CliIo } from './io.js';

const USAGE = `usage: mcp-gateway tools list [--config FILE]
       mcp-gateway tools diff URL [--config FILE]
       mcp-gateway tools approve|reject URL [FINGERPRINT] [--config FILE]
`;

/** Runs `tools …`; a composition like the service's, so it takes the whole configuration. */
export async function runToolsCommand(
  argv: string[],
  config: GatewayConfig,
  io: CliIo,
): Promise<number> {
  const [action, url, fingerprint, ...rest] = argv;
  const valid =
    (action === 'list' && url === undefined) ||
    (action === 'diff' && url !== undefined && fingerprint === undefined) ||
    ((action === 'approve' || action === 'reject') && url !== undefined);
  if (!valid || rest.length > 0) {
    io.stderr(USAGE);
    return EXIT.usage;
  }
  if (!config.store.redis) {
    io.stderr(
      'this configuration uses the in-memory store, which only the running service can read: use the admin console (/admin/tools), or configure store.redis\n',
    );
    return EXIT.failed;
  }
  const logger = createLogger({ level: 'error' });
  const store = createStore(config, logger);
  const audit = createAuditLog(config, store, logger);
  try {
    const managed = config.managedServers.enabled
      ? await (
          await createServerCatalog({ config, store, audit, logger, traefikFiles: 'validate-only' })
        ).read()
      : [];
    const resources = [...config.resources, ...managed.map(asResource)].filter(pinned);
    const pins = new ToolPinning({
      store,
      resources: () => resources,
      // The command never lists a server itself: the running service does.
      list: () => Promise.reject(new ListingFailed('not listed from the command line')),
      events: { emit: () => undefined },
      logger,
      audit: audit ? (kind, fields) => audit.append(kind, fields) : undefined,
    });
    if (action === 'list') {
      io.stdout(await listing(resources, pins));
      return EXIT.ok;
    }
    const target = resources.find((entry) => entry.url === tryCanonicalResourceUrl(url!));
    if (!target) {
      io.stderr(`tools: ${url!} is not a pinned MCP server (see tools list)\n`);
      return EXIT.failed;
    }
    if (action === 'diff') {
      io.stdout(describePending(await pins.status(target.url)));
      return EXIT.ok;
    }
    const actor = `cli:${userInfo().username}`;
    if (action === 'approve') await pins.approve(target.url, actor, fingerprint);
    else await pins.reject(target.url, actor, fingerprint);
    io.stdout(
      `${action === 'approve' ? 'approved' : 'rejected'} the held change of ${target.url}\n`,
    );
    return EXIT.ok;
  } catch (error) {
    io.stderr(`tools: ${(error as Error).message}\n`);
    return EXIT.failed;
  } finally {
    await audit?.close();
    await store.close();
  }
}

async function listing(resources: ResourceConfig[], pins: ToolPinning): Promise<string> {
  const lines = ['url\tmode\tapproved\theld\tstatus\tlast listing'];
  for (const resource of resources) {
    const record = await pins.status(resource.url);
    const approved = Object.keys(record?.approved?.definitions ?? {}).length;
    const held = record?.pending?.changes.length ?? 0;
    const status = record?.pending?.status ?? 'ok';
    const last = record?.lastCheck
      ? `${new Date(record.lastCheck.at).toISOString()} ${record.lastCheck.ok ? 'ok' : `failed: ${record.lastCheck.error ?? ''}`}`
      : 'never';
    lines.push(
      [resource.url, resource.toolDefinitions.mode, approved, held, status, last].join('\t'),
    );
  }
  return `${lines.join('\n')}\n`;
}
