import { compareClocks as compareStamps, type ClockStamp } from '@meridian/proto/clock';
import type { Queryable } from './db.js';
import { readClock, type LocalClock } from './clock.js';
import type { RepositoryLookup } from './blobs.js';

export interface StoredManifest {
  id: number;
  digest: string;
  mediaType: string;
  size: number;
  payload: Buffer;
}

/** A manifest's bytes and what its row records of them. */
export interface ManifestContent {
  digest: string;
  mediaType: string;
  payload: Uint8Array;
  subjectDigest?: string;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export interface NewManifest extends ManifestContent {
  repositoryId: number;
  blobDigests: readonly string[];
  childDigests: readonly string[];
}

/**
 * A write made in this region (`local`: stamped past whatever the region held), or one replicated
 * from another region with its own clock (`replicated`: yields to a newer write or delete).
 */
export type WriteClock = { local: LocalClock } | { replicated: ClockStamp };

export interface ReferrerRow {
  digest: string;
  mediaType: string;
  size: number;
  artifactType: string | null;
  annotations: Record<string, string> | null;
}

export interface StoredRow {
  id: number;
  mediaType: string;
  /** The row's clock after the write: the newest put of the manifest the region has seen. */
  hlc: bigint;
}

/** `now`, or just past `held` (a decimal clock the row had) when that is not older. */
function nextHlcAfter(now: bigint, held: string | undefined): bigint {
  return held !== undefined && BigInt(held) >= now ? BigInt(held) + 1n : now;
}

interface ManifestRow {
  repository_id: number;
  id: number | null;
  digest: string | null;
  media_type: string | null;
  size: number | null;
  payload: Buffer | null;
}

export class ManifestStore {
  constructor(private readonly db: Queryable) {}

  /** One round trip for a pull by tag: the repository, the tag and its manifest. */
  async findByTag(repository: string, tag: string): Promise<RepositoryLookup<StoredManifest>> {
    const result = await this.db.query<ManifestRow>({
      name: 'manifest-find-by-tag',
      text: `SELECT r.id AS repository_id, m.id, m.digest, m.media_type, m.size, m.payload
             FROM repositories r
             LEFT JOIN tags t ON t.repository_id = r.id AND t.name = $2
             LEFT JOIN manifests m ON m.id = t.manifest_id
             WHERE r.name = $1`,
      values: [repository, tag],
    });
    return toLookup(result.rows[0]);
  }

  async findByDigest(repository: string, digest: string): Promise<RepositoryLookup<StoredManifest>> {
    const result = await this.db.query<ManifestRow>({
      name: 'manifest-find-by-digest',
      text: `SELECT r.id AS repository_id, m.id, m.digest, m.media_type, m.size, m.payload
             FROM repositories r
             LEFT JOIN manifests m ON m.repository_id = r.id AND m.digest = $2
             WHERE r.name = $1`,
      values: [repository, digest],
    });
    return toLookup(result.rows[0]);
  }

