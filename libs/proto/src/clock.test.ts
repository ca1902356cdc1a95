import { describe, expect, it } from 'vitest';
import { compareClocks, hlcWallMs, nextHlc } from './clock.js';

describe('hybrid logical clock', () => {
  it('stamps the wall time when nothing seen is later', () => {
    const hlc = nextHlc(1_700_000_000_123, 5n);
    expect(hlcWallMs(hlc)).toBe(1_700_000_000_123);
    expect(hlc & 0xffffn).toBe(0n);
  });

  it('moves past a write it saw with the same or a later wall time (a skewed peer)', () => {
    const seen = nextHlc(2_000);
    expect(nextHlc(2_000, seen)).toBe(seen + 1n);
    expect(nextHlc(1_000, seen)).toBe(seen + 1n);
    expect(nextHlc(1_000, seen, seen + 7n)).toBe(seen + 8n);
  });

  it('orders by clock, then by region name, so regions agree on one winner', () => {
    expect(compareClocks({ hlc: 2n, origin: 'a' }, { hlc: 1n, origin: 'z' })).toBeGreaterThan(0);
    expect(compareClocks({ hlc: 1n, origin: 'b' }, { hlc: 1n, origin: 'a' })).toBeGreaterThan(0);
    expect(compareClocks({ hlc: 1n, origin: 'a' }, { hlc: 1n, origin: 'b' })).toBeLessThan(0);
    expect(compareClocks({ hlc: 1n, origin: 'a' }, { hlc: 1n, origin: 'a' })).toBe(0);
  });
});
