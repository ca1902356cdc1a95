import type { PurgeCounts } from '@meridian/proto/purge';
import type { Queryable } from './db.js';

/** What a region holds, as a purge counts it. */
export type HeldContent = Omit<PurgeCounts, 'discardedChanges'>;

/**
 * Deletes everything the region's metadata holds, a bounded batch at a time, for a region being
 * removed from the cluster. Nothing here touches the outbox: a purge is not a change to
 * replicate. Each call deletes at most `limit` rows of one kind, in an order that leaves nothing
 * dangling (tags before the manifests they name, links before the blobs they keep), so a purge
 * broken off between two calls is finished by the next ones.
 */
export class PurgeStore {
  constructor(private readonly db: Queryable) {}

  async held(): Promise<HeldContent> {
    const result = await this.db.query<HeldContent>({
      name: 'purge-held',
      text: `SELECT (SELECT count(*) FROM repositories)::int AS repositories,
                    (SELECT count(*) FROM manifests)::int AS manifests,
                    (SELECT count(*) FROM tags)::int AS tags,
                    (SELECT count(*) FROM repository_blobs)::int AS "blobLinks",
                    (SELECT count(*) FROM blobs)::int AS blobs,
                    (SELECT coalesce(sum(size), 0) FROM blobs)::bigint AS bytes`,
    });
    return result.rows[0]!;
  }

  /** Whether anything is left to purge (repositories hold every manifest, tag and link). */
  async anythingLeft(): Promise<boolean> {
    const result = await this.db.query<{ left: boolean }>({
      name: 'purge-anything-left',
      text: 'SELECT EXISTS (SELECT 1 FROM repositories) OR EXISTS (SELECT 1 FROM blobs) AS left',
    });
    return result.rows[0]!.left;
  }

  async deleteTags(limit: number): Promise<Array<{ repository: string; tag: string }>> {
    const result = await this.db.query<{ repository: string; tag: string }>({
      name: 'purge-tags',
      text: `DELETE FROM tags t USING repositories r
              WHERE r.id = t.repository_id
                AND (t.repository_id, t.name) IN (SELECT repository_id, name FROM tags ORDER BY repository_id, name LIMIT $1)
             RETURNING r.name AS repository, t.name AS tag`,
      values: [limit],
    });
    return result.rows;
  }

  /** Deletes manifests with their references (an index's children go in the same or a later batch). */
  async deleteManifests(limit: number): Promise<Array<{ repository: string; digest: string }>> {
    const result = await this.db.query<{ repository: string; digest: string }>({
      name: 'purge-manifests',
      text: `DELETE FROM manifests m USING repositories r
              WHERE r.id = m.repository_id AND m.id IN (SELECT id FROM manifests ORDER BY id LIMIT $1)
             RETURNING r.name AS repository, m.digest`,
      values: [limit],
    });
    return result.rows;
  }

  async deleteBlobLinks(limit: number): Promise<Array<{ repository: string; digest: string }>> {
    const result = await this.db.query<{ repository: string; digest: string }>({
      name: 'purge-blob-links',
      text: `DELETE FROM repository_blobs rb USING repositories r
              WHERE r.id = rb.repository_id
                AND (rb.repository_id, rb.digest) IN (SELECT repository_id, digest FROM repository_blobs ORDER BY repository_id, digest LIMIT $1)
             RETURNING r.name AS repository, rb.digest`,
      values: [limit],
    });
    return result.rows;
  }

  /** Deletes repositories, with their tombstones; returns how many. */
  async deleteRepositories(limit: number): Promise<number> {
    const result = await this.db.query({
      name: 'purge-repositories',
      text: 'DELETE FROM repositories WHERE id IN (SELECT id FROM repositories ORDER BY id LIMIT $1)',
      values: [limit],
    });
    return result.rowCount ?? 0;
  }

  /** Blobs no repository links: their bytes are to be deleted, then their rows (forgetBlobs). */
  async unlinkedBlobs(limit: number): Promise<Array<{ digest: string; size: number }>> {
    const result = await this.db.query<{ digest: string; size: number }>({
      name: 'purge-unlinked-blobs',
      text: `SELECT b.digest, b.size FROM blobs b
              WHERE NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)
              ORDER BY b.digest LIMIT $1`,
      values: [limit],
    });
    return result.rows;
  }

  /** Deletes the rows of blobs whose bytes are gone, unless a repository links one again. */
  async forgetBlobs(digests: readonly string[]): Promise<number> {
    const result = await this.db.query({
      name: 'purge-forget-blobs',
      text: `DELETE FROM blobs b WHERE b.digest = ANY($1::text[])
               AND NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)`,
      values: [digests],
    });
    return result.rowCount ?? 0;
  }
}
