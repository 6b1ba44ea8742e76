/**
 * How `/verify` reads what the proxy forwards, table by table, without a running gateway: the
 * routed path (src/resources/routed-path.ts), the MCP session a request names
 * (session-names.ts) and JSON bodies read alike by every decoder (strict-json.ts). What the real proxies do with the same
 * inputs is checked end to end in tests/e2e/proxy-attacks.test.ts.
 */
import { describe, expect, it } from '@jest/globals';
import { routedPath } from '../../src/resources/routed-path.js';
import { sessionNamed } from '../../src/forward-auth/session-names.js';
import { MAX_JSON_DEPTH, parseStrictJson } from '../../src/forward-auth/strict-json.js';
import { DOT_DOT, SEPARATORS, traversals } from '../helpers/path-variants.js';

describe('routedPath', () => {
  it.each([
    ['/mcp', '/mcp'],
    ['/servers/legacy/messages', '/servers/legacy/messages'],
    ['/mcp/', '/mcp/'],
    ["/a-b_c.d~e/!$&'()*+,=:@", "/a-b_c.d~e/!$&'()*+,=:@"],
    // Encoded characters with no routing meaning decode to what every proxy routes on.
    ['/servers/%6cegacy/sse', '/servers/legacy/sse'],
    ['/%4D%43%50', '/MCP'],
    ['/a%3ab%40c', '/a:b@c'],
    ['/...', '/...'],
    ['/.well-known/x', '/.well-known/x'],
  ])('reads %s as %s', (raw, decoded) => {
    expect(routedPath(raw)).toEqual({ ok: true, path: decoded });
  });

  it.each([
    ['/servers/legacy/..%2fsecret/x', 'encoded_delimiter'],
    ['/servers/legacy/..%2Fsecret/x', 'encoded_delimiter'],
    ['/servers/legacy%2f..%2fsecret', 'encoded_delimiter'],
    ['/a%5cb', 'encoded_delimiter'],
    ['/a%00', 'encoded_delimiter'],
    ['/a%0a', 'encoded_delimiter'],
    ['/a%7f', 'encoded_delimiter'],
    ['/a%252f', 'encoded_delimiter'],
    ['/a%3fb', 'encoded_delimiter'],
    ['/a%23b', 'encoded_delimiter'],
    ['/a%3bb', 'encoded_delimiter'],
    ['/servers/legacy/..\\secret', 'backslash'],
    ['/servers/legacy;/../secret', 'path_parameter'],
    ['/a/..;/b', 'path_parameter'],
    ['/a%2', 'bad_encoding'],
    ['/a%zz', 'bad_encoding'],
    ['/a%c0%af', 'bad_encoding'],
    ['/a%c0%ae%c0%ae', 'bad_encoding'],
    ['/a%ff', 'bad_encoding'],
    ['/a%ef%bc%8fb', 'non_ascii'],
    ['/a%20b', 'invalid_character'],
    ['/a b', 'invalid_character'],
    ['/caf\u00e9', 'invalid_character'],
    ['/a/../b', 'dot_segment'],
    ['/a/./b', 'dot_segment'],
    ['/a/..', 'dot_segment'],
    ['/a/.', 'dot_segment'],
    ['/a/%2e%2e/b', 'dot_segment'],
    ['/a/.%2E/b', 'dot_segment'],
    ['/a/%2e/b', 'dot_segment'],
    ['//a', 'empty_segment'],
    ['/a//b', 'empty_segment'],
  ])('refuses %s (%s)', (raw, reason) => {
    expect(routedPath(raw)).toEqual({ ok: false, reason });
  });

  it('refuses every traversal spelling the generator makes', () => {
    const accepted = traversals('/servers/public', '/servers', 'secret', DOT_DOT, SEPARATORS)
      .map((path) => [path, routedPath(path)] as const)
      .filter(([, result]) => result.ok && result.path.includes('secret'))
      // A `...`-like segment is a name, not a traversal; none of them reaches /servers/secret.
      .filter(([, result]) => result.ok && result.path.startsWith('/servers/secret'));
    expect(accepted).toEqual([]);
  });
});

