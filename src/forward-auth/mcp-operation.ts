/**
 * What MCP operation a request carries, for per-tool authorization.
 *
 * Two sources: the `Mcp-Method`/`Mcp-Name` request headers (required of clients by MCP
 * 2026-07-28, and readable by any proxy), and the JSON-RPC body when the proxy forwards it
 * (Traefik `forwardBody: true`). When both are present they must agree: a client that says
 * one thing in its headers and does another in its body is refused (a classic way to slip a
 * call past a header-only check).
 */
import type { IncomingHttpHeaders } from 'node:http';
import {
  JSONRPC_INVALID_REQUEST,
  JSONRPC_PARSE_ERROR,
  jsonRpcError,
  type Denial,
} from './challenges.js';

export type JsonRpcId = string | number | null;

export interface McpMessage {
  /** Absent for notifications and responses. */
  id: JsonRpcId | undefined;
  /** Absent for responses (a client answering a server request). */
  method: string | undefined;
  /** `params.name` of tools/call and prompts/get, `params.uri` of resources/read. */
  name: string | undefined;
  /** `params.arguments` of a message read from the body (only ever hashed, for the audit). */
  arguments?: unknown;
}

export type OperationResult =
  | { ok: true; messages: McpMessage[]; known: boolean }
  | { ok: false; denial: Denial; mismatch: boolean };

function headerText(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  const text = Array.isArray(value) ? value[0] : value;
  return text === undefined || text === '' ? undefined : text;
}

function messageOf(value: unknown): McpMessage | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const record = value as Record<string, unknown>;
  if (record.jsonrpc !== '2.0') return undefined;
  const id = record.id;
  if (id !== undefined && id !== null && typeof id !== 'string' && typeof id !== 'number')
    return undefined;
  const method = record.method;
  if (method !== undefined && typeof method !== 'string') return undefined;
  const params =
    typeof record.params === 'object' && record.params !== null
      ? (record.params as Record<string, unknown>)
      : {};
  const nameField = method === 'resources/read' ? params.uri : params.name;
  return {
    id,
    method,
    name: typeof nameField === 'string' ? nameField : undefined,
    arguments: params.arguments,
  };
}

/** Reads the operation from the headers and, when given, the body (already size-checked). */
export function readOperation(
  headers: IncomingHttpHeaders,
  body: Buffer | undefined,
): OperationResult {
  const headerMethod = headerText(headers, 'mcp-method');
  const headerName = headerText(headers, 'mcp-name');
  if (!body || body.length === 0) {
    if (!headerMethod) return { ok: true, messages: [], known: false };
    return {
      ok: true,
      messages: [{ id: undefined, method: headerMethod, name: headerName }],
      known: true,
    };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return {
      ok: false,
      denial: jsonRpcError(400, JSONRPC_PARSE_ERROR, 'Parse error'),
      mismatch: false,
    };
  }
  const items = Array.isArray(parsed) ? parsed : [parsed];
  const messages = items.map(messageOf);
  if (items.length === 0 || messages.some((message) => message === undefined)) {
    const id = Array.isArray(parsed) ? null : (messageOf(parsed)?.id ?? null);
    return {
      ok: false,
      denial: jsonRpcError(400, JSONRPC_INVALID_REQUEST, 'Invalid Request', id),
      mismatch: false,
    };
  }
  const valid = messages as McpMessage[];
  if (headerMethod) {
    const disagrees = valid.some(
      (message) =>
        message.method !== undefined &&
        (message.method !== headerMethod ||
          (headerName !== undefined && message.name !== headerName)),
    );
    if (disagrees) {
      const id = valid.length === 1 ? (valid[0]!.id ?? null) : null;
      return {
        ok: false,
        denial: jsonRpcError(
          400,
          JSONRPC_INVALID_REQUEST,
          'Mcp-Method/Mcp-Name headers do not match the request body',
          id,
        ),
        mismatch: true,
      };
    }
  }
  return { ok: true, messages: valid, known: true };
}
