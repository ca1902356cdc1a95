import { nextHlc, type ClockStamp } from '@meridian/proto/clock';
import type { Queryable } from './db.js';

/**
 * What a local write is stamped with: this region's name and the hybrid logical clock of "now".
 * Stores move the stamp past whatever the row held (see ManifestPushStore), so the value here is only
 * the wall-clock floor.
 */
export interface LocalClock {
  now: bigint;
  origin: string;
}

export function localClock(region: string, wallMs = Date.now()): LocalClock {
  return { now: nextHlc(wallMs), origin: region };
}

/** The clock one row stores (`hlc::text` and `origin` columns), or undefined when the query finds no row. */
export async function readClock(db: Queryable, name: string, text: string, values: unknown[]): Promise<ClockStamp | undefined> {
  const result = await db.query<{ hlc: string; origin: string }>({ name, text, values });
  const row = result.rows[0];
  return row ? { hlc: BigInt(row.hlc), origin: row.origin } : undefined;
}