describe('sessionNamed', () => {
  it.each([
    [undefined, '', { kind: 'none' }],
    [undefined, '?format=json', { kind: 'none' }],
    ['abc', '', { kind: 'one', id: 'abc' }],
    [undefined, '?sessionId=abc', { kind: 'one', id: 'abc' }],
    [undefined, '?session_id=abc', { kind: 'one', id: 'abc' }],
    [undefined, '?sessionid=abc', { kind: 'one', id: 'abc' }],
    [undefined, '?SessionID=abc', { kind: 'one', id: 'abc' }],
    [undefined, '?session%49d=abc', { kind: 'one', id: 'abc' }],
    [undefined, '?%73ession%5fid=abc', { kind: 'one', id: 'abc' }],
    [undefined, '?sessionId[]=abc', { kind: 'one', id: 'abc' }],
    [undefined, '?sessionId%5B0%5D=abc', { kind: 'one', id: 'abc' }],
    [undefined, '?mcp-session-id=abc', { kind: 'one', id: 'abc' }],
    [undefined, '?x=1;sessionId=abc', { kind: 'one', id: 'abc' }],
    [undefined, '?sessionId=a%62c', { kind: 'one', id: 'abc' }],
    // Another parameter's broken value does not hide an encoded session name.
    [undefined, '?x=%E0&%73essionId=abc', { kind: 'one', id: 'abc' }],
  ])('reads header %s and query %s', (header, search, expected) => {
    expect(sessionNamed(header, search)).toEqual(expected);
  });

  it.each([
    [undefined, '?sessionId=a&sessionId=b', 'several_sessions'],
    [undefined, '?sessionId=a&sessionId=a', 'several_sessions'],
    ['a', '?sessionId=b', 'several_sessions'],
    ['a', '?session_id=a', 'several_sessions'],
    [undefined, '?session_id=a&sessionId=b', 'several_sessions'],
    ['a, b', '', 'malformed_session_id'],
    [undefined, '?sessionId=', 'malformed_session_id'],
    [undefined, '?sessionId', 'malformed_session_id'],
    [undefined, '?sessionId=a+b', 'malformed_session_id'],
    [undefined, `?sessionId=${'x'.repeat(257)}`, 'malformed_session_id'],
    [undefined, '?session%E0=a', 'malformed_session_id'],
  ])('refuses header %s with query %s (%s)', (header, search, reason) => {
    expect(sessionNamed(header, search)).toEqual({ kind: 'refused', reason });
  });
});

describe('parseStrictJson', () => {
  it('reads ordinary JSON-RPC', () => {
    expect(parseStrictJson('{"jsonrpc":"2.0","id":1,"method":"ping"}')).toEqual({
      ok: true,
      value: { jsonrpc: '2.0', id: 1, method: 'ping' },
    });
    // The same key in different objects is no duplicate.
    expect(parseStrictJson('[{"a":1},{"a":2}]').ok).toBe(true);
    expect(parseStrictJson('{"a":{"a":1}}').ok).toBe(true);
  });

  it.each([
    ['{"a":1,"a":2}', 'duplicate_key'],
    ['{"a":1,"A":2}', 'case_folded_key'],
    ['{"name":1,"NAME":2}', 'case_folded_key'],
    ['{"s":1,"\\u017f":2}', 'case_folded_key'],
    ['{"k":1,"\\u212a":2}', 'case_folded_key'],
    ['{"a\\u0000":1}', 'nul_in_key'],
    ['{"a":1,}', 'parse_error'],
    ['{"a":1 /* x */}', 'parse_error'],
    ["{'a':1}", 'parse_error'],
    ['{"a":NaN}', 'parse_error'],
    ['', 'parse_error'],
    ['\ufeff{}', 'parse_error'],
  ])('refuses %s (%s)', (text, reason) => {
    expect(parseStrictJson(text)).toEqual({ ok: false, reason });
  });

  it(`bounds nesting at ${MAX_JSON_DEPTH}, however deep the input`, () => {
    const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
    expect(parseStrictJson(nested(MAX_JSON_DEPTH)).ok).toBe(true);
    expect(parseStrictJson(nested(MAX_JSON_DEPTH + 1))).toEqual({ ok: false, reason: 'too_deep' });
    expect(parseStrictJson(nested(1_000_000))).toEqual({ ok: false, reason: 'too_deep' });
    expect(parseStrictJson(`${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`)).toEqual({
      ok: false,
      reason: 'too_deep',
    });
  });
});
