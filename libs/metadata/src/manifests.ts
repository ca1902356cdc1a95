import type { Queryable } from './db.js';
import type { RepositoryLookup } from './blobs.js';

export interface StoredManifest {
  id: number;
  digest: string;
  mediaType: string;
  size: number;
  payload: Buffer;
}

export interface NewManifest {
  repositoryId: number;
  digest: string;
  mediaType: string;
  payload: Uint8Array;
  subjectDigest?: string;
  artifactType?: string;
  annotations?: Record<string, string>;
  blobDigests: readonly string[];
  childDigests: readonly string[];
}

export interface ReferrerRow {
  digest: string;
  mediaType: string;
  size: number;
  artifactType: string | null;
  annotations: Record<string, string> | null;
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
   * Stores a verified manifest and its references. The same digest pushed again keeps the first
   * row (its bytes are identical by definition); the caller compares the media type returned.
   * The row is left locked against deletion (FOR KEY SHARE) until the transaction ends, so a
   * tag pointed at it in the same transaction cannot lose it to a concurrent DELETE.
   */
  async insert(manifest: NewManifest): Promise<{ id: number; mediaType: string }> {
    for (let attempt = 0; ; attempt++) {
      const inserted = await this.db.query<{ id: number }>({
        name: 'manifest-insert',
        text: `INSERT INTO manifests (repository_id, digest, media_type, size, payload, subject_digest, artifact_type, annotations)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
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
        ],
      });
      const id = inserted.rows[0]?.id;
      if (id !== undefined) {
        await this.insertReferences(id, manifest);
        return { id, mediaType: manifest.mediaType };
      }
      const existing = await this.db.query<{ id: number; media_type: string }>({
        name: 'manifest-lock-existing',
        text: 'SELECT id, media_type FROM manifests WHERE repository_id = $1 AND digest = $2 FOR KEY SHARE',
        values: [manifest.repositoryId, manifest.digest],
      });
      const row = existing.rows[0];
      if (row) return { id: row.id, mediaType: row.media_type };
      // Deleted between the two statements: insert it afresh.
      if (attempt >= 2) throw new Error(`manifest ${manifest.digest} keeps vanishing while it is stored`);
    }
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
   * Deletes a manifest and the tags pointing at it, unless an index of the repository still
   * lists it: then nothing changes and `referencedBy` names such indexes. The row is locked first,
   * so a push that is adding a tag or an index naming it finishes before the checks look.
   */
  async delete(repositoryId: number, digest: string): Promise<{ deleted: boolean; tags: string[]; referencedBy: string[] }> {
    const locked = await this.db.query<{ id: number }>({
      name: 'manifest-lock-for-delete',
      text: 'SELECT id FROM manifests WHERE repository_id = $1 AND digest = $2 FOR UPDATE',
      values: [repositoryId, digest],
    });
    const id = locked.rows[0]?.id;
    if (id === undefined) return { deleted: false, tags: [], referencedBy: [] };
    const referencedBy = await this.indexesListing(repositoryId, digest, 5);
    if (referencedBy.length > 0) return { deleted: false, tags: [], referencedBy };
    const tags = await this.db.query<{ name: string }>({
      name: 'manifest-delete-tags',
      text: 'DELETE FROM tags WHERE manifest_id = $1 RETURNING name',
      values: [id],
    });
    await this.db.query({ name: 'manifest-delete', text: 'DELETE FROM manifests WHERE id = $1', values: [id] });
    return { deleted: true, tags: tags.rows.map((row) => row.name), referencedBy: [] };
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
