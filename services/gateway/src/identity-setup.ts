import type { Logger } from 'pino';
import type { JWK } from 'jose';
import {
  AccessTokenIssuer,
  AccessTokenVerifier,
  IdentityService,
  type SignInLimiter,
  prepareAdministrator,
} from '@meridian/auth';
import type { Metadata } from '@meridian/metadata';
import type { ControlPlaneHttp } from '@meridian/proto/control-plane-http';
import type { AuthConfig } from './config.js';
import { IdentitySync } from './identity-sync.js';
import { SigningKeyRotation, currentSigningKey, rotationTiming } from './signing-key-rotation.js';


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
  /** MERIDIAN_ANONYMOUS_PULL: requests without credentials may pull any repository. */
  anonymousPull: boolean;
  /** In a cluster: the copy of the control plane's identities, kept up to date until stopped. */
  sync?: IdentitySync;
  /** The scheduled replacement of the signing key, running until stopped. */
  rotation: SigningKeyRotation;
}

/**
 * What a region needs to authenticate, with MERIDIAN_AUTH=on: the administrator (its password
 * from MERIDIAN_ADMIN_PASSWORD, or made once into <data dir>/admin-password), and the key that
 * signs the region's tokens (made once into the database). Idempotent, and safe for the
 * gateways of a region to run together. The password is never logged; the file's path is.
 */
export async function prepareIdentities(
  auth: AuthConfig,
  dataDir: string,
  metadata: Metadata,
  /** Counts failed sign-ins in the region's database (auth.signInLimits), for every gateway of the region. */
  limiter: SignInLimiter,
  logger: Logger,
  /** In a cluster: the identities are the control plane's, copied by IdentitySync; the region makes no administrator of its own. */
  cluster?: { region: string; controlPlane: ControlPlaneHttp },
): Promise<RegionIdentities> {
  const store = metadata.identities;
  const identities = new IdentityService(store, { signInCacheMs: Math.min(SIGN_IN_CACHE_SECONDS, auth.tokenLifetimeSeconds) * 1000, limiter });
  if (!cluster) await prepareAdministrator(identities, { ...(auth.adminPassword !== undefined ? { adminPassword: auth.adminPassword } : {}), dataDir }, logger);
  const timing = rotationTiming(auth.signingKeyRotationMs, cluster ? auth.identitySyncMs : undefined);
  const key = await currentSigningKey(metadata, timing);
  const publicKeys = (await store.publicKeys()) as JWK[];
  const audience = { issuer: 'meridian', service: auth.service };
  const refreshAudience = { issuer: 'meridian', service: `${auth.service}#refresh` };
  const verifier = new AccessTokenVerifier(publicKeys, audience);
  const refreshVerifier = new AccessTokenVerifier(publicKeys, refreshAudience);
  let sync: IdentitySync | undefined;
  if (cluster) {
    sync = new IdentitySync({ ...cluster, metadata, identities, verifiers: [verifier, refreshVerifier], intervalMs: auth.identitySyncMs, logger });
    // The first copy before serving, when the control plane answers; without it, the last copy.
    await sync.syncOnce();
    sync.start();
  }
  const issuer = await AccessTokenIssuer.create(key, audience, auth.tokenLifetimeSeconds);
  const refreshIssuer = await AccessTokenIssuer.create(key, refreshAudience, REFRESH_TOKEN_SECONDS);
  const rotation = new SigningKeyRotation({
    metadata,
    issuers: [issuer, refreshIssuer],
    verifiers: [verifier, refreshVerifier],
    ...timing,
    longestTokenMs: Math.max(REFRESH_TOKEN_SECONDS, auth.tokenLifetimeSeconds) * 1000,
    logger,
  });
  rotation.start();
  return {
    identities,
    issuer,
    verifier,
    refreshIssuer,
    refreshVerifier,
    rotation,
    service: auth.service,
    anonymousPull: auth.anonymousPull,
    ...(auth.realm ? { realm: auth.realm } : {}),
    ...(sync ? { sync } : {}),
  };
}
