/**
 * A user's grants as the applications they belong to. oidc-provider makes one grant per client
 * and browser session: a user who authorized the same application from two browsers, or again
 * after signing out, holds two grants of one client. The "connected apps" page shows one entry
 * per application, with everything its grants allow, and its Revoke ends all of them.
 */
import type { GrantSummary } from './grants.js';

export interface ConnectedApp {
  clientId: string;
  /** Its grants, most recently used first. */
  grantIds: string[];
  /** Scopes per resource (canonical URL), over all its grants, in the order first granted. */
  resources: { url: string; scopes: string[] }[];
  /** OpenID scopes over all its grants. */
  oidcScopes: string[];
  /** The earliest grant's first use. Epoch seconds. */
  firstUse: number | undefined;
  /** The latest use under any of its grants. Epoch seconds. */
  lastUse: number | undefined;
}

const earliest = (a: number | undefined, b: number | undefined) =>
  a === undefined ? b : b === undefined ? a : Math.min(a, b);
const latest = (a: number | undefined, b: number | undefined) =>
  a === undefined ? b : b === undefined ? a : Math.max(a, b);

/**
 * One entry per client, in the order of `grants` (most recently used first, as
 * `GrantDirectory.forAccount` lists them).
 */
export function groupByClient(grants: readonly GrantSummary[]): ConnectedApp[] {
  const apps = new Map<
    string,
    ConnectedApp & { scopesByResource: Map<string, Set<string>>; oidc: Set<string> }
  >();
  for (const grant of grants) {
    let app = apps.get(grant.clientId);
    if (!app) {
      app = {
        clientId: grant.clientId,
        grantIds: [],
        resources: [],
        oidcScopes: [],
        firstUse: undefined,
        lastUse: undefined,
        scopesByResource: new Map(),
        oidc: new Set(),
      };
      apps.set(grant.clientId, app);
    }
    app.grantIds.push(grant.grantId);
    for (const { url, scopes } of grant.resources) {
      const known = app.scopesByResource.get(url) ?? new Set<string>();
      for (const scope of scopes) known.add(scope);
      app.scopesByResource.set(url, known);
    }
    for (const scope of grant.oidcScopes) app.oidc.add(scope);
    app.firstUse = earliest(app.firstUse, grant.firstUse);
    app.lastUse = latest(app.lastUse, grant.lastUse);
  }
  return [...apps.values()].map(({ scopesByResource, oidc, ...app }) => ({
    ...app,
    resources: [...scopesByResource].map(([url, scopes]) => ({ url, scopes: [...scopes] })),
    oidcScopes: [...oidc],
  }));
}
