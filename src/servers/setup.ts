/**
 * Builds the run-time server catalog the configuration asks for (`managedServers`): the
 * Traefik file writer when a directory is set (with SchemaStore's schema when `schemaFile`
 * is), and the catalog over the store. Shared by the service and the CLI, so both validate
 * and write exactly alike.
 */
import { access, constants } from 'node:fs/promises';
import type { AuditLog } from '../audit/audit-log.js';
import type { GatewayConfig } from '../config/schema.js';
import type { Logger } from '../logging/logger.js';
import type { ResourceRegistry } from '../resources/registry.js';
import type { Store } from '../store/store.js';
import { ServerCatalog } from './catalog.js';
import { TraefikFiles } from './traefik-files.js';
import { loadTraefikSchema } from './traefik-schema.js';

export interface CatalogSetup {
  /**
   * `managedServers`; `resources`: the URLs run-time servers may not take; `login`: which
   * logins give the groups a tool rule may name.
   */
  config: Pick<GatewayConfig, 'managedServers' | 'resources' | 'login'>;
  store: Store;
  registry?: ResourceRegistry;
  audit?: AuditLog | undefined;
  logger: Logger;
  /**
   * `validate-only`: render and check Traefik files but never write them (the CLI, when the
   * directory is not writable where it runs: the service writes them on the announcement).
   */
  traefikFiles?: 'write' | 'validate-only';
}

/** The catalog, not started. Rejects when the Traefik directory or schema is unusable. */
export async function createServerCatalog(setup: CatalogSetup): Promise<ServerCatalog> {
  const { config, logger } = setup;
  const settings = config.managedServers;
  let traefik: TraefikFiles | undefined;
  const directory = settings.traefik.directory;
  if (directory !== undefined) {
    const validateOnly = setup.traefikFiles === 'validate-only';
    // Refuse to start rather than accept changes that could never reach Traefik.
    if (!validateOnly) {
      await access(directory, constants.W_OK).catch(() => {
        throw new Error(
          `managedServers.traefik.directory: ${directory} is not a writable directory`,
        );
      });
    }
    const schemaFile = settings.traefik.schemaFile;
    const validate =
      schemaFile === undefined
        ? undefined
        : await loadTraefikSchema(schemaFile).catch((error: unknown) => {
            throw new Error(
              `managedServers.traefik.schemaFile: ${schemaFile}: ${(error as Error).message}`,
            );
          });
    traefik = new TraefikFiles({ ...settings.traefik, directory }, logger, validate, validateOnly);
  }
  return new ServerCatalog({
    store: setup.store,
    ...(setup.registry ? { registry: setup.registry } : {}),
    configuredUrls: config.resources.map((resource) => resource.url),
    traefik,
    maxServers: settings.maxServers,
    pollInterval: settings.pollInterval,
    audit: setup.audit,
    logger,
    groupSources: config.login,
  });
}
