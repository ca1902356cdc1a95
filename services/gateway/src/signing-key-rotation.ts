import type { Logger } from 'pino';
import type { JWK } from 'jose';
import { generateSigningKey, type AccessTokenIssuer, type AccessTokenVerifier } from '@meridian/auth';
import type { Metadata } from '@meridian/metadata';

/** When keys are replaced, and how long a new one waits before it signs. */
export interface RotationTiming {
  /** How often the key is replaced (MERIDIAN_SIGNING_KEY_ROTATION_HOURS). */
  rotationMs: number;
  /**
   * How long a new key is stored before it signs: longer than a look, so every gateway process of
   * the region verifies with it first, and in a cluster a few identity-sync rounds, so every
   * region has copied it from the control plane before it sees a token it signed.
   */
  activationMs: number;
}

/** How often each process looks at the keys: a few times per rotation period, at most every five minutes. */
export function lookIntervalMs(rotationMs: number): number {
  return Math.max(Math.min(rotationMs / 4, 300_000), 1000);
}

/** The timing for a region: in a cluster (`identitySyncMs` given) the activation waits three sync rounds. */
export function rotationTiming(rotationMs: number, identitySyncMs?: number): RotationTiming {
  return { rotationMs, activationMs: Math.max(identitySyncMs === undefined ? 0 : 3 * identitySyncMs, lookIntervalMs(rotationMs) + 1000) };
}

/** The key the region signs with now, storing a new one first when the newest is due (SigningKeyRotation). */
export async function currentSigningKey(metadata: Metadata, timing: RotationTiming): Promise<{ kid: string; privateJwk: JWK }> {
  const candidate = await generateSigningKey();
  const rotation = { replaceAfterSeconds: Math.max(timing.rotationMs - timing.activationMs, 0) / 1000, activationSeconds: timing.activationMs / 1000 };
  const current = await metadata.transaction((tx) =>
    tx.identities.ensureSigningKey({ kid: candidate.kid, privateJwk: { ...candidate.privateJwk }, publicJwk: { ...candidate.publicJwk } }, rotation),
  );
  return { kid: current.kid, privateJwk: current.privateJwk as JWK };
}

export interface SigningKeyRotationOptions extends RotationTiming {
  metadata: Metadata;
  /** Issuers that sign with the region's current key; each is switched when the key changes. */
  issuers: AccessTokenIssuer[];
  /** Verifiers whose keys become the region's stored ones after each look. */
  verifiers: AccessTokenVerifier[];
  /** The longest a token signed with a key lives (the refresh tokens'): how long a replaced key stays. */
  longestTokenMs: number;
  logger: Logger;
}

/**
 * Scheduled replacement of the region's signing key, with overlap (README, "Identity and
 * access"). Each look (lookIntervalMs) stores a new
 * key once the newest is due, in the region's database under its table lock, so the gateways of
 * a region make one between them; a new key signs once its activation delay has passed, and every
 * process switches to it at its next look. A replaced key stays in the region's key set (and so,
 * published by identity sync, in the cluster's) until every token it signed has expired; only
 * then is it dropped. A look that fails (the database away) is logged and tried at the next.
 */
export class SigningKeyRotation {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly options: SigningKeyRotationOptions) {}

  /** One look: adds a key when due, switches the issuers to the current one, drops expired ones. */
  async rotateOnce(): Promise<void> {
    const { metadata, issuers, verifiers, activationMs, longestTokenMs, logger } = this.options;
    const current = await currentSigningKey(metadata, this.options);
    // Tokens a replaced key signed live at most longestTokenMs after this process's next look switches it out.
    const dropped = await metadata.identities.dropReplacedKeys((activationMs + longestTokenMs + lookIntervalMs(this.options.rotationMs)) / 1000);
    // The verifiers learn a new key before any issuer of the region signs with it.
    const keys = (await metadata.identities.publicKeys()) as JWK[];
    for (const verifier of verifiers) verifier.replaceKeys(keys);
    if (issuers.some((issuer) => issuer.signingKid !== current.kid)) {
      const previous = issuers[0]?.signingKid;
      for (const issuer of issuers) await issuer.useKey(current);
      logger.info({ kid: current.kid, previous }, 'signing key rotated: new tokens carry the new kid; the previous key verifies until its tokens expire');
    }
    if (dropped > 0) logger.info({ dropped }, 'signing keys dropped: every token they signed has expired');
  }

  start(): void {
    this.timer = setInterval(() => {
      this.running ??= this.rotateOnce()
        .catch((err: unknown) => this.options.logger.warn({ reason: (err as Error).message }, 'signing key rotation: the keys cannot be read or stored; trying again at the next look'))
        .finally(() => (this.running = undefined));
    }, lookIntervalMs(this.options.rotationMs));
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
