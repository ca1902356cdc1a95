import type { ChangeBody } from '@meridian/proto/changes';
import type { Queryable } from './db.js';
import type { TraceContextSource } from './metadata.js';

/** Channel the relay LISTENs on: a NOTIFY in the writing transaction wakes it as the write commits. */
export const OUTBOX_CHANNEL = 'meridian_outbox';

export interface OutboxAppend {
  hlc: bigint;
  body: ChangeBody;
  trace?: Record<string, string>;
}

export interface OutboxEntry {
  /** Decimal: the region's order of appends. */
  seq: string;
  hlc: string;
  body: ChangeBody;
  trace?: Record<string, string>;
  createdAt: Date;
}

/**
 * The region's outbox: changes written by local writes, in the writing transaction, waiting for
 * the relay to hand them to the control plane. Changes applied from other regions are not
 * appended: the control plane fans a change out from its origin only.
 */
export class OutboxStore {
  constructor(
    private readonly db: Queryable,
    /** The trace context of the write under way, for entries that bring none. */
    private readonly traceContext: TraceContextSource,
  ) {}

  /** Appends the changes of one transaction (one round trip) and wakes the relay when it commits. */
  async append(entries: readonly OutboxAppend[]): Promise<void> {
    if (entries.length === 0) return;
    const trace = this.traceContext();
    await this.db.query({
      name: 'outbox-append',
      text: `WITH appended AS (
               INSERT INTO outbox (hlc, body, trace)
               SELECT hlc, body, trace FROM unnest($1::bigint[], $2::jsonb[], $3::jsonb[]) AS c(hlc, body, trace)
               RETURNING 1
             )
             SELECT pg_notify('${OUTBOX_CHANNEL}', '') FROM (SELECT 1 FROM appended LIMIT 1) AS woken`,
      values: [
        entries.map((entry) => entry.hlc.toString()),
        entries.map((entry) => JSON.stringify(entry.body)),
        entries.map((entry) => traceJson(entry.trace ?? trace)),
      ],
    });
  }

  /**
   * The oldest `limit` changes not yet delivered, in append order. A transaction that appended
   * earlier but commits later shows up in a later call: delivery is at least once and complete,
   * and replicated writes are ordered by their clocks, not by arrival.
   */
  async oldest(limit: number): Promise<OutboxEntry[]> {
    const result = await this.db.query<{ seq: string; hlc: string; body: ChangeBody; trace: Record<string, string> | null; created_at: Date }>({
      name: 'outbox-oldest',
      text: 'SELECT seq::text, hlc::text, body, trace, created_at FROM outbox ORDER BY seq LIMIT $1',
      values: [limit],
    });
    return result.rows.map((row) => ({
      seq: row.seq,
      hlc: row.hlc,
      body: row.body,
      ...(row.trace ? { trace: row.trace } : {}),
      createdAt: row.created_at,
    }));
  }

  /** Forgets changes the control plane has stored. */
  async remove(seqs: readonly string[]): Promise<void> {
    if (seqs.length === 0) return;
    await this.db.query({ name: 'outbox-remove', text: 'DELETE FROM outbox WHERE seq = ANY($1::bigint[])', values: [seqs] });
  }

  /**
   * Drops every change not yet delivered; returns how many. Only for a region whose data is being
   * purged on the operator's word: those changes were never stored anywhere else.
   */
  async discardAll(): Promise<number> {
    const result = await this.db.query({ name: 'outbox-discard-all', text: 'DELETE FROM outbox' });
    return result.rowCount ?? 0;
  }

  /** How many changes wait for delivery (for health and metrics). */
  async backlog(): Promise<number> {
    const result = await this.db.query<{ count: number }>({ name: 'outbox-backlog', text: 'SELECT count(*)::int AS count FROM outbox' });
    return result.rows[0]?.count ?? 0;
  }
}

/** A trace context as an outbox row's `trace` parameter: JSON, or NULL when there is none. */
export function traceJson(trace: Record<string, string> | undefined): string | null {
  return trace ? JSON.stringify(trace) : null;
}
