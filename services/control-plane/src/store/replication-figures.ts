import type { MatrixCell } from '../dashboard/snapshot-types.js';
import type { Queryable } from './db.js';

/** A manifest put, as the newest-pushes panel lists it. */
export interface ManifestPush {
  changeId: string;
  origin: string;
  at: string;
  repository: string;
  digest: string;
  tag: string | null;
}

/**
 * The dashboard's replication figures, read from the replication rows. Lag is from the commit at
 * the origin (`changes.at`) to the row turning done, for rows made by a change (a backfill copies
 * old changes: their age is no lag). Recent done rows and failed rows have partial indexes of
 * their own (migration 1733100000000), so these need not read the whole history.
 */
export class ReplicationFiguresStore {
  constructor(private readonly db: Queryable) {}

  /**
   * Per target region, the lag p99 of what it applied in the last `lagWindowSeconds`; a region
   * that applied nothing in it is absent. (Its backlog is ReplicationStore.pendingByRegion.)
   */
  async lagP99ByTarget(lagWindowSeconds: number): Promise<Map<string, number>> {
    const { rows } = await this.db.query<{ region: string; lag_p99: number }>(
      `SELECT r.region, percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM r.done_at - c.at)) AS lag_p99
         FROM replications r JOIN changes c ON c.id = r.change_id
        WHERE r.state = 'done' AND NOT r.backfill AND r.done_at > now() - make_interval(secs => $1)
        GROUP BY r.region`,
      [lagWindowSeconds],
    );
    return new Map(rows.map((row) => [row.region, row.lag_p99]));
  }

  /**
   * Per (origin of the change, target region) with anything to show: replications pending, failed,
   * and the lag p99 of those applied in the last `lagWindowSeconds`.
   */
  async matrix(lagWindowSeconds: number): Promise<MatrixCell[]> {
    const { rows } = await this.db.query<{ source: string; target: string; pending: string; failed: string; lag_p99: number | null }>(
      `SELECT c.origin AS source, r.region AS target,
              count(*) FILTER (WHERE r.state = 'pending') AS pending,
              count(*) FILTER (WHERE r.state = 'failed') AS failed,
              percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM r.done_at - c.at)) FILTER (WHERE r.state = 'done') AS lag_p99
         FROM (SELECT change_id, region, state, done_at FROM replications WHERE state IN ('pending', 'failed')
               UNION ALL
               SELECT change_id, region, state, done_at FROM replications
                WHERE state = 'done' AND NOT backfill AND done_at > now() - make_interval(secs => $1)) r
         JOIN changes c ON c.id = r.change_id
        GROUP BY c.origin, r.region
        ORDER BY c.origin, r.region`,
      [lagWindowSeconds],
    );
    return rows.map((row) => ({
      source: row.source,
      target: row.target,
      pending: Number(row.pending),
      failed: Number(row.failed),
      lagP99Seconds: row.lag_p99,
    }));
  }

  /** The `limit` newest manifest puts, newest first. */
  async newestPushes(limit: number): Promise<ManifestPush[]> {
    const { rows } = await this.db.query<{ id: string; origin: string; at: Date; repository: string; digest: string; tag: string | null }>(
      `SELECT id, origin, at, repository, digest, body->>'tag' AS tag FROM changes
        WHERE kind = 'manifest.put' ORDER BY id DESC LIMIT $1`,
      [limit],
    );
    return rows.map((row) => ({ changeId: row.id, origin: row.origin, at: row.at.toISOString(), repository: row.repository, digest: row.digest, tag: row.tag }));
  }
}
