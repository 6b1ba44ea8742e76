/**
 * The baseline: a bare `node:http` server answering every request 200 with an empty body.
 * Started by bench/run.ts as its own process: `node --import tsx bench/bare-server.ts PORT`.
 */
import { createServer } from 'node:http';
import { portFromArgs, serveUntilSignalled } from './serve.js';

const port = portFromArgs('bare-server.ts');

const server = createServer((_req, res) => {
  res.writeHead(200, { 'Content-Length': '0' });
  res.end();
});
serveUntilSignalled(server, port);
