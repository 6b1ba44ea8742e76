/**
 * `/admin/servers`: the MCP servers, and adding, editing and removing the run-time ones.
 *
 * Every change goes through the catalog (src/servers/catalog.ts), which validates it with the
 * one server schema, renders and checks its Traefik file before storing anything, and makes
 * every replica apply it. A refused change re-shows the form with each problem and changes
 * nothing (status 400, or 409 for a URL already taken). Actions need the admin guard's form
 * checks (same-origin, CSRF token) and are audited by the catalog as `admin_change`.
 */
import express, { type Router } from 'express';
import type { GatewayConfig } from '../config/schema.js';
import { sendPage } from '../web/send-page.js';
import type { Logger } from '../logging/logger.js';
import type { ResourceRegistry } from '../resources/registry.js';
import { ServerChangeRefused, ServerEditConflict, type ServerCatalog } from '../servers/catalog.js';
import { SERVER_ID } from '../servers/managed-server.js';
import type { AdminGuard } from './guard.js';
import { defaultFields, formFields, serverFields, serverInput } from './server-form.js';
import { renderServerForm, renderServers, type ServerFormFields } from './server-views.js';

export interface ServerRoutesDependencies {
  /** The form's defaults and where the Traefik files go (`managedServers`). */
  config: Pick<GatewayConfig, 'managedServers'>;
  guard: AdminGuard;
  resources: ResourceRegistry;
  /** Absent with `managedServers.enabled: false`. */
  catalog: ServerCatalog | undefined;
  logger: Logger;
}

const NOTICES: Record<string, string> = {
  added: 'Server added: it is protected now, on every replica.',
  saved: 'Server saved: the change is in effect now, on every replica.',
  removed: 'Server removed: its URL is refused and its Traefik route is gone.',
};

export function createServerRoutes(deps: ServerRoutesDependencies): Router {
  const { config, guard, catalog, resources, logger } = deps;
  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: '64kb', parameterLimit: 20 });

  router.get('/admin/servers', async (req, res) => {
    const who = await guard.admin(req, res, true);
    if (!who) return undefined;
    // Re-read before showing: another replica may have just changed the catalog.
    await catalog?.reload();
    const notice = typeof req.query.done === 'string' ? NOTICES[req.query.done] : undefined;
    return sendPage(
      res,
      200,
      renderServers({
        user: who.user,
        csrfToken: await guard.csrfToken(who),
        configured: resources.list().filter((r) => resources.originOf(r.url) === 'config'),
        managed: catalog?.list() ?? [],
        canManage: catalog !== undefined,
        traefikDirectory: config.managedServers.traefik.directory,
        unreadableFiles: catalog?.unreadableTraefikFiles() ?? new Map(),
        notice,
      }),
    );
  });

  if (!catalog) return router;

  const showForm = async (
    res: express.Response,
    who: NonNullable<Awaited<ReturnType<AdminGuard['admin']>>>,
    status: number,
    fields: ServerFormFields,
    problems: string[],
    id?: string,
    version?: string,
  ) =>
    sendPage(
      res,
      status,
      renderServerForm({
        user: who.user,
        csrfToken: await guard.csrfToken(who),
        id,
        version,
        fields,
        problems,
      }),
    );

  router.get('/admin/servers/new', async (req, res) => {
    const who = await guard.admin(req, res, true);
    if (!who) return undefined;
    return showForm(res, who, 200, defaultFields(config.managedServers.defaults), []);
  });

  router.get('/admin/servers/:id/edit', async (req, res) => {
    const who = await guard.admin(req, res, true);
    if (!who) return undefined;
    await catalog.reload();
    const server = catalog.get(req.params.id);
    if (!server) return guard.refuse(res, 404, 'Not found', 'There is no such server.');
    return showForm(res, who, 200, serverFields(server), [], server.id, server.updatedAt);
  });

  /** Adds (no id) or saves a server from the posted form. */
  const save = async (req: express.Request, res: express.Response, id?: string) => {
    const who = await guard.adminForm(req, res);
    if (!who) return undefined;
    if (id !== undefined && !SERVER_ID.test(id)) {
      return guard.refuse(res, 404, 'Not found', 'There is no such server.');
    }
    const body = req.body as Record<string, unknown>;
    const fields = formFields(body);
    // The version the form was filled from; a form without one (an older page) is not checked.
    const version = typeof body.version === 'string' && body.version ? body.version : undefined;
    const parsed = serverInput(fields);
    if (!parsed.ok) return showForm(res, who, 400, fields, parsed.problems, id, version);
    try {
      if (id === undefined) await catalog.add(parsed.input, who.actor);
      else await catalog.update(id, parsed.input, who.actor, version);
    } catch (error) {
      if (!(error instanceof ServerChangeRefused)) throw error;
      if (error.status === 404) return guard.refuse(res, 404, 'Not found', error.message);
      logger.info('server change refused', {
        event: 'admin_change_refused',
        problems: error.problems,
      });
      // After a conflict the form carries the version now stored: saving again is a
      // deliberate replacement of the other change.
      const next = error instanceof ServerEditConflict ? error.current.updatedAt : version;
      return showForm(res, who, error.status, fields, error.problems, id, next);
    }
    return res.redirect(303, `/admin/servers?done=${id === undefined ? 'added' : 'saved'}`);
  };

  router.post('/admin/servers', form, (req, res) => save(req, res));
  router.post('/admin/servers/:id', form, (req, res) => save(req, res, req.params.id));

  router.post('/admin/servers/:id/remove', form, async (req, res) => {
    const who = await guard.adminForm(req, res);
    if (!who) return undefined;
    try {
      await catalog.remove(req.params.id, who.actor);
    } catch (error) {
      if (!(error instanceof ServerChangeRefused)) throw error;
      return guard.refuse(res, error.status, 'Not removed', error.message);
    }
    return res.redirect(303, '/admin/servers?done=removed');
  });

  return router;
}
