/**
 * Sign-ins whose password was checked a moment ago. Basic credentials arrive on every request of
 * a client that sends them straight to /v2 (and each token request carries them again), and
 * checking a password against its argon2id hash costs tens of milliseconds of CPU and 19 MiB by
 * design: paid per request, it would cap a gateway at a few dozen requests a second.
 *
 * So a successful check is remembered for a short while. The key is an HMAC of the name and the
 * password under a random key made by this process, so what is kept in memory is neither the
 * password nor anything that could be checked against guesses elsewhere; the key is deliberately
 * not shared (unlike the upload secret): nothing outside this process ever needs to recompute it.
 * Failed checks are never remembered.
 *
 * A remembered sign-in ends when its time is up (a short TTL, at most the access-token lifetime),
 * when the identity service of this process changes that identity (password rotated or replaced,
 * disabled, deleted), or when a token's own expiry passes. A change made through another process
 * (another gateway of the region) takes effect here when the TTL ends: within the access-token
 * lifetime, the same bound that holds for the access tokens already issued.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { LRUCache, type Perf } from 'lru-cache';

export interface VerifiedSignInsOptions {
  /** How long a checked password is taken without checking it again. */
  ttlMs: number;
  /** Sign-ins kept at most; least recently used first out. */
  max?: number;
  /** The clock of the TTL (lru-cache's `perf`); tests pass their own. */
  perf?: Perf;
}

interface Remembered<T> {
  name: string;
  signIn: T;
  /** When the identity itself stops signing in (a token's expiry), in ms since the epoch. */
  expiresAt: number | undefined;
}

export class VerifiedSignIns<T> {
  private readonly key = randomBytes(32);
  private readonly entries: LRUCache<string, Remembered<T>>;
  private forgotten = 0;

  constructor(options: VerifiedSignInsOptions) {
    // ttlResolution 0: read the clock on each look-up, rather than lru-cache's cached reading of it.
    this.entries = new LRUCache({ max: options.max ?? 1000, ttl: options.ttlMs, ttlResolution: 0, ...(options.perf ? { perf: options.perf } : {}) });
  }

  /** What `name` with `password` signed in as, if that was checked within the TTL and still holds at `now`. */
  get(name: string, password: string, now: Date): T | undefined {
    const key = this.keyOf(name, password);
    const entry = this.entries.get(key);
    if (!entry || entry.name !== name) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= now.getTime()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.signIn;
  }

  /**
   * Counts the calls to `forget`. A check reads it before it starts and hands it to `remember`,
   * which keeps nothing if an identity changed meanwhile: the check may have read the old password.
   */
  get changes(): number {
    return this.forgotten;
  }

  remember(name: string, password: string, signIn: T, expiresAt: Date | null, changesSeen: number): void {
    if (changesSeen !== this.forgotten) return;
    this.entries.set(this.keyOf(name, password), { name, signIn, expiresAt: expiresAt?.getTime() });
  }

  /** Drops every remembered sign-in of `name`, whatever its password: the identity changed. */
  forget(name: string): void {
    this.forgotten += 1;
    // Changes to identities are rare and the cache is small: a scan is enough.
    for (const [key, entry] of this.entries.entries()) if (entry.name === name) this.entries.delete(key);
  }

  private keyOf(name: string, password: string): string {
    return createHmac('sha256', this.key).update(name).update('\0').update(password).digest('base64url');
  }
}
