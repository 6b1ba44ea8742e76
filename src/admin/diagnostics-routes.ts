/**
 * `GET /admin/servers/diagnostics?resource=<url>`: runs the discovery chain of one MCP server
 * (src/admin/diagnostics.ts) and shows each step. Administrators only (the console's guard);
 * anyone else signed in gets 403, and a browser without a session is sent to sign in.
 *
 * The page makes outbound requests, so what it may request is fixed here: the URL comes from
 * the query but must name a resource the registry knows (else 404, nothing is sent), and the
 * requests go to that resource's URL and the configured issuer only. A GET without side
 * effects on the gateway: a cross-site link can at most make it probe its own resources.
 */
import express, { type Router } from 'express';
import type { GatewayConfig, ResourceConfig } from '../config/schema.js';
import { sendPage } from '../web/send-page.js';
import type { Logger } from '../logging/logger.js';
import { createTrustedFetch, type FetchFunction } from '../net/outbound-fetch.js';
import { diagnoseResource } from './diagnostics.js';
import { DIAGNOSTICS_PATH, renderDiagnostics, renderUnknownServer } from './diagnostics-view.js';
import { createAdminGuard, type AdminGuardDependencies } from './guard.js';

/** The MCP servers the gateway protects (src/resources/registry.ts `ResourceRegistry`). */
export interface ResourceList {
  find(url: string): ResourceConfig | undefined;
  list(): ResourceConfig[];
}

/** The console guard's dependencies (the page has no form; `csrf` is the console's). */
export interface DiagnosticsDependencies extends AdminGuardDependencies {
  /** The guard's, and `tls.caFiles` for the default fetch. */
  config: AdminGuardDependencies['config'] & Pick<GatewayConfig, 'tls'>;
  resources: ResourceList;
  logger: Logger;
  /** Defaults to the fetch for admin-configured destinations, trusting `tls.caFiles`. */
  fetch?: FetchFunction;
}

/** Longest accepted `resource` parameter. */
const MAX_URL = 2000;

export function createDiagnosticsRouter(deps: DiagnosticsDependencies): Router {
  const { config, resources, logger } = deps;
  const fetch = deps.fetch ?? createTrustedFetch(config.tls.caFiles);
  const guard = createAdminGuard(deps);
  const router = express.Router();

  router.get(DIAGNOSTICS_PATH, async (req, res) => {
    const who = await guard.admin(req, res, true);
    if (!who) return undefined;
    const requested = req.query.resource;
    const server =
      typeof requested === 'string' && requested.length <= MAX_URL
        ? resources.find(requested)
        : undefined;
    if (!server) return sendPage(res, 404, renderUnknownServer(who.user));
    const report = await diagnoseResource({ resource: server.url, issuer: config.issuer }, fetch);
    logger.info('diagnostics run by an administrator', {
      subject: who.session.accountId,
      resource: server.url,
      verdict: report.verdict,
      failed: report.steps.filter((s) => s.verdict === 'failed').map((s) => s.id),
    });
    return sendPage(res, 200, renderDiagnostics(who.user, server, report));
  });

  return router;
}
