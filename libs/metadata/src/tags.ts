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

  /**
   * Tag names in lexical order after `last`, at most `limit`: case-insensitive, as
   * distribution-spec v1.1 "Listing Tags" requires, with the name itself breaking ties between
   * tags that differ only in case (an index range scan on tags_lexical_idx).
   */
  async list(repositoryId: number, limit: number, last?: string): Promise<string[]> {
    const result =
      last === undefined
        ? await this.db.query<{ name: string }>({
            name: 'tag-list-first',
            text: `SELECT name FROM tags WHERE repository_id = $1 ORDER BY lower(name), name LIMIT $2`,
            values: [repositoryId, limit],
          })
        : await this.db.query<{ name: string }>({
            name: 'tag-list-after',
            text: `SELECT name FROM tags WHERE repository_id = $1 AND (lower(name), name) > (lower($3::text COLLATE "C"), $3::text COLLATE "C")
                   ORDER BY lower(name), name LIMIT $2`,
            values: [repositoryId, limit, last],
          });
    return result.rows.map((row) => row.name);
  }
}
