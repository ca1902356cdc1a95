import path from 'node:path';
import type { Logger } from 'pino';
import type { JWK } from 'jose';
import {
  AccessTokenIssuer,
  AccessTokenVerifier,
  IdentityService,
  generatePassword,
  generateSigningKey,
} from '@meridian/auth';
import type { Metadata } from '@meridian/metadata';
import type { AuthConfig } from './config.js';
import { readOrCreateSecretFile } from './region-setup.js';

/** The administrator every region has once MERIDIAN_AUTH is on. */
export const ADMINISTRATOR = 'admin';

/** How long a refresh token (OAuth2 `grant_type=refresh_token`) lives. */
const REFRESH_TOKEN_SECONDS = 24 * 3600;

/**
 * How long a checked password is taken again without argon2 (libs/auth VerifiedSignIns), at
 * most: never longer than an access token lives, so a password changed or a token disabled
 * through another gateway process stops working within the bound that holds for access tokens.
 */
const SIGN_IN_CACHE_SECONDS = 60;

export interface RegionIdentities {
  identities: IdentityService;
  issuer: AccessTokenIssuer;
  verifier: AccessTokenVerifier;
  /** Refresh tokens are JWTs for another audience, so neither kind passes for the other. */
  refreshIssuer: AccessTokenIssuer;
  refreshVerifier: AccessTokenVerifier;
  service: string;
  realm?: string;
}

/**
 * What a region needs to authenticate, with MERIDIAN_AUTH=on: the administrator (its password
 * from MERIDIAN_ADMIN_PASSWORD, or made once into <data dir>/admin-password), and the key that
 * signs the region's tokens (made once into the database). Idempotent, and safe for the
 * gateways of a region to run together. The password is never logged; the file's path is.
 */
export async function prepareIdentities(auth: AuthConfig, dataDir: string, metadata: Metadata, logger: Logger): Promise<RegionIdentities> {
  const store = metadata.identities;
  const identities = new IdentityService(store, { signInCacheMs: Math.min(SIGN_IN_CACHE_SECONDS, auth.tokenLifetimeSeconds) * 1000 });
  if (auth.adminPassword !== undefined) {
    if (await identities.ensureAdministrator(ADMINISTRATOR, auth.adminPassword)) logger.info({ user: ADMINISTRATOR }, 'administrator password set from MERIDIAN_ADMIN_PASSWORD');
  } else if (!(await identities.hasUser(ADMINISTRATOR))) {
    const file = path.join(dataDir, 'admin-password');
    const { value, created } = await readOrCreateSecretFile(file, generatePassword);
    await identities.ensureAdministrator(ADMINISTRATOR, value);
    if (created) logger.warn({ user: ADMINISTRATOR, file }, `administrator password written to ${file}; set MERIDIAN_ADMIN_PASSWORD to choose it`);
  }
  const candidate = await generateSigningKey();
  const signingKey = await metadata.transaction((tx) =>
    tx.identities.ensureSigningKey({ kid: candidate.kid, privateJwk: { ...candidate.privateJwk }, publicJwk: { ...candidate.publicJwk } }),
  );
  const publicKeys = (await store.publicKeys()) as JWK[];
  const audience = { issuer: 'meridian', service: auth.service };
  const refreshAudience = { issuer: 'meridian', service: `${auth.service}#refresh` };
  const key = { kid: signingKey.kid, privateJwk: signingKey.privateJwk as JWK };
  return {
    identities,
    issuer: await AccessTokenIssuer.create(key, audience, auth.tokenLifetimeSeconds),
    verifier: new AccessTokenVerifier(publicKeys, audience),
    refreshIssuer: await AccessTokenIssuer.create(key, refreshAudience, REFRESH_TOKEN_SECONDS),
    refreshVerifier: new AccessTokenVerifier(publicKeys, refreshAudience),
    service: auth.service,
    ...(auth.realm ? { realm: auth.realm } : {}),
  };
}
