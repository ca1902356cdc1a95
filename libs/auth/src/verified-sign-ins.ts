/**
 * Sign-ins whose password was checked a moment ago. Basic credentials arrive on every request of
 * a client that sends them straight to /v2 (and each token request carries them again), and
 * checking a password against its argon2id hash costs tens of milliseconds of CPU and 19 MiB by
 * design: paid per request, it would cap a gateway at a few dozen requests a second.
 *
 * So a successful check is remembered for a short while. The key is a digest of the name and the
 * password under a random key made by this process, so what is kept in memory is neither the
 * password nor anything that could be checked against guesses elsewhere; the key is deliberately
 * not shared (unlike the upload secret): nothing outside this process ever needs to recompute it.
 * Failed checks are never remembered.
 *
 * Callers from one address asking for the same name and password while a check runs wait for
 * that check rather than start their own: a client sends Basic credentials on each of its
 * connections at once, and when the TTL ends every one of them misses together: a client with 64
 * connections made each gateway process run 64 argon2id checks (and write as many audited
 * sign-ins, and count as many attempts against the failed sign-in limits) every time.
 *
 * A remembered sign-in ends when its time is up (a short TTL, at most the access-token lifetime),
 * when the identity service of this process changes that identity (password rotated or replaced,
 * disabled, deleted), or when a token's own expiry passes. A change made through another process
 * (another gateway of the region) takes effect here when the TTL ends: within the access-token
 * lifetime, the same bound that holds for the access tokens already issued.
 */
import { hash, randomBytes } from 'node:crypto';
import { LRUCache, type Perf } from 'lru-cache';

export interface VerifiedSignInsOptions {
  /** How long a checked password is taken without checking it again. */
  ttlMs: number;
  /** Sign-ins kept at most; least recently used first out. */
  max?: number;
  /** The clock of the TTL (lru-cache's `perf`); tests pass their own. */
  perf?: Perf;
}

/** What a check of a password found when it held: who signed in, and when that identity stops signing in (a token's expiry). */
export interface CheckedSignIn<T> {
  signIn: T;
  expiresAt: Date | null;
}

/** A check that did not let the caller in, and what it said (why it refused, or nothing). */
export interface FailedCheck<F> {
  failure: F;
}

/** The answer to a sign-in: `signIn` when it held, otherwise the check's `failure`. */
export type SignInAnswer<T, F> =
  | { signIn: T; remembered: boolean; joined: boolean }
  | { signIn?: undefined; failure: F; remembered: false; joined: boolean };

interface Remembered<T> {
  name: string;
  signIn: T;
  /** When the identity itself stops signing in (a token's expiry), in ms since the epoch. */
  expiresAt: number | undefined;
}

interface RunningCheck<T, F> {
  name: string;
  /** `forgotten` when the check began: a check begun before a change is not joined after it. */
  changesSeen: number;
  found: Promise<CheckedSignIn<T> | FailedCheck<F>>;
}

/** Sign-ins of `T`, found by checks that fail with `F` (why, if the caller wants to know). */
export class VerifiedSignIns<T, F = undefined> {
  private readonly key = randomBytes(32).toString('base64');
  private readonly entries: LRUCache<string, Remembered<T>>;
  private readonly running = new Map<string, RunningCheck<T, F>>();
  private forgotten = 0;

  constructor(options: VerifiedSignInsOptions) {
    // ttlResolution 0: read the clock on each look-up, rather than lru-cache's cached reading of it.
    this.entries = new LRUCache({ max: options.max ?? 1000, ttl: options.ttlMs, ttlResolution: 0, ...(options.perf ? { perf: options.perf } : {}) });
  }

  /** What `name` with `password` signed in as, if that was checked within the TTL and still holds at `now`. */
  get(name: string, password: string, now: Date): T | undefined {
    return this.lookUp(this.keyOf(name, password), name, now);
  }

  /**
   * What `name` with `password` signs in as: a sign-in checked within the TTL (`remembered`), or
   * what `check` finds now, which is then remembered unless it failed or an identity changed
   * while it ran (it may have read the old password).
   *
   * While a check of the same name and password from the same `source` (the client's address)
   * runs, a caller waits for it (`joined`) instead of calling `check`, and counts as remembered
   * when it succeeded. Only callers from one source share a check, so that whatever `check`
   * counts or refuses by source (failed sign-ins per address) still holds for each source. A
   * check that throws throws to every caller waiting for it, and nothing is remembered.
   */
  async signIn(
    name: string,
    password: string,
    now: Date,
    source: string,
    check: () => Promise<CheckedSignIn<T> | FailedCheck<F>>,
  ): Promise<SignInAnswer<T, F>> {
    const key = this.keyOf(name, password);
    const remembered = this.lookUp(key, name, now);
    if (remembered !== undefined) return { signIn: remembered, remembered: true, joined: false };
    const runningKey = `${key} ${source}`;
    const running = this.running.get(runningKey);
    if (running && running.name === name && running.changesSeen === this.forgotten) {
      return answer(await running.found, true);
    }
    const started: RunningCheck<T, F> = { name, changesSeen: this.forgotten, found: check() };
    this.running.set(runningKey, started);
    try {
      const found = await started.found;
      if ('signIn' in found && started.changesSeen === this.forgotten) {
        this.entries.set(key, { name, signIn: found.signIn, expiresAt: found.expiresAt?.getTime() });
      }
      return answer(found, false);
    } finally {
      if (this.running.get(runningKey) === started) this.running.delete(runningKey);
    }
  }

  /** Drops every remembered sign-in of `name`, whatever its password: the identity changed. */
  forget(name: string): void {
    this.forgotten += 1;
    // Changes to identities are rare and the cache is small: a scan is enough.
    for (const [key, entry] of this.entries.entries()) if (entry.name === name) this.entries.delete(key);
  }

  private lookUp(key: string, name: string, now: Date): T | undefined {
    const entry = this.entries.get(key);
    if (!entry || entry.name !== name) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= now.getTime()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.signIn;
  }

  /**
   * SHA-256 of the process's random key, the name and the password: keyed like an HMAC, and as
   * useless to anyone without the key, for a look-up that stays in this process (no one sees a
   * digest, so HMAC's guard against length extension buys nothing here). One call into the
   * hash, with no Hmac object per request: the HMAC was most of the CPU a remembered sign-in
   * cost. A name holding the separator is told apart by `lookUp`'s comparison of the name.
   */
  private keyOf(name: string, password: string): string {
    return hash('sha256', `${this.key}${name}\0${password}`, 'base64url');
  }
}

function answer<T, F>(found: CheckedSignIn<T> | FailedCheck<F>, joined: boolean): SignInAnswer<T, F> {
  return 'signIn' in found ? { signIn: found.signIn, remembered: joined, joined } : { failure: found.failure, remembered: false, joined };
}
