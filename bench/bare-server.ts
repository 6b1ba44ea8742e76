/**
 * The baseline: a bare `node:http` server answering every request 200 with an empty body.
 * Started by bench/run.ts as its own process: `node --import tsx bench/bare-server.ts PORT`.
 */
import { createServer } from 'node:http';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  process.stderr.write('usage: bare-server.ts PORT\n');
  process.exit(2);
}

const server = createServer((_req, res) => {
  res.writeHead(200, { 'Content-Length': '0' });
  res.end();
});
// The same socket limits as the auth service's server (src/gateway.ts).
server.headersTimeout = 20_000;
server.requestTimeout = 30_000;
server.keepAliveTimeout = 5_000;
server.listen(port, '127.0.0.1');

const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
