#!/usr/bin/env node
/**
 * The `mcp-gateway` command: reads the configuration (`--config FILE` or
 * `MCP_GATEWAY_CONFIG`; the embedded default when neither is given), starts the auth
 * service and stops it cleanly on SIGINT/SIGTERM. With a subcommand (`config`, `clients`,
 * …) it runs that instead (src/cli/).
 *
 * Exit codes (src/cli/io.ts `EXIT`, shared with every subcommand): 0 stopped by a signal,
 * 1 failed at run time, 2 invalid configuration or refused start-up. This is the only module
 * that reads `process.env`.
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config/load.js';
import { createGateway, StartupRefused } from './gateway.js';
import { createLogger } from './logging/logger.js';
import { runAuditCommand } from './audit/cli.js';
import { text } from 'node:stream/consumers';
import { runClientsCommand } from './cli/clients-command.js';
import { runConfigCommand } from './cli/config-command.js';
import { runServersCommand } from './cli/servers-command.js';
import { runToolsCommand } from './cli/tools-command.js';
import { EXIT, processIo } from './cli/io.js';
import { DEFAULT_TUNNEL_DIR, runTunnelCommand } from './tunnel/command.js';

const USAGE = `Usage: mcp-gateway [--config FILE]
       mcp-gateway config check FILE
       mcp-gateway audit verify [--file FILE] [--jwks FILE|URL] [--config FILE]
       mcp-gateway tunnel add-site NAME --public-key KEY | show-site NAME | remove-site NAME
                          | rotate-site NAME --public-key KEY | rotate-hub | list [--json]  [--dir DIR]
       mcp-gateway clients list|revoke|disable|enable CLIENT_ID [--config FILE]
       mcp-gateway servers list|add FILE|-|remove SERVER_ID|URL [--config FILE]
       mcp-gateway tools list|diff URL|approve URL [FINGERPRINT]|reject URL [FINGERPRINT] [--config FILE]
       mcp-gateway clients pending-hosts|approved-hosts|approve-host HOST|unapprove-host HOST [--config FILE]

  --config FILE   gateway configuration (YAML); default: $MCP_GATEWAY_CONFIG, else the
                  embedded default (loopback only, in-memory store, development login)
  --help          show this text
  -               in place of FILE: standard input, e.g. from outside the container
                  docker compose exec -T auth mcp-gateway servers add - < server.yaml

Environment: PORT and HOST override listen.port and listen.host.`;

/** Runs a subcommand; `undefined` when argv names none (then the service starts). */
async function subcommand(argv: string[]): Promise<number | undefined> {
  const [name, ...rest] = argv;
  if (name === 'config') return runConfigCommand(rest, process.env, processIo);
  if (name === 'audit') return runAuditCommand(rest, { ...processIo, env: process.env });
  if (name === 'tunnel') {
    return runTunnelCommand(rest, processIo, {
      dir: process.env.MCP_GATEWAY_TUNNEL_DIR || DEFAULT_TUNNEL_DIR,
    });
  }
  if (name === 'clients' || name === 'servers' || name === 'tools') {
    const parsed = parseArgs({
      args: rest,
      options: { config: { type: 'string' } },
      allowPositionals: true,
    });
    const file = parsed.values.config ?? (process.env.MCP_GATEWAY_CONFIG || undefined);
    try {
      const config = loadConfig(file, process.env).config;
      if (name === 'servers') {
        return await runServersCommand(parsed.positionals, config, {
          ...processIo,
          stdin: () => text(process.stdin),
        });
      }
      if (name === 'tools') return await runToolsCommand(parsed.positionals, config, processIo);
      return await runClientsCommand(parsed.positionals, config, processIo);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      for (const line of error.problems) process.stderr.write(`config: ${line}\n`);
      return EXIT.usage;
    }
  }
  return undefined;
}

async function main(): Promise<number> {
  const command = await subcommand(process.argv.slice(2));
  if (command !== undefined) return command;
  let args;
  try {
    args = parseArgs({ options: { config: { type: 'string' }, help: { type: 'boolean' } } });
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}\n`);
    return EXIT.usage;
  }
  if (args.values.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  const file = args.values.config ?? (process.env.MCP_GATEWAY_CONFIG || undefined);

  let loaded;
  try {
    loaded = loadConfig(file, process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      for (const line of error.problems) process.stderr.write(`config: ${line}\n`);
      return EXIT.usage;
    }
    throw error;
  }
  const { config } = loaded;
  const logger = createLogger({
    level: config.log.level,
    securityEventsFile: config.log.securityEventsFile,
  });

  let gateway;
  try {
    gateway = await createGateway(config, { logger });
  } catch (error) {
    if (error instanceof StartupRefused) {
      process.stderr.write(`config: ${error.message}\n`);
      return EXIT.usage;
    }
    throw error;
  }
  const address = await gateway.listen();
  logger.info('listening', {
    event: 'started',
    address: `${address.address}:${address.port}`,
    issuer: config.issuer,
    config: loaded.source ?? 'embedded default',
    store: config.store.redis ? 'redis' : 'memory',
  });
  // The embedded default also serves its demo MCP server, protected as in production; the
  // module is loaded only here, so a deployment never loads it (src/demo/).
  let demo: { mcpUrl: string; close(): Promise<void> } | undefined;
  if (!loaded.source) {
    try {
      const { startDemo } = await import('./demo/index.js');
      demo = await startDemo(config, `http://127.0.0.1:${address.port}`);
    } catch (error) {
      process.stderr.write(`demo: ${(error as Error).message}\n`);
    }
    printEmbeddedDefaultHelp(config.issuer, demo?.mcpUrl);
  }

  return new Promise((resolve) => {
    const stop = (signal: string) => {
      logger.info('stopping', { event: 'stopping', signal });
      Promise.all([gateway.close(), demo?.close()]).then(
        () => resolve(EXIT.ok),
        () => resolve(EXIT.failed),
      );
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}

function printEmbeddedDefaultHelp(issuer: string, demoUrl: string | undefined): void {
  const demo = demoUrl
    ? `  Protected MCP server (demo)     ${demoUrl}
                                  tools: whoami, echo, add, team_report (dev:admins only)
                                  a demo front asks /verify as Traefik's forwardAuth does;
                                  it exists only on this embedded default`
    : '  Protected MCP server (demo)     not started (see the message above)';
  process.stderr.write(`
MCP Gateway is running on its embedded default: loopback only, in-memory store, development
login (dev@example.com: an administrator, in group dev:admins; guest@example.com: neither).

${demo}
  Admin console                   ${issuer}/admin
  Connected apps                  ${issuer}/account
  Authorization server metadata   ${issuer}/.well-known/oauth-authorization-server

Connect an MCP client to the demo URL, e.g.
  npx @modelcontextprotocol/inspector --cli ${demoUrl ?? '<url>'} --method tools/list
  npx mcp-remote ${demoUrl ?? '<url>'}
See docs/quickstart.md and docs/clients.md. Stop with Ctrl+C.
`);
}

main().then(
  // Exit explicitly: open keep-alive sockets or timers must not keep a stopped service alive.
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`fatal: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(EXIT.failed);
  },
);
