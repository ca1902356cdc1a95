import type { Queryable } from './db.js';
import { traceJson } from './outbox.js';
import type { TraceContextSource } from './metadata.js';

/** What a lookup found: `repositoryId` undefined means the repository itself is unknown. */
export interface RepositoryLookup<T> {
  repositoryId?: number;
  found?: T;
}

/**
 * Whether the region's store holds a blob's bytes ('present'), or the region should hold the
 * blob but does not now ('pending': its bytes were found lost, or are still being copied in
 * from another region). Only a present blob is served; see the blob-state migration.
 */
export type BlobState = 'present' | 'pending';

/**
 * The part of a statement that links a verified blob made in this region into the repository
 * that a CTE `repository` (its `id`) names, if any: the blob is recorded present (a pending one
 * is present again), linked, and the link appended to the outbox, so that it replicates if and
 * only if it commits. `recorded` has a row when the link was appended. Parameters $1 to $5 are
 * `localLinkValues`.
 *
 * It wakes no one (no NOTIFY on the outbox's channel): a NOTIFY takes a lock that Postgres holds
 * across the commit's WAL flush, one committing transaction at a time in the whole server, so a
 * NOTIFY on every blob made the region's blob commits flush one by one (no group commit) and woke
 * every listening connection four times per small image; it was a quarter of Postgres's CPU per
 * small image push. A blob is linked to be named by a manifest, and the push of that manifest
 * wakes the relay (ManifestPushStore), which then takes every change committed before it, blob
 * links included; a link that no manifest follows waits for the relay's poll.
 */
export const LOCAL_LINK = `blob AS (
    INSERT INTO blobs (digest, size) SELECT $2, $3 FROM repository
    ON CONFLICT (digest) DO UPDATE SET state = 'present' WHERE blobs.state <> 'present'
  ),
  linked AS (
    INSERT INTO repository_blobs (repository_id, digest, size) SELECT id, $2, $3 FROM repository
    ON CONFLICT (repository_id, digest) DO NOTHING
  ),
  recorded AS (
    INSERT INTO outbox (hlc, body, trace)
    SELECT $4::bigint, jsonb_build_object('kind', 'blob.link', 'repository', $1::text, 'digest', $2::text, 'size', $3::bigint), $5::jsonb
    FROM repository
    RETURNING 1
  )`;

export function localLinkValues(repository: string, digest: string, size: number, hlc: bigint, traceContext: TraceContextSource): unknown[] {
  return [repository, digest, size, hlc.toString(), traceJson(traceContext())];
}

export class BlobMetadataStore {
  constructor(
    private readonly db: Queryable,
    /** The trace context of the write under way, stored with the outbox row of a local link. */
    private readonly traceContext: TraceContextSource = () => undefined,
  ) {}

  /**
   * One round trip for the pull path: does the repository exist, does it link this blob, and
   * in what state the region holds the blob.
   */
  async findInRepository(repository: string, digest: string): Promise<RepositoryLookup<{ size: number; state: BlobState }>> {
    const result = await this.db.query<{ repository_id: number; size: number | null; state: BlobState | null }>({
      name: 'blob-find-in-repository',
      text: `SELECT r.id AS repository_id, rb.size, b.state
             FROM repositories r
             LEFT JOIN repository_blobs rb ON rb.repository_id = r.id AND rb.digest = $2
             LEFT JOIN blobs b ON b.digest = rb.digest
             WHERE r.name = $1`,
      values: [repository, digest],
    });
    const row = result.rows[0];
    if (!row) return {};
    if (row.size === null) return { repositoryId: row.repository_id };
    return { repositoryId: row.repository_id, found: { size: row.size, state: row.state ?? 'pending' } };
  }

  /** The state the region records for a blob's bytes, or undefined when it has no record of them. */
  async stateOf(digest: string): Promise<BlobState | undefined> {
    const result = await this.db.query<{ state: BlobState }>({ name: 'blob-state-of', text: 'SELECT state FROM blobs WHERE digest = $1', values: [digest] });
    return result.rows[0]?.state;
  }

  /**
   * Size of a present blob some repository of the region still links (for a mount without
   * `from`). A blob unlinked everywhere is not found, even while its bytes await garbage
   * collection; nor is a pending one.
   */
  async findLinkedAnywhere(digest: string): Promise<{ size: number } | undefined> {
    const result = await this.db.query<{ size: number }>({
      name: 'blob-find-linked-anywhere',
      text: `SELECT b.size FROM blobs b
             WHERE b.digest = $1 AND b.state = 'present' AND EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = $1)`,
      values: [digest],
    });
    return result.rows[0];
  }

  /**
   * Records a blob whose verified bytes the store holds, as present (a pending one too: its
   * bytes are back), and links it into the repository; idempotent. For links applied from
   * another region, which are not appended to the outbox again (see `linkLocal`).
   */
  async link(repositoryId: number, digest: string, size: number): Promise<void> {
    await this.db.query({
      name: 'blob-link',
      text: `WITH blob AS (
               INSERT INTO blobs (digest, size) VALUES ($2, $3)
               ON CONFLICT (digest) DO UPDATE SET state = 'present' WHERE blobs.state <> 'present'
             )
             INSERT INTO repository_blobs (repository_id, digest, size) VALUES ($1, $2, $3)
             ON CONFLICT (repository_id, digest) DO NOTHING`,
      values: [repositoryId, digest, size],
    });
  }

