import type { Queryable } from './db.js';

/**
 * The advisory lock a replicated write holds shared, and a purge exclusive while it closes the
 * fence: closing waits for the writes already under way, and every write after it sees the fence.
 */
const FENCE_LOCK_KEY = 0x6d6572666e; // "merfn"

/**
 * Whether the region takes replicated writes (table replication_fence). A purge closes the fence
 * before it deletes anything; it stays closed after the purge, whose control plane may still have
 * a worker applying a job to the region, until the region is registered in the cluster again.
 */
export class ReplicationFenceStore {
  constructor(private readonly db: Queryable) {}

  /**
   * Closes the fence (kept as it is if closed already). Inside a transaction: it waits for every
   * replicated write holding the fence open (isClosed) to end, and those after it see it closed.
   */
  async close(): Promise<void> {
    await this.db.query({ name: 'fence-lock', text: 'SELECT pg_advisory_xact_lock($1)', values: [FENCE_LOCK_KEY] });
    await this.db.query({ name: 'fence-close', text: 'INSERT INTO replication_fence DEFAULT VALUES ON CONFLICT DO NOTHING' });
  }

  /**
   * Whether the fence is closed. Inside a replicated write's transaction, called before it writes:
   * the fence cannot close until that transaction ends, so a write that found it open commits
   * before the purge's first step looks, and that step or a later one deletes it.
   */
  async isClosed(): Promise<boolean> {
    await this.db.query({ name: 'fence-hold', text: 'SELECT pg_advisory_xact_lock_shared($1)', values: [FENCE_LOCK_KEY] });
    // A statement of its own: one statement reads the snapshot taken as it began, before a wait
    // for the lock, and would miss a fence closed while it waited.
    const result = await this.db.query<{ closed: boolean }>({ name: 'fence-is-closed', text: 'SELECT EXISTS (SELECT 1 FROM replication_fence) AS closed' });
    return result.rows[0]!.closed;
  }

  /**
   * When the fence was closed (Postgres's text of the time, exact to the microsecond, which a JS
   * Date is not), or undefined while it is open.
   */
  async closedSince(): Promise<string | undefined> {
    const result = await this.db.query<{ since: string }>({ name: 'fence-since', text: 'SELECT since::text FROM replication_fence' });
    return result.rows[0]?.since;
  }

  /**
   * Opens the fence closed at `since` (read before the caller learnt the region is registered
   * again); a fence closed again since then stays. Returns whether it opened.
   */
  async open(since: string): Promise<boolean> {
    const result = await this.db.query({ name: 'fence-open', text: 'DELETE FROM replication_fence WHERE since = $1::timestamptz', values: [since] });
    return (result.rowCount ?? 0) > 0;
  }
}
