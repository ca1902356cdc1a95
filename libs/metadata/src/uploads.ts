import type { Queryable } from './db.js';
import { OUTBOX_CHANNEL, traceJson } from './outbox.js';
import type { TraceContextSource } from './metadata.js';

/** Open upload sessions, so they can be listed and purged; their bytes are in the blob store. */
export class UploadStore {
  constructor(
    private readonly db: Queryable,
    /** The trace context of the write under way, stored with the outbox row of a completed upload. */
    private readonly traceContext: TraceContextSource = () => undefined,
  ) {}

  /**
   * Records a new session without waiting for the WAL flush (synchronous_commit off for this
   * statement's transaction only): a session lost in a database crash costs the client a retry,
   * and its bytes are purged as idle, so its row need not delay every push by an fsync.
   */
  async insert(id: string, repositoryId: number): Promise<void> {
    await this.db.query({
      name: 'upload-insert',
      text: `WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true))
             INSERT INTO uploads (id, repository_id) SELECT $1, $2 FROM relaxed`,
      values: [id, repositoryId],
    });
  }

  /**
   * The same, naming the repository: one round trip when it exists (the common case). Returns
   * false when it does not, for the caller to create it and use insert().
   */
  async insertIntoExisting(id: string, repository: string): Promise<boolean> {
    const result = await this.db.query({
      name: 'upload-insert-by-name',
      text: `WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true))
             INSERT INTO uploads (id, repository_id) SELECT $1, r.id FROM repositories r, relaxed WHERE r.name = $2`,
      values: [id, repository],
    });
    return (result.rowCount ?? 0) > 0;
  }

  /**
   * Closes a session as the blob it became, in one statement (so one transaction and one WAL
   * flush): removes the session row and, only if there was one, records the blob as present
   * (its verified bytes are in the store: a pending one is present again) and links it into
   * the session's repository. Returns false (and changes nothing) for a session that is not
   * open: never started, cancelled, or already closed.
   */
  async completeAsBlob(id: string, digest: string, size: number, hlc: bigint): Promise<boolean> {
    const result = await this.db.query({
      name: 'upload-complete-as-blob',
      text: `WITH closed AS (DELETE FROM uploads WHERE id = $1 RETURNING repository_id),
                  blob AS (
                    INSERT INTO blobs (digest, size) SELECT $2, $3 FROM closed
                    ON CONFLICT (digest) DO UPDATE SET state = 'present' WHERE blobs.state <> 'present'
                  ),
                  linked AS (
                    INSERT INTO repository_blobs (repository_id, digest, size)
                    SELECT repository_id, $2, $3 FROM closed
                    ON CONFLICT (repository_id, digest) DO NOTHING
                  ),
                  recorded AS (
                    INSERT INTO outbox (hlc, body, trace)
                    SELECT $4::bigint, jsonb_build_object('kind', 'blob.link', 'repository', r.name, 'digest', $2::text, 'size', $3::bigint), $5::jsonb
                    FROM closed JOIN repositories r ON r.id = closed.repository_id
                  )
             SELECT repository_id, pg_notify('${OUTBOX_CHANNEL}', '') FROM closed`,
      values: [id, digest, size, hlc.toString(), traceJson(this.traceContext())],
    });
    return (result.rowCount ?? 0) > 0;
  }

  /** Whether the session is open (started, not yet closed or cancelled). */
  async isOpen(id: string): Promise<boolean> {
    const result = await this.db.query({ name: 'upload-is-open', text: 'SELECT 1 FROM uploads WHERE id = $1', values: [id] });
    return (result.rowCount ?? 0) > 0;
  }

  /** Removes the session's row; returns whether there was one. */
  async delete(id: string): Promise<boolean> {
    const result = await this.db.query({ name: 'upload-delete', text: 'DELETE FROM uploads WHERE id = $1', values: [id] });
    return (result.rowCount ?? 0) > 0;
  }

  /** Sessions started before `cutoff`, oldest first, a page at a time after `after`. */
  async startedBefore(cutoff: Date, limit = 1000, after?: { startedAt: Date; id: string }): Promise<Array<{ id: string; startedAt: Date }>> {
    const result = await this.db.query<{ id: string; started_at: Date }>({
      name: 'upload-started-before',
      text: `SELECT id, started_at FROM uploads
             WHERE started_at < $1 AND ($3::timestamptz IS NULL OR (started_at, id) > ($3, $4::uuid))
             ORDER BY started_at, id LIMIT $2`,
      values: [cutoff, limit, after?.startedAt ?? null, after?.id ?? null],
    });
    return result.rows.map((row) => ({ id: row.id, startedAt: row.started_at }));
  }

  /** How many sessions are open (for the gateway's metrics). */
  async openCount(): Promise<number> {
    const result = await this.db.query<{ count: number }>({ name: 'upload-open-count', text: 'SELECT count(*)::int AS count FROM uploads' });
    return result.rows[0]?.count ?? 0;
  }
}