  /**
   * `link` for a link made in this region, naming the repository: the link is appended to the
   * outbox in the same statement, so it replicates if and only if it commits. One round trip
   * when the repository exists (the common case); returns false, changing nothing, when it does
   * not, for the caller to create it and call again.
   */
  async linkLocal(repository: string, digest: string, size: number, hlc: bigint): Promise<boolean> {
    const result = await this.db.query({
      name: 'blob-link-local',
      text: `WITH repository AS (SELECT id FROM repositories WHERE name = $1), ${LOCAL_LINK} SELECT 1 FROM recorded`,
      values: localLinkValues(repository, digest, size, hlc, this.traceContext),
    });
    return (result.rowCount ?? 0) > 0;
  }

  /**
   * Links a blob the region does not hold into the repository, recording it pending (a blob
   * already recorded keeps its state): a manifest pushed here names a blob that another region
   * holds for the repository, and its bytes come later, by read-through or replication.
   * Idempotent; not appended to the outbox, since the region that holds the bytes recorded the
   * blob's own link.
   */
  async linkPending(repositoryId: number, digest: string, size: number): Promise<void> {
    await this.db.query({
      name: 'blob-link-pending',
      text: `WITH blob AS (
               INSERT INTO blobs (digest, size, state) VALUES ($2, $3, 'pending') ON CONFLICT (digest) DO NOTHING
             )
             INSERT INTO repository_blobs (repository_id, digest, size) VALUES ($1, $2, $3)
             ON CONFLICT (repository_id, digest) DO NOTHING`,
      values: [repositoryId, digest, size],
    });
  }

  /**
   * Records that the store no longer holds the bytes of those of `digests` that are present:
   * they turn pending, their links kept. Returns, for each blob that turned pending here, the
   * repositories that link it (whose cached lookups must go). A blob not present (pending
   * already, or unknown) is left out, so that of several requests finding the same loss,
   * exactly one hears of it. One statement however many digests.
   */
  async markPending(digests: readonly string[]): Promise<Map<string, string[]>> {
    const lost = new Map<string, string[]>();
    if (digests.length === 0) return lost;
    const result = await this.db.query<{ digest: string; name: string | null }>({
      name: 'blob-mark-pending',
      text: `WITH lost AS (
               UPDATE blobs SET state = 'pending' WHERE digest = ANY($1::text[]) AND state = 'present' RETURNING digest
             )
             SELECT lost.digest, r.name FROM lost
             LEFT JOIN repository_blobs rb ON rb.digest = lost.digest
             LEFT JOIN repositories r ON r.id = rb.repository_id`,
      values: [[...new Set(digests)]],
    });
    for (const row of result.rows) {
      const repositories = lost.get(row.digest) ?? [];
      if (row.name !== null) repositories.push(row.name);
      lost.set(row.digest, repositories);
    }
    return lost;
  }

  /**
   * Records that the store holds a pending blob's verified bytes again: it turns present.
   * Returns whether it was pending.
   */
  async markPresent(digest: string): Promise<boolean> {
    const result = await this.db.query({
      name: 'blob-mark-present',
      text: `UPDATE blobs SET state = 'present' WHERE digest = $1 AND state = 'pending'`,
      values: [digest],
    });
    return (result.rowCount ?? 0) > 0;
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
   * not servable here: not linked, or pending (one indexed query, however many).
   */
  async sizesInRepository(repositoryId: number, digests: readonly string[]): Promise<Map<string, number>> {
    if (digests.length === 0) return new Map();
    const result = await this.db.query<{ digest: string; size: string }>({
      name: 'blob-sizes-in-repository',
      text: `SELECT rb.digest, rb.size FROM repository_blobs rb
             JOIN blobs b ON b.digest = rb.digest AND b.state = 'present'
             WHERE rb.repository_id = $1 AND rb.digest = ANY($2::text[])`,
      values: [repositoryId, [...new Set(digests)]],
    });
    return new Map(result.rows.map((row) => [row.digest, Number(row.size)]));
  }

  /** Bytes of the blobs the region holds (present ones), each counted once however many repositories link it. */
  async storedBytes(): Promise<number> {
    const result = await this.db.query<{ bytes: number }>({
      name: 'blob-stored-bytes',
      text: "SELECT coalesce(sum(size), 0)::bigint AS bytes FROM blobs WHERE state = 'present'",
    });
    return result.rows[0]?.bytes ?? 0;
  }

  /**
   * Every blob whose bytes the region holds, with its size: what an edge region chooses among
   * when it evicts (its store is bounded by its cache size, so the list is too).
   */
  async presentBlobs(): Promise<Array<{ digest: string; size: number }>> {
    const result = await this.db.query<{ digest: string; size: string }>({
      name: 'blob-present-all',
      text: "SELECT digest, size FROM blobs WHERE state = 'present'",
    });
    return result.rows.map((row) => ({ digest: row.digest, size: Number(row.size) }));
  }
}
