/**
 * The MCP servers administrators add at run time, shared by every replica through the store.
 *
 * Layout in the store (one key per server, so that two administrators editing different
 * servers never overwrite each other's change):
 *   `servers:ids`           set of server ids
 *   `servers:server:<id>`   the server ({@link ManagedServer})
 *   `servers:url:<url>`     `{ id }`: the claim on a resource URL, taken with `setIfAbsent`,
 *                           so two replicas adding the same URL at once cannot both succeed
 *
 * A change is written, then announced on the `servers` channel. Every replica (the one that
 * made the change included) then re-reads the catalog and applies it: the live resource
 * registry (src/resources/registry.ts) is replaced, which `/verify`, protected resource metadata
 * and the authorization server read at their next lookup, and the Traefik files are
 * reconciled. Announcements are best effort (Redis pub/sub), so each replica also re-reads
 * every `pollInterval` seconds.
 *
 * The Traefik file of a change is rendered and validated before anything is stored: a value
 * Traefik would not accept is refused with the reason and nothing changes (no store write,
 * no file). An edit names the version it started from (the server's `updatedAt` when the form
 * was opened): an edit of a server changed since is refused ({@link ServerEditConflict})
 * rather than silently undoing the other change, and the write itself is a compare-and-set
 * on that version (`Store.replaceIf`), so of two saves racing on different replicas one wins
 * and the other is told.
 */
import { randomBytes } from 'node:crypto';
import type { AuditLog } from '../audit/audit-log.js';
import type { Logger } from '../logging/logger.js';
import type { ResourceRegistry } from '../resources/registry.js';
import { groupRuleProblem, type GroupSources } from '../policy/groups.js';
import { serverKey, SERVER_IDS_KEY, SERVERS_CHANNEL, serverUrlKey } from '../store/keys.js';
import type { JsonObject, Store } from '../store/store.js';
import {
  asResource,
  describeIssues,
  managedServerSchema,
  SERVER_ID,
  type ManagedServer,
  type ManagedServerInput,
} from './managed-server.js';
import type { TraefikFiles } from './traefik-files.js';
import { TraefikConfigRefused } from './traefik-files.js';

/** A change the catalog refused; `problems` are `field: problem` lines for the form. */
export class ServerChangeRefused extends Error {
  constructor(
    readonly problems: string[],
    readonly status: 400 | 404 | 409 = 400,
  ) {
    super(problems.join('; '));
  }
}

/** An edit of a server that was changed after the editor read it (409). */
export class ServerEditConflict extends ServerChangeRefused {
  constructor(readonly current: ManagedServer) {
    super(
      [
        `this server was changed by ${current.updatedBy} at ${current.updatedAt} after you opened it; ` +
          'your values are kept below: save again to replace that change, or reopen the server to see it',
      ],
      409,
    );
  }
}

export interface ServerCatalogOptions {
  store: Store;
  /** The live registry to keep in step (absent for the CLI, which only edits the store). */
  registry?: ResourceRegistry;
  /** URLs of the configuration file's servers, which run-time servers may not take. */
  configuredUrls: readonly string[];
  /** Writes the Traefik files; absent when `managedServers.traefik.directory` is unset. */
  traefik?: TraefikFiles | undefined;
  maxServers: number;
  /** Seconds between re-reads. */
  pollInterval: number;
  audit?: AuditLog | undefined;
  logger: Logger;
  /**
   * The configured logins: a tool rule's group must name one that gives groups
   * (src/policy/groups.ts). Absent: none does, and every group rule is refused.
   */
  groupSources?: GroupSources;
}

