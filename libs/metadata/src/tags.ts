import type { Queryable } from './db.js';

export class TagStore {
  constructor(private readonly db: Queryable) {}

  /** Points `name` at a manifest, creating the tag or moving it. */
  async put(repositoryId: number, name: string, manifestId: number): Promise<void> {
    await this.db.query({
      name: 'tag-put',
      text: `INSERT INTO tags (repository_id, name, manifest_id) VALUES ($1, $2, $3)
             ON CONFLICT (repository_id, name) DO UPDATE SET manifest_id = EXCLUDED.manifest_id, updated_at = now()
             WHERE tags.manifest_id IS DISTINCT FROM EXCLUDED.manifest_id`,
      values: [repositoryId, name, manifestId],
    });
  }

  async delete(repositoryId: number, name: string): Promise<boolean> {
    const result = await this.db.query({
      name: 'tag-delete',
      text: 'DELETE FROM tags WHERE repository_id = $1 AND name = $2',
      values: [repositoryId, name],
    });
    return (result.rowCount ?? 0) > 0;
  }

  /** Tag names in lexical order after `last`, at most `limit` (an index range scan on the primary key). */
  async list(repositoryId: number, limit: number, last?: string): Promise<string[]> {
    const result = await this.db.query<{ name: string }>({
      name: 'tag-list',
      text: `SELECT name FROM tags WHERE repository_id = $1 AND ($3::text IS NULL OR name > $3) ORDER BY name LIMIT $2`,
      values: [repositoryId, limit, last ?? null],
    });
    return result.rows.map((row) => row.name);
  }
}
