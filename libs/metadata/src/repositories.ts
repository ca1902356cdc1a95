import type { Queryable } from './db.js';

export class RepositoryStore {
  constructor(private readonly db: Queryable) {}

  async findId(name: string): Promise<number | undefined> {
    const result = await this.db.query<{ id: number }>({
      name: 'repository-find-id',
      text: 'SELECT id FROM repositories WHERE name = $1',
      values: [name],
    });
    return result.rows[0]?.id;
  }

  /** The repository's id, creating it on first push (repositories exist implicitly in the spec). */
  async ensure(name: string): Promise<number> {
    const inserted = await this.db.query<{ id: number }>({
      name: 'repository-ensure',
      text: `INSERT INTO repositories (name) VALUES ($1)
             ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name
             RETURNING id`,
      values: [name],
    });
    return inserted.rows[0]!.id;
  }

  /** Names in lexical order after `last`, at most `limit`. */
  async list(limit: number, last?: string): Promise<string[]> {
    const result = await this.db.query<{ name: string }>({
      name: 'repository-list',
      text: `SELECT name FROM repositories WHERE ($2::text IS NULL OR name > $2) ORDER BY name LIMIT $1`,
      values: [limit, last ?? null],
    });
    return result.rows.map((row) => row.name);
  }
}
