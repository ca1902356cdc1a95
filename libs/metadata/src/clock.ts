import { nextHlc } from '@meridian/proto/clock';

/**
 * What a local write is stamped with: this region's name and the hybrid logical clock of "now".
 * Stores move the stamp past whatever the row held (see TagStore.put), so the value here is only
 * the wall-clock floor.
 */
export interface LocalClock {
  now: bigint;
  origin: string;
}

export function localClock(region: string, wallMs = Date.now()): LocalClock {
  return { now: nextHlc(wallMs), origin: region };
}
