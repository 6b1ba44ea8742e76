/**
 * Per-tool rules at `/verify`: the MCP operation a request carries (mcp-operation.ts), judged
 * against the resource's tool policy (src/policy/tools.ts). Only resources with tool rules get
 * here, and only they have their forwarded body read.
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
import { readOperation } from './mcp-operation.js';
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
  policy: ToolPolicy;
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
    operationFrom: policy.operationFrom,
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

/** The scopes of both lists, each once, in order of first appearance. */
export function union(a: readonly string[], b: readonly string[]): string[] {
  return [...new Set([...a, ...b])];
}
