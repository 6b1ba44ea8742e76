/**
 * The decision point's header contract, as the proxy harness and the Traefik checks use it:
 * taken from the service itself, so the proxies' configurations cannot drift from it.
 */
export {
  IDENTITY_RESPONSE_HEADERS,
  type IdentityResponseHeader,
} from '../../src/forward-auth/identity-headers.js';
export { AUTH_ERROR_BODY_HEADER } from '../../src/forward-auth/challenges.js';
