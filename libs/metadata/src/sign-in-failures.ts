import type pg from 'pg';
import { RateLimiterPostgres } from 'rate-limiter-flexible';

export interface SignInFailureLimits {
  /** Failures one identity name may have in a window; the next attempt is refused unchecked. */
  perName: number;
  /** Failures one client address may have in a window, whatever names it tried. */
  perAddress: number;
  windowSeconds: number;
}

/**
 * The counters of libs/auth's SignInLimiter, kept in the `sign_in_failures` table (migration
 * 1733500000000 of the region, and of the control plane), so every process on the database counts
 * together. One table for both, told apart by key prefix: the store names its prepared statements
 * alike whatever the table, so two tables on one pool would clash.
 */
export function signInFailureCounters(pool: pg.Pool, limits: SignInFailureLimits): { perName: RateLimiterPostgres; perAddress: RateLimiterPostgres } {
  const counter = (keyPrefix: string, points: number) =>
    new RateLimiterPostgres({
      storeClient: pool,
      storeType: 'pool',
      tableName: 'sign_in_failures',
      // The migration made it: the store would otherwise create it on its own, unawaited.
      tableCreated: true,
      keyPrefix,
      points,
      duration: limits.windowSeconds,
    });
  return { perName: counter('name', limits.perName), perAddress: counter('address', limits.perAddress) };
}
