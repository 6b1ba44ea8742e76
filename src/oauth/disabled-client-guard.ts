/**
 * A client an administrator disabled (src/clients/disabled-clients.ts) is refused at
 * every endpoint of the authorization server: no authorization, no code exchange, no refresh,
 * no registration management, no revocation or introspection request of its own.
 *
 * The hook is oidc-provider's static `Client.find(id)`, through which oidc-provider 9 resolves
 * the client of every request: the authorization endpoint (`checkClient`, also when an
 * authorization resumes after the login and consent pages), client authentication at the
 * token, PAR, revocation and introspection endpoints (`client_auth`), registration management
 * (RFC 7592), the interaction pages; and for every kind of client, since the configured
 * clients, the registered ones (adapter) and CIMD documents (fetch and cache) are all looked up
 * behind it. The other candidates cover less:
 *
 * - `extraClientMetadata` validators run when a client is built (start, registration, CIMD
 *   fetch), after which oidc-provider caches the client: nothing runs per request;
 * - `clientBasedCORS` runs only for cross-origin browser requests;
 * - `findAccount` runs only where an account is loaded: not at client authentication, not at
 *   the authorization endpoint before sign-in;
 * - a middleware in front of the routes would have to find the client id itself, in the
 *   query, the form, Basic credentials or a client assertion, as client authentication does.
 *
 * The check reads the store on each lookup, not the replica's in-memory copy that `/verify`
 * uses: the refusal is then immediate on every replica, even if an announcement was lost.
 *
 * The refusal is `invalid_client` with status 401: RFC 6749 §5.2 requires 401 (with
 * `WWW-Authenticate`, which oidc-provider adds) for a client that authenticated with the
 * Authorization header. It is thrown rather than answered as "no such client" because, at the
 * registration management endpoint, oidc-provider destroys the registration access token of a
 * client it cannot find, which enabling the client again could not undo.
 */
import { errors } from 'oidc-provider';

/** The part of oidc-provider's `Client` class this module wraps. */
export interface ClientLookup {
  find(id: string): Promise<unknown>;
}

/** Thrown for a disabled client. */
export class ClientDisabled extends errors.InvalidClient {
  constructor() {
    super('the client is disabled', 'disabled by an administrator');
    this.status = 401;
    this.statusCode = 401;
  }
}

/**
 * Makes `clientClass.find` refuse the clients `isDisabled` names (except `neverDisabled`, the
 * gateway's own account client, which is not looked up in the store at all).
 */
export function refuseDisabledClients(
  clientClass: ClientLookup,
  isDisabled: (clientId: string) => Promise<boolean>,
  neverDisabled: ReadonlySet<string>,
): void {
  const find = clientClass.find.bind(clientClass);
  clientClass.find = async (id: string) => {
    if (typeof id === 'string' && !neverDisabled.has(id) && (await isDisabled(id))) {
      throw new ClientDisabled();
    }
    return find(id);
  };
}
