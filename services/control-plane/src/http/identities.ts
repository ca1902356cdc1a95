import { Router } from 'express';
import type { IdentityStore } from '@meridian/metadata';
import { InvalidRequestError } from '../errors.js';
import type { ClusterKeyStore } from '../store/signing-keys.js';

/** Where regions read the cluster's identities and key set, and publish their own keys. */
export const IDENTITY_SYNC_PATH = '/api/v1/identity-sync';

/**
 * The part of the admin API regions sync identities through (behind the admin guard):
 *
 *   GET  /api/v1/identity-sync                 users, scope maps and tokens (password hashes, never
 *                                              passwords), and the cluster's public keys
 *   PUT  /api/v1/identity-sync/keys/KID        {region, publicJwk}: a region signs with this key
 *
 * A region applies what it reads to its own database and verifies from that copy, so it decides
 * alone while the control plane is away. Answers are `no-store`: they hold password hashes.
 */
export function createIdentitySyncRouter(deps: { store: IdentityStore; keys: ClusterKeyStore; keyRetentionSeconds: number }): Router {
  const router = Router();
  router.get(IDENTITY_SYNC_PATH, async (_req, res) => {
    const snapshot = await deps.store.snapshot();
    const keys = await deps.keys.current(deps.keyRetentionSeconds);
    res.setHeader('Cache-Control', 'no-store');
    res.json({ ...snapshot, keys });
  });
  router.put(`${IDENTITY_SYNC_PATH}/keys/:kid`, async (req, res) => {
    const body = (req.body ?? {}) as { region?: unknown; publicJwk?: unknown };
    const kid = String(req.params.kid);
    const jwk = body.publicJwk as Record<string, unknown> | undefined;
    if (typeof body.region !== 'string' || body.region === '') throw new InvalidRequestError('region: expected the name of the region that signs with the key');
    if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk) || jwk.kid !== kid) throw new InvalidRequestError('publicJwk: expected a JWK whose kid is the one in the path');
    // A public key only: a private part ("d") must never leave its region.
    if ('d' in jwk || jwk.kty !== 'EC' || jwk.crv !== 'P-256') throw new InvalidRequestError('publicJwk: expected a public EC P-256 key (ES256)');
    const outcome = await deps.keys.publish({ kid, region: body.region, publicJwk: jwk });
    if (outcome === 'other-region') throw new InvalidRequestError(`key ${kid} is published by another region`);
    res.status(204).end();
  });
  return router;
}