  /**
   * Stores a manifest replicated from another region, unless the region knows a newer delete of
   * it (then undefined). The same digest stored already keeps its row (its bytes are identical by
   * definition), its clock moved up to the write's; the caller compares the media type returned.
   * The row is left locked against deletion (FOR KEY SHARE, or the update's lock) until the
   * transaction ends, so a tag pointed at it in the same transaction cannot lose it to a
   * concurrent DELETE. A local push is one statement of its own (ManifestPushStore).
   */
  async applyInsert(manifest: NewManifest, clock: ClockStamp): Promise<StoredRow | undefined> {
    if (await this.hasTombstoneAsNew(manifest.repositoryId, manifest.digest, clock)) return undefined;
    for (let attempt = 0; ; attempt++) {
      const inserted = await this.db.query<{ id: number }>({
        name: 'manifest-insert',
        text: `INSERT INTO manifests (repository_id, digest, media_type, size, payload, subject_digest, artifact_type, annotations, hlc, origin)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
               ON CONFLICT (repository_id, digest) DO NOTHING
               RETURNING id`,
        values: [
          manifest.repositoryId,
          manifest.digest,
          manifest.mediaType,
          manifest.payload.byteLength,
          manifest.payload,
          manifest.subjectDigest ?? null,
          manifest.artifactType ?? null,
          manifest.annotations ? JSON.stringify(manifest.annotations) : null,
          clock.hlc.toString(),
          clock.origin,
        ],
      });
      const id = inserted.rows[0]?.id;
      if (id !== undefined) {
        await this.insertReferences(id, manifest);
        return { id, mediaType: manifest.mediaType, hlc: clock.hlc };
      }
      // The write is a put of the manifest at its clock, as in its origin (ManifestPushStore moves
      // the row of a manifest it tags there): a replicated delete older than it must leave the row.
      const existing = await this.db.query<{ id: number; media_type: string; hlc: string }>({
        name: 'manifest-raise-existing',
        text: `WITH held AS (
                 SELECT id, media_type, hlc, origin FROM manifests WHERE repository_id = $1 AND digest = $2 FOR KEY SHARE
               ),
               raised AS (
                 UPDATE manifests m SET hlc = $3::bigint, origin = $4 FROM held
                 WHERE m.id = held.id AND (held.hlc, held.origin) < ($3::bigint, $4::text COLLATE "C")
                 RETURNING m.hlc
               )
               SELECT id, media_type, COALESCE((SELECT hlc FROM raised), hlc)::text AS hlc FROM held`,
        values: [manifest.repositoryId, manifest.digest, clock.hlc.toString(), clock.origin],
      });
      const row = existing.rows[0];
      if (row) return { id: row.id, mediaType: row.media_type, hlc: BigInt(row.hlc) };
      // Deleted between the two statements: insert it afresh.
      if (attempt >= 2) throw new Error(`manifest ${manifest.digest} keeps vanishing while it is stored`);
    }
  }

  /**
   * Whether the region knows a delete of the digest at least as new as a replicated write's
   * clock: the write then yields, and so does the tag write it carries (see delete).
   */
  private async hasTombstoneAsNew(repositoryId: number, digest: string, stamp: ClockStamp): Promise<boolean> {
    const newer = await this.db.query({
      name: 'manifest-newer-tombstone',
      text: `SELECT 1 FROM manifest_tombstones WHERE repository_id = $1 AND digest = $2 AND (hlc, origin) >= ($3::bigint, $4::text COLLATE "C")`,
      values: [repositoryId, digest, stamp.hlc.toString(), stamp.origin],
    });
    return (newer.rowCount ?? 0) > 0;
  }

  private async insertReferences(id: number, manifest: NewManifest): Promise<void> {
    if (manifest.blobDigests.length > 0) {
      await this.db.query({
        name: 'manifest-blobs-insert',
        text: `INSERT INTO manifest_blobs (manifest_id, digest) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING`,
        values: [id, [...new Set(manifest.blobDigests)]],
      });
    }
    if (manifest.childDigests.length > 0) {
      await this.db.query({
        name: 'manifest-references-insert',
        text: `INSERT INTO manifest_references (manifest_id, child_digest) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING`,
        values: [id, [...new Set(manifest.childDigests)]],
      });
    }
  }

  /**
   * The sizes of those of `digests` that are manifests of the repository; a digest missing from
   * the map is not one. Those found stay locked against deletion (FOR KEY SHARE) until the
   * transaction ends: an index pushed with them must not be left pointing at a child deleted
   * meanwhile.
   */
  async sizesInRepository(repositoryId: number, digests: readonly string[]): Promise<Map<string, number>> {
    if (digests.length === 0) return new Map();
    const result = await this.db.query<{ digest: string; size: number }>({
      name: 'manifest-lock-present',
      text: `SELECT digest, size FROM manifests WHERE repository_id = $1 AND digest = ANY($2::text[]) FOR KEY SHARE`,
      values: [repositoryId, [...new Set(digests)]],
    });
    return new Map(result.rows.map((row) => [row.digest, row.size]));
  }

