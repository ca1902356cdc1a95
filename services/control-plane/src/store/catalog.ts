import type { ReplicatedChange } from '@meridian/proto';
import type { Queryable } from './db.js';

export interface CatalogTag {
  tag: string;
  digest: string;
  changeId: string;
}

export interface CatalogManifest {
  digest: string;
  mediaType: string | null;
  size: number | null;
  changeId: string;
}

/**
 * The catalog merged from every region's changes: for each manifest, tag and blob link of each
 * repository, the write that won. Last writer wins by (hlc, origin), the order of compareClocks
 * (libs/proto/src/clock.ts): every UPDATE below applies only when the incoming clock is newer
 * than the row's, as a tuple comparison in the "C" collation, so the result does not depend on
 * the order changes arrive in. Deletes leave the row as a tombstone with the delete's clock,
 * except the tags a manifest delete takes with it: those keep the clock of their own last write.
 * A manifest's newest delete is kept beside a newer put (delete_hlc, delete_origin): a tag write
 * older than it is refused even after the put, as the regions refuse it (ManifestStore.putTombstone).
 */
export class CatalogStore {
  constructor(private readonly db: Queryable) {}

  /** Merges one stored change into the catalog. */
  async apply(changeId: string, change: ReplicatedChange, db: Queryable): Promise<void> {
    const body = change.body;
    const clock = [change.hlc, change.origin, changeId];
    switch (body.kind) {
      case 'blob.link':
      case 'blob.unlink':
        await db.query(
          `INSERT INTO catalog_blobs AS b (repository, digest, size, deleted, hlc, origin, change_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (repository, digest) DO UPDATE SET size = coalesce(EXCLUDED.size, b.size), deleted = EXCLUDED.deleted,
             hlc = EXCLUDED.hlc, origin = EXCLUDED.origin, change_id = EXCLUDED.change_id
           WHERE (b.hlc, b.origin) < (EXCLUDED.hlc, EXCLUDED.origin)`,
          [body.repository, body.digest, body.kind === 'blob.link' ? body.size : null, body.kind === 'blob.unlink', ...clock],
        );
        return;
      case 'manifest.put': {
        const deletedBy = await this.putManifest(body.repository, body.digest, body.mediaType, body.size, clock, db);
        if (body.tag === undefined) return;
        if (deletedBy === undefined) {
          await this.writeTag(body.repository, body.tag, body.digest, false, clock, db);
          return;
        }
        // A tag write older than a delete of its manifest (newer puts of the manifest or not) is
        // lost with it, as in the regions (TagStore.applyPut): in clock order it overwrote the tag
        // and went with the delete, so it is a tombstone at its own clock, which an older write
        // of the tag arriving later does not beat. It names the delete, the change
        // reconciliation repeats to a region still holding the tag.
        await this.writeTag(body.repository, body.tag, body.digest, true, [change.hlc, change.origin, deletedBy], db);
        return;
      }
      case 'manifest.delete':
        await this.putManifest(body.repository, body.digest, null, null, clock, db, true);
        await db.query(
          `UPDATE catalog_manifests SET delete_hlc = $3, delete_origin = $4, delete_change_id = $5
            WHERE repository = $1 AND digest = $2 AND (delete_hlc IS NULL OR (delete_hlc, delete_origin) < ($3::bigint, $4::text COLLATE "C"))`,
          [body.repository, body.digest, ...clock],
        );
        // The delete takes every tag naming the manifest with it (those written before it). Each
        // keeps its own clock: the tombstone stands for the tag's last write, so a move of the tag
        // newer than that write (older than the delete, arriving after it) still wins, as it does
        // when it arrives first. change_id names the delete, the change reconciliation repeats.
        await db.query(
          `UPDATE catalog_tags SET deleted = true, change_id = $5
            WHERE repository = $1 AND digest = $2 AND NOT deleted AND (hlc, origin) < ($3::bigint, $4::text COLLATE "C")`,
          [body.repository, body.digest, ...clock],
        );
        return;
      case 'tag.delete':
        await this.writeTag(body.repository, body.tag, null, true, clock, db);
        return;
    }
  }

  /**
   * Upserts a manifest row by LWW. Returns the change id of the manifest's newest delete when
   * that is at least as new as this write (which then does not make it live), else undefined.
   */
  private async putManifest(
    repository: string,
    digest: string,
    mediaType: string | null,
    size: number | null,
    clock: string[],
    db: Queryable,
    deleted = false,
  ): Promise<string | undefined> {
    const { rows } = await db.query<{ deleted_by: string | null }>(
      `WITH upsert AS (
         INSERT INTO catalog_manifests AS m (repository, digest, media_type, size, deleted, hlc, origin, change_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (repository, digest) DO UPDATE SET media_type = coalesce(EXCLUDED.media_type, m.media_type),
           size = coalesce(EXCLUDED.size, m.size), deleted = EXCLUDED.deleted, hlc = EXCLUDED.hlc, origin = EXCLUDED.origin,
           change_id = EXCLUDED.change_id
         WHERE (m.hlc, m.origin) < (EXCLUDED.hlc, EXCLUDED.origin)
         RETURNING delete_hlc, delete_origin, delete_change_id),
       row AS (
         SELECT delete_hlc, delete_origin, delete_change_id FROM upsert
         UNION ALL SELECT delete_hlc, delete_origin, delete_change_id FROM catalog_manifests
          WHERE repository = $1 AND digest = $2 AND NOT EXISTS (SELECT 1 FROM upsert))
       SELECT CASE WHEN (delete_hlc, delete_origin) >= ($6::bigint, $7::text COLLATE "C") THEN delete_change_id::text END AS deleted_by FROM row`,
      [repository, digest, mediaType, size, deleted, ...clock],
    );
    return rows[0]?.deleted_by ?? undefined;
  }

