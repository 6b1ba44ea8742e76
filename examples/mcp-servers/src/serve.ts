/**
 * Starting and stopping an example server: `HOST` and `PORT` from the environment (the
 * container sets `HOST=0.0.0.0`; run locally, the default is loopback only), `GET /healthz` for
 * the container health check, and a clean stop on SIGTERM/SIGINT (`docker compose stop`).
 */
import { createServer } from 'node:http';
import type { Express } from 'express';

export function serve(app: Express, name: string, defaultPort: number): void {
  app.get('/healthz', (_req, res) => {
    res.set('Cache-Control', 'no-store').json({ status: 'ok' });
  });

  const host = process.env.HOST || '127.0.0.1';
  const port = Number(process.env.PORT || defaultPort);
  const server = createServer(app);
  server.listen(port, host, () => {
    process.stdout.write(`${name} listening on http://${host}:${port}\n`);
  });

  const stop = () => {
    server.close(() => process.exit(0));
    // Open streams (SSE) never end on their own: close them rather than wait.
    server.closeAllConnections();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
