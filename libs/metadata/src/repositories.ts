import { NameUnknownError } from '@meridian/oci';
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

  /** The repository's id; NAME_UNKNOWN when there is none. */
  async requireId(name: string): Promise<number> {
    const id = await this.findId(name);
    if (id === undefined) throw new NameUnknownError(`repository ${name} is not known`);
    return id;
  }

  /**
   * The repository's id, creating it on first push (repositories exist implicitly in the spec).
   * Reads first: the common case, a repository that exists, then writes nothing and waits for
   * no WAL flush.
   */
  async ensure(name: string): Promise<number> {
    const existing = await this.findId(name);
    if (existing !== undefined) return existing;
    const inserted = await this.db.query<{ id: number }>({
      name: 'repository-insert',
      text: 'INSERT INTO repositories (name) VALUES ($1) ON CONFLICT (name) DO NOTHING RETURNING id',
      values: [name],
    });
    // DO NOTHING waited for a concurrent creator to commit; a new statement now sees its row.
    return inserted.rows[0]?.id ?? (await this.findId(name))!;
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
