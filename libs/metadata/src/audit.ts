import type { AuditAction, AuditOutcome } from '@meridian/proto/audit';
import type { Queryable } from './db.js';

export type { AuditAction, AuditOutcome };


/** One event, as whoever saw it appends it. Names and facts only: never a password or a token. */
export interface AuditEvent {
  region: string;
  /** The identity that acted (for a failed sign-in, the name given); undefined: anonymous. */
  identity?: string | undefined;
  /** The client's address: its TCP peer, or behind a trusted proxy the address the proxy forwarded. */
  address?: string | undefined;
  /** The request's X-Forwarded-For, as claimed by the peer. */
  forwardedFor?: string | undefined;
  action: AuditAction;
  /** What was acted on: `team-a/app:v1`, `team-a/app@sha256:…`, `token ci`. */
  target?: string | undefined;
  outcome: AuditOutcome;
  /** Facts worth keeping beside the target (a pushed tag's digest, a rotated password's slot). */
  detail?: Record<string, string | number | boolean> | undefined;
}

export interface AuditEntry extends Omit<AuditEvent, 'identity' | 'address' | 'forwardedFor' | 'target' | 'detail'> {
  /** Decimal: the order of appends in the log that holds it. */
  id: string;
  at: Date;
  identity: string | null;
  address: string | null;
  forwardedFor: string | null;
  target: string | null;
  detail: Record<string, string | number | boolean> | null;
}

/** Where a page of the log starts: after this entry, in (at, id) order. */
export interface AuditCursor {
  at: Date;
  id: string;
}

export interface AuditQuery {
  since?: Date;
  /** Continue after the last entry of the previous page. */
  after?: AuditCursor;
  limit: number;
}

/** The columns of an audit row, in the order `append` and a control plane's copy insert them. */
export const AUDIT_COLUMNS = 'region, identity, address, forwarded_for, action, target, outcome, detail';

const SELECT_ENTRY = `SELECT id::text, at, region, identity, address, forwarded_for AS "forwardedFor", action, target, outcome, detail FROM audit_log`;

/**
 * The region's audit log (migration 1733300000000): append and read, nothing else; the table
 * refuses updates and deletes. In a cluster (`shipped`), each row appended is also queued in
 * `audit_unshipped` for the control plane, in the same statement.
 */
export class AuditStore {
  constructor(
    private readonly db: Queryable,
    private readonly shipped: boolean,
  ) {}

  /** Appends events in one round trip (inside the caller's transaction when it has one). */
  async append(events: readonly AuditEvent[]): Promise<void> {
    if (events.length === 0) return;
    const values = [
      events.map((event) => event.region),
      events.map((event) => event.identity ?? null),
      events.map((event) => event.address ?? null),
      events.map((event) => event.forwardedFor ?? null),
      events.map((event) => event.action),
      events.map((event) => event.target ?? null),
      events.map((event) => event.outcome),
      events.map((event) => (event.detail ? JSON.stringify(event.detail) : null)),
    ];
    const insert = `INSERT INTO audit_log (${AUDIT_COLUMNS})
                    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::jsonb[])`;
    await this.db.query(
      this.shipped
        ? { name: 'audit-append-shipped', text: `WITH appended AS (${insert} RETURNING id) INSERT INTO audit_unshipped (id) SELECT id FROM appended`, values }
        : { name: 'audit-append', text: insert, values },
    );
  }

  /** Entries in the order they were recorded, from `since` or after a cursor, at most `limit`. */
  async list(query: AuditQuery): Promise<AuditEntry[]> {
    const result = await this.db.query<AuditEntry>({
      name: 'audit-list',
      text: `${SELECT_ENTRY}
              WHERE ($1::timestamptz IS NULL OR at >= $1)
                AND ($2::timestamptz IS NULL OR (at, id) > ($2, $3::bigint))
              ORDER BY at, id LIMIT $4`,
      values: [query.since ?? null, query.after?.at ?? null, query.after?.id ?? null, query.limit],
    });
    return result.rows;
  }

  /** The oldest entries the control plane does not hold yet, in append order. */
  async unshipped(limit: number): Promise<AuditEntry[]> {
    const result = await this.db.query<AuditEntry>({
      name: 'audit-unshipped',
      text: `${SELECT_ENTRY} WHERE id IN (SELECT id FROM audit_unshipped ORDER BY id LIMIT $1) ORDER BY id`,
      values: [limit],
    });
    return result.rows;
  }

  /** Forgets entries the control plane has stored (the entries themselves stay). */
  async markShipped(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.db.query({ name: 'audit-mark-shipped', text: 'DELETE FROM audit_unshipped WHERE id = ANY($1::bigint[])', values: [ids] });
  }
}

/** The most entries one page of the log holds. */
export const AUDIT_PAGE_MAX = 1000;

/** Where the page after `entry` starts, as text for a query parameter: `<at in ms>.<id>`. */
export function encodeAuditCursor(entry: Pick<AuditEntry, 'at' | 'id'>): string {
  return `${entry.at.getTime()}.${entry.id}`;
}

/** The cursor `encodeAuditCursor` made; undefined for anything else. */
export function decodeAuditCursor(text: string): AuditCursor | undefined {
  const match = /^(\d{1,15})\.(\d{1,19})$/.exec(text);
  return match ? { at: new Date(Number(match[1])), id: match[2]! } : undefined;
}

/** A page of at most `limit` entries from `fetched` (one more was asked for, to know whether more follow). */
export function auditPage(fetched: readonly AuditEntry[], limit: number): { entries: AuditEntry[]; next?: string } {
  const entries = fetched.slice(0, limit);
  return fetched.length > limit ? { entries, next: encodeAuditCursor(entries[entries.length - 1]!) } : { entries };
}