  /**
   * Deletes a manifest and the tags pointing at it. A local delete is refused while an index of
   * the repository still lists the manifest: then nothing changes and `referencedBy` names such
   * indexes. The row is locked first, so a push that is adding a tag or an index naming it
   * finishes before the checks look. A replicated delete older than the manifest's last put
   * leaves it (`deleted` false) and removes only the tags written before the delete; `tags`
   * names the tags removed either way. A replicated delete newer than that put deletes it even
   * if an index lists it: its origin had no such index when it deleted (it checked), so the index
   * came from another region concurrently, and every region that got the index after the delete
   * holds it listing a manifest it no longer has. Refusing here would leave this region, and only
   * it, holding the manifest and tag writes older than the delete, for as long as the index
   * lives; the clocks alone decide, in every order, as the control plane's catalog does.
   */
  async delete(
    repositoryId: number,
    digest: string,
    clock: WriteClock,
  ): Promise<{ deleted: boolean; tags: string[]; referencedBy: string[]; hlc?: bigint }> {
    const locked = await this.db.query<{ id: number; hlc: string; origin: string }>({
      name: 'manifest-lock-for-delete',
      text: 'SELECT id, hlc::text, origin FROM manifests WHERE repository_id = $1 AND digest = $2 FOR UPDATE',
      values: [repositoryId, digest],
    });
    const row = locked.rows[0];
    const stamp: ClockStamp =
      'local' in clock
        ? { hlc: nextHlcAfter(clock.local.now, row?.hlc), origin: clock.local.origin }
        : clock.replicated;
    if (row === undefined) {
      if ('replicated' in clock) await this.putTombstone(repositoryId, digest, stamp);
      return { deleted: false, tags: [], referencedBy: [] };
    }
    // A replicated delete older than the manifest's last put (every push of it, by tag too, moves
    // the row's clock) leaves the manifest, but still takes the tags written before it: in clock
    // order they went with the delete, and the newer put brought back only its own.
    if ('replicated' in clock && compareStamps({ hlc: BigInt(row.hlc), origin: row.origin }, stamp) >= 0) {
      await this.putTombstone(repositoryId, digest, stamp);
      return { deleted: false, tags: await this.takeTags(row.id, stamp), referencedBy: [] };
    }
    if ('local' in clock) {
      const referencedBy = await this.indexesListing(repositoryId, digest, 5);
      if (referencedBy.length > 0) return { deleted: false, tags: [], referencedBy };
    }
    const tags = await this.takeTags(row.id);
    await this.db.query({ name: 'manifest-delete', text: 'DELETE FROM manifests WHERE id = $1', values: [row.id] });
    await this.putTombstone(repositoryId, digest, stamp);
    return { deleted: true, tags, referencedBy: [], hlc: stamp.hlc };
  }

  /**
   * Removes the tags naming a manifest (only those written before `before`: a delete that leaves
   * the manifest to a newer put), each leaving a tombstone at its own write's clock. In clock
   * order that write overwrote every older write of the tag and then went with the delete, so an
   * older write of the tag (naming another manifest, still in flight) must not bring it back,
   * while a move of the tag newer than the write and older than the delete still wins, as it
   * would had it come first.
   */
  private async takeTags(manifestId: number, before?: ClockStamp): Promise<string[]> {
    const taken = await this.db.query<{ name: string }>({
      name: 'manifest-delete-tags',
      text: `WITH gone AS (
               DELETE FROM tags WHERE manifest_id = $1 AND ($2::bigint IS NULL OR (hlc, origin) < ($2::bigint, $3::text COLLATE "C"))
               RETURNING repository_id, name, hlc, origin
             ),
             buried AS (
               INSERT INTO tag_tombstones (repository_id, name, hlc, origin) SELECT repository_id, name, hlc, origin FROM gone
               ON CONFLICT (repository_id, name) DO UPDATE SET hlc = EXCLUDED.hlc, origin = EXCLUDED.origin, deleted_at = now()
                 WHERE (tag_tombstones.hlc, tag_tombstones.origin) < (EXCLUDED.hlc, EXCLUDED.origin)
             )
             SELECT name FROM gone`,
      values: [manifestId, before?.hlc.toString() ?? null, before?.origin ?? null],
    });
    return taken.rows.map((tag) => tag.name);
  }

