/**
 * The add/edit form of an MCP server: from the posted fields to the catalog's input, and
 * from a stored server (or the configured defaults) back to the fields. The form is text;
 * the one schema that judges a server (src/servers/managed-server.ts) gives the errors, so a
 * field problem reads the same here as in `mcp-gateway servers add` and the config file.
 */
import { parse } from 'yaml';
import type { GatewayConfig } from '../config/schema.js';
import type { ManagedServer, ManagedServerInput } from '../servers/managed-server.js';
import type { ServerFormFields } from './server-views.js';

const TEXT_FIELDS = [
  'name',
  'url',
  'upstream',
  'scopes',
  'allowedOrigins',
  'upstreamAuthorization',
  'toolsDefault',
  'toolsFrom',
  'toolRules',
  'rateLimitAverage',
  'rateLimitBurst',
  'inFlight',
] as const;

/** Longest accepted value of any field (tool rules included). */
const MAX_FIELD = 20_000;

/** The posted fields as text (anything else, or too long, reads as empty). */
export function formFields(body: Record<string, unknown>): ServerFormFields {
  const text = (name: string) => {
    const value = body[name];
    return typeof value === 'string' && value.length <= MAX_FIELD ? value : '';
  };
  const fields = Object.fromEntries(TEXT_FIELDS.map((name) => [name, text(name)])) as Omit<
    ServerFormFields,
    'crowdsec'
  >;
  return { ...fields, crowdsec: body.crowdsec === 'on' };
}

export function defaultFields(
  defaults: GatewayConfig['managedServers']['defaults'],
): ServerFormFields {
  return {
    name: '',
    url: '',
    upstream: '',
    scopes: 'mcp',
    allowedOrigins: '',
    upstreamAuthorization: 'none',
    toolsDefault: 'none',
    toolsFrom: 'body',
    toolRules: '',
    rateLimitAverage: String(defaults.rateLimitAverage),
    rateLimitBurst: String(defaults.rateLimitBurst),
    inFlight: String(defaults.inFlight),
    crowdsec: true,
  };
}

export function serverFields(server: ManagedServer): ServerFormFields {
  const rules = server.tools?.rules ?? {};
  return {
    name: server.name,
    url: server.url,
    upstream: server.upstream,
    scopes: server.scopes.join(' '),
    allowedOrigins: server.allowedOrigins.join(' '),
    upstreamAuthorization: server.upstreamAuthorization,
    toolsDefault: server.tools ? server.tools.default : 'none',
    toolsFrom: server.tools?.operationFrom ?? 'body',
    toolRules: Object.keys(rules).length
      ? Object.entries(rules)
          .map(
            ([tool, rule]) =>
              `${JSON.stringify(tool)}: { scopes: ${JSON.stringify(rule.scopes)}, groups: ${JSON.stringify(rule.groups)} }`,
          )
          .join('\n')
      : '',
    rateLimitAverage: String(server.rateLimitAverage),
    rateLimitBurst: String(server.rateLimitBurst),
    inFlight: String(server.inFlight),
    crowdsec: server.crowdsec,
  };
}

const words = (value: string) => value.split(/[\s,]+/).filter(Boolean);

/** A whole number as typed, else the text itself (the schema then says what is wrong). */
const whole = (value: string): number | string =>
  /^\s*\d{1,9}\s*$/.test(value) ? Number(value) : value.trim();

/**
 * The catalog's input from the form, or the problems that stop it being one (the rule text
 * is not YAML). Field values are checked by the catalog's schema afterwards.
 */
export function serverInput(
  fields: ServerFormFields,
): { ok: true; input: ManagedServerInput } | { ok: false; problems: string[] } {
  let tools: ManagedServerInput['tools'];
  if (fields.toolsDefault !== 'none') {
    let rules: unknown = {};
    if (fields.toolRules.trim() !== '') {
      try {
        rules = parse(fields.toolRules, { maxAliasCount: 0 }) as unknown;
      } catch (error) {
        return {
          ok: false,
          problems: [`tools.rules: not YAML: ${(error as Error).message.split('\n')[0]}`],
        };
      }
    }
    tools = {
      default: fields.toolsDefault,
      // Anything but the opt-in reads as the default: the schema has the last word.
      operationFrom: fields.toolsFrom === 'headers' ? 'headers' : 'body',
      rules,
    } as ManagedServerInput['tools'];
  } else if (fields.toolRules.trim() !== '') {
    return {
      ok: false,
      problems: ['tools: choose whether other tools are allowed or denied to use tool rules'],
    };
  }
  const scopes = words(fields.scopes);
  return {
    ok: true,
    input: {
      name: fields.name.trim(),
      url: fields.url.trim(),
      upstream: fields.upstream.trim(),
      ...(scopes.length ? { scopes } : {}),
      allowedOrigins: words(fields.allowedOrigins),
      upstreamAuthorization: fields.upstreamAuthorization as 'none' | 'jwt',
      ...(tools ? { tools } : {}),
      rateLimitAverage: whole(fields.rateLimitAverage) as number,
      rateLimitBurst: whole(fields.rateLimitBurst) as number,
      inFlight: whole(fields.inFlight) as number,
      crowdsec: fields.crowdsec,
    },
  };
}
