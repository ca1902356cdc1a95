import type { Queryable } from '../store/db.js';

/** One catalog row as reconciliation compares it: live or deleted, and how recent its change is. */
export interface CatalogEntry {
  repository: string;
  /** The manifest's or blob's digest, or the tag's name. */
  name: string;
  /** For a tag: the digest it names. */
  digest?: string;
  deleted: boolean;
  hlc: bigint;
  origin: string;
  changeId: string;
  /** The kind of that change (`manifest.put`, `tag.delete`, ...). */
  changeKind: string;
  /** Stored less than the settling time ago: it may still be on its way to the region. */
  young: boolean;
}

export interface CatalogSnapshot {
  manifests: CatalogEntry[];
  tags: CatalogEntry[];
  blobs: CatalogEntry[];
}

/** Reconciliation's reads of the catalog and its one write: replications made pending again. */
export class ReconcileStore {
  constructor(private readonly db: Queryable) {}

  /** Every catalog row (tombstones too), each flagged young when its change came within `settleMs`. */
  async snapshot(settleMs: number): Promise<CatalogSnapshot> {
    const read = async (table: string, name: string, digest: string | null): Promise<CatalogEntry[]> => {
      const { rows } = await this.db.query<{ repository: string; name: string; digest: string | null; deleted: boolean; hlc: string; origin: string; change_id: string; kind: string; young: boolean }>(
        `SELECT k.repository, k.${name} AS name, ${digest ? `k.${digest}` : 'NULL'} AS digest, k.deleted, k.hlc::text AS hlc, k.origin, k.change_id::text AS change_id, c.kind,
                c.received_at > now() - make_interval(secs => $1) AS young
           FROM ${table} k JOIN changes c ON c.id = k.change_id`,
        [settleMs / 1000],
      );
      return rows.map((row) => ({
        repository: row.repository,
        name: row.name,
        ...(row.digest !== null ? { digest: row.digest } : {}),
        deleted: row.deleted,
        hlc: BigInt(row.hlc),
        origin: row.origin,
        changeId: row.change_id,
        changeKind: row.kind,
        young: row.young,
      }));
    };
    return {
      manifests: await read('catalog_manifests', 'digest', null),
      tags: await read('catalog_tags', 'tag', 'digest'),
      blobs: await read('catalog_blobs', 'digest', null),
    };
  }

  /**
   * Makes the replication of each change to `region` pending again (a row made if there was
   * none), so the requeue hands it to the worker: the region lacks what the change wrote, or
   * holds what the change (a delete) removed.
   */
  async repair(region: string, changeIds: readonly string[]): Promise<number> {
    if (changeIds.length === 0) return 0;
    const result = await this.db.query(
      `INSERT INTO replications (change_id, region)
       SELECT id, $2 FROM unnest($1::bigint[]) AS id
       ON CONFLICT (change_id, region) DO UPDATE SET state = 'pending', attempts = 0, last_error = NULL,
         updated_at = now(), done_at = NULL`,
      [changeIds, region],
    );
    return result.rowCount ?? 0;
  }
}
