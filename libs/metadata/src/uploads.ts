import type { Queryable } from './db.js';
import { LOCAL_LINK, localLinkValues } from './blobs.js';
import type { TraceContextSource } from './metadata.js';

/** How a closing PUT's statement ended (see `completeAsBlob`). */
export type UploadCompletion = 'linked' | 'not-open' | 'repository-unknown';

/**
 * The upload sessions that have ended. An open session has no row: it is its signed state (in
 * the client's upload URL) and, once it has had a chunk, its bytes in the blob store. Ending it,
 * whichever way, records its id here, once: a second ending finds the record and changes
 * nothing, and a request on an ended session is refused on the strength of it.
 */
export class UploadStore {
  constructor(
    private readonly db: Queryable,
    /** The trace context of the write under way, stored with the outbox row of a completed upload. */
    private readonly traceContext: TraceContextSource = () => undefined,
  ) {}

  /**
   * Closes a session as the blob it became, in one statement (so one transaction and one WAL
   * flush): records the session closed and, only if it was open, links the blob into the
   * repository as `BlobMetadataStore.linkLocal` does. 'not-open' (nothing changed) for a
   * session already ended; 'repository-unknown' (nothing changed either, the session still
   * open) for a repository that has no row yet, the first blob of its first push: the caller
   * makes the repository and runs this again, so the close is never apart from the link.
   */
  async completeAsBlob(id: string, repository: string, digest: string, size: number, hlc: bigint): Promise<UploadCompletion> {
    const result = await this.db.query<{ known: boolean; closed: boolean }>({
      name: 'upload-complete-as-blob',
      text: `WITH named AS (SELECT id FROM repositories WHERE name = $1),
                  closing AS (INSERT INTO closed_uploads (id) SELECT $6 FROM named ON CONFLICT (id) DO NOTHING RETURNING id),
                  repository AS (SELECT named.id FROM named, closing),
                  ${LOCAL_LINK}
             SELECT EXISTS (SELECT 1 FROM named) AS known, EXISTS (SELECT 1 FROM recorded) AS closed`,
      values: [...localLinkValues(repository, digest, size, hlc, this.traceContext), id],
    });
    const row = result.rows[0]!;
    if (!row.known) return 'repository-unknown';
    return row.closed ? 'linked' : 'not-open';
  }

  /** Records the session ended (a cancel, a wrong digest); returns whether it was open until now. */
  async close(id: string): Promise<boolean> {
    const result = await this.db.query({
      name: 'upload-close',
      text: 'INSERT INTO closed_uploads (id) VALUES ($1) ON CONFLICT (id) DO NOTHING',
      values: [id],
    });
    return (result.rowCount ?? 0) > 0;
  }

  /**
   * Records sessions ended that nothing else ended (the purge of abandoned sessions' bytes);
   * returns how many were open until now.
   */
  async closeAll(ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    const result = await this.db.query({
      name: 'upload-close-all',
      text: 'INSERT INTO closed_uploads (id) SELECT unnest($1::uuid[]) ON CONFLICT (id) DO NOTHING',
      values: [ids],
    });
    return result.rowCount ?? 0;
  }

  /** Whether the session has ended (closed as a blob, cancelled, or ended by a wrong digest). */
  async isClosed(id: string): Promise<boolean> {
    const result = await this.db.query({ name: 'upload-is-closed', text: 'SELECT 1 FROM closed_uploads WHERE id = $1', values: [id] });
    return (result.rowCount ?? 0) > 0;
  }

  /**
   * Forgets sessions that ended before `cutoff`, `batch` rows per statement so that a long
   * backlog never holds one long transaction; returns how many went.
   */
  async forgetClosedBefore(cutoff: Date, batch = 10_000): Promise<number> {
    let forgotten = 0;
    for (;;) {
      const result = await this.db.query({
        name: 'upload-forget-closed',
        text: 'DELETE FROM closed_uploads WHERE id IN (SELECT id FROM closed_uploads WHERE closed_at < $1 LIMIT $2)',
        values: [cutoff, batch],
      });
      forgotten += result.rowCount ?? 0;
      if ((result.rowCount ?? 0) < batch) return forgotten;
    }
  }
}
