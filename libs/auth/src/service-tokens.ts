/**
 * Service tokens: how the processes of a cluster (control plane, replication workers, regions'
 * gateways, router, CLI) prove to each other that they belong to it. Every process is given the
 * same cluster secret; a key derived from it signs short-lived JWTs naming the calling service
 * (`sub`) and the one it calls (`aud`: a region's name, or the control plane). The receiver checks
 * signature, audience and expiry before it does anything for the caller.
 *
 * Transport-free: the replica protocol carries a token in its gRPC metadata, an HTTP caller in
 * `Authorization: Bearer`. Only HS256 is accepted, so a user's ES256 access token (access-tokens.ts)
 * can never pass for a service token, nor the other way round.
 */
import { hkdfSync, randomUUID } from 'node:crypto';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';

const ALGORITHM = 'HS256';
const ISSUER = 'meridian-cluster';
/** The HKDF `info` of the signing key: other uses of the cluster secret derive keys of their own. */
const KEY_INFO = 'meridian service token v1';

export const CLUSTER_SECRET_MIN_LENGTH = 32;

/** The services of a cluster, each the `sub` of the tokens it mints. */
export const SERVICE_NAMES = ['control-plane', 'replication-worker', 'gateway', 'router', 'cli'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

/** The audience of tokens for the control plane's admin API; a region's audience is its name. */
export const CONTROL_PLANE_AUDIENCE = 'control-plane';

/** Why a service token was refused; never carries the token. */
export class ServiceTokenInvalidError extends Error {
  override name = 'ServiceTokenInvalidError';
}

function signingKey(clusterSecret: string): Uint8Array {
  if (clusterSecret.length < CLUSTER_SECRET_MIN_LENGTH) {
    throw new RangeError(`the cluster secret must be at least ${CLUSTER_SECRET_MIN_LENGTH} characters`);
  }
  return new Uint8Array(hkdfSync('sha256', clusterSecret, '', KEY_INFO, 32));
}

/**
 * Mints the tokens one service sends. A token is reused for half its lifetime, so a busy caller
 * signs about one per audience per `lifetimeSeconds / 2`, not one per call.
 */
export class ServiceTokenIssuer {
  private readonly key: Uint8Array;
  private readonly cached = new Map<string, { token: Promise<string>; renewAt: number }>();

  constructor(
    clusterSecret: string,
    readonly service: ServiceName,
    private readonly lifetimeSeconds = 300,
  ) {
    this.key = signingKey(clusterSecret);
  }

  /** A token for calling `audience`; valid for at least half the lifetime from now. */
  token(audience: string, now = Date.now()): Promise<string> {
    const cached = this.cached.get(audience);
    if (cached && now < cached.renewAt) return cached.token;
    const issuedAt = Math.floor(now / 1000);
    const token = new SignJWT({})
      .setProtectedHeader({ alg: ALGORITHM, typ: 'JWT' })
      .setIssuer(ISSUER)
      .setSubject(this.service)
      .setAudience(audience)
      .setIssuedAt(issuedAt)
      .setExpirationTime(issuedAt + this.lifetimeSeconds)
      .setJti(randomUUID())
      .sign(this.key);
    this.cached.set(audience, { token, renewAt: now + (this.lifetimeSeconds * 1000) / 2 });
    // A failed signing is not kept: the next call tries again.
    token.catch(() => this.cached.delete(audience));
    return token;
  }
}

/** Verifies the tokens meant for one audience (this region, or the control plane). */
export class ServiceTokenVerifier {
  private readonly key: Uint8Array;

  constructor(
    clusterSecret: string,
    readonly audience: string,
    /** Seconds of clock difference tolerated between the two processes' machines. */
    private readonly clockToleranceSeconds = 30,
  ) {
    this.key = signingKey(clusterSecret);
  }

  /** The calling service; throws ServiceTokenInvalidError for a missing, expired, forged or misdirected token. */
  async verify(token: string | undefined): Promise<{ service: ServiceName }> {
    if (!token) throw new ServiceTokenInvalidError('no service token');
    try {
      const { payload } = await jwtVerify(token, this.key, {
        algorithms: [ALGORITHM],
        issuer: ISSUER,
        audience: this.audience,
        clockTolerance: this.clockToleranceSeconds,
        requiredClaims: ['exp', 'iat', 'sub'],
      });
      const service = SERVICE_NAMES.find((name) => name === payload.sub);
      if (!service) throw new ServiceTokenInvalidError('service token refused: unknown service');
      return { service };
    } catch (err) {
      if (err instanceof joseErrors.JOSEError) throw new ServiceTokenInvalidError(`service token refused: ${err.code}`);
      throw err;
    }
  }
}
