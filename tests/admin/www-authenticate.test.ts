/**
 * The diagnostics page's `WWW-Authenticate` parser (RFC 9110 §11.6.1): what the gateway
 * sends, the forms other servers send, and the malformed headers it must name, not guess.
 */
import { describe, expect, it } from '@jest/globals';
import { parseWwwAuthenticate, type Challenge } from '../../src/admin/www-authenticate.js';

function parsed(
  header: string,
): { scheme: string; params: Record<string, string>; token68?: string }[] {
  const result = parseWwwAuthenticate(header);
  if (!result.ok) throw new Error(`not parsed: ${result.error} at ${result.position}`);
  return result.challenges.map((challenge: Challenge) => ({
    scheme: challenge.scheme,
    params: Object.fromEntries(challenge.params),
    ...(challenge.token68 === undefined ? {} : { token68: challenge.token68 }),
  }));
}

function failure(header: string): { error: string; position: number } {
  const result = parseWwwAuthenticate(header);
  if (result.ok) throw new Error(`parsed: ${JSON.stringify(parsed(header))}`);
  return { error: result.error, position: result.position };
}

describe('WWW-Authenticate parser', () => {
  it('reads the gateway’s challenge without a token (RS-03, RS-05)', () => {
    expect(
      parsed(
        'Bearer resource_metadata="https://gw.example/.well-known/oauth-protected-resource/mcp", scope="mcp:tools files:read"',
      ),
    ).toEqual([
      {
        scheme: 'bearer',
        params: {
          resource_metadata: 'https://gw.example/.well-known/oauth-protected-resource/mcp',
          scope: 'mcp:tools files:read',
        },
      },
    ]);
  });

  it('lower-cases scheme and parameter names, keeps values as sent', () => {
    expect(parsed('BEARER Realm="Files", ERROR=invalid_token')).toEqual([
      { scheme: 'bearer', params: { realm: 'Files', error: 'invalid_token' } },
    ]);
  });

  it('reads several challenges in one list, as joined header lines arrive', () => {
    expect(
      parsed(
        'Basic realm="simple", Newauth realm="apps", type=1, title="Login to \\"apps\\"", Bearer',
      ),
    ).toEqual([
      { scheme: 'basic', params: { realm: 'simple' } },
      { scheme: 'newauth', params: { realm: 'apps', type: '1', title: 'Login to "apps"' } },
      { scheme: 'bearer', params: {} },
    ]);
  });

  it('accepts a bare scheme, whitespace around "=", empty list elements and a trailing comma', () => {
    expect(parsed('Bearer')).toEqual([{ scheme: 'bearer', params: {} }]);
    expect(parsed(' , Bearer realm = "x" ,, scope=a ,')).toEqual([
      { scheme: 'bearer', params: { realm: 'x', scope: 'a' } },
    ]);
  });

  it('keeps commas, spaces and escaped quotes inside quoted strings', () => {
    expect(parsed('Bearer error_description="a, b = \\"c\\" \\\\ d", scope="x y"')).toEqual([
      { scheme: 'bearer', params: { error_description: 'a, b = "c" \\ d', scope: 'x y' } },
    ]);
  });

  it('reads a token68 credential form and the challenge after it', () => {
    expect(parsed('Negotiate abc+/def==, Bearer realm="r"')).toEqual([
      { scheme: 'negotiate', params: {}, token68: 'abc+/def==' },
      { scheme: 'bearer', params: { realm: 'r' } },
    ]);
  });

  it('treats a parameter named __proto__ as a plain name', () => {
    const result = parseWwwAuthenticate('Bearer __proto__="x", scope="s"');
    expect(result.ok).toBe(true);
    const [challenge] = (result as { challenges: Challenge[] }).challenges;
    expect(challenge!.params.get('__proto__')).toBe('x');
    expect(Object.getPrototypeOf({})).toBe(Object.prototype);
  });

  it('refuses a parameter given twice in one challenge (RFC 9110 §11.2)', () => {
    expect(failure('Bearer resource_metadata="a", Resource_Metadata="b"')).toEqual({
      error: 'the parameter "resource_metadata" appears twice in one challenge',
      position: 30,
    });
    // The same name in two challenges is fine.
    expect(parsed('Bearer scope="a", DPoP scope="b"')).toHaveLength(2);
  });

  it('names the first deviation and where it is', () => {
    expect(failure('')).toEqual({ error: 'no challenge', position: 0 });
    expect(failure(' , ')).toEqual({ error: 'no challenge', position: 0 });
    expect(failure('Bearer realm="open')).toEqual({
      error: 'a quoted string is not closed',
      position: 13,
    });
    expect(failure('Bearer realm="a\u0001b"')).toMatchObject({
      error: 'a quoted string holds a character not allowed there (a control character?)',
      position: 15,
    });
    expect(failure('Bearer realm="a" scope="b"')).toEqual({
      error: 'expected "," after the parameter "realm"',
      position: 16,
    });
    expect(failure('Bearer scope="a", realm=')).toEqual({
      error: 'the parameter "realm" has no value',
      position: 24,
    });
    // By the grammar, a lone `realm=` after the scheme is a token68, not a parameter.
    expect(parsed('Bearer realm=')).toEqual([{ scheme: 'bearer', params: {}, token68: 'realm=' }]);
    expect(failure('Bearer realm=a b')).toMatchObject({
      error: 'expected "," after the parameter "realm"',
    });
    expect(failure('realm="x"')).toEqual({
      error: 'a parameter comes before any auth-scheme',
      position: 0,
    });
    expect(failure('Bearer, realm="x"')).toEqual({
      error: 'a parameter comes before any auth-scheme',
      position: 8,
    });
    expect(failure('"Bearer"')).toEqual({ error: 'expected an auth-scheme', position: 0 });
    expect(failure('Bearer;realm="x"')).toEqual({
      error: 'expected a space after the auth-scheme "Bearer"',
      position: 6,
    });
    expect(failure('Bearer realm="x", @="y"')).toMatchObject({ error: 'expected an auth-scheme' });
  });

  it('does not let a token68 and parameters share a challenge', () => {
    expect(failure('Basic abc==, realm="x"')).toEqual({
      error: 'a parameter comes before any auth-scheme',
      position: 13,
    });
  });
});
