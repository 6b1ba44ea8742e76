/**
 * Canonical resource URLs (RFC 8707 §2, MCP "Canonical Server URI").
 *
 * Clients may write the scheme and host in any case and may add a trailing slash; the
 * specification asks servers to accept those spellings. Everything that compares a
 * `resource` (the authorization server, the `/verify` decision point, protected resource
 * metadata) compares the canonical form built here: lowercase scheme and host (WHATWG URL
 * parsing does both), default port dropped, no trailing slash.
 *
 * A resource URL has no query and no fragment. RFC 8707 §2 forbids the fragment and says the
 * URI SHOULD NOT include a query; here it must not: `/verify` and the protected resource
 * metadata find a resource by scheme, host and path, so two resources that differed only by
 * query would be one resource there (a token for `…/tenant?t=open` would pass for
 * `…/tenant?t=restricted`). A `resource` parameter with a query names no resource of ours.
 */
export function canonicalResourceUrl(input: string): string {
  const url = URL.parse(input);
  if (!url) throw new Error(`"${input}" is not an absolute URL`);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new Error(`"${input}" must use https (or http for loopback development)`);
  }
  if (url.hash || input.includes('#')) throw new Error(`"${input}" must not contain a fragment`);
  // A `?` can only start the query (RFC 3986 §3.4); an empty query (`…/mcp?`) is refused too.
  if (url.search || input.includes('?')) throw new Error(queryProblem(input));
  if (url.username || url.password) throw new Error(`"${input}" must not contain credentials`);
  let path = url.pathname;
  while (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  const origin = `${url.protocol}//${url.host}`;
  return `${origin}${path === '/' ? '' : path}`;
}

/** Why a resource URL with a query is refused, in words an administrator can act on. */
function queryProblem(input: string): string {
  return `"${input}" must not contain a query: a resource URL is scheme, host, port and path only (requests are matched on the path; give each MCP server its own path instead)`;
}

/** Whether `indicator` has a query component (a `resource` this gateway never accepts). */
export function hasQuery(indicator: string): boolean {
  return indicator.includes('?');
}

/** Like {@link canonicalResourceUrl} but returns `undefined` instead of throwing. */
export function tryCanonicalResourceUrl(input: string): string | undefined {
  try {
    return canonicalResourceUrl(input);
  } catch {
    return undefined;
  }
}