  /** The clock of the write that stored a manifest of the repository, if it holds one. */
  async clockOf(repositoryId: number, digest: string): Promise<ClockStamp | undefined> {
    return readClock(this.db, 'manifest-clock', 'SELECT hlc::text, origin FROM manifests WHERE repository_id = $1 AND digest = $2', [repositoryId, digest]);
  }

  /**
   * The clock of the newest delete of a manifest of the repository the region knows, kept even
   * while a newer put holds the manifest: a tag write older than that delete stays refused.
   */
  async tombstoneOf(repositoryId: number, digest: string): Promise<ClockStamp | undefined> {
    return readClock(this.db, 'manifest-tombstone-clock', 'SELECT hlc::text, origin FROM manifest_tombstones WHERE repository_id = $1 AND digest = $2', [repositoryId, digest]);
  }

  /**
   * Keeps the newest delete of a digest, whether or not a newer put holds the manifest. A put
   * newer than the delete brings the manifest back but not the tag writes older than the delete
   * (they went with it in clock order), and those may still arrive after the put: only the
   * delete's clock, kept, refuses them in every order.
   */
  private async putTombstone(repositoryId: number, digest: string, stamp: ClockStamp): Promise<void> {
    await this.db.query({
      name: 'manifest-tombstone',
      text: `INSERT INTO manifest_tombstones (repository_id, digest, hlc, origin) VALUES ($1, $2, $3::bigint, $4)
             ON CONFLICT (repository_id, digest) DO UPDATE SET hlc = EXCLUDED.hlc, origin = EXCLUDED.origin, deleted_at = now()
               WHERE (manifest_tombstones.hlc, manifest_tombstones.origin) < (EXCLUDED.hlc, EXCLUDED.origin)`,
      values: [repositoryId, digest, stamp.hlc.toString(), stamp.origin],
    });
  }

  /** Digests of up to `limit` indexes of the repository that list `childDigest`. */
  async indexesListing(repositoryId: number, childDigest: string, limit: number): Promise<string[]> {
    const result = await this.db.query<{ digest: string }>({
      name: 'manifest-indexes-listing',
      text: `SELECT m.digest FROM manifest_references r JOIN manifests m ON m.id = r.manifest_id
             WHERE r.child_digest = $2 AND m.repository_id = $1
             ORDER BY m.digest LIMIT $3`,
      values: [repositoryId, childDigest, limit],
    });
    return result.rows.map((row) => row.digest);
  }

  /**
   * Manifests of the repository whose `subject` is `subjectDigest`, optionally of one
   * artifactType, in digest order after `after`, at most `limit`.
   */
  async referrers(repositoryId: number, subjectDigest: string, options: { artifactType?: string; limit: number; after?: string }): Promise<ReferrerRow[]> {
    const result = await this.db.query<{ digest: string; media_type: string; size: number; artifact_type: string | null; annotations: Record<string, string> | null }>({
      name: 'manifest-referrers',
      text: `SELECT digest, media_type, size, artifact_type, annotations FROM manifests
             WHERE repository_id = $1 AND subject_digest = $2 AND ($3::text IS NULL OR artifact_type = $3)
               AND ($5::text IS NULL OR digest > $5)
             ORDER BY digest
             LIMIT $4`,
      values: [repositoryId, subjectDigest, options.artifactType ?? null, options.limit, options.after ?? null],
    });
    return result.rows.map((row) => ({
      digest: row.digest,
      mediaType: row.media_type,
      size: row.size,
      artifactType: row.artifact_type,
      annotations: row.annotations,
    }));
  }
}

function toLookup(row: ManifestRow | undefined): RepositoryLookup<StoredManifest> {
  if (!row) return {};
  if (row.id === null) return { repositoryId: row.repository_id };
  return {
    repositoryId: row.repository_id,
    found: { id: row.id, digest: row.digest!, mediaType: row.media_type!, size: row.size!, payload: row.payload! },
  };
}
