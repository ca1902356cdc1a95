import type { MatrixCell } from '../dashboard/snapshot-types.js';
import type { Queryable } from './db.js';

/** One target region's replication figures now. */
export interface TargetFigures {
  /** Replications to it still pending. */
  backlog: number;
  /** 99th percentile of the lag of what it applied in the window asked; null when it applied nothing. */
  lagP99Seconds: number | null;
}

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
 * old changes: their age is no lag). The done and failed rows are found through indexes of their
 * own (migration 1733100000000), so these stay cheap with a long history.
 */
export class ReplicationFiguresStore {
  constructor(private readonly db: Queryable) {}

  /** Per target region: its backlog, and the lag p99 of what it applied in the last `lagWindowSeconds`. */
  async byTarget(lagWindowSeconds: number): Promise<Map<string, TargetFigures>> {
    const { rows } = await this.db.query<{ region: string; backlog: string; lag_p99: number | null }>(
      `SELECT g.name AS region,
              (SELECT count(*) FROM replications r WHERE r.region = g.name AND r.state = 'pending') AS backlog,
              (SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM r.done_at - c.at))
                 FROM replications r JOIN changes c ON c.id = r.change_id
                WHERE r.state = 'done' AND NOT r.backfill AND r.done_at > now() - make_interval(secs => $1)
                  AND r.region = g.name) AS lag_p99
         FROM regions g`,
      [lagWindowSeconds],
    );
    return new Map(rows.map((row) => [row.region, { backlog: Number(row.backlog), lagP99Seconds: row.lag_p99 }]));
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
