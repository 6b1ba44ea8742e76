/**
 * `mcp-gateway config check FILE`: validates a configuration file the way the service would
 * at start-up, without starting anything: exit 0 and a summary, or exit 1 and one
 * `config: <key>: <problem>` line per problem.
 */
import { ConfigError, loadConfig } from '../config/load.js';
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
