import type { Queryable } from './db.js';

/** Open upload sessions, so they can be listed and purged; their bytes are in the blob store. */
export class UploadStore {
  constructor(private readonly db: Queryable) {}

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

  async delete(id: string): Promise<void> {
    await this.db.query({ name: 'upload-delete', text: 'DELETE FROM uploads WHERE id = $1', values: [id] });
  }

  /** Sessions started before `cutoff`, oldest first. */
  async startedBefore(cutoff: Date, limit = 1000): Promise<string[]> {
    const result = await this.db.query<{ id: string }>({
      name: 'upload-started-before',
      text: 'SELECT id FROM uploads WHERE started_at < $1 ORDER BY started_at LIMIT $2',
      values: [cutoff, limit],
    });
    return result.rows.map((row) => row.id);
  }
}
