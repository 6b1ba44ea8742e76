/**
 * What the token endpoint granted, as the gateway saw it: one entry per successful token
 * request (oidc-provider's `grant.success`), so a test can show that a real client refreshed
 * by itself (`refresh_token`) rather than signing in again (`authorization_code`).
 */
import type { Gateway } from '../../src/gateway.js';

export interface TokenGrant {
  grantType: string;
  clientId: string | undefined;
  /** The access token issued: a test can ask the gateway whether it still accepts it. */
  accessToken: string | undefined;
}

interface GrantContext {
  oidc?: { params?: { grant_type?: unknown }; client?: { clientId: string } };
  /** The token response, set before the event. */
  body?: { access_token?: unknown };
}

/** Starts recording; the returned list fills as the gateway answers token requests. */
export function recordTokenGrants(gateway: Gateway): TokenGrant[] {
  const grants: TokenGrant[] = [];
  const on = gateway.provider.on.bind(gateway.provider) as (
    event: string,
    listener: (ctx: GrantContext) => void,
  ) => void;
  on('grant.success', (ctx) => {
    grants.push({
      grantType: String(ctx.oidc?.params?.grant_type ?? ''),
      clientId: ctx.oidc?.client?.clientId,
      accessToken: typeof ctx.body?.access_token === 'string' ? ctx.body.access_token : undefined,
    });
  });
  return grants;
}

/** The grant types `clientId` was given, in order. */
export function grantTypesOf(grants: TokenGrant[], clientId: string): string[] {
  return grants.filter((grant) => grant.clientId === clientId).map((grant) => grant.grantType);
}

/** How many times `clientId` was given `grantType`. */
export function grantCount(grants: TokenGrant[], clientId: string, grantType: string): number {
  return grantTypesOf(grants, clientId).filter((type) => type === grantType).length;
}
