/**
 * Failed sign-ins, counted per identity name from one client address, and per client address, so
 * that passwords cannot be guessed at the speed a gateway answers. The counting is rate-limiter-flexible's: a fixed window
 * per key, kept in a store every process of a service shares (a table of the region's or the
 * control plane's database; libs/metadata builds those counters), so that the workers of a
 * gateway, and the gateways of a region, count together.
 *
 * An attempt takes a point from both of its keys before its password is checked, and a success
 * gives them back: counting first keeps concurrent guesses from all passing one check that comes
 * before any of them has failed, and a refused attempt costs no argon2 work at all.
 *
 * A name is never limited on its own, only together with the address its failures came from: a
 * limit on the name alone would let anyone lock its owner (the administrator included) out of
 * every region by sending it wrong passwords, and a success of the owner would forgive the
 * failures of everyone else. Guesses at one name spread over many addresses are bounded by the
 * per-address limit of each.
 */
import { createHash } from 'node:crypto';
import { RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { TooManyRequestsError } from '@meridian/oci';

/** Two counters over the same window: `points` is how many failures each key may have in it. */
export interface SignInFailureCounters {
  perName: RateLimiterAbstract;
  perAddress: RateLimiterAbstract;
}

/** Why an attempt is refused unchecked, and until when. */
export interface SignInRefusal {
  /** Which limit was reached: the name's failures from this address, or the address's. */
  by: 'name' | 'address';
  /** Seconds until the window that holds the failures ends (at least 1). */
  retryAfterSeconds: number;
  /**
   * Whether this is the window's first refusal for that key, across every process: the audit log
   * records a refusal once, not once per request of a client that keeps trying.
   */
  first: boolean;
}

/** Keys are kept in a varchar(255) column; a name that long is no identity's (they have 64 characters at most). */
const MAX_KEY_LENGTH = 128;

export class SignInLimiter {
  constructor(private readonly counters: SignInFailureCounters) {}

  /**
   * Counts an attempt of `name` from `address` (either may be unknown) before its password is
   * checked. Answers a refusal when either has had its failures in the window, and then leaves
   * the other's count as it was. Throws what the store throws (the attempt is then not made).
   */
  async begin(name: string | undefined, address: string | undefined): Promise<SignInRefusal | undefined> {
    if (name !== undefined) {
      const refusal = await take(this.counters.perName, nameKey(name, address), 'name');
      if (refusal) return refusal;
    }
    if (address !== undefined) {
      const refusal = await take(this.counters.perAddress, keyOf(address), 'address');
      if (refusal) {
        if (name !== undefined) await this.counters.perName.reward(nameKey(name, address), 1);
        return refusal;
      }
    }
    return undefined;
  }

  /**
   * The attempt `begin` counted succeeded: the name's failures from that address are forgiven (the
   * right password shows they were its owner's typing; failures from elsewhere still count), and
   * its own point goes back to the address, whose other failures (other names tried from there)
   * still count.
   */
  async succeeded(name: string | undefined, address: string | undefined): Promise<void> {
    await Promise.all([
      name !== undefined ? this.counters.perName.delete(nameKey(name, address)) : undefined,
      address !== undefined ? this.counters.perAddress.reward(keyOf(address), 1) : undefined,
    ]);
  }
}

/** The error a refused attempt is answered with: 429 TOOMANYREQUESTS, saying which limit and when to try again. */
export function tooManySignIns(refusal: SignInRefusal, name: string | undefined): TooManyRequestsError {
  const whose = refusal.by === 'name' ? `for ${name} from this address` : 'from this address';
  return new TooManyRequestsError(`too many failed sign-ins ${whose}: try again in ${refusal.retryAfterSeconds} seconds`, refusal.retryAfterSeconds);
}

async function take(counter: RateLimiterAbstract, key: string, by: SignInRefusal['by']): Promise<SignInRefusal | undefined> {
  try {
    await counter.consume(key, 1);
    return undefined;
  } catch (err) {
    // consume rejects with the counter's state when the key is over its points, and with an Error when the store failed.
    if (!(err instanceof RateLimiterRes)) throw err;
    return { by, retryAfterSeconds: Math.max(1, Math.ceil(err.msBeforeNext / 1000)), first: err.consumedPoints === counter.points + 1 };
  }
}

/** The key of a name's failures: the name with the address they came from (the name alone when the address is unknown). */
function nameKey(name: string, address: string | undefined): string {
  return keyOf(address === undefined ? name : `${name}@${address}`);
}

function keyOf(text: string): string {
  return text.length <= MAX_KEY_LENGTH ? text : `sha256:${createHash('sha256').update(text).digest('hex')}`;
}
