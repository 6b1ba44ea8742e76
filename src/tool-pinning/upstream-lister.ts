/**
 * Lists what an MCP server offers, asking it directly (its `upstream` URL on the internal
 * network, not through the proxy) as an MCP client of its own: `initialize`, then
 * `tools/list`, `prompts/list` and `resources/templates/list`, each page of each, with the
 * MCP SDK's client over Streamable HTTP. A list the server does not offer (no `prompts`
 * capability) is empty.
 *
 * The gateway authenticates as itself: with `upstreamAuthorization: jwt` it signs a short-lived
 * JWT for the server as it does for users (subject {@link GATEWAY_SUBJECT}); with
 * `toolDefinitions.authorizationEnv` it sends that environment variable's value as
 * `Authorization`. The whole listing is bounded by a timeout: a slow server fails its own
 * check, never anyone else's.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { cappedFetch } from '../net/capped-fetch.js';
import type { DefinitionKind } from './definitions.js';

/** The `sub` of the JWT the gateway signs to list a server's tools. */
export const GATEWAY_SUBJECT = 'mcp-gateway:tool-pinning';

/** What one listing needs. */
export interface ListingTarget {
  /** The MCP endpoint on the internal network. */
  upstream: string;
  /** `Authorization` to send, or `undefined` for none. */
  authorization: () => Promise<string | undefined>;
  timeoutMs: number;
}

export type Lists = Record<DefinitionKind, Record<string, unknown>[]>;

/** Raised when a server cannot be listed; the message is for diagnostics. */
export class ListingFailed extends Error {}

/** The most one answer of a server may weigh (all its tools at once, say). */
export const MAX_ANSWER_BYTES = 8 * 1024 * 1024;
/** The most definitions one server may list (tools, prompts and templates together). */
export const MAX_DEFINITIONS = 5_000;

/** Every page of one list. */
async function allPages<Page extends { nextCursor?: string | undefined }>(
  list: (cursor: string | undefined) => Promise<Page>,
  items: (page: Page) => Record<string, unknown>[],
): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 100; page += 1) {
    const result = await list(cursor);
    out.push(...items(result));
    if (out.length > MAX_DEFINITIONS)
      throw new ListingFailed(`more than ${MAX_DEFINITIONS} definitions`);
    if (!result.nextCursor) return out;
    cursor = result.nextCursor;
  }
  throw new ListingFailed('more than 100 pages');
}

/** Lists a server's tools, prompts and resource templates. */
export async function listDefinitions(target: ListingTarget): Promise<Lists> {
  const signal = AbortSignal.timeout(target.timeoutMs);
  const authorization = await target.authorization();
  const transport = new StreamableHTTPClientTransport(new URL(target.upstream), {
    requestInit: { headers: authorization ? { Authorization: authorization } : {} },
    // An MCP server is not trusted to answer small: one answer, and all pages together, are
    // bounded, so a listing cannot exhaust the gateway's memory.
    fetch: cappedFetch(MAX_ANSWER_BYTES),
  });
  const client = new Client({ name: 'mcp-gateway-tool-pinning', version: '1.0.0' });
  const options = { signal, timeout: target.timeoutMs };
  try {
    await client.connect(transport, options);
    const capabilities = client.getServerCapabilities() ?? {};
    const tools = capabilities.tools
      ? await allPages(
          (cursor) => client.listTools(cursor ? { cursor } : {}, options),
          (page) => page.tools,
        )
      : [];
    const prompts = capabilities.prompts
      ? await allPages(
          (cursor) => client.listPrompts(cursor ? { cursor } : {}, options),
          (page) => page.prompts,
        )
      : [];
    const resourceTemplates = capabilities.resources
      ? await allPages(
          (cursor) => client.listResourceTemplates(cursor ? { cursor } : {}, options),
          (page) => page.resourceTemplates,
        )
      : [];
    if (tools.length + prompts.length + resourceTemplates.length > MAX_DEFINITIONS) {
      throw new ListingFailed(`more than ${MAX_DEFINITIONS} definitions`);
    }
    return { tool: tools, prompt: prompts, resourceTemplate: resourceTemplates };
  } catch (error) {
    if (error instanceof ListingFailed) throw error;
    throw new ListingFailed(signal.aborted ? 'timed out' : (error as Error).message);
  } finally {
    await client.close().catch(() => undefined);
  }
}