  /** Upserts a tag row by LWW; a null digest (a tag delete) keeps the one the tag last named. */
  private async writeTag(repository: string, tag: string, digest: string | null, deleted: boolean, clock: string[], db: Queryable): Promise<void> {
    await db.query(
      `INSERT INTO catalog_tags AS t (repository, tag, digest, deleted, hlc, origin, change_id)
       VALUES ($1, $2, coalesce($3::text, ''), $4, $5, $6, $7)
       ON CONFLICT (repository, tag) DO UPDATE SET digest = coalesce($3::text, t.digest),
         deleted = EXCLUDED.deleted, hlc = EXCLUDED.hlc, origin = EXCLUDED.origin, change_id = EXCLUDED.change_id
       WHERE (t.hlc, t.origin) < (EXCLUDED.hlc, EXCLUDED.origin)`,
      [repository, tag, digest, deleted, ...clock],
    );
  }

  /**
   * The changes a new region needs to hold the whole live catalog: for each live manifest the
   * write that put it (an index's children are manifests of their own, so they come too), for
   * each live tag the write that set it, for each live blob link the write that linked it.
   * Changes made by `region` itself are left out: it has them.
   */
  async liveChangeIds(region: string, db: Queryable): Promise<string[]> {
    const { rows } = await db.query<{ change_id: string }>(
      `SELECT change_id FROM (
         SELECT change_id, origin FROM catalog_blobs WHERE NOT deleted
         UNION SELECT change_id, origin FROM catalog_manifests WHERE NOT deleted
         UNION SELECT change_id, origin FROM catalog_tags WHERE NOT deleted) live
        WHERE origin <> $1
        ORDER BY change_id`,
      [region],
    );
    return rows.map((row) => row.change_id);
  }

  /**
   * Live catalog items that, by the control plane's records, only `region` holds: written there
   * or replicated there, and neither written by nor replicated to any other region taking work.
   * What purging the region would lose for good. The first `limit`, as `kind repository name`.
   */
  async heldOnlyBy(region: string, limit: number, db: Queryable = this.db): Promise<{ items: string[]; total: number }> {
    const { rows } = await db.query<{ item: string; total: string }>(
      `WITH live AS (
         SELECT 'manifest' AS kind, repository, digest AS name, change_id, origin FROM catalog_manifests WHERE NOT deleted
         UNION ALL SELECT 'tag', repository, tag, change_id, origin FROM catalog_tags WHERE NOT deleted
         UNION ALL SELECT 'blob', repository, digest, change_id, origin FROM catalog_blobs WHERE NOT deleted)
       SELECT l.kind || ' ' || l.repository || (CASE WHEN l.kind = 'tag' THEN ':' ELSE '@' END) || l.name AS item, count(*) OVER () AS total
         FROM live l
        WHERE (l.origin = $1 OR EXISTS (SELECT 1 FROM replications r WHERE r.change_id = l.change_id AND r.region = $1 AND r.state = 'done'))
          AND NOT EXISTS (SELECT 1 FROM regions g WHERE g.name = l.origin AND g.name <> $1 AND g.state IN ('adding', 'active'))
          AND NOT EXISTS (SELECT 1 FROM replications r JOIN regions g ON g.name = r.region
                           WHERE r.change_id = l.change_id AND r.state = 'done' AND g.name <> $1 AND g.state IN ('adding', 'active'))
        ORDER BY l.repository, l.kind, l.name
        LIMIT $2`,
      [region, limit],
    );
    return { items: rows.map((row) => row.item), total: Number(rows[0]?.total ?? 0) };
  }

  /** A live tag of a repository. */
  async tag(repository: string, tag: string, db: Queryable = this.db): Promise<CatalogTag | undefined> {
    return (await this.tags(repository, tag, db))[0];
  }

  /** The live tags of a repository (or the one named), by name. */
  async tags(repository: string, only?: string, db: Queryable = this.db): Promise<CatalogTag[]> {
    const { rows } = await db.query<{ tag: string; digest: string; change_id: string }>(
      `SELECT tag, digest, change_id FROM catalog_tags
        WHERE repository = $1 AND NOT deleted AND ($2::text IS NULL OR tag = $2) ORDER BY tag`,
      [repository, only ?? null],
    );
    return rows.map((row) => ({ tag: row.tag, digest: row.digest, changeId: row.change_id }));
  }

  /** A live manifest of a repository. */
  async manifest(repository: string, digest: string, db: Queryable = this.db): Promise<CatalogManifest | undefined> {
    const { rows } = await db.query<{ digest: string; media_type: string | null; size: string | null; change_id: string }>(
      'SELECT digest, media_type, size, change_id FROM catalog_manifests WHERE repository = $1 AND digest = $2 AND NOT deleted',
      [repository, digest],
    );
    const row = rows[0];
    return row && { digest: row.digest, mediaType: row.media_type, size: row.size === null ? null : Number(row.size), changeId: row.change_id };
  }
}
