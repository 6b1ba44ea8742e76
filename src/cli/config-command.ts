/**
 * `mcp-gateway config check FILE`: validates a configuration file the way the service would
 * at start-up, without starting anything: exit 0 and a summary, or exit 1 and one
 * `config: <key>: <problem>` line per problem.
 */
import { ConfigError, loadConfig } from '../config/load.js';
import type { ResourceConfig } from '../config/schema.js';
import { EXIT, type CliIo } from './io.js';

export function runConfigCommand(
  argv: string[],
  env: Record<string, string | undefined>,
  io: CliIo,
): number {
  const [action, file, ...rest] = argv;
  if (action !== 'check' || !file || rest.length > 0) {
    io.stderr('usage: mcp-gateway config check FILE\n');
    return EXIT.usage;
  }
  try {
    const { config } = loadConfig(file, env);
    const logins = [
      ...(config.login.dev ? ['dev'] : []),
      ...(config.login.github ? ['github'] : []),
      ...(config.login.google ? ['google'] : []),
      ...config.login.oidc.map((provider) => provider.id),
    ];
    io.stdout(
      `${file}: valid\n  issuer     ${config.issuer}\n  store      ${config.store.redis ? 'redis' : 'memory'}\n  logins     ${logins.join(', ') || '(none)'}\n  resources  ${config.resources.map((r) => r.url).join(', ')}\n`,
    );
    for (const note of toolRuleNotes(config.resources)) io.stdout(`  ${note}\n`);
    return EXIT.ok;
  } catch (error) {
    if (error instanceof ConfigError) {
      for (const line of error.problems) io.stderr(`config: ${line}\n`);
      return EXIT.failed;
    }
    io.stderr(`config: ${(error as Error).message}\n`);
    return EXIT.failed;
  }
}

/**
 * What each resource's tool rules need from the deployment: the body from the proxy (the
 * default), or, where the rules believe the `Mcp-*` headers, an MCP server that refuses a
 * header/body mismatch itself (a valid file, but one whose safety the file cannot show).
 */
export function toolRuleNotes(resources: readonly ResourceConfig[]): string[] {
  return resources.flatMap((resource, index) => {
    if (!resource.tools) return [];
    const key = `resources[${index}].tools.operationFrom`;
    return resource.tools.operationFrom === 'headers'
      ? [
          `warning: ${key}: headers: without a body, tool rules for ${resource.url} believe the ` +
            `client-written Mcp-Method/Mcp-Name headers. Safe only if that MCP server refuses ` +
            `requests whose headers do not match their body (MCP 2026-07-28 servers do).`,
        ]
      : [
          `note: ${key}: body: the proxy must forward request bodies to /verify (Traefik ` +
            `forwardAuth forwardBody: true); behind Caddy or nginx every tools/call to ` +
            `${resource.url} is refused.`,
        ];
  });
}
