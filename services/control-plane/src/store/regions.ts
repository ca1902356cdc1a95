import type { RegionRecord, RegionState } from '@meridian/proto';
import type { Queryable } from './db.js';

export interface NewRegion {
  name: string;
  http: string;
  grpc: string;
  lat: number;
  lon: number;
  /** An edge region's blob cache size; absent for a region that holds every blob. */
  cacheBytes?: number | undefined;
}

interface RegionRow {
  name: string;
  http: string;
  grpc: string;
  lat: number;
  lon: number;
  state: RegionState;
  routing: boolean;
  cache_bytes: string | null;
  heartbeat_at: Date | null;
  backfill_total: string;
  backfill_pending: string;
  backfill_failed: string;
  backfill_bytes: string;
  backfill_started: Date | null;
}

/**
 * The regions of the cluster, with each one's backfill progress counted from its backfill rows.
 * A removed region stays `draining`, so the replication rows naming it keep their history, until
 * it is purged: then it is deleted with those rows.
 */
export class RegionStore {
  constructor(private readonly db: Queryable) {}

  /** Every region, by name; `now` dates the backfill ETA. */
  async list(now = new Date(), db: Queryable = this.db): Promise<RegionRecord[]> {
    const { rows } = await db.query<RegionRow>(`${SELECT_REGIONS} ORDER BY g.name`);
    return rows.map((row) => toRecord(row, now));
  }

  async get(name: string, db: Queryable = this.db, now = new Date()): Promise<RegionRecord | undefined> {
    const { rows } = await db.query<RegionRow>(`${SELECT_REGIONS} WHERE g.name = $1`, [name]);
    return rows[0] && toRecord(rows[0], now);
  }

  /** The region's state, locking its row until the transaction ends; undefined if unknown. */
  async lockState(name: string, db: Queryable): Promise<RegionState | undefined> {
    const { rows } = await db.query<{ state: RegionState }>('SELECT state FROM regions WHERE name = $1 FOR UPDATE', [name]);
    return rows[0]?.state;
  }

  /** Registers a region, or brings a draining one back with new endpoints. */
  async upsert(region: NewRegion, state: RegionState, db: Queryable): Promise<void> {
    await db.query(
      `INSERT INTO regions (name, http, grpc, lat, lon, state, cache_bytes) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (name) DO UPDATE SET http = EXCLUDED.http, grpc = EXCLUDED.grpc, lat = EXCLUDED.lat,
         lon = EXCLUDED.lon, state = EXCLUDED.state, cache_bytes = EXCLUDED.cache_bytes, updated_at = now()`,
      [region.name, region.http, region.grpc, region.lat, region.lon, state, region.cacheBytes ?? null],
    );
  }

  async setState(name: string, state: RegionState, db: Queryable): Promise<void> {
    await db.query('UPDATE regions SET state = $2, updated_at = now() WHERE name = $1', [name, state]);
  }

  /** Deletes a region whose replication rows are gone. */
  async delete(name: string, db: Queryable): Promise<void> {
    await db.query('DELETE FROM regions WHERE name = $1', [name]);
  }

  /** Turns nearest-region routing to the region on or off; false if the region is unknown. */
  async setRouting(name: string, routing: boolean): Promise<boolean> {
    const result = await this.db.query('UPDATE regions SET routing = $2, updated_at = now() WHERE name = $1', [name, routing]);
    return result.rowCount === 1;
  }

  /** Records a heartbeat; false if the region is unknown. */
  async heartbeat(name: string): Promise<boolean> {
    const result = await this.db.query('UPDATE regions SET heartbeat_at = now() WHERE name = $1', [name]);
    return result.rowCount === 1;
  }

  /** An `adding` region with no backfill row left pending turns `active`; true if it did. */
  async activateIfCaughtUp(name: string, db: Queryable = this.db): Promise<boolean> {
    const result = await db.query(
      `UPDATE regions SET state = 'active', updated_at = now()
        WHERE name = $1 AND state = 'adding'
          AND NOT EXISTS (SELECT 1 FROM replications WHERE region = $1 AND backfill AND state = 'pending')`,
      [name],
    );
    return result.rowCount === 1;
  }
}

const SELECT_REGIONS = `
  SELECT g.name, g.http, g.grpc, g.lat, g.lon, g.state, g.routing, g.cache_bytes, g.heartbeat_at, b.*
    FROM regions g
   CROSS JOIN LATERAL (
         SELECT count(*) AS backfill_total,
                count(*) FILTER (WHERE state = 'pending') AS backfill_pending,
                count(*) FILTER (WHERE state = 'failed') AS backfill_failed,
                coalesce(sum(bytes), 0) AS backfill_bytes,
                min(created_at) AS backfill_started
           FROM replications WHERE region = g.name AND backfill) b`;

function toRecord(row: RegionRow, now: Date): RegionRecord {
  const total = Number(row.backfill_total);
  const pending = Number(row.backfill_pending);
  const done = total - pending;
  return {
    name: row.name,
    http: row.http,
    grpc: row.grpc,
    lat: row.lat,
    lon: row.lon,
    state: row.state,
    routing: row.routing,
    ...(row.cache_bytes !== null ? { cacheBytes: Number(row.cache_bytes) } : {}),
    heartbeatAt: row.heartbeat_at?.toISOString() ?? null,
    backfill:
      total === 0
        ? null
        : {
            done,
            failed: Number(row.backfill_failed),
            total,
            bytes: Number(row.backfill_bytes),
            etaSeconds: backfillEta(done, pending, row.backfill_started, now),
          },
  };
}

/**
 * Seconds until the backfill is through at the pace it has kept since it began: 0 when nothing
 * is pending, null before the first item is done (no pace yet).
 */
export function backfillEta(done: number, pending: number, started: Date | null, now: Date): number | null {
  if (pending === 0) return 0;
  if (done === 0 || !started) return null;
  const elapsedSeconds = Math.max(0, (now.getTime() - started.getTime()) / 1000);
  return Math.round((elapsedSeconds / done) * pending);
}
