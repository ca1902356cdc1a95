import type { ReplicatedChange } from '@meridian/proto';
import type { Queryable } from './db.js';

/** A change as the control plane stored it: its id (a decimal string) and when it arrived. */
export interface StoredChange {
  id: string;
  change: ReplicatedChange;
  receivedAt: string;
}

interface ChangeRow {
  id: string;
  origin: string;
  seq: string;
  hlc: string;
  at: Date;
  body: ReplicatedChange['body'];
  trace: Record<string, string> | null;
  received_at: Date;
}

export const CHANGE_COLUMNS = 'c.id, c.origin, c.seq, c.hlc, c.at, c.body, c.trace, c.received_at';

/** Every change relayed by a region, stored once per (origin, seq). */
export class ChangeStore {
  constructor(private readonly db: Queryable) {}

  /** Stores a change; its new id, or undefined when (origin, seq) was stored before. */
  async insert(change: ReplicatedChange, db: Queryable): Promise<string | undefined> {
    const body = change.body;
    const { rows } = await db.query<{ id: string }>(
      `INSERT INTO changes (origin, seq, hlc, at, kind, repository, digest, body, trace)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
       ON CONFLICT (origin, seq) DO NOTHING
       RETURNING id`,
      [change.origin, change.seq, change.hlc, change.at, body.kind, body.repository, 'digest' in body ? body.digest : null, body, change.trace ?? null],
    );
    return rows[0]?.id;
  }

  async get(id: string): Promise<StoredChange | undefined> {
    const { rows } = await this.db.query<ChangeRow>(`SELECT ${CHANGE_COLUMNS} FROM changes c WHERE c.id = $1`, [id]);
    return rows[0] && toStoredChange(rows[0]);
  }

  /**
   * The puts of a manifest that count now: those newer (by clock) than its last delete, since a
   * region that applied an earlier put has lost the manifest to that delete.
   */
  async currentPuts(repository: string, digest: string, db: Queryable = this.db): Promise<StoredChange[]> {
    const { rows } = await db.query<ChangeRow>(
      `SELECT ${CHANGE_COLUMNS} FROM changes c
        WHERE c.repository = $1 AND c.digest = $2 AND c.kind = 'manifest.put'
          AND NOT EXISTS (SELECT 1 FROM changes d
                           WHERE d.repository = $1 AND d.digest = $2 AND d.kind = 'manifest.delete'
                             AND (d.hlc, d.origin) > (c.hlc, c.origin))
        ORDER BY c.id`,
      [repository, digest],
    );
    return rows.map(toStoredChange);
  }

  /** The highest seq stored for an origin ("0" if none). */
  async lastSeq(origin: string): Promise<string> {
    const { rows } = await this.db.query<{ seq: string | null }>('SELECT max(seq) AS seq FROM changes WHERE origin = $1', [origin]);
    return rows[0]?.seq ?? '0';
  }
}

/** A row selected with CHANGE_COLUMNS, as the change record the regions sent. */
export function toStoredChange(row: ChangeRow): StoredChange {
  return {
    id: row.id,
    change: {
      origin: row.origin,
      seq: row.seq,
      hlc: row.hlc,
      at: row.at.toISOString(),
      body: row.body,
      ...(row.trace ? { trace: row.trace } : {}),
    },
    receivedAt: row.received_at.toISOString(),
  };
}
export type { ChangeRow };
