import type { Queryable } from './db.js';

export interface InventoryManifestRow {
  repository: string;
  digest: string;
  mediaType: string;
  size: number;
  hlc: string;
  origin: string;
}

export interface InventoryTagRow {
  repository: string;
  tag: string;
  digest: string;
  hlc: string;
  origin: string;
}

export interface InventoryBlobRow {
  repository: string;
  digest: string;
  size: number;
  /** What the metadata records of the bytes: 'pending' when the region should hold them but lacks them. */
  state: 'present' | 'pending';
}

/** Where a page of one kind of inventory starts: after this (repository, name) pair. */
export type InventoryCursor = readonly [repository: string, name: string];

/**
 * What the region holds, in pages of one kind at a time, each in (repository, name) order so a
 * cursor resumes it exactly: for backfill of a new region and for reconciliation.
 */
export class InventoryStore {
  constructor(private readonly db: Queryable) {}

  async manifests(limit: number, after?: InventoryCursor): Promise<InventoryManifestRow[]> {
    const result = await this.db.query<{ repository: string; digest: string; media_type: string; size: number; hlc: string; origin: string }>({
      name: 'inventory-manifests',
      text: `SELECT r.name AS repository, m.digest, m.media_type, m.size, m.hlc::text, m.origin
             FROM manifests m JOIN repositories r ON r.id = m.repository_id
             WHERE ($2::text IS NULL OR (r.name, m.digest) > ($2::text COLLATE "C", $3::text COLLATE "C"))
             ORDER BY r.name, m.digest COLLATE "C" LIMIT $1`,
      values: [limit, after?.[0] ?? null, after?.[1] ?? null],
    });
    return result.rows.map((row) => ({ repository: row.repository, digest: row.digest, mediaType: row.media_type, size: row.size, hlc: row.hlc, origin: row.origin }));
  }

  async tags(limit: number, after?: InventoryCursor): Promise<InventoryTagRow[]> {
    const result = await this.db.query<InventoryTagRow>({
      name: 'inventory-tags',
      text: `SELECT r.name AS repository, t.name AS tag, m.digest, t.hlc::text AS hlc, t.origin
             FROM tags t JOIN repositories r ON r.id = t.repository_id JOIN manifests m ON m.id = t.manifest_id
             WHERE ($2::text IS NULL OR (r.name, t.name) > ($2::text COLLATE "C", $3::text COLLATE "C"))
             ORDER BY r.name, t.name LIMIT $1`,
      values: [limit, after?.[0] ?? null, after?.[1] ?? null],
    });
    return result.rows;
  }

  async blobs(limit: number, after?: InventoryCursor): Promise<InventoryBlobRow[]> {
    const result = await this.db.query<InventoryBlobRow>({
      name: 'inventory-blobs',
      text: `SELECT r.name AS repository, rb.digest, rb.size, coalesce(b.state, 'pending') AS state
             FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id LEFT JOIN blobs b ON b.digest = rb.digest
             WHERE ($2::text IS NULL OR (r.name, rb.digest) > ($2::text COLLATE "C", $3::text COLLATE "C"))
             ORDER BY r.name, rb.digest COLLATE "C" LIMIT $1`,
      values: [limit, after?.[0] ?? null, after?.[1] ?? null],
    });
    return result.rows;
  }
}
