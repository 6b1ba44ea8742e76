/**
 * A gateway signing key for audit tests: the checkpoint keys an {@link AuditLog} mirror signs
 * with, and the files `mcp-gateway audit verify` reads them from (`--jwks`, `keys.file`).
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gatewayCheckpointKeys, type CheckpointKeys } from '../../src/audit/checkpoint.js';
import { generateSigningKey, publicJwk } from '../../src/keys/key-material.js';

export const AUDIT_TEST_ISSUER = 'http://localhost:8787';

export interface AuditTestKeys {
  checkpointKeys: CheckpointKeys;
  /** The public JWK Set, as saved from `<issuer>/jwks`. */
  jwksFile: string;
  /** The private JWK Set, for a configuration's `keys.file`. */
  privateJwksFile: string;
}

/** A fresh RS256 key; its two JWK Set files are written into `dir`. */
export async function auditTestKeys(dir: string): Promise<AuditTestKeys> {
  const { jwk } = await generateSigningKey(Math.floor(Date.now() / 1000));
  const jwksFile = path.join(dir, 'jwks.json');
  const privateJwksFile = path.join(dir, 'private-jwks.json');
  await writeFile(jwksFile, JSON.stringify({ keys: [publicJwk(jwk)] }));
  await writeFile(privateJwksFile, JSON.stringify({ keys: [jwk] }), { mode: 0o600 });
  return {
    checkpointKeys: gatewayCheckpointKeys({
      issuer: AUDIT_TEST_ISSUER,
      signingKey: jwk,
      publicKeys: [publicJwk(jwk)],
    }),
    jwksFile,
    privateJwksFile,
  };
}
