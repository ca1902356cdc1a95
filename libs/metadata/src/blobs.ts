import type { Queryable } from './db.js';

/** What a lookup found: `repositoryId` undefined means the repository itself is unknown. */
export interface RepositoryLookup<T> {
  repositoryId?: number;
  found?: T;
}

export class BlobMetadataStore {
  constructor(private readonly db: Queryable) {}

  /** One round trip for the pull path: does the repository exist, and may it serve this blob. */
  async findInRepository(repository: string, digest: string): Promise<RepositoryLookup<{ size: number }>> {
    const result = await this.db.query<{ repository_id: number; size: number | null }>({
      name: 'blob-find-in-repository',
      text: `SELECT r.id AS repository_id, rb.size
             FROM repositories r
             LEFT JOIN repository_blobs rb ON rb.repository_id = r.id AND rb.digest = $2
             WHERE r.name = $1`,
      values: [repository, digest],
    });
    const row = result.rows[0];
    if (!row) return {};
    return row.size === null ? { repositoryId: row.repository_id } : { repositoryId: row.repository_id, found: { size: row.size } };
  }

  /**
   * Size of a blob some repository of the region still links (for a mount without `from`).
   * A blob unlinked everywhere is not found, even while its bytes await garbage collection.
   */
  async findLinkedAnywhere(digest: string): Promise<{ size: number } | undefined> {
    const result = await this.db.query<{ size: number }>({
      name: 'blob-find-linked-anywhere',
      text: 'SELECT size FROM repository_blobs WHERE digest = $1 LIMIT 1',
      values: [digest],
    });
    return result.rows[0];
  }

  /** Records a verified blob and links it into the repository; idempotent. */
  async link(repositoryId: number, digest: string, size: number): Promise<void> {
    await this.db.query({
      name: 'blob-link',
      text: `WITH blob AS (
               INSERT INTO blobs (digest, size) VALUES ($2, $3) ON CONFLICT (digest) DO NOTHING
             )
             INSERT INTO repository_blobs (repository_id, digest, size) VALUES ($1, $2, $3)
             ON CONFLICT (repository_id, digest) DO NOTHING`,
      values: [repositoryId, digest, size],
    });
  }

  /** Unlinks a blob from one repository; its bytes stay until garbage collection. */
  async unlink(repositoryId: number, digest: string): Promise<boolean> {
    const result = await this.db.query({
      name: 'blob-unlink',
      text: 'DELETE FROM repository_blobs WHERE repository_id = $1 AND digest = $2',
      values: [repositoryId, digest],
    });
    return (result.rowCount ?? 0) > 0;
  }

  /**
   * The sizes of those of `digests` the repository may serve; a digest missing from the map is
   * not servable here (one indexed query, however many).
   */
  async sizesInRepository(repositoryId: number, digests: readonly string[]): Promise<Map<string, number>> {
    if (digests.length === 0) return new Map();
    const result = await this.db.query<{ digest: string; size: string }>({
      name: 'blob-sizes-in-repository',
      text: `SELECT digest, size FROM repository_blobs WHERE repository_id = $1 AND digest = ANY($2::text[])`,
      values: [repositoryId, [...new Set(digests)]],
    });
    return new Map(result.rows.map((row) => [row.digest, Number(row.size)]));
  }
}
