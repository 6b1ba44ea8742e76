/**
 * Canonical resource URLs (RFC 8707 §2, MCP "Canonical Server URI").
 *
 * Clients may write the scheme and host in any case and may add a trailing slash; the
 * specification asks servers to accept those spellings. Everything that compares a
 * `resource` (the authorization server, later the `/verify` decision point) compares the
 * canonical form built here: lowercase scheme and host (WHATWG URL parsing does both),
 * default port dropped, no trailing slash, no fragment. A query is kept, since it is part
 * of the resource identifier.
 */
export function canonicalResourceUrl(input: string): string {
  const url = URL.parse(input);
  if (!url) throw new Error(`"${input}" is not an absolute URL`);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new Error(`"${input}" must use https (or http for loopback development)`);
  }
  if (url.hash || input.includes('#')) throw new Error(`"${input}" must not contain a fragment`);
  if (url.username || url.password) throw new Error(`"${input}" must not contain credentials`);
  let path = url.pathname;
  while (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  const origin = `${url.protocol}//${url.host}`;
  return `${origin}${path === '/' ? '' : path}${url.search}`;
}

/** Like {@link canonicalResourceUrl} but returns `undefined` instead of throwing. */
export function tryCanonicalResourceUrl(input: string): string | undefined {
  try {
    return canonicalResourceUrl(input);
  } catch {
    return undefined;
  }
}
