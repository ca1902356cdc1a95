/**
 * Hybrid logical clocks (replica.proto, "Clocks"): wall-clock milliseconds shifted left by 16
 * bits, plus a counter that moves a write past one that has the same or a later wall time. As a
 * bigint they order like numbers; stored and sent as decimal strings.
 */
export interface ClockStamp {
  hlc: bigint;
  origin: string;
}

const LOGICAL_BITS = 16n;

/** The clock value of a write at `wallMs` that must come after `after` (what the writer saw). */
export function nextHlc(wallMs: number, ...after: bigint[]): bigint {
  const now = BigInt(Math.floor(wallMs)) << LOGICAL_BITS;
  return after.reduce((latest, seen) => (seen >= latest ? seen + 1n : latest), now);
}

/** The wall-clock milliseconds a clock value was stamped at. */
export function hlcWallMs(hlc: bigint): number {
  return Number(hlc >> LOGICAL_BITS);
}

/**
 * Last writer wins: positive when `a` is newer than `b`. Equal clocks from two regions are
 * ordered by region name, so every region picks the same winner.
 */
export function compareClocks(a: ClockStamp, b: ClockStamp): number {
  if (a.hlc !== b.hlc) return a.hlc > b.hlc ? 1 : -1;
  return a.origin === b.origin ? 0 : a.origin > b.origin ? 1 : -1;
}
