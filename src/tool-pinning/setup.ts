/**
 * Tool pinning as the service runs it: the upstream lister authenticating as the gateway, the
 * audit of approvals, and the schedule (pinning.ts).
 */
import type { GatewayConfig, ResourceConfig } from '../config/schema.js';
import type { SecurityEvents } from '../events/security-events.js';
import type { BackendTokenSigner } from '../forward-auth/backend-token.js';
import type { Logger } from '../logging/logger.js';
import type { Store } from '../store/store.js';
import { ExternalClassifier } from './classifier.js';
import { ToolPinning } from './pinning.js';
import { GATEWAY_SUBJECT, listDefinitions } from './upstream-lister.js';

/** How long one listing of one server may take. */
export const LISTING_TIMEOUT_MS = 10_000;

export interface ToolPinningSetup {
  /** `toolPinning` of the configuration. */
  settings: GatewayConfig['toolPinning'];
  store: Store;
  resources: { list(): ResourceConfig[] };
  signer: BackendTokenSigner;
  events: SecurityEvents;
  logger: Logger;
  audit?: { append(kind: string, fields: Record<string, unknown>): Promise<void> } | undefined;
  /** Where `toolDefinitions.authorizationEnv` is read (the process environment). */
  env: NodeJS.ProcessEnv;
}

/**
 * The `Authorization` the gateway lists a server with: the configured credential's variable,
 * else its own short-lived JWT for `upstreamAuthorization: jwt` servers, else none.
 */
function authorizationFor(
  resource: ResourceConfig,
  signer: BackendTokenSigner,
  env: NodeJS.ProcessEnv,
): () => Promise<string | undefined> {
  return async () => {
    const variable = resource.toolDefinitions.authorizationEnv;
    if (variable) return env[variable] || undefined;
    if (resource.upstreamAuthorization !== 'jwt') return undefined;
    const jwt = await signer.tokenFor(
      {
        sub: GATEWAY_SUBJECT,
        clientId: 'mcp-gateway',
        scopes: resource.scopes,
        email: '',
        name: 'MCP Gateway (tool pinning)',
        groups: [],
        audiences: [resource.url],
        grantId: undefined,
        exp: Math.floor(Date.now() / 1000) + 300,
      },
      resource.url,
    );
    return `Bearer ${jwt}`;
  };
}

export function createToolPinning(setup: ToolPinningSetup): ToolPinning {
  const { signer, env, audit } = setup;
  const settings = setup.settings.classifier;
  const classifier = settings
    ? new ExternalClassifier(
        {
          url: settings.url,
          timeoutMs: settings.timeout * 1000,
          failPolicy: settings.failPolicy,
          authorization: settings.authorizationEnv ? env[settings.authorizationEnv] : undefined,
        },
        setup.logger,
      )
    : undefined;
  return new ToolPinning({
    classify: classifier
      ? (resource, definition) => classifier.findings(resource, definition)
      : undefined,
    store: setup.store,
    resources: () => setup.resources.list(),
    list: (resource) =>
      listDefinitions({
        upstream: resource.upstream!,
        authorization: authorizationFor(resource, signer, env),
        timeoutMs: LISTING_TIMEOUT_MS,
      }),
    events: setup.events,
    logger: setup.logger,
    audit: audit ? (kind, fields) => audit.append(kind, fields) : undefined,
  });
}
