import type { Queryable } from './db.js';

/** Open upload sessions, so they can be listed and purged; their bytes are in the blob store. */
export class UploadStore {
  constructor(private readonly db: Queryable) {}

  async insert(id: string, repositoryId: number): Promise<void> {
    await this.db.query({
      name: 'upload-insert',
      text: 'INSERT INTO uploads (id, repository_id) VALUES ($1, $2)',
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
