import type pg from 'pg';
import { withTransaction } from './db.js';

/** Every batch of every process pruning an audit log takes this lock: one batch at a time, so processes sharing a log do not delete the same rows side by side. */
const PRUNE_LOCK_KEY = 0x61756469; // "audi"

export interface AuditRetentionOptions {
  /** The database that holds the log: a region's, or the control plane's. */
  pool: pg.Pool;
  /** Entries older than this many days go; 0 keeps them for good (start() then does nothing). */
  retentionDays: number;
  /**
   * In a region of a cluster, entries the control plane does not hold yet (`audit_unshipped`)
   * stay until it does, however old: the cluster's log must not miss them. False for the
   * control plane's own log, which has no such queue.
   */
  keepUnshipped: boolean;
  /** How often a round runs; the first runs at start(). */
  intervalMs?: number;
  /** Entries deleted per transaction, so a first prune of years of entries holds no lock for long. */
  batchSize?: number;
  /** Hears what a round deleted (info), and a round that failed (warn; the next one tries again). */
  log: { info(fields: object, message: string): void; warn(fields: object, message: string): void };
}

const DAY_MS = 86_400_000;

/**
 * Keeps an audit log (the table `audit_log`, a region's or the control plane's) to its retention
 * period (MERIDIAN_AUDIT_RETENTION_DAYS): a round deletes the entries older than the period, a
 * batch per transaction, until none is left. The log's trigger refuses every delete but these:
 * each batch names its cutoff for its own transaction (`meridian.audit_prune_before`), and the
 * trigger lets through only rows older than it. Processes sharing the database take turns, a
 * batch each (an advisory lock held for the batch's short transaction).
 */
export class AuditRetention {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly intervalMs: number;
  private readonly batchSize: number;

  constructor(private readonly options: AuditRetentionOptions) {
    this.intervalMs = options.intervalMs ?? 3600_000;
    this.batchSize = options.batchSize ?? 1000;
  }

  /**
   * One round: deletes every entry older than the retention period at `now`, and answers how
   * many (0 with the retention off). Throws what Postgres throws; the batches committed before
   * stay deleted.
   */
  async pruneOnce(now: Date = new Date()): Promise<number> {
    if (this.options.retentionDays === 0) return 0;
    const before = new Date(now.getTime() - this.options.retentionDays * DAY_MS);
    let total = 0;
    for (;;) {
      const deleted = await withTransaction(this.options.pool, async (client) => {
        await client.query('SELECT pg_advisory_xact_lock($1)', [PRUNE_LOCK_KEY]);
        await client.query(`SELECT set_config('meridian.audit_prune_before', $1, true)`, [before.toISOString()]);
        const result = await client.query(
          `DELETE FROM audit_log WHERE id IN (
             SELECT id FROM audit_log
              WHERE at < $1${this.options.keepUnshipped ? ' AND NOT EXISTS (SELECT 1 FROM audit_unshipped u WHERE u.id = audit_log.id)' : ''}
              ORDER BY at, id LIMIT $2)`,
          [before, this.batchSize],
        );
        return result.rowCount ?? 0;
      });
      total += deleted;
      if (deleted < this.batchSize) break;
    }
    if (total > 0) this.options.log.info({ count: total, before }, 'audit log: entries older than MERIDIAN_AUDIT_RETENTION_DAYS deleted');
    return total;
  }

  /** Runs a round now and then every interval; nothing with the retention off. */
  start(): void {
    if (this.options.retentionDays === 0) return;
    const round = () => {
      this.running ??= this.pruneOnce()
        .then(
          () => undefined,
          (err: unknown) => this.options.log.warn({ err }, 'audit log: deleting entries older than MERIDIAN_AUDIT_RETENTION_DAYS failed; trying again at the next round'),
        )
        .finally(() => (this.running = undefined));
    };
    round();
    this.timer = setInterval(round, this.intervalMs);
    this.timer.unref();
  }

  /** Stops the rounds, waiting for one under way. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
