/**
 * `/healthz`: the process is up and serving. `/readyz`: it can do its job, i.e. the store
 * answers; load balancers and Docker take a replica out of rotation while it says 503.
 */
import { Router } from 'express';
import type { Store } from '../store/store.js';

export function healthRouter(store: Store): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.set('Cache-Control', 'no-store').json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    try {
      await store.ping();
      res.set('Cache-Control', 'no-store').json({ status: 'ready' });
    } catch {
      res
        .status(503)
        .set('Cache-Control', 'no-store')
        .json({ status: 'unavailable', reason: 'store' });
    }
  });
  return router;
}
