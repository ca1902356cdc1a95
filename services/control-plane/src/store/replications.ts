import type { ReplicateJob, ReplicationOutcome } from '@meridian/proto';
import { CHANGE_COLUMNS, toStoredChange, type ChangeRow } from './changes.js';
import type { Queryable } from './db.js';

export type ReplicationState = 'pending' | 'done' | 'failed' | 'superseded' | 'dropped';

/** One (change, region) row, as the status query reads it. */
export interface ReplicationRow {
  changeId: string;
  region: string;
  state: ReplicationState;
  attempts: number;
  lastError: string | null;
  updatedAt: string;
}

/** A (change, region) pair to enqueue. */
export interface ReplicationKey {
  changeId: string;
  region: string;
}

/**
 * Where each change stands in each target region. A row is created `pending` and stays so until
 * the worker reports an outcome; every pending row has (or will get, from the requeue) a job in
 * Redis. A `done` row stays done whatever is reported after it.
 */
export class ReplicationStore {
  constructor(private readonly db: Queryable) {}

  /**
   * One pending row per change and region that takes new work (adding or active), except the
   * change's origin, which made it. Returns the rows made.
   */
  async createForChanges(changeIds: string[], db: Queryable): Promise<ReplicationKey[]> {
    if (changeIds.length === 0) return [];
    const { rows } = await db.query<{ change_id: string; region: string }>(
      `INSERT INTO replications (change_id, region)
       SELECT c.id, g.name FROM changes c JOIN regions g ON g.state IN ('adding', 'active') AND g.name <> c.origin
        WHERE c.id = ANY($1::bigint[])
       ORDER BY c.id, g.name
       ON CONFLICT DO NOTHING
       RETURNING change_id, region`,
      [changeIds],
    );
    return rows.map((row) => ({ changeId: row.change_id, region: row.region }));
  }

  /**
   * A pending backfill row for `region` per change; a row the region had before (it was removed
   * and is added again) starts over.
   */
  async createBackfill(region: string, changeIds: string[], db: Queryable): Promise<number> {
    if (changeIds.length === 0) return 0;
    const result = await db.query(
      `INSERT INTO replications (change_id, region, backfill)
       SELECT id, $2, true FROM unnest($1::bigint[]) AS id
       ON CONFLICT (change_id, region) DO UPDATE SET state = 'pending', backfill = true, attempts = 0, last_error = NULL,
         bytes = 0, created_at = now(), updated_at = now(), done_at = NULL`,
      [changeIds, region],
    );
    return result.rowCount ?? 0;
  }

  /** Marks every pending row of a region `dropped`; returns them (their jobs are to be removed). */
  async dropPending(region: string, db: Queryable): Promise<ReplicationKey[]> {
    const { rows } = await db.query<{ change_id: string }>(
      `UPDATE replications SET state = 'dropped', updated_at = now()
        WHERE region = $1 AND state = 'pending'
       RETURNING change_id`,
      [region],
    );
    return rows.map((row) => ({ changeId: row.change_id, region }));
  }

  /** Deletes every row of a region (it is being purged); returns how many there were. */
  async deleteForRegion(region: string, db: Queryable): Promise<number> {
    const result = await db.query('DELETE FROM replications WHERE region = $1', [region]);
    return result.rowCount ?? 0;
  }

  /**
   * Records the worker's outcome. Returns the row's `backfill` flag, or undefined when there is no
   * such row. A row already `done` keeps its state (a duplicate job may report after it). So does
   * a pending row reported `dropped` while its region takes work (adding or active): the worker
   * judged from a stale view of the region, and dropping the row would lose the change there;
   * the requeue hands it out again.
   */
  async report(key: ReplicationKey, outcome: ReplicationOutcome, db: Queryable = this.db): Promise<{ backfill: boolean } | undefined> {
    const { rows } = await db.query<{ backfill: boolean }>(
      `UPDATE replications
          SET state = CASE WHEN state = 'done' THEN state
                           WHEN $3 = 'dropped' AND EXISTS (SELECT 1 FROM regions WHERE name = $2 AND state IN ('adding', 'active')) THEN state
                           ELSE $3 END,
              last_error = CASE WHEN state = 'done' THEN last_error WHEN $3 = 'done' THEN NULL ELSE coalesce($4, last_error) END,
              bytes = CASE WHEN state = 'done' THEN bytes ELSE coalesce($5, bytes) END,
              attempts = greatest(attempts, coalesce($6, attempts)),
              updated_at = now(),
              done_at = CASE WHEN state <> 'done' AND $3 = 'done' THEN now() ELSE done_at END
        WHERE change_id = $1 AND region = $2
       RETURNING backfill`,
      [key.changeId, key.region, outcome.outcome, outcome.error ?? null, outcome.bytes ?? null, outcome.attempts ?? null],
    );
    return rows[0];
  }

  /** Pending rows per region the control plane knows (zero included), for the backlog metric. */
  async pendingByRegion(): Promise<Map<string, number>> {
    const { rows } = await this.db.query<{ name: string; pending: number }>(
      `SELECT g.name, count(r.change_id)::int AS pending
         FROM regions g LEFT JOIN replications r ON r.region = g.name AND r.state = 'pending'
        GROUP BY g.name`,
    );
    return new Map(rows.map((row) => [row.name, row.pending]));
  }

  /**
   * Up to `limit` pending rows after `after` (in (change, region) order), of every region or the
   * one named, with their changes, as job payloads: the requeue pages through them this way.
   */
  async pendingJobs(after: ReplicationKey | undefined, limit: number, region?: string): Promise<ReplicateJob[]> {
    const { rows } = await this.db.query<ChangeRow & { region: string; backfill: boolean }>(
      `SELECT r.region, r.backfill, ${CHANGE_COLUMNS}
         FROM replications r JOIN changes c ON c.id = r.change_id
        WHERE r.state = 'pending' AND (r.change_id, r.region) > ($1::bigint, $2::text COLLATE "C")
          AND ($4::text IS NULL OR r.region = $4)
        ORDER BY r.change_id, r.region
        LIMIT $3`,
      [after?.changeId ?? 0, after?.region ?? '', limit, region ?? null],
    );
    return rows.map((row) => ({ changeId: row.id, region: row.region, change: toStoredChange(row).change, ...(row.backfill ? { backfill: true } : {}) }));
  }

  /** The rows of the given changes, oldest change first. */
  async forChanges(changeIds: string[], db: Queryable = this.db): Promise<ReplicationRow[]> {
    const { rows } = await db.query<{ change_id: string; region: string; state: ReplicationState; attempts: number; last_error: string | null; updated_at: Date }>(
      `SELECT change_id, region, state, attempts, last_error, updated_at FROM replications
        WHERE change_id = ANY($1::bigint[]) ORDER BY change_id, region`,
      [changeIds],
    );
    return rows.map((row) => ({
      changeId: row.change_id,
      region: row.region,
      state: row.state,
      attempts: row.attempts,
      lastError: row.last_error,
      updatedAt: row.updated_at.toISOString(),
    }));
  }
}