export class ServerCatalog {
  private servers: ManagedServer[] = [];
  /** JSON of the last applied list: a re-read that finds the same skips the work. */
  private applied = '';
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => Promise<void>) | undefined;
  /** The reload running now, so that announcements arriving meanwhile share one more. */
  private reloading: Promise<void> | undefined;
  private reloadAgain = false;

  constructor(private readonly options: ServerCatalogOptions) {}

  /** Reads the catalog, applies it and follows changes (announcements and polling). */
  async start(): Promise<void> {
    this.unsubscribe = await this.options.store.subscribe(
      SERVERS_CHANNEL,
      () => void this.reload(),
    );
    await this.reload();
    this.timer = setInterval(() => void this.reload(), this.options.pollInterval * 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.unsubscribe?.();
    await this.reloading;
  }

  /** The servers as last applied, oldest first. */
  list(): ManagedServer[] {
    return this.servers;
  }

  get(id: string): ManagedServer | undefined {
    return this.servers.find((server) => server.id === id);
  }

  /**
   * Re-reads the catalog from the store and applies it when it changed. Concurrent calls
   * share the running read and one more after it (a change announced during a read is seen).
   */
  reload(): Promise<void> {
    if (this.reloading) {
      this.reloadAgain = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      try {
        do {
          this.reloadAgain = false;
          await this.apply(await this.read());
        } while (this.reloadAgain);
      } catch (error) {
        // The store is unreachable: keep serving the last list; the next poll tries again.
        this.options.logger.error('managed servers: the catalog could not be read', {
          error: (error as Error).message,
        });
      } finally {
        this.reloading = undefined;
      }
    })();
    return this.reloading;
  }

  /** Every server in the store, oldest first. */
  async read(): Promise<ManagedServer[]> {
    const { store } = this.options;
    const ids = (await store.setMembers(SERVER_IDS_KEY)).filter((id) => SERVER_ID.test(id));
    const servers: ManagedServer[] = [];
    for (const id of ids) {
      const stored = await store.get(serverKey(id));
      const server = stored ? this.parseStored(id, stored) : undefined;
      if (server) servers.push(server);
    }
    return servers.sort(
      (a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id),
    );
  }

  /** A stored record, checked again: the store is shared, and a bad record must not route. */
  private parseStored(id: string, stored: JsonObject): ManagedServer | undefined {
    const { id: _id, createdAt, updatedAt, updatedBy, ...settings } = stored;
    const parsed = managedServerSchema.safeParse(settings);
    if (
      !parsed.success ||
      typeof createdAt !== 'string' ||
      typeof updatedAt !== 'string' ||
      typeof updatedBy !== 'string'
    ) {
      this.options.logger.error('managed servers: a stored server is invalid and is ignored', {
        serverId: id,
        problems: parsed.success ? ['metadata'] : describeIssues(parsed.error),
      });
      return undefined;
    }
    return { ...parsed.data, id, createdAt, updatedAt, updatedBy };
  }

  /** Files of Traefik's directory that Traefik cannot read (see TraefikFiles). */
  unreadableTraefikFiles(): ReadonlyMap<string, string> {
    return this.options.traefik?.unreadableFiles() ?? new Map();
  }

  private async apply(servers: ManagedServer[]): Promise<void> {
    const json = JSON.stringify(servers);
    if (json === this.applied) {
      // Nothing changed here, but the directory may have (a damaged file, a hand-placed one):
      // rewriting only what differs, and checking what Traefik would read, costs a few reads.
      await this.options.traefik?.reconcile(servers);
      return;
    }
    this.servers = servers;
    this.options.registry?.replaceManaged(servers.map(asResource));
    await this.options.traefik?.reconcile(servers);
    this.applied = json;
    this.options.logger.info('managed servers applied', {
      event: 'servers_applied',
      servers: servers.length,
    });
  }

  /** Adds a server; returns it. {@link ServerChangeRefused} when invalid or taken. */
  async add(input: ManagedServerInput, actor: string): Promise<ManagedServer> {
    const settings = this.validate(input);
    const { store, maxServers } = this.options;
    if ((await store.setSize(SERVER_IDS_KEY)) >= maxServers) {
      throw new ServerChangeRefused([`at most ${maxServers} servers can be added here`], 409);
    }
    const id = `s${randomBytes(5).toString('hex')}`;
    const text = this.renderTraefik(id, settings);
    await this.claimUrl(settings.url, id);
    const now = new Date().toISOString();
    const server: ManagedServer = {
      ...settings,
      id,
      createdAt: now,
      updatedAt: now,
      updatedBy: actor,
    };
    try {
      if (text !== undefined) await this.options.traefik!.write(id, text);
      await store.set(serverKey(id), { ...server });
      await store.addToSet(SERVER_IDS_KEY, [id]);
    } catch (error) {
      await this.options.traefik?.remove(id).catch(() => undefined);
      await store.delete(serverKey(id), serverUrlKey(settings.url));
      throw error;
    }
    await this.changed('add-server', server, actor);
    return server;
  }

  /**
   * Replaces a server's settings (its id and creation stay). With `expectedVersion` (the
   * `updatedAt` the editor read), refuses with {@link ServerEditConflict} when the server has
   * been changed since.
   */
  async update(
    id: string,
    input: ManagedServerInput,
    actor: string,
    expectedVersion?: string,
  ): Promise<ManagedServer> {
    const before = await this.find(id);
    const settings = this.validate(input);
    const text = this.renderTraefik(id, settings);
    const { store } = this.options;
    const urlChanged = settings.url !== before.url;
    if (urlChanged) await this.claimUrl(settings.url, id);
    const server: ManagedServer = {
      ...settings,
      id,
      createdAt: before.createdAt,
      updatedAt: new Date().toISOString(),
      updatedBy: actor,
    };
    // Written only over the version the editor read (or, without one, the one read above):
    // a compare-and-set in the store, so an edit saved meanwhile on any replica is never
    // silently undone.
    let written = false;
    try {
      const version = expectedVersion ?? before.updatedAt;
      written = await store.replaceIf(serverKey(id), 'updatedAt', version, { ...server });
    } finally {
      if (!written && urlChanged) await store.delete(serverUrlKey(settings.url));
    }
    if (!written) throw new ServerEditConflict(await this.find(id));
    try {
      if (text !== undefined) await this.options.traefik!.write(id, text);
    } catch (error) {
      // Back to the server as it was, so that store and file agree.
      await store.set(serverKey(id), { ...before });
      if (urlChanged) await store.delete(serverUrlKey(settings.url));
      throw error;
    }
    if (urlChanged) await store.delete(serverUrlKey(before.url));
    await this.changed('edit-server', server, actor);
    return server;
  }

  async remove(id: string, actor: string): Promise<ManagedServer> {
    const server = await this.find(id);
    const { store } = this.options;
    await store.removeFromSet(SERVER_IDS_KEY, [id]);
    await store.delete(serverKey(id), serverUrlKey(server.url));
    await this.options.traefik?.remove(id);
    await this.changed('remove-server', server, actor);
    return server;
  }

  /** The server as stored now (not as last applied: another replica may have changed it). */
  private async find(id: string): Promise<ManagedServer> {
    const stored = SERVER_ID.test(id) ? await this.options.store.get(serverKey(id)) : undefined;
    const server = stored ? this.parseStored(id, stored) : undefined;
    if (!server) throw new ServerChangeRefused([`there is no server ${id}`], 404);
    return server;
  }

  private validate(input: ManagedServerInput) {
    const parsed = managedServerSchema.safeParse(input);
    if (!parsed.success) throw new ServerChangeRefused(describeIssues(parsed.error));
    // Checked on what is saved, not on what is read back: a server saved before groups were
    // namespaced keeps routing, and its unqualified groups simply match nobody.
    const sources = this.options.groupSources ?? { oidc: [] };
    const groupProblems = Object.entries(parsed.data.tools?.rules ?? {}).flatMap(([tool, rule]) =>
      rule.groups.flatMap((group, index) => {
        const problem = groupRuleProblem(group, sources);
        return problem ? [`tools.rules.${tool}.groups.${index}: ${problem}`] : [];
      }),
    );
    if (groupProblems.length > 0) throw new ServerChangeRefused(groupProblems);
    if (this.options.configuredUrls.includes(parsed.data.url)) {
      throw new ServerChangeRefused(
        [`url: ${parsed.data.url} is defined in the configuration file; edit it there`],
        409,
      );
    }
    return parsed.data;
  }

  private renderTraefik(
    id: string,
    settings: ManagedServer | ReturnType<ServerCatalog['validate']>,
  ) {
    try {
      return this.options.traefik?.render(id, settings);
    } catch (error) {
      if (error instanceof TraefikConfigRefused) {
        throw new ServerChangeRefused(error.problems.map((problem) => `Traefik: ${problem}`));
      }
      throw error;
    }
  }

  private async claimUrl(url: string, id: string): Promise<void> {
    if (!(await this.options.store.setIfAbsent(serverUrlKey(url), { id }))) {
      throw new ServerChangeRefused([`url: another server already has ${url}`], 409);
    }
  }

  private async changed(change: string, server: ManagedServer, actor: string): Promise<void> {
    void this.options.audit?.append('admin_change', {
      actor,
      change,
      serverId: server.id,
      resource: server.url,
      name: server.name,
      upstream: server.upstream,
    });
    this.options.logger.info('managed server changed', {
      event: 'admin_change',
      change,
      serverId: server.id,
      resource: server.url,
      actor,
    });
    await this.options.store.publish(SERVERS_CHANNEL, server.id);
    await this.reload();
  }
}
