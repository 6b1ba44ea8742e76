/**
 * Per-tool checks at `/verify`: the MCP operation a request carries (mcp-operation.ts), judged
 * against the definitions held by tool pinning (src/tool-pinning/: new, changed or flagged
 * tools an administrator has not approved, in `enforce` mode) and the resource's tool policy
 * (src/policy/tools.ts). Only resources with tool rules or held definitions get here, and only
 * they have their forwarded body read.
 */
import { createHash } from 'node:crypto';
import type { SecurityEvents } from '../events/security-events.js';
import { BodyTooLarge } from '../http/read-body.js';
import type { ToolPolicy } from '../policy/tools.js';
import {
  insufficientScope,
  JSONRPC_FORBIDDEN,
  JSONRPC_INVALID_REQUEST,
  jsonRpcError,
  type Denial,
} from './challenges.js';
import type { HeldDefinitions } from '../tool-pinning/pinning.js';
import { readOperation, type McpMessage } from './mcp-operation.js';
import type { PublicRequest } from './public-request.js';
import type { VerifiedToken } from './token-verifier.js';

/** A refusal from the per-tool checks, with what the observers are told. */
export interface ToolRefusal {
  denial: Denial;
  reason: string;
  tool?: string;
  argumentsHash?: string;
}

/** What the per-tool checks read of one request. */
export interface ToolCheck {
  /** The forwarded body (read here, only here); rejects with BodyTooLarge over the limit. */
  body: () => Buffer | undefined | Promise<Buffer | undefined>;
  headers: Readonly<Record<string, string | string[] | undefined>>;
  request: PublicRequest;
  resourceUrl: string;
  /** The tool rules, when the resource has any. */
  policy: ToolPolicy | undefined;
  /** What tool pinning holds back (`enforce` mode), when anything. */
  held?: HeldDefinitions | undefined;
  /** The same on a fresh listing (for the list methods, which show definitions). */
  freshHeld?: (() => Promise<HeldDefinitions | undefined>) | undefined;
  token: VerifiedToken;
  prmUrl: string;
  events: SecurityEvents;
}

/** The first refusal the tool rules make of this request, or `undefined` when they allow it. */
export async function checkTools(check: ToolCheck): Promise<ToolRefusal | undefined> {
  const { request, resourceUrl, policy, token, events } = check;
  let body: Buffer | undefined;
  try {
    body = await check.body();
  } catch (error) {
    if (!(error instanceof BodyTooLarge)) throw error;
    return {
      denial: jsonRpcError(413, JSONRPC_INVALID_REQUEST, 'Request body too large'),
      reason: 'body_too_large',
    };
  }
  const operation = readOperation({
    method: request.method,
    headers: check.headers,
    body,
    operationFrom: policy?.operationFrom ?? 'body',
  });
  if (!operation.ok) {
    if (operation.refusal !== 'operation_unknown') {
      events.emit(
        operation.refusal === 'header_body_mismatch' ? 'header_body_mismatch' : 'unreadable_body',
        {
          ip: request.clientIp(),
          resource: resourceUrl,
          clientId: token.clientId,
          subject: token.sub,
          reason: operation.refusal,
        },
      );
    }
    return {
      denial: operation.denial,
      reason: operation.refusal === 'operation_unknown' ? 'operation_unknown' : 'bad_request',
    };
  }
  if (check.held) {
    const lists = operation.messages.some((message) => LIST_METHODS.has(message.method ?? ''));
    const held = (lists && (await check.freshHeld?.())) || check.held;
    // No security event per refusal: the server's change is the event (tool_definition_*),
    // and a client calling a held tool is no sign of abuse (CrowdSec must not ban it).
    for (const message of operation.messages) {
      const refusal = heldRefusal(held, message);
      if (refusal) return refusal;
    }
  }
  if (!policy) return undefined;
  for (const message of operation.messages) {
    if (message.method !== 'tools/call') continue;
    const tool = message.name ?? '';
    const decision = policy.decide(tool, token);
    if (decision.allowed) continue;
    events.emit('tool_denied', {
      ip: request.clientIp(),
      resource: resourceUrl,
      clientId: token.clientId,
      subject: token.sub,
      tool,
      reason: decision.reason,
    });
    // The arguments are recorded only as a hash (audit): they may carry user data.
    const argumentsHash =
      message.arguments === undefined
        ? undefined
        : createHash('sha256').update(JSON.stringify(message.arguments)).digest('hex');
    if (decision.reason === 'scope') {
      return {
        denial: insufficientScope(
          check.prmUrl,
          union(token.scopes, decision.requiredScopes),
          `tool ${tool} requires ${decision.requiredScopes.join(' ')}`,
        ),
        reason: 'insufficient_scope',
        tool,
        argumentsHash,
      };
    }
    return {
      denial: jsonRpcError(
        403,
        JSONRPC_FORBIDDEN,
        `Forbidden: you may not call the tool "${tool}"`,
        message.id ?? null,
      ),
      reason: 'tool_denied',
      tool,
      argumentsHash,
    };
  }
  return undefined;
}

/** The methods that show definitions to the model. */
const LIST_METHODS = new Set(['tools/list', 'prompts/list', 'resources/templates/list']);

/** What a user is told when pinning holds a definition back. */
export const HELD_MESSAGE =
  'The tool definitions of this MCP server changed (or look unsafe) and must be reviewed by ' +
  'an administrator of the gateway before they can be used';

/**
 * The refusal of one message by tool pinning: a call of a held tool or prompt, or a list that
 * would show held definitions to the model. 403 with a JSON-RPC error, so the text never
 * reaches the model through the gateway.
 */
function heldRefusal(held: HeldDefinitions, message: McpMessage): ToolRefusal | undefined {
  const { method, name } = message;
  const refused =
    (held.unchecked &&
      (method === 'tools/list' ||
        method === 'tools/call' ||
        method === 'prompts/list' ||
        method === 'prompts/get' ||
        method === 'resources/templates/list')) ||
    (method === 'tools/list' && held.toolList) ||
    (method === 'tools/call' && held.tools.has(name ?? '')) ||
    (method === 'prompts/list' && held.promptList) ||
    (method === 'prompts/get' && held.prompts.has(name ?? '')) ||
    (method === 'resources/templates/list' && held.resourceTemplates);
  if (!refused) return undefined;
  const what = method === 'tools/call' || method === 'prompts/get' ? ` (${name ?? ''})` : '';
  return {
    denial: jsonRpcError(403, JSONRPC_FORBIDDEN, `${HELD_MESSAGE}${what}`, message.id ?? null),
    reason: 'definition_held',
    ...(name !== undefined && method === 'tools/call' ? { tool: name } : {}),
  };
}

/** The scopes of both lists, each once, in order of first appearance. */
export function union(a: readonly string[], b: readonly string[]): string[] {
  return [...new Set([...a, ...b])];
}
