/**
 * Size limits for client metadata (RFC 7591 §2), for every client whose metadata comes from
 * outside: Dynamic Client Registration and Client ID Metadata Documents.
 *
 * Whatever a client registers is stored (a DCR client lives `registration.dcr.clientTtl`) and
 * shown: its name heads the consent page, where a 50,000-character name or one with line
 * breaks and bidirectional overrides could push the gateway's own lines (who is asking, for
 * which server) out of sight. oidc-provider checks the types and values of the metadata but
 * not their size, so each field it accepts gets a bound here, checked by its
 * `extraClientMetadata.validator` (provider.ts) before anything else looks at the value. A
 * refusal is RFC 7591 §3.2.2 `invalid_client_metadata` naming the field; a CIMD document that
 * breaks a limit is refused the same way when it is fetched (and at every later use of the
 * cached copy).
 *
 * Fields oidc-provider does not recognise (`software_id`, `software_version`, `client_name#ja`
 * and any other) are dropped without being stored, so only the document size bounds them:
 * {@link MAX_REGISTRATION_BYTES} for a registration request, {@link MAX_CIMD_DOCUMENT_BYTES}
 * for a fetched document.
 *
 * Not checked: pre-registered clients (the configuration is the operator's) and DCR clients
 * read back from the store (their `scope` was widened to every known scope, which may exceed
 * what a client may send; and they were checked when they registered).
 */
import { errors } from 'oidc-provider';

/** The largest registration request body (RFC 7591 §3.1), in bytes. */
export const MAX_REGISTRATION_BYTES = 16 * 1024;

/**
 * The largest Client ID Metadata Document fetched, in bytes: oidc-provider's own default,
 * which is the CIMD draft's suggestion ("5 kilobytes"); set explicitly so it cannot drift.
 */
export const MAX_CIMD_DOCUMENT_BYTES = 5 * 1024;

/**
 * The largest `jwks_uri` document fetched (a client using `private_key_jwt`), in bytes. Its
 * URL is the client's choice; oidc-provider's default is no limit at all.
 */
export const MAX_JWKS_URI_BYTES = 64 * 1024;

interface FieldLimit {
  /** Characters (Unicode code points) of a string value. */
  maxLength?: number;
  /** Members of an array value. */
  maxItems?: number;
  /** Characters of each string member of an array value. */
  itemLength?: number;
  /** Bytes of the value as JSON (objects). */
  maxJsonBytes?: number;
  /** Human-readable text: no control, format or line/paragraph separator characters. */
  text?: boolean;
}

const URI: FieldLimit = { maxLength: 2000 };
/** Algorithm names, enumerations: oidc-provider checks the value against what it supports. */
const NAME: FieldLimit = { maxLength: 100 };
const NAMES: FieldLimit = { maxItems: 5, itemLength: 100 };

/**
 * A limit for every field oidc-provider accepts from a client with this server's features
 * (its `RECOGNIZED_METADATA`), but those the server sets itself (`client_secret`,
 * `client_id_issued_at`, `client_secret_expires_at`) and those it types as number or boolean
 * (`default_max_age`, `require_auth_time`).
 */
const LIMITS: Record<string, FieldLimit> = {
  client_id: URI,
  client_name: { maxLength: 100, text: true },
  redirect_uris: { maxItems: 10, itemLength: 2000 },
  client_uri: URI,
  logo_uri: URI,
  policy_uri: URI,
  tos_uri: URI,
  jwks_uri: URI,
  initiate_login_uri: URI,
  contacts: { maxItems: 5, itemLength: 254 },
  scope: { maxLength: 1000 },
  grant_types: NAMES,
  response_types: NAMES,
  response_modes: NAMES,
  default_acr_values: { maxItems: 10, itemLength: 100 },
  application_type: NAME,
  subject_type: NAME,
  token_endpoint_auth_method: NAME,
  token_endpoint_auth_signing_alg: NAME,
  id_token_signed_response_alg: NAME,
  jwks: { maxJsonBytes: 8 * 1024 },
};

/**
 * Refused outright: a `sector_identifier_uri` is fetched (with no size limit) when a client
 * registers, and is only of use for pairwise subject identifiers, which this server does not
 * issue (`subject_types_supported: ["public"]`).
 */
const UNSUPPORTED = ['sector_identifier_uri'];

/** The properties whose limits {@link checkClientMetadataLimit} knows. */
export const LIMITED_CLIENT_METADATA = [...Object.keys(LIMITS), ...UNSUPPORTED];

const NOT_TEXT = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;

const length = (value: string) => [...value].length;

/**
 * Throws `invalid_client_metadata` naming `key` when `value` breaks its limit. A value of the
 * wrong type is left to oidc-provider's own checks, which run after this one.
 */
export function checkClientMetadataLimit(key: string, value: unknown): void {
  if (value === undefined) return;
  if (UNSUPPORTED.includes(key)) {
    throw new errors.InvalidClientMetadata(
      `${key} is not supported (this server issues public subject identifiers only)`,
    );
  }
  const limit = LIMITS[key];
  if (!limit) return;
  const refuse = (problem: string) => {
    throw new errors.InvalidClientMetadata(`${key} ${problem}`);
  };
  if (typeof value === 'string') {
    if (limit.maxLength !== undefined && length(value) > limit.maxLength) {
      refuse(`must be at most ${limit.maxLength} characters`);
    }
    if (limit.text && NOT_TEXT.test(value)) {
      refuse('must not contain control, format or line separator characters');
    }
    return;
  }
  if (Array.isArray(value)) {
    if (limit.maxItems !== undefined && value.length > limit.maxItems) {
      refuse(`must have at most ${limit.maxItems} entries`);
    }
    const itemLength = limit.itemLength;
    if (
      itemLength !== undefined &&
      value.some((item) => typeof item === 'string' && length(item) > itemLength)
    ) {
      refuse(`entries must be at most ${itemLength} characters each`);
    }
    return;
  }
  if (limit.maxJsonBytes !== undefined && typeof value === 'object' && value !== null) {
    if (Buffer.byteLength(JSON.stringify(value)) > limit.maxJsonBytes) {
      refuse(`must be at most ${limit.maxJsonBytes} bytes of JSON`);
    }
  }
}
