/**
 * `/admin/tools`: tool definition pinning in the admin console (src/tool-pinning/). The list
 * of protected servers with their pinning state, one server's approved definitions and held
 * change (a diff per definition, the scanner's findings with each rule's reason), and the
 * Approve / Reject actions.
 *
 * A decision carries the fingerprint of the change the administrator was shown: when the
 * server listed something else since, `ToolPinning` refuses it (`PinningError`, 409 here) and
 * nothing changes, so nobody approves definitions they never saw. Actions need the admin
 * guard's form checks (same-origin, CSRF token); `ToolPinning` audits them with the admin as
 * actor and tells every replica.
 */
import express, { type Request, type Response, type Router } from 'express';
import type { Logger } from '../logging/logger.js';
import type { ResourceRegistry } from '../resources/registry.js';
import { tryCanonicalResourceUrl } from '../resources/resource-url.js';
import { pinned, PinningError, type ToolPinning } from '../tool-pinning/pinning.js';
import { sendPage } from '../web/send-page.js';
import type { AdminGuard, SignedInAdmin } from './guard.js';
import { renderTools, renderToolsServer, serverLink, TOOLS_PATH } from './tools-views.js';

export interface ToolsRoutesDependencies {
  guard: AdminGuard;
  resources: Pick<ResourceRegistry, 'find' | 'list'>;
  pins: Pick<ToolPinning, 'status' | 'approve' | 'reject'>;
  logger: Logger;
}

/** Longest accepted resource URL. */
const MAX_URL = 2000;
/** A fingerprint is a SHA-256 in hex. */
const FINGERPRINT = /^[0-9a-f]{64}$/;

const NOTICES: Record<string, string> = {
  approved: 'Approved: these definitions are now the pinned ones, on every replica.',
  rejected: 'Rejected: the changed definitions stay held until the server lists the approved ones.',
};

export function createToolsRoutes(deps: ToolsRoutesDependencies): Router {
  const { guard, resources, pins, logger } = deps;
  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: '8kb', parameterLimit: 10 });

  /** The protected server a `url` value names, or `undefined`. */
  const serverNamed = (value: unknown) => {
    if (typeof value !== 'string' || value.length === 0 || value.length > MAX_URL) return undefined;
    const canonical = tryCanonicalResourceUrl(value);
    return canonical === undefined ? undefined : resources.find(canonical);
  };

  router.get(TOOLS_PATH, async (req, res) => {
    const who = await guard.admin(req, res, true);
    if (!who) return undefined;
    const rows = await Promise.all(
      resources.list().map(async (resource) => ({
        resource,
        pinned: pinned(resource),
        record: pinned(resource) ? await pins.status(resource.url) : undefined,
      })),
    );
    return sendPage(res, 200, renderTools({ user: who.user, rows }));
  });

  const showServer = async (
    res: Response,
    who: SignedInAdmin,
    status: number,
    url: string,
    extra: { problem?: string; notice?: string | undefined } = {},
  ) => {
    const resource = resources.find(url)!;
    return sendPage(
      res,
      status,
      renderToolsServer({
        user: who.user,
        csrfToken: await guard.csrfToken(who),
        resource,
        record: await pins.status(resource.url),
        ...extra,
      }),
    );
  };

  router.get(`${TOOLS_PATH}/server`, async (req, res) => {
    const who = await guard.admin(req, res, true);
    if (!who) return undefined;
    const resource = serverNamed(req.query.url);
    if (!resource || !pinned(resource)) {
      return guard.refuse(res, 404, 'Not found', 'No MCP server with pinned tools has this URL.');
    }
    const notice = typeof req.query.done === 'string' ? NOTICES[req.query.done] : undefined;
    return showServer(res, who, 200, resource.url, { notice });
  });

  /** Approves or rejects the held change the posted form was shown. */
  const decide = (action: 'approve' | 'reject') => async (req: Request, res: Response) => {
    const who = await guard.adminForm(req, res);
    if (!who) return undefined;
    const body = req.body as Record<string, unknown>;
    const resource = serverNamed(body.url);
    if (!resource || !pinned(resource)) {
      return guard.refuse(res, 404, 'Not found', 'No MCP server with pinned tools has this URL.');
    }
    const fingerprint = body.fingerprint;
    if (typeof fingerprint !== 'string' || !FINGERPRINT.test(fingerprint)) {
      return guard.refuse(res, 400, 'Bad request', 'The form names no held change.');
    }
    try {
      await pins[action](resource.url, who.actor, fingerprint);
    } catch (error) {
      if (!(error instanceof PinningError)) throw error;
      logger.info('tool definition decision refused', {
        event: 'admin_change_refused',
        resource: resource.url,
        action,
        problem: error.message,
      });
      return showServer(res, who, 409, resource.url, { problem: error.message });
    }
    logger.info(`tool definitions ${action === 'approve' ? 'approved' : 'rejected'}`, {
      event: 'admin_change',
      subject: who.session.accountId,
      resource: resource.url,
    });
    return res.redirect(
      303,
      `${serverLink(resource.url)}&done=${action === 'approve' ? 'approved' : 'rejected'}`,
    );
  };

  router.post(`${TOOLS_PATH}/approve`, form, decide('approve'));
  router.post(`${TOOLS_PATH}/reject`, form, decide('reject'));

  return router;
}
