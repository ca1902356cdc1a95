import type { ClockStamp } from '@meridian/proto/clock';
import type { Queryable } from './db.js';
import { readClock, type LocalClock } from './clock.js';

export class TagStore {
  constructor(private readonly db: Queryable) {}

  /**
   * Deletes a tag made anywhere (a write made in this region), leaving a tombstone whose clock is
   * past the tag's. Returns the delete's clock, or undefined when there was no such tag.
   */
  async delete(repositoryId: number, name: string, clock: LocalClock): Promise<bigint | undefined> {
    const result = await this.db.query<{ hlc: string }>({
      name: 'tag-delete',
      text: `WITH gone AS (
               DELETE FROM tags WHERE repository_id = $1 AND name = $2 RETURNING hlc
             )
             INSERT INTO tag_tombstones (repository_id, name, hlc, origin)
             SELECT $1, $2, GREATEST($3::bigint, gone.hlc + 1), $4 FROM gone
             ON CONFLICT (repository_id, name) DO UPDATE SET hlc = GREATEST(EXCLUDED.hlc, tag_tombstones.hlc + 1), origin = EXCLUDED.origin, deleted_at = now()
             RETURNING hlc::text`,
      values: [repositoryId, name, clock.now.toString(), clock.origin],
    });
    const hlc = result.rows[0]?.hlc;
    return hlc === undefined ? undefined : BigInt(hlc);
  }

  /**
   * A tag write replicated from another region: applied only if its clock is newer than both the
   * tag the region holds and any tombstone of it (last writer wins). Returns whether it applied.
   * The caller holds the tag's apply lock (`MetadataTransaction.lockName`), so the checks and the
   * write are one against other replicated writes; a local DELETE that commits meanwhile is
   * checked for after the write, and its newer tombstone undoes it.
   *
   * `manifestId` is undefined when a newer delete of the manifest refused the write that carries
   * the tag (ManifestStore.applyInsert). The tag write still counts, as a delete of the tag at its
   * own clock: in clock order it overwrote the tag and then went with the manifest's delete, so an
   * older write of the tag, held here or still in flight, must not outlive it. Where the write
   * came before the delete, ManifestStore.delete leaves that same tombstone.
   */
  async applyPut(repositoryId: number, name: string, manifestId: number | undefined, clock: ClockStamp): Promise<boolean> {
    if (manifestId === undefined) {
      await this.applyDelete(repositoryId, name, clock);
      return false;
    }
    const result = await this.db.query({
      name: 'tag-apply-put',
      text: `INSERT INTO tags (repository_id, name, manifest_id, hlc, origin)
             SELECT $1, $2, $3, $4::bigint, $5
             WHERE NOT EXISTS (
               SELECT 1 FROM tag_tombstones WHERE repository_id = $1 AND name = $2 AND (hlc, origin) >= ($4::bigint, $5::text COLLATE "C")
             )
             ON CONFLICT (repository_id, name) DO UPDATE
               SET manifest_id = EXCLUDED.manifest_id, hlc = EXCLUDED.hlc, origin = EXCLUDED.origin, updated_at = now()
               WHERE (tags.hlc, tags.origin) < (EXCLUDED.hlc, EXCLUDED.origin)
             RETURNING 1`,
      values: [repositoryId, name, manifestId, clock.hlc.toString(), clock.origin],
    });
    if ((result.rowCount ?? 0) === 0) return false;
    // A local DELETE of the tag (TagStore.delete takes no apply lock) that committed while the
    // insert waited on its row left a tombstone the insert's snapshot did not hold. This statement
    // sees it: a newer one stays and the write is undone; only an older one is cleared.
    const settled = await this.db.query<{ lost: boolean }>({
      name: 'tag-apply-put-settle-tombstone',
      text: `WITH newer AS (
               SELECT 1 FROM tag_tombstones WHERE repository_id = $1 AND name = $2 AND (hlc, origin) >= ($3::bigint, $4::text COLLATE "C")
             ),
             cleared AS (
               DELETE FROM tag_tombstones WHERE repository_id = $1 AND name = $2 AND (hlc, origin) < ($3::bigint, $4::text COLLATE "C")
             ),
             undone AS (
               DELETE FROM tags WHERE repository_id = $1 AND name = $2 AND hlc = $3::bigint AND origin = $4 AND EXISTS (SELECT 1 FROM newer)
             )
             SELECT EXISTS (SELECT 1 FROM newer) AS lost`,
      values: [repositoryId, name, clock.hlc.toString(), clock.origin],
    });
    return !settled.rows[0]!.lost;
  }

  /**
   * A tag delete replicated from another region: removes the tag if the delete is newer than it,
   * and keeps the newest tombstone. Returns whether the tag was removed.
   */
  async applyDelete(repositoryId: number, name: string, clock: ClockStamp): Promise<boolean> {
    const removed = await this.db.query({
      name: 'tag-apply-delete',
      text: `DELETE FROM tags WHERE repository_id = $1 AND name = $2 AND (hlc, origin) < ($3::bigint, $4::text COLLATE "C")`,
      values: [repositoryId, name, clock.hlc.toString(), clock.origin],
    });
    await this.db.query({
      name: 'tag-apply-tombstone',
      text: `INSERT INTO tag_tombstones (repository_id, name, hlc, origin)
             SELECT $1, $2, $3::bigint, $4
             WHERE NOT EXISTS (SELECT 1 FROM tags WHERE repository_id = $1 AND name = $2)
             ON CONFLICT (repository_id, name) DO UPDATE SET hlc = EXCLUDED.hlc, origin = EXCLUDED.origin, deleted_at = now()
               WHERE (tag_tombstones.hlc, tag_tombstones.origin) < (EXCLUDED.hlc, EXCLUDED.origin)`,
      values: [repositoryId, name, clock.hlc.toString(), clock.origin],
    });
    return (removed.rowCount ?? 0) > 0;
  }

  /** The clock of the tag's current write, if the region holds the tag. */
  async clockOf(repositoryId: number, name: string): Promise<ClockStamp | undefined> {
    return readClock(this.db, 'tag-clock', 'SELECT hlc::text, origin FROM tags WHERE repository_id = $1 AND name = $2', [repositoryId, name]);
  }

  /** The clock of the delete that removed the tag, if the region removed it and holds no newer write. */
  async tombstoneOf(repositoryId: number, name: string): Promise<ClockStamp | undefined> {
    return readClock(this.db, 'tag-tombstone-clock', 'SELECT hlc::text, origin FROM tag_tombstones WHERE repository_id = $1 AND name = $2', [repositoryId, name]);
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
