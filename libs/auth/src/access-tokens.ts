/**
 * Short-lived access tokens: JWTs as the Docker token spec describes them ("Token Authentication
 * Implementation"), signed with ES256 by `jose`. `iss` names the issuer, `aud` the service (the
 * registry) they are for, `sub` the identity, `access` what they grant. Whoever holds the public
 * keys can verify one without asking the issuer, which is what lets each region check tokens on
 * its own.
 */
import { randomUUID } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import {
  SignJWT,
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
  importJWK,
  jwtVerify,
  errors as joseErrors,
  type JWK,
} from 'jose';
import type { AccessEntry, Grant } from './scopes.js';

const ALGORITHM = 'ES256';

export interface SigningKey {
  /** The key id, in each token's header, so a verifier holding several keys picks the right one. */
  kid: string;
  privateJwk: JWK;
  publicJwk: JWK;
}

export async function generateSigningKey(): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(ALGORITHM, { extractable: true });
  const kid = randomUUID();
  return {
    kid,
    privateJwk: { ...(await exportJWK(privateKey)), kid, alg: ALGORITHM },
    publicJwk: { ...(await exportJWK(publicKey)), kid, alg: ALGORITHM, use: 'sig' },
  };
}

export interface TokenAudience {
  /** `iss`: who issues the tokens. */
  issuer: string;
  /** `aud`: the service the tokens are for; the `service` of the challenge and the token request. */
  service: string;
}

export interface IssuedToken {
  token: string;
  expiresInSeconds: number;
  issuedAt: Date;
}

/** Signs access tokens with one private key. */
export class AccessTokenIssuer {
  private constructor(
    private key: CryptoKey,
    private kid: string,
    private readonly audience: TokenAudience,
    private readonly lifetimeSeconds: number,
  ) {}

  static async create(signingKey: Pick<SigningKey, 'kid' | 'privateJwk'>, audience: TokenAudience, lifetimeSeconds: number): Promise<AccessTokenIssuer> {
    const key = (await importJWK(signingKey.privateJwk, ALGORITHM)) as CryptoKey;
    return new AccessTokenIssuer(key, signingKey.kid, audience, lifetimeSeconds);
  }

  /** The kid of the key tokens are signed with now. */
  get signingKid(): string {
    return this.kid;
  }

  /** Signs the tokens issued from now on with `signingKey` (a rotation); tokens issued before keep their kid. */
  async useKey(signingKey: Pick<SigningKey, 'kid' | 'privateJwk'>): Promise<void> {
    const key = (await importJWK(signingKey.privateJwk, ALGORITHM)) as CryptoKey;
    this.key = key;
    this.kid = signingKey.kid;
  }

  async issue(subject: string, grant: Grant, now = new Date()): Promise<IssuedToken> {
    const issuedAt = Math.floor(now.getTime() / 1000);
    const token = await new SignJWT({ access: grant.access, catalog: grant.catalog })
      .setProtectedHeader({ alg: ALGORITHM, kid: this.kid, typ: 'JWT' })
      .setIssuer(this.audience.issuer)
      .setAudience(this.audience.service)
      .setSubject(subject)
      .setIssuedAt(issuedAt)
      .setNotBefore(issuedAt)
      .setExpirationTime(issuedAt + this.lifetimeSeconds)
      .setJti(randomUUID())
      .sign(this.key);
    return { token, expiresInSeconds: this.lifetimeSeconds, issuedAt: new Date(issuedAt * 1000) };
  }
}

/** Why a token was refused; never carries the token. */
export class AccessTokenInvalidError extends Error {}

export interface VerifiedToken extends Grant {
  subject: string;
}

export interface AccessTokenVerifierOptions {
  /** Seconds of clock difference tolerated between issuer and verifier (30). */
  clockToleranceSeconds?: number;
  /** Verified tokens kept, so a client reusing its token is not verified again on every request (10 000). */
  cachedTokens?: number;
}

/**
 * Verifies access tokens against a set of public keys, for one service and issuer.
 *
 * A client fetches one token and sends it with every request until it expires; checking its
 * ES256 signature each time would cost more CPU than serving a cached manifest. So a token that
 * verified is remembered, with its own text, until its `exp`: the same bytes carry the same
 * claims and signature, and nothing else about them can change before they expire (a disabled
 * identity keeps its tokens until they expire; that is what their short lifetime is for). Tokens
 * that fail are not remembered. The cache is bounded, least recently used first out.
 */
export class AccessTokenVerifier {
  private keys: ReturnType<typeof createLocalJWKSet>;
  private readonly clockToleranceSeconds: number;
  /** Keyed by the token's signature, the entry holding the whole token it was verified as. */
  private readonly verified: LRUCache<string, { token: string; verified: VerifiedToken }>;

  constructor(
    publicJwks: readonly JWK[],
    private readonly audience: TokenAudience,
    options: AccessTokenVerifierOptions = {},
  ) {
    this.keys = createLocalJWKSet({ keys: [...publicJwks] });
    this.clockToleranceSeconds = options.clockToleranceSeconds ?? 30;
    this.verified = new LRUCache({ max: options.cachedTokens ?? 10_000 });
  }

  /**
   * Verifies with these keys from now on: in a cluster, the key set the control plane publishes
   * (every region's keys), read again as regions join and rotate.
   */
  replaceKeys(publicJwks: readonly JWK[]): void {
    this.keys = createLocalJWKSet({ keys: [...publicJwks] });
  }

  async verify(token: string): Promise<VerifiedToken> {
    const cached = this.verified.get(signatureOf(token));
    if (cached?.token === token) return cached.verified;
    try {
      const { payload } = await jwtVerify(token, this.keys, {
        algorithms: [ALGORITHM],
        issuer: this.audience.issuer,
        audience: this.audience.service,
        clockTolerance: this.clockToleranceSeconds,
        requiredClaims: ['exp', 'sub', 'iat'],
      });
      const verified: VerifiedToken = {
        subject: payload.sub!,
        access: Array.isArray(payload.access) ? (payload.access as unknown[]).filter(isAccessEntry) : [],
        catalog: Array.isArray(payload.catalog) ? (payload.catalog as unknown[]).filter((p): p is string => typeof p === 'string') : [],
      };
      // Until `exp` itself, without the tolerance: past it the token is verified afresh.
      const untilExpiry = payload.exp! * 1000 - Date.now();
      if (untilExpiry > 0) this.verified.set(signatureOf(token), { token, verified }, { ttl: untilExpiry });
      return verified;
    } catch (err) {
      if (err instanceof joseErrors.JOSEError) throw new AccessTokenInvalidError(`access token refused: ${err.code}`);
      throw err;
    }
  }
}

/**
 * The last of a JWT's three parts. Looking a token up by it hashes a few dozen characters rather
 * than the whole token (several hundred, hashed again on every request, since each request
 * brings its own copy); the entry's whole token is compared before it is taken, so a token that
 * merely ends like a verified one is verified afresh.
 */
function signatureOf(token: string): string {
  return token.slice(token.lastIndexOf('.') + 1);
}

function isAccessEntry(value: unknown): value is AccessEntry {
  const entry = value as AccessEntry;
  return typeof entry === 'object' && entry !== null && typeof entry.type === 'string' && typeof entry.name === 'string'
    && Array.isArray(entry.actions) && entry.actions.every((action) => typeof action === 'string');
}
