/**
 * What MCP operation a request carries, for per-tool authorization.
 *
 * The operation is read from the JSON-RPC body, which the proxy forwards to `/verify`
 * (Traefik forwardAuth `forwardBody: true`): the body is what the MCP server acts on. The
 * `Mcp-Method`/`Mcp-Name` request headers (MCP 2026-07-28) are written by the same client, so
 * they decide nothing on their own unless the resource opts in (`tools.operationFrom:
 * headers`, for proxies that cannot forward a body, and only safe when the MCP server refuses
 * headers that disagree with its body). When headers and a body are both present they must
 * agree: saying one thing in the headers and doing another in the body is refused.
 *
 * The body is read strictly (strict-json.ts): a body another JSON decoder would read
 * differently, or nested beyond reason, is refused before any field is looked at.
 */
import type { IncomingHttpHeaders } from 'node:http';
import {
  JSONRPC_FORBIDDEN,
  JSONRPC_INVALID_REQUEST,
  JSONRPC_PARSE_ERROR,
  jsonRpcError,
  type Denial,
  type JsonRpcStatus,
} from './challenges.js';
import { parseStrictJson, type StrictJsonRefusal } from './strict-json.js';

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

/** Why no operation could be read; each is a refusal counted against the client. */
export type OperationRefusal =
  StrictJsonRefusal | 'invalid_request' | 'header_body_mismatch' | 'operation_unknown';

export type OperationResult =
  { ok: true; messages: McpMessage[] } | { ok: false; refusal: OperationRefusal; denial: Denial };

/** What the decision knows of the request when it reads the operation. */
export interface OperationRequest {
  /** The original request's method (`X-Forwarded-Method`). */
  method: string;
  headers: IncomingHttpHeaders;
  /** The forwarded body (already size-checked), or `undefined` when none came. */
  body: Buffer | undefined;
  operationFrom: 'body' | 'headers';
}

/**
 * Methods that carry no JSON-RPC message when they have no body: the SSE stream (GET), session
 * end (DELETE), HEAD and OPTIONS. Every other method may (POST, and PUT or PATCH to a server
 * that reads a body whatever the method), so without a body it is judged unknown.
 */
const NO_MESSAGE_WITHOUT_BODY = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS']);

function headerText(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  const text = Array.isArray(value) ? value[0] : value;
  return text === undefined || text === '' ? undefined : text;
}

/** The fields read here, of a message and of its `params`. */
const MESSAGE_FIELDS = ['jsonrpc', 'id', 'method', 'params', 'result', 'error'];
const PARAMS_FIELDS = ['name', 'uri', 'arguments'];

/**
 * Whether an object has a key that a decoder matching keys without case (Go's
 * `encoding/json`) would take for one of `fields` while this reading would not:
 * `{"Name":"delete_all"}` has no `name` here and is `delete_all` there.
 */
function misspells(record: Record<string, unknown>, fields: readonly string[]): boolean {
  return Object.keys(record).some((key) => {
    if (fields.includes(key)) return false;
    const folded = key.toLowerCase().toUpperCase().toLowerCase();
    return fields.includes(folded);
  });
}

function messageOf(value: unknown): McpMessage | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const record = value as Record<string, unknown>;
  if (misspells(record, MESSAGE_FIELDS)) return undefined;
  if (record.jsonrpc !== '2.0') return undefined;
  const id = record.id;
  if (id !== undefined && id !== null && typeof id !== 'string' && typeof id !== 'number')
    return undefined;
  const method = record.method;
  if (method === undefined) {
    // A response (a client answering a server's request): an id and exactly one outcome.
    const outcomes = Number('result' in record) + Number('error' in record);
    if (!('id' in record) || outcomes !== 1 || 'params' in record) return undefined;
  } else if (typeof method !== 'string') {
    return undefined;
  }
  const params =
    typeof record.params === 'object' && record.params !== null
      ? (record.params as Record<string, unknown>)
      : {};
  if (misspells(params, PARAMS_FIELDS)) return undefined;
  const nameField = method === 'resources/read' ? params.uri : params.name;
  return {
    id,
    method,
    name: typeof nameField === 'string' ? nameField : undefined,
    arguments: params.arguments,
  };
}

const UNREADABLE: Record<StrictJsonRefusal, string> = {
  parse_error: 'Parse error',
  too_deep: `Invalid Request: JSON nested too deeply`,
  duplicate_key: 'Invalid Request: duplicate key in JSON object',
  case_folded_key: 'Invalid Request: JSON object keys differ only by case',
  nul_in_key: 'Invalid Request: NUL character in a JSON key',
};

function refuse(
  refusal: OperationRefusal,
  status: JsonRpcStatus,
  code: number,
  message: string,
  id: JsonRpcId = null,
): OperationResult {
  return { ok: false, refusal, denial: jsonRpcError(status, code, message, id) };
}

/** Reads the operation of one request to a resource with tool rules. */
export function readOperation(request: OperationRequest): OperationResult {
  const { headers, body } = request;
  const headerMethod = headerText(headers, 'mcp-method');
  const headerName = headerText(headers, 'mcp-name');
  if (!body || body.length === 0) return withoutBody(request, headerMethod, headerName);

  const parsed = parseStrictJson(body.toString('utf8'));
  if (!parsed.ok) {
    const code = parsed.reason === 'parse_error' ? JSONRPC_PARSE_ERROR : JSONRPC_INVALID_REQUEST;
    return refuse(parsed.reason, 400, code, UNREADABLE[parsed.reason]);
  }
  const items = Array.isArray(parsed.value) ? parsed.value : [parsed.value];
  const messages = items.map(messageOf);
  if (items.length === 0 || messages.some((message) => message === undefined)) {
    const id = Array.isArray(parsed.value) ? null : (messageOf(parsed.value)?.id ?? null);
    return refuse('invalid_request', 400, JSONRPC_INVALID_REQUEST, 'Invalid Request', id);
  }
  const valid = messages as McpMessage[];
  if (headerMethod) {
    // The headers describe the body's request: a body without one (only responses) does
    // not agree with them either.
    const requests = valid.filter((message) => message.method !== undefined);
    const disagrees =
      requests.length === 0 ||
      requests.some(
        (message) =>
          message.method !== headerMethod ||
          (headerName !== undefined && message.name !== headerName),
      );
    if (disagrees) {
      return refuse(
        'header_body_mismatch',
        400,
        JSONRPC_INVALID_REQUEST,
        'Mcp-Method/Mcp-Name headers do not match the request body',
        valid.length === 1 ? (valid[0]!.id ?? null) : null,
      );
    }
  }
  return { ok: true, messages: valid };
}

function withoutBody(
  request: OperationRequest,
  headerMethod: string | undefined,
  headerName: string | undefined,
): OperationResult {
  if (request.operationFrom === 'headers' && headerMethod) {
    return { ok: true, messages: [{ id: undefined, method: headerMethod, name: headerName }] };
  }
  if (NO_MESSAGE_WITHOUT_BODY.has(request.method)) return { ok: true, messages: [] };
  // Fail closed: a call we cannot see could be a call we would refuse.
  return refuse(
    'operation_unknown',
    403,
    JSONRPC_FORBIDDEN,
    request.operationFrom === 'headers'
      ? 'The gateway cannot see which MCP operation this request carries: send the Mcp-Method and Mcp-Name headers.'
      : 'The gateway cannot see which MCP operation this request carries: the proxy must forward the request body to the gateway (Traefik forwardAuth forwardBody).',
  );
}
